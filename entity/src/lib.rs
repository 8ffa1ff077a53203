//! sea-orm entities of Companin's relational store: the shape of the tables, nothing more.
//! API types live in the server crate; behaviour lives in its services.

pub mod api_key;
pub mod assistant;
pub mod assistant_knowledge;
pub mod assistant_version;
pub mod conversation;
pub mod feedback;
pub mod idempotency_key;
pub mod ingest_job;
pub mod knowledge_gap;
pub mod knowledge_source;
pub mod lease;
pub mod message;
pub mod oauth_app;
pub mod organization;
pub mod request_log;
pub mod session_context;
pub mod url_refresh;
pub mod visitor_session;
pub mod webhook_attempt;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod webhook_event;
