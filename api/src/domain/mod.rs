//! Rules with no I/O: codes, names, regions, working days, listing states, decisions.
//! Everything here is a small pure function with unit tests.

pub mod audit_chain;
pub mod idempotency;
pub mod measures;
pub mod names;
pub mod privacy;
pub mod region;
pub mod uscc;
pub mod working_days;

use chrono::{DateTime, SubsecRound, Utc};

/// Instants are kept at microsecond precision everywhere, which is what PostgreSQL
/// stores; SQLite then holds exactly the same values.
pub fn truncate_instant(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

/// The current instant at storage precision.
pub fn now() -> DateTime<Utc> {
    truncate_instant(Utc::now())
}
