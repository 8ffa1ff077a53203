//! Helpers resolvers use to reach the state, the caller and Relay connections.

use async_graphql::{
    Context, OutputType,
    connection::{Connection, Edge},
};

use crate::{
    auth::Principal,
    domain::pagination::{Page, PageRequest},
    error::AppError,
    state::AppState,
};

/// The shared state and the authenticated caller of this request.
pub fn parts<'a>(ctx: &Context<'a>) -> Result<(&'a AppState, &'a Principal), AppError> {
    let state = ctx
        .data::<AppState>()
        .map_err(|_| AppError::Internal(anyhow::anyhow!("schema built without state")))?;
    let principal = ctx
        .data::<Principal>()
        .map_err(|_| AppError::Unauthenticated("missing credentials".into()))?;
    Ok((state, principal))
}

/// Relay arguments as a page request.
pub fn page(
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> Result<PageRequest, AppError> {
    PageRequest::relay(first, after, last, before)
}

/// A connection over a page, with each item's cursor.
pub fn connection<T, N: OutputType>(
    page: Page<T>,
    cursor: impl Fn(&T) -> String,
    node: impl Fn(T) -> N,
) -> Connection<String, N> {
    let mut connection = Connection::new(page.has_previous, page.has_next);
    connection.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(cursor(&item), node(item))),
    );
    connection
}

/// The complexity of a connection field: its items' complexity times the page size asked
/// for (`first` or `last`, default 20), so a nested list's cost is counted per item.
pub fn page_cost(first: Option<i32>, last: Option<i32>, child_complexity: usize) -> usize {
    use crate::domain::pagination::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
    // A size out of range costs nothing here: the resolver refuses it with a clear error.
    let size = match first.or(last) {
        None => DEFAULT_PAGE_SIZE,
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_PAGE_SIZE)
            .unwrap_or(1),
    };
    (size.max(1) as usize).saturating_mul(child_complexity)
}
