//! History and audit, one feature a file:
//!
//! - `known_at`: record time (`knownAt`) and valid time (`asOf`) of listings;
//! - `check_reconstruction`: a check as of an instant, as the registry knew it then;
//! - `audit_log`: the append-only, hash-chained audit log, its search and its verifier;
//! - `change_feed`: the change feed (`changes`), in order across pages;
//! - `subscriptions`: its push form (`registryChanged` over WebSocket);
//! - `public_list`: the public list (公示) and what it must not show;
//! - `typical_cases`: typical cases, marked by admins and public;
//! - `report`: the yearly report.
//!
//! Helpers more than one feature uses live here.

mod audit_log;
mod change_feed;
mod check_reconstruction;
mod known_at;
mod public_list;
mod report;
pub(crate) mod subscriptions;
mod typical_cases;

use tests::Gql;

fn ids(resp: &Gql, field: &str) -> Vec<String> {
    resp.data()[field]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

const CORRECT: &str =
    "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }";
