//! Integration tests: each starts the real application on port 0 with a fresh database
//! (a SQLite file in a temp dir, or a new PostgreSQL database when `TEST_DATABASE_URL` is
//! set) and talks HTTP and websocket to it.

mod analytics;
mod assistants;
mod auth;
mod browser;
mod cli;
mod cli_operations;
mod conversation_support;
mod conversations;
mod external_auth;
mod fake_openai;
mod graphql_conventions;
mod handoff;
mod helpers;
mod hostile_files;
mod idempotency;
mod ingestion;
mod isolation_cases;
mod isolation_matrix;
mod knowledge;
mod knowledge_gaps;
mod knowledge_support;
mod layers;
mod models;
mod nested_reads;
mod openai_compat;
mod outcomes;
mod properties;
mod rate_limits;
mod replicas;
mod rest;
mod scripted_chat;
mod shutdown;
mod telemetry;
mod tenancy;
mod visitor_answers;
mod webhook_support;
mod webhooks;
mod websocket;
mod widget_tokens;
mod ws_support;
