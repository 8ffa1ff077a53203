//! Companin: customer-facing AI assistants behind one GraphQL API, with a REST layer.
//!
//! Layers, top to bottom: `http` and `graphql` (thin transports) → `services` (logic, the
//! scope check that makes a `Tenant` handle, transactions) → `ingest` → `state` → `auth`,
//! `runtime` → `repo` (organization-scoped queries), `vector`, `models` → `domain`
//! (ids, the organization boundary), `language` (detection and analysis) → `entity`
//! (tables). `docs/architecture.md` has the map; `tests/api/layers.rs` fails on an import
//! that points up.

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
pub mod language;
pub mod limiter;
pub mod metrics;
pub mod models;
pub mod repo;
pub mod runtime;
pub mod services;
pub mod shared_log;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod vector;
pub mod views;
