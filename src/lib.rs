//! Companin: customer-facing AI assistants behind one GraphQL API, with a REST layer.
//!
//! Layers, top to bottom: `http` and `graphql` (thin transports) → `services` (logic,
//! scopes, transactions) → `repo` (organization-scoped queries) → `entity` (tables).

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod repo;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod views;
