//! The two GraphQL-over-WebSocket subprotocols: `graphql-transport-ws` (the
//! graphql-ws library's PROTOCOL.md, with its close codes) and the older
//! subscriptions-transport-ws, whose subprotocol is confusingly named `graphql-ws`.
//! Pure message shapes and close codes; the connection itself is in `mod.rs`.

use actix_ws::{CloseCode, CloseReason, ProtocolError};
use serde_json::{Value, json};

/// Close codes of graphql-transport-ws (PROTOCOL.md), and the RFC 6455 ones used here.
pub mod close {
    /// A message that is not JSON of a known type.
    pub const BAD_REQUEST: u16 = 4400;
    /// `subscribe` before `connection_ack`.
    pub const UNAUTHORIZED: u16 = 4401;
    /// The token was refused at `connection_init`, or it has expired.
    pub const FORBIDDEN: u16 = 4403;
    /// No `connection_init` in time.
    pub const INIT_TIMEOUT: u16 = 4408;
    /// A `subscribe` reusing the id of a running operation.
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    /// A second `connection_init`.
    pub const TOO_MANY_INITS: u16 = 4429;
    /// RFC 6455 1002: a frame that breaks the WebSocket protocol (or invalid UTF-8 text).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// RFC 6455 1009: a message beyond `limits.ws_max_message_bytes`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// RFC 6455 1013 "Try Again Later": rate limited, too many connections for the
    /// subject, or the partner directory could not be read.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// RFC 6455 1001: the peer stopped answering pings.
    pub const GOING_AWAY: u16 = 1001;
}

/// A close frame's reason is at most 123 bytes (a control frame carries 125, two of
/// them the code); longer reasons are cut at a character boundary.
pub fn close_reason(code: u16, reason: &str) -> CloseReason {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    CloseReason {
        code: CloseCode::from(code),
        description: Some(reason[..end].to_string()),
    }
}

/// A read error that means the peer sent too much: one frame over the frame limit, or
/// continuation frames adding up to more than the message limit.
pub fn is_too_big(err: &ProtocolError) -> bool {
    match err {
        ProtocolError::Overflow => true,
        // actix-ws reports an oversized continuation as an I/O error with this text.
        ProtocolError::Io(io) => io.to_string().contains("maximum continuation size"),
        _ => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// subscriptions-transport-ws, negotiated as `graphql-ws`.
    Legacy,
}

impl Protocol {
    /// The first subprotocol of a `Sec-WebSocket-Protocol` list that this server speaks.
    pub fn negotiate(header: &str) -> Option<Self> {
        header.split(',').find_map(|p| {
            let p = p.trim();
            if p.eq_ignore_ascii_case("graphql-transport-ws") {
                Some(Self::TransportWs)
            } else if p.eq_ignore_ascii_case("graphql-ws") {
                Some(Self::Legacy)
            } else {
                None
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::Legacy => "graphql-ws",
        }
    }

    /// One result of an operation.
    pub fn next(self, id: &str, payload: Value) -> String {
        let kind = match self {
            Self::TransportWs => "next",
            Self::Legacy => "data",
        };
        json!({"type": kind, "id": id, "payload": payload}).to_string()
    }

    /// The operation did not run, or was stopped: its errors (GraphQL error objects).
    /// No `complete` follows.
    pub fn error(self, id: &str, errors: Vec<Value>) -> String {
        let payload = match self {
            Self::TransportWs => Value::Array(errors),
            // subscriptions-transport-ws carries one error object.
            Self::Legacy => errors.into_iter().next().unwrap_or(Value::Null),
        };
        json!({"type": "error", "id": id, "payload": payload}).to_string()
    }

    pub fn complete(self, id: &str) -> String {
        json!({"type": "complete", "id": id}).to_string()
    }

    pub fn ack(self) -> String {
        json!({"type": "connection_ack"}).to_string()
    }

    /// The answer to a protocol-level `ping` (graphql-transport-ws).
    pub fn pong(self) -> String {
        json!({"type": "pong"}).to_string()
    }

    /// subscriptions-transport-ws has no close codes: a refused `connection_init` is
    /// told with this message before the socket closes.
    pub fn connection_error(self, message: &str) -> Option<String> {
        match self {
            Self::TransportWs => None,
            Self::Legacy => Some(
                json!({"type": "connection_error", "payload": {"message": message}}).to_string(),
            ),
        }
    }
}

/// A GraphQL error object with a stable code (and details, when there are any).
pub fn error_object(code: &str, message: &str, details: Option<Value>) -> Value {
    let mut extensions = json!({ "code": code });
    if let Some(details) = details {
        extensions["details"] = details;
    }
    json!({ "message": message, "extensions": extensions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_known_subprotocol_is_chosen() {
        assert_eq!(
            Protocol::negotiate("graphql-transport-ws"),
            Some(Protocol::TransportWs)
        );
        assert_eq!(
            Protocol::negotiate("foo, graphql-ws, graphql-transport-ws"),
            Some(Protocol::Legacy)
        );
        assert_eq!(Protocol::negotiate("foo, bar"), None);
        assert_eq!(Protocol::negotiate(""), None);
    }

    #[test]
    fn messages_take_each_protocols_names() {
        let next: Value =
            serde_json::from_str(&Protocol::TransportWs.next("1", json!({"data": 1})))
                .unwrap_or_default();
        assert_eq!(
            next,
            json!({"type": "next", "id": "1", "payload": {"data": 1}})
        );
        let data: Value =
            serde_json::from_str(&Protocol::Legacy.next("1", json!({}))).unwrap_or_default();
        assert_eq!(data["type"], "data");
        let e = error_object("FORBIDDEN", "no", None);
        let err: Value = serde_json::from_str(&Protocol::TransportWs.error("2", vec![e.clone()]))
            .unwrap_or_default();
        assert_eq!(err["payload"], json!([e]));
        let err: Value =
            serde_json::from_str(&Protocol::Legacy.error("2", vec![e.clone()])).unwrap_or_default();
        assert_eq!(err["payload"], e);
        assert!(Protocol::TransportWs.connection_error("x").is_none());
        assert!(Protocol::Legacy.connection_error("x").is_some());
    }

    #[test]
    fn an_error_object_carries_its_code_and_details() {
        let e = error_object("TOO_MANY_SUBSCRIPTIONS", "m", Some(json!({"max": 2})));
        assert_eq!(e["extensions"]["code"], "TOO_MANY_SUBSCRIPTIONS");
        assert_eq!(e["extensions"]["details"]["max"], 2);
        assert!(
            error_object("X", "m", None)["extensions"]
                .get("details")
                .is_none()
        );
    }

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let reason = close_reason(4403, &long);
        let text = reason.description.unwrap_or_default();
        assert!(text.len() <= 123, "{}", text.len());
        assert!(long.starts_with(&text));
        assert_eq!(u16::from(reason.code), 4403);
    }

    #[test]
    fn oversized_frames_and_continuations_are_too_big() {
        assert!(is_too_big(&ProtocolError::Overflow));
        let cont = ProtocolError::Io(std::io::Error::other("Exceeded maximum continuation size"));
        assert!(is_too_big(&cont));
        let other = ProtocolError::Io(std::io::Error::other("connection reset"));
        assert!(!is_too_big(&other));
    }
}
