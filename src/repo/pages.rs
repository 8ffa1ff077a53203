//! Pages of several parents' children in one statement, for nested GraphQL fields (a
//! conversation list's messages, a session list's contexts). Each parent gets the window
//! [`super::windowed`] gives one parent (its rows numbered by id with `ROW_NUMBER()`), so a
//! batch answers exactly what one query per parent would.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, IdenStatic, ModelTrait,
    QueryFilter, QueryTrait, Select, Value,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query, WindowStatement},
};

use crate::domain::pagination::{Page, PageRequest};

/// The window of `page` over each parent's rows of `query` (already filtered for the
/// tenant), keyed by parent id; a parent without rows gets an empty page.
pub(super) async fn per_parent<E>(
    db: &impl ConnectionTrait,
    query: Select<E>,
    parent: E::Column,
    id: E::Column,
    parents: &[String],
    page: &PageRequest,
) -> Result<HashMap<String, Page<E::Model>>, DbErr>
where
    E: EntityTrait,
    E::Model: FromQueryResult + ModelTrait<Entity = E> + Send + Sync,
{
    let mut rows_of: HashMap<String, Vec<E::Model>> =
        parents.iter().map(|p| (p.clone(), Vec::new())).collect();
    if !parents.is_empty() {
        let mut query = query.filter(parent.is_in(parents.iter().map(String::as_str)));
        if let Some(after) = &page.after {
            query = query.filter(id.gt(after.as_str()));
        }
        if let Some(before) = &page.before {
            query = query.filter(id.lt(before.as_str()));
        }
        let order = if page.from_end {
            Order::Desc
        } else {
            Order::Asc
        };
        let mut numbered = query.into_query();
        numbered.expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by((E::default(), parent))
                .order_by((E::default(), id), order.clone())
                .to_owned(),
            Alias::new("row_in_parent"),
        );
        let window = Query::select()
            .column(Asterisk)
            .from_subquery(numbered, Alias::new("numbered"))
            .and_where(Expr::col(Alias::new("row_in_parent")).lte(page.fetch_limit()))
            .order_by(Alias::new(id.as_str()), order)
            .to_owned();
        let statement = db.get_database_backend().build(&window);
        for row in E::Model::find_by_statement(statement).all(db).await? {
            if let Value::String(Some(of)) = row.get(parent) {
                rows_of.entry(of.to_string()).or_default().push(row);
            }
        }
    }
    Ok(rows_of
        .into_iter()
        .map(|(parent, rows)| (parent, page.finish(rows)))
        .collect())
}
