//! Black-box tests: the real server on port 0, GraphQL over HTTP, SQLite and PostgreSQL.

mod access_matrix;
mod checks;
mod feedback;
mod foundation;
mod fuzz;
mod history;
mod idempotency;
mod limits;
mod listings;
mod metrics;
mod operators;
mod partners;
mod rate_limits;
mod receipts;
mod repair;
mod request_ids;
mod seed;
mod tokens;
