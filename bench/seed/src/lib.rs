//! Bench data: the `seed-bench` command fills an empty registry with a realistic
//! synthetic data set (operators with valid codes, listings in every state with their
//! periods and measures, check records) fast enough for ten million operators.
//!
//! It lives in a crate of its own, outside the production `credit-registry` binary: it
//! drops indexes and truncates tables, which a registry server has no business being able
//! to do. It reads the registry's rules (codes, names, working days) from `api::domain`.
//!
//! It is a bulk load, not a sequence of use cases: it writes no audit events and leaves
//! `audit_head` alone (the audit chain stays valid and simply does not mention bench
//! rows). Use it on a database made for benchmarks, never on a production registry; it
//! refuses a database whose operator, listing or check tables already hold rows.
//!
//! Every row is a pure function of `(seed, operators, listings, in-force share)` and its
//! index (`population`, `plan`), so the load generator regenerates the same codes, and
//! knows which are listed, from the manifest alone.

pub mod load;
pub mod plan;
pub mod population;
pub mod synth;

pub use load::{SeedOptions, SeedReport, load_catalogue, seed};
pub use population::Population;
