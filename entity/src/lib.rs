//! sea-orm entities of Companin's relational store: the shape of the tables, nothing more.
//! API types live in the server crate; behaviour lives in its services.

pub mod api_key;
pub mod assistant;
pub mod assistant_version;
pub mod organization;
