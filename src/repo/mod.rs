//! sea-orm queries per aggregate. Every function that reads or writes an organization's data
//! takes the [`Tenant`](crate::domain::access::Tenant) handle — made by a scope check, or
//! for work done on the organization's behalf — and filters by its organization; for the
//! visitor-visible records (sessions, contexts, conversations, messages, feedback) it also
//! confines a visitor's handle to its own records ([`visible`]). "The organization" in these
//! docs is the handle's. The organization record itself ([`organizations`]) is read by id
//! (authentication and governance need it before any handle exists), and the few
//! deliberately cross-organization statements (claiming jobs and deliveries, sweeping,
//! pruning) say why they exist.

pub mod analytics;
pub mod api_keys;
pub mod assistant_knowledge;
pub mod assistants;
pub mod conversations;
pub mod feedback;
pub mod handoff;
pub mod idempotency;
pub mod jobs;
pub mod knowledge;
pub mod knowledge_gaps;
pub mod leases;
pub mod oauth_apps;
pub mod organizations;
pub mod outcomes;
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
