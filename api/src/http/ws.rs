//! `GET /graphql/ws`: GraphQL subscriptions over WebSocket (graphql-transport-ws, and the
//! older subscriptions-transport-ws). Browsers cannot set headers on a WebSocket, so
//! the token travels in the `connection_init` payload:
//! `{"type": "connection_init", "payload": {"Authorization": "Bearer <token>"}}`
//! (an `Authorization` header on the upgrade request is accepted too). Without a valid
//! token the connection is closed before `connection_ack`; when the token expires, its
//! subscriptions complete (reconnect with a fresh token and `after` the last cursor).
//!
//! Rate limits, as on `/graphql`: each upgrade request counts against the client
//! address's bucket (it carries no token yet; refused with HTTP 429 and `Retry-After`),
//! and each `connection_init` against the token subject's bucket (refused before
//! `connection_ack`). Messages inside an open connection are not counted.

use super::graphql::{caller_key, rate_limited};
use super::rate_limit::{RateKey, RateLimiter, refusal_message, retry_after_seconds};
use crate::auth::Identity;
use crate::graphql::feed::ConnectionExpiry;
use crate::graphql::{RegistrySchema, RequestContext};
use crate::startup::AppState;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::Data;
use async_graphql_actix_web::GraphQLSubscription;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// The caller, and when its token expires (the subscription ends then).
fn identity_from_bearer(
    state: &AppState,
    value: &str,
) -> Result<(Identity, Option<ConnectionExpiry>), String> {
    let token = value
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| value.trim().strip_prefix("bearer "))
        .ok_or_else(|| "Authorization must be 'Bearer <token>'".to_string())?
        .trim();
    let identity = state.tokens.verify(token).map_err(|e| e.to_string())?;
    Ok((identity, expiry_of(token).map(ConnectionExpiry)))
}

/// The `exp` claim of a token whose signature has already been verified.
fn expiry_of(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

/// The `Authorization` value of a `connection_init` payload (either spelling).
fn authorization_of(payload: &serde_json::Value) -> Option<&str> {
    ["Authorization", "authorization"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
}

pub async fn subscribe(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
) -> actix_web::Result<HttpResponse> {
    let request_id = crate::telemetry::RequestId::of(&req).to_string();
    let address = limiter.client_address(&req);
    if let Err(wait) = limiter.check(&RateKey::Address(address), 1) {
        return Ok(rate_limited(wait, &request_id));
    }
    let state = state.get_ref().clone();
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    GraphQLSubscription::new(schema.get_ref().clone())
        .on_connection_init(move |init: serde_json::Value| async move {
            let value = authorization_of(&init)
                .map(str::to_string)
                .or(header)
                .ok_or_else(|| {
                    async_graphql::Error::new(
                        "connection_init must carry {\"Authorization\": \"Bearer <token>\"}",
                    )
                })?;
            let (identity, expiry) =
                identity_from_bearer(&state, &value).map_err(async_graphql::Error::new)?;
            // A partner token counts only for a registered, active partner, as on /graphql.
            let identity = state
                .partners
                .resolve(&state.db, identity)
                .await
                .map_err(|e| async_graphql::Error::new(e.to_string()))?;
            if let Err(wait) = limiter.check(&RateKey::Subject(caller_key(&identity)), 1) {
                return Err(async_graphql::Error::new(refusal_message(
                    retry_after_seconds(wait),
                )));
            }
            tracing::info!(subject = %identity.subject, %request_id, "subscription connected");
            let mut data = Data::default();
            data.insert(RequestContext::new(identity, request_id));
            // Lives as long as the connection's data: counts the connection while open.
            data.insert(crate::metrics::WebSocketConnection::opened());
            if let Some(expiry) = expiry {
                data.insert(expiry);
            }
            Ok(data)
        })
        .start(&req, payload)
}

/// `GET /graphql` with `Upgrade: websocket` is a subscription too.
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expiry_is_read_from_the_claims() {
        let claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"p","exp":1800000000}"#);
        let token = format!("h.{claims}.s");
        assert_eq!(
            expiry_of(&token),
            DateTime::from_timestamp(1_800_000_000, 0)
        );
        assert_eq!(expiry_of("not-a-jwt"), None);
    }

    #[test]
    fn the_token_is_read_from_either_spelling() {
        let p = serde_json::json!({"Authorization": "Bearer a"});
        assert_eq!(authorization_of(&p), Some("Bearer a"));
        let p = serde_json::json!({"authorization": "Bearer b"});
        assert_eq!(authorization_of(&p), Some("Bearer b"));
        assert_eq!(authorization_of(&serde_json::json!({})), None);
        assert_eq!(authorization_of(&serde_json::Value::Null), None);
    }
}
