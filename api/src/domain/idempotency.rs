//! Idempotency keys: the rules, without the database.
//!
//! A request carrying `Idempotency-Key` is identified by (caller, key); its body's
//! fingerprint must match on every retry. The stored record is either *pending* (the
//! first attempt is running, or died) or *done* (its answer, replayed to every retry).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const MAX_KEY_LEN: usize = 255;

/// How long an answer is kept; after that the key may be used again.
pub fn retention() -> Duration {
    Duration::hours(24)
}

/// Error codes of the idempotency refusals.
pub const KEY_INVALID: &str = "IDEMPOTENCY_KEY_INVALID";
pub const KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
pub const KEY_IN_PROGRESS: &str = "IDEMPOTENCY_KEY_IN_PROGRESS";
pub const ANSWER_LOST: &str = "IDEMPOTENCY_ANSWER_LOST";

/// Codes meaning "this did not run to a definite end": such an answer is not stored
/// unless the attempt committed something (then it is the truth and is kept).
pub const TRANSIENT_CODES: [&str; 4] =
    ["SERVICE_UNAVAILABLE", "TIMEOUT", "INTERNAL", "RATE_LIMITED"];

/// A key is 1 to 255 visible ASCII characters (a UUID is the usual choice).
pub fn validate_key(key: &str) -> Result<&str, String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "the Idempotency-Key header must have 1 to {MAX_KEY_LEN} characters"
        ));
    }
    if !key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the Idempotency-Key header may only contain visible ASCII characters".into());
    }
    Ok(key)
}

/// SHA-256 (hex) of the request body in canonical form: object keys sorted, no
/// insignificant white space. A retry that re-serialises the same request matches.
pub fn fingerprint(body: &Value) -> String {
    let mut canonical = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = super::audit_chain::write_canonical(&mut canonical, body);
    hex::encode(Sha256::digest(&canonical))
}

/// What the `response` column holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Stored {
    /// The attempt with this request id is running (or died before answering).
    Pending { request_id: String },
    /// The answer, replayed as it was.
    Done { status: u16, body: Value },
}

impl Stored {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_text(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// What to do with a request whose key is already recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum Existing {
    /// Older than the retention: forget it and start afresh.
    Expired,
    /// Same key, different request.
    Reused,
    /// Replay this answer.
    Replay { status: u16, body: Value },
    /// The first attempt is still running.
    InProgress,
    /// The first attempt died without answering: find out whether it committed.
    Abandoned { request_id: String },
}

/// Decides about a recorded key. `stale_after` is how long a pending attempt can still
/// be alive (the request timeout plus a margin).
pub fn judge(
    stored_hash: &str,
    stored: Option<Stored>,
    created_at: DateTime<Utc>,
    request_hash: &str,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> Existing {
    if now - created_at > retention() {
        return Existing::Expired;
    }
    if stored_hash != request_hash {
        return Existing::Reused;
    }
    match stored {
        Some(Stored::Done { status, body }) => Existing::Replay { status, body },
        Some(Stored::Pending { request_id }) if now - created_at > stale_after => {
            Existing::Abandoned { request_id }
        }
        Some(Stored::Pending { .. }) => Existing::InProgress,
        // Unreadable: nothing can be replayed; treat it like an attempt that died.
        None => Existing::Abandoned {
            request_id: String::new(),
        },
    }
}

/// True when an answer reports no transient failure, so it may be stored as final.
pub fn is_definitive(body: &Value) -> bool {
    !error_codes(body).any(|code| TRANSIENT_CODES.contains(&code))
}

/// Every `extensions.code` in a response or batch of responses.
pub fn error_codes(body: &Value) -> impl Iterator<Item = &str> {
    let responses: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    responses
        .into_iter()
        .filter_map(|r| r.get("errors").and_then(Value::as_array))
        .flatten()
        .filter_map(|e| e.pointer("/extensions/code").and_then(Value::as_str))
}

/// The answer kept for a request that committed but whose answer was lost (the process
/// died or the request timed out after the commit).
pub fn answer_lost_body(request_id: &str) -> Value {
    serde_json::json!({ "errors": [{
        "message": format!(
            "the request with this Idempotency-Key was applied (request id {request_id}) but its answer was lost; read the current state instead of retrying"
        ),
        "extensions": { "code": ANSWER_LOST, "requestId": request_id }
    }]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(validate_key("3f2c1e4a-0b7d-4c8e-9f1a-2b3c4d5e6f70").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("has space").is_err());
        assert!(validate_key("键").is_err());
        assert!(validate_key(&"k".repeat(256)).is_err());
        assert!(validate_key(&"k".repeat(255)).is_ok());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_white_space_only() {
        let a = json!({"query": "mutation { x }", "variables": {"a": 1, "b": [1, 2]}});
        let b: Value = serde_json::from_str(
            r#"{ "variables": {"b": [1,2], "a": 1},  "query": "mutation { x }" }"#,
        )
        .unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        let c = json!({"query": "mutation { x }", "variables": {"a": 2, "b": [1, 2]}});
        assert_ne!(fingerprint(&a), fingerprint(&c));
        let d = json!({"query": "mutation { x }", "variables": {"a": 1, "b": [2, 1]}});
        assert_ne!(fingerprint(&a), fingerprint(&d));
    }

    #[test]
    fn stored_records_round_trip() {
        for s in [
            Stored::Pending {
                request_id: "r1".into(),
            },
            Stored::Done {
                status: 200,
                body: json!({"data": {"x": 1}}),
            },
        ] {
            assert_eq!(Stored::from_text(&s.to_text()), Some(s));
        }
        assert_eq!(Stored::from_text(""), None);
    }

    #[test]
    fn recorded_keys_are_judged() {
        let t0 = Utc::now();
        let stale = Duration::seconds(20);
        let done = Some(Stored::Done {
            status: 200,
            body: json!({"data": 1}),
        });
        let pending = Some(Stored::Pending {
            request_id: "r1".into(),
        });
        assert_eq!(
            judge("h", done.clone(), t0, "h", t0, stale),
            Existing::Replay {
                status: 200,
                body: json!({"data": 1})
            }
        );
        assert_eq!(
            judge("h", done.clone(), t0, "other", t0, stale),
            Existing::Reused
        );
        assert_eq!(
            judge(
                "h",
                pending.clone(),
                t0,
                "h",
                t0 + Duration::seconds(1),
                stale
            ),
            Existing::InProgress
        );
        assert_eq!(
            judge("h", pending, t0, "h", t0 + Duration::seconds(21), stale),
            Existing::Abandoned {
                request_id: "r1".into()
            }
        );
        assert_eq!(
            judge("h", done, t0, "other", t0 + Duration::hours(25), stale),
            Existing::Expired
        );
    }

    #[test]
    fn transient_failures_are_not_definitive() {
        assert!(is_definitive(&json!({"data": {"x": 1}})));
        assert!(is_definitive(
            &json!({"errors": [{"message": "m", "extensions": {"code": "CONFLICT"}}]})
        ));
        assert!(!is_definitive(
            &json!({"errors": [{"message": "m", "extensions": {"code": "SERVICE_UNAVAILABLE"}}]})
        ));
        assert!(!is_definitive(&json!([
            {"data": {"x": 1}},
            {"errors": [{"message": "m", "extensions": {"code": "TIMEOUT"}}]}
        ])));
        assert_eq!(
            error_codes(&answer_lost_body("r")).collect::<Vec<_>>(),
            vec![ANSWER_LOST]
        );
    }
}
