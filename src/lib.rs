//! Companin: customer-facing AI assistants behind one GraphQL API, with a REST layer.
//!
//! Layers, top to bottom: `http` and `graphql` (thin transports) → `services` (logic,
//! scopes, transactions) → `repo` (organization-scoped queries) → `entity` (tables).

// lancedb query futures are deep; proving them `Send` needs more than the default limit.
#![recursion_limit = "256"]

pub mod auth;
pub mod chat_client;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod egress;
pub mod error;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod limiter;
pub mod metrics;
pub mod models;
pub mod repo;
pub mod runtime;
pub mod services;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod vector;
pub mod views;
