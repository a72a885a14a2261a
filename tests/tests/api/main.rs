//! Black-box tests: the real server on port 0, GraphQL over HTTP, SQLite and PostgreSQL.

mod access_matrix;
mod browser;
mod bulk;
mod checks;
mod cost;
mod edge_input;
mod feedback;
mod foundation;
mod fuzz;
mod graphql_http;
mod history;
mod idempotency;
mod limits;
mod listings;
mod metrics;
mod operators;
mod pages;
mod partners;
mod rate_limits;
mod receipts;
mod repair;
mod request_ids;
mod rules;
mod seed;
mod tokens;
mod ws_security;
