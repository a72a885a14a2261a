//! Store-side translations of domain rules: the SQL that must say exactly what a rule in
//! `domain/` says, kept in one place and tested against the rule.

pub mod check_record_sql;
pub mod check_sql;
pub mod in_force;
pub mod insert_many;
pub mod name_search;
pub mod report_sql;
pub mod revisions;
pub mod statistics;
pub mod status_map_store;
pub mod tlog_store;
