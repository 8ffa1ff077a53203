//! Who may reach which organization's data: scopes, the authenticated [`Principal`], and the
//! [`Tenant`] handle that is the only way to an organization's records.
//!
//! A principal never hands out its organization. It gives a [`Tenant`] after a scope check
//! ([`Principal::scope`], or [`Principal::visitor_scope`] for the operations a visitor may
//! perform on its own records), and work the system does for an organization makes its own
//! handle, named for that work ([`Tenant::for_work`]). Repositories of visitor-visible
//! records (sessions, contexts, conversations, messages, feedback) take the handle and
//! confine a visitor's queries to its own records in the query itself.

mod principal;
mod scopes;
mod tenant;

pub use principal::{Principal, VisitorGrant};
pub use scopes::{Scope, Scopes};
pub use tenant::{Tenant, Work};
