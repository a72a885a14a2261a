//! Black-box tests: the real server on port 0, GraphQL over HTTP, SQLite and PostgreSQL.

mod access_matrix;
mod bulk;
mod checks;
mod edge_input;
mod feedback;
mod foundation;
mod fuzz;
mod history;
mod idempotency;
mod limits;
mod listings;
mod operators;
mod partners;
mod rate_limits;
mod receipts;
mod repair;
mod rules;
mod seed;
mod tokens;
