//! The credit-punishment registry service.
//!
//! Data flows one way: HTTP (`http`) → identity (`auth`) → GraphQL resolvers
//! (`graphql`) → use cases (`service`) → rules (`domain`) and sea-orm → database.

pub mod auth;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod replica;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tlog;
