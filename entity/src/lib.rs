//! sea-orm models of the registry's tables. Models only: the API's types live in `api`.

pub mod audit_event;
pub mod audit_head;
pub mod calendar_day;
pub mod calendar_year;
pub mod check_record;
pub mod credit_list;
pub mod idempotency_key;
pub mod import_batch;
pub mod list_default_measure;
pub mod listing;
pub mod listing_measure;
pub mod listing_period;
pub mod listing_revision;
pub mod measure;
pub mod operator;
pub mod partner;
pub mod partner_feedback;
pub mod repair_application;
pub mod tlog_checkpoint;
pub mod tlog_cosignature;
pub mod tlog_entry;
pub mod tlog_hash;
pub mod tlog_head;
pub mod typical_case;
pub mod violation_category;
