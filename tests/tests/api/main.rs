//! Black-box tests: the real server on port 0, GraphQL over HTTP, SQLite and PostgreSQL.

mod foundation;
mod fuzz;
mod idempotency;
mod limits;
mod operators;
mod rate_limits;
mod tokens;
