//! The audit log's hash chain: each event's hash covers its own fields and the previous
//! event's hash, so altering or deleting any event breaks every link after it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The fields of an audit event that its hash covers.
#[derive(Clone, Debug)]
pub struct ChainedEvent<'a> {
    pub occurred_at: DateTime<Utc>,
    pub actor: &'a str,
    pub role: &'a str,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub before: Option<&'a Value>,
    pub after: Option<&'a Value>,
    pub reason: Option<&'a str>,
    pub request_id: &'a str,
}

/// `sha256(prev_hash "\n" canonical_json(event))`, hex-encoded.
pub fn event_hash(prev_hash: &str, event: &ChainedEvent<'_>) -> String {
    let body = serde_json::json!({
        "occurred_at": event.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "actor": event.actor,
        "role": event.role,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "before": event.before.map(canonical),
        "after": event.after.map(canonical),
        "reason": event.reason,
        "request_id": event.request_id,
    });
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_string(&body).as_bytes());
    hex::encode(hasher.finalize())
}

/// JSON with object keys sorted at every level, so a value read back from a `jsonb`
/// column (which reorders keys) hashes the same as the one written.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn canonical_string(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_string(&map[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event<'a>(after: &'a Value) -> ChainedEvent<'a> {
        ChainedEvent {
            occurred_at: Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap(),
            actor: "admin-1",
            role: "admin",
            action: "operator.upsert",
            entity_type: "operator",
            entity_id: "1",
            before: None,
            after: Some(after),
            reason: None,
            request_id: "r1",
        }
    }

    #[test]
    fn key_order_does_not_change_the_hash() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":3,"y":2},"b":1}"#).unwrap();
        assert_eq!(event_hash("0", &event(&a)), event_hash("0", &event(&b)));
    }

    #[test]
    fn any_change_changes_the_hash() {
        let a = serde_json::json!({"name": "x"});
        let b = serde_json::json!({"name": "y"});
        assert_ne!(event_hash("0", &event(&a)), event_hash("0", &event(&b)));
        assert_ne!(event_hash("0", &event(&a)), event_hash("1", &event(&a)));
    }
}
