//! sea-orm queries per aggregate. Every function that reads or writes tenant data takes the
//! organization's id, or for the visitor-visible records (sessions, contexts, conversations,
//! messages, feedback) the [`Tenant`](crate::domain::access::Tenant) handle, and filters by
//! it ([`visible`]); the few unscoped lookups say why they exist.

pub mod analytics;
pub mod api_keys;
pub mod assistant_knowledge;
pub mod assistants;
pub mod conversations;
pub mod feedback;
pub mod jobs;
pub mod knowledge;
pub mod oauth_apps;
pub mod organizations;
mod pages;
pub mod request_logs;
pub mod sessions;
mod visible;
pub mod webhooks;

use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::pagination::PageRequest;

/// Restricts an id-ordered query to a page window.
fn windowed<Q, C>(query: Q, id: C, page: &PageRequest) -> Q
where
    Q: QueryFilter + QueryOrder + QuerySelect,
    C: ColumnTrait,
{
    let mut query = query;
    if let Some(after) = &page.after {
        query = query.filter(id.gt(after.as_str()));
    }
    if let Some(before) = &page.before {
        query = query.filter(id.lt(before.as_str()));
    }
    let query = if page.from_end {
        query.order_by_desc(id)
    } else {
        query.order_by_asc(id)
    };
    query.limit(page.fetch_limit())
}
