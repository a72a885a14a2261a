//! Several instances of the service on one PostgreSQL database behave as one.
//!
//! - **Announcements** ([`notify`]): a change every instance must act on at once (a
//!   listing change for the live feed, a partner's registration, new signing keys) is
//!   announced with `pg_notify` inside the transaction that writes it, so PostgreSQL
//!   delivers it at commit and only if the transaction commits. Every instance holds one
//!   listening connection ([`notify::run_listener`]) and acts on what it hears; after a
//!   lost connection it refreshes everything (notifications sent meanwhile are gone).
//!   Caches keep their time limits as the fallback.
//! - **One runner** ([`locks`]): migrations run under a session advisory lock, so of
//!   several instances starting at once one migrates and the others wait; each
//!   background job tick runs under a transaction-level advisory lock, so one instance
//!   runs it and a dead instance's lock goes with its session.
//!
//! SQLite is one process: announcements and locks are no-ops there, and the in-process
//! paths (the feed hub's wake-up, the partner cache's `forget`) do the work.

pub mod locks;
pub mod notify;
