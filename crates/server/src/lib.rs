//! # switchboard-server
//!
//! The `switchboard` binary's library: HTTP API (axum), WebSocket stream, API-key auth, OpenAPI
//! and the replay client. `main.rs` only parses the command line.

pub mod app;
pub mod auth;
pub mod conditional;
pub mod config;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod replay;
pub mod routes;

pub use app::{build, serve, shutdown_signal, App, AppState, Secret, Settings};
