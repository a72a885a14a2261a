//! Black-box tests: the real server on port 0, GraphQL over HTTP, SQLite and PostgreSQL.

mod foundation;
mod operators;
mod seed;
