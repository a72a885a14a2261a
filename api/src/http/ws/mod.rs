//! `GET /graphql/ws`: GraphQL over WebSocket (graphql-transport-ws, and the older
//! subscriptions-transport-ws). Browsers cannot set headers on a WebSocket, so the token
//! travels in the `connection_init` payload:
//! `{"type": "connection_init", "payload": {"Authorization": "Bearer <token>"}}`
//! (an `Authorization` header on the upgrade request is accepted too).
//!
//! A socket is trusted no more than a request. Every `subscribe` is authorised at that
//! moment exactly like an HTTP request (`caller::authorise`: the token, the rate limit
//! of its subject, the partner's registration), and a query or mutation runs like one
//! (`graphql::execute`: the request timeout, the Idempotency-Key). Between operations:
//! the socket is closed (4403) the moment its token expires, and every half partner
//! cache time its token is verified again, whatever its role, so a token the registry no
//! longer accepts (its key removed from `auth.signing_key_dir`) closes it too (4403,
//! running operations completed first); a partner connection also re-reads its
//! registration then and, once the partner is deactivated, ends its running operations
//! with `FORBIDDEN` and refuses the next.
//!
//! Before any of that, the socket's cost is bounded: messages (continuations included)
//! beyond `limits.ws_max_message_bytes` close it (1009) before anything is buffered past
//! the limit, `connection_init` must come within `limits.ws_init_timeout_ms` (4408), a
//! client address holds at most `limits.ws_max_pending_per_address` unacknowledged
//! sockets, a subject at most `limits.ws_max_connections_per_subject` connections, and a
//! connection at most `limits.ws_max_subscriptions` running operations.

mod counts;
mod operation;
mod protocol;

use super::caller::{self, Refusal, caller_key};
use super::error_body;
use super::graphql::{operation_type, rate_limited};
use super::rate_limit::{RateKey, RateLimiter, refusal_message, retry_after_seconds};
use crate::auth::{Identity, Role};
use crate::domain::idempotency as rules;
use crate::graphql::{RegistrySchema, RequestContext};
use crate::service::idempotency::Claim;
use crate::state::AppState;
use actix_web::http::header::{AUTHORIZATION, HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, Session};
use async_graphql::http::ClientMessage;
use async_graphql::parser::types::OperationType;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use counts::{Counts, Place};
use futures_util::StreamExt;
use operation::{IDEMPOTENCY_EXTENSION, Operation};
use protocol::{Protocol, close, close_reason, error_object, is_too_big};
use serde_json::Value;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// How often the server pings an idle socket, and how long it waits for any sign of
/// life before giving the socket up (a half-open TCP connection would otherwise hold
/// its places forever).
const HEARTBEAT: Duration = Duration::from_secs(5);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The sockets of one server: shared by its workers, one per application (tests run
/// several servers in one process).
pub struct Sockets {
    /// Sockets per client address that have not been acknowledged yet.
    pending: Counts<IpAddr>,
    /// Acknowledged connections per token subject (`role:subject`).
    connected: Counts<String>,
}

impl Sockets {
    pub fn new(limits: &crate::config::Limits) -> Self {
        Self {
            pending: Counts::new(limits.ws_max_pending_per_address),
            connected: Counts::new(limits.ws_max_connections_per_subject),
        }
    }
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

/// How often a connection's token is verified again and a partner connection re-reads
/// its registration, and how old a cached registration it accepts: half the cache time
/// each, so a deactivation ends its operations within one cache time (at least every
/// half second, also with no cache).
fn partner_recheck(cache: Duration) -> Duration {
    (cache / 2).max(Duration::from_millis(500))
}

pub async fn subscribe(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
    sockets: web::Data<Sockets>,
) -> actix_web::Result<HttpResponse> {
    let request_id = crate::telemetry::RequestId::of(&req).to_string();
    // The upgrade carries no token yet: it counts against the client address.
    let address = limiter.client_address(&req);
    if let Err(wait) = limiter.check(&RateKey::of_address(address), 1).await {
        return Ok(rate_limited(wait, &request_id));
    }
    let protocol = req
        .headers()
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(Protocol::negotiate);
    let Some(protocol) = protocol else {
        return Ok(HttpResponse::BadRequest()
            .insert_header(("x-request-id", request_id))
            .json(error_body(
                "BAD_REQUEST",
                "Sec-WebSocket-Protocol must name graphql-transport-ws (or graphql-ws)",
            )));
    };
    let Some(pending) = sockets
        .pending
        .take(super::rate_limit::caller_network(address))
    else {
        return Ok(HttpResponse::TooManyRequests()
            .insert_header(("x-request-id", request_id))
            .insert_header((actix_web::http::header::RETRY_AFTER, "1"))
            .json(error_body(
                "TOO_MANY_CONNECTIONS",
                "too many WebSockets from this address are waiting for connection_init",
            )));
    };
    let header_token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (mut response, session, messages) = actix_ws::handle(&req, payload)?;
    response.headers_mut().insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(protocol.name()),
    );
    let limits = &state.settings.limits;
    let max = limits.ws_max_message_bytes.max(1);
    // A frame's declared length is checked before its payload is read, and the parts of
    // a fragmented message are counted as they come: nothing past the limit is buffered.
    let messages = messages
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    let connection = Connection {
        state: state.get_ref().clone(),
        schema: schema.get_ref().clone(),
        limiter: limiter.into_inner(),
        sockets: sockets.into_inner(),
        protocol,
        address,
        header_token,
        request_id,
        session,
        phase: Phase::AwaitingInit { _pending: pending },
        operations: HashMap::new(),
        next_seq: 0,
        finished_tx,
    };
    actix_web::rt::spawn(connection.run(messages, finished_rx));
    Ok(response)
}

/// `GET /graphql` with `Upgrade: websocket` is a subscription too.
pub fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

enum Phase {
    /// Until `connection_init` is accepted; holds a place among its address's
    /// unacknowledged sockets.
    AwaitingInit {
        _pending: Place<IpAddr>,
    },
    Ready(Ready),
}

struct Ready {
    token: String,
    identity: Identity,
    expires_at: Option<DateTime<Utc>>,
    _place: Place<String>,
    /// Counts the connection in `/metrics` while it is acknowledged.
    _counted: crate::metrics::WebSocketConnection,
}

struct Running {
    seq: u64,
    abort: AbortHandle,
}

/// What the socket does after a message.
enum Flow {
    Continue,
    Close(u16, String),
}

struct Connection {
    state: Arc<AppState>,
    schema: RegistrySchema,
    limiter: Arc<RateLimiter>,
    sockets: Arc<Sockets>,
    protocol: Protocol,
    address: IpAddr,
    header_token: Option<String>,
    request_id: String,
    session: Session,
    phase: Phase,
    operations: HashMap<String, Running>,
    next_seq: u64,
    finished_tx: mpsc::UnboundedSender<(String, u64)>,
}

impl Connection {
    async fn run(
        mut self,
        mut messages: AggregatedMessageStream,
        mut finished: mpsc::UnboundedReceiver<(String, u64)>,
    ) {
        let state = self.state.clone();
        let limits = &state.settings.limits;
        let init_deadline =
            Instant::now() + Duration::from_millis(limits.ws_init_timeout_ms.max(1));
        let recheck = partner_recheck(Duration::from_secs(
            state.settings.auth.partner_cache_seconds,
        ));
        // Neither fires at once: the first ping after a quiet interval, the first re-check
        // after the registration was read at `connection_init`.
        let mut partner_check = tokio::time::interval_at(Instant::now() + recheck, recheck);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        // Ticks missed while the connection was busy (or, for the re-check, before
        // `connection_init`) are not made up in a burst.
        partner_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_seen = Instant::now();
        let outcome = loop {
            let init_timer = async {
                match self.phase {
                    Phase::AwaitingInit { .. } => tokio::time::sleep_until(init_deadline).await,
                    Phase::Ready(_) => std::future::pending().await,
                }
            };
            let expiry = self.expiry();
            let expired = async move {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let ready = matches!(self.phase, Phase::Ready(_));
            let watches_partner = matches!(
                &self.phase,
                Phase::Ready(r) if r.identity.role == Role::Partner
            );
            tokio::select! {
                message = messages.next() => {
                    last_seen = Instant::now();
                    let flow = match message {
                        None => break None,
                        Some(Err(err)) if is_too_big(&err) => Flow::Close(
                            close::MESSAGE_TOO_BIG,
                            format!("a message may have at most {} bytes", limits.ws_max_message_bytes),
                        ),
                        // Invalid UTF-8, a bad frame, or a read error (then the close is moot).
                        Some(Err(err)) => Flow::Close(close::PROTOCOL_ERROR, format!("protocol error: {err}")),
                        Some(Ok(AggregatedMessage::Text(text))) => self.on_message(text.as_bytes()).await,
                        Some(Ok(AggregatedMessage::Binary(bytes))) => self.on_message(&bytes).await,
                        Some(Ok(AggregatedMessage::Ping(bytes))) => {
                            if self.session.pong(&bytes).await.is_err() {
                                break None;
                            }
                            Flow::Continue
                        }
                        Some(Ok(AggregatedMessage::Pong(_))) => Flow::Continue,
                        Some(Ok(AggregatedMessage::Close(_))) => break Some(None),
                    };
                    if let Flow::Close(code, reason) = flow {
                        break Some(Some((code, reason)));
                    }
                }
                _ = init_timer => {
                    break Some(Some((close::INIT_TIMEOUT, "Connection initialisation timeout".into())));
                }
                _ = expired => {
                    // Running operations are told they are complete, then the socket closes:
                    // a client reconnects with a fresh token and the last cursor.
                    self.complete_all().await;
                    break Some(Some((close::FORBIDDEN, "Forbidden: the token has expired".into())));
                }
                _ = partner_check.tick(), if ready => {
                    // Every role: an admin's or auditor's socket is trusted no longer than
                    // its token, as a partner's is.
                    if !self.token_still_accepted() {
                        self.complete_all().await;
                        break Some(Some((close::FORBIDDEN, "Forbidden: the token is no longer accepted".into())));
                    }
                    if watches_partner {
                        self.recheck_partner(recheck).await;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > CLIENT_TIMEOUT {
                        break Some(Some((close::GOING_AWAY, "no answer to pings".into())));
                    }
                    if self.session.ping(b"").await.is_err() {
                        break None;
                    }
                }
                Some((id, seq)) = finished.recv() => {
                    if self.operations.get(&id).is_some_and(|r| r.seq == seq) {
                        self.operations.remove(&id);
                    }
                }
            }
        };
        for (_, running) in self.operations.drain() {
            running.abort.abort();
        }
        // `None`: the peer went away (nothing to close); `Some(None)`: it closed.
        if let Some(reason) = outcome {
            let reason = reason.map(|(code, text)| close_reason(code, &text));
            let _ = self.session.clone().close(reason).await;
        }
    }

    /// When the token expires, as an instant of the runtime's clock.
    fn expiry(&self) -> Option<Instant> {
        let Phase::Ready(ready) = &self.phase else {
            return None;
        };
        // Wall time: a token's `exp` is judged by jsonwebtoken against the system clock.
        let remaining = (ready.expires_at? - Utc::now())
            .to_std()
            .unwrap_or_default();
        Some(Instant::now() + remaining)
    }

    async fn send(&mut self, text: String) {
        // A failed send means the socket is gone; the read loop sees it next.
        let _ = self.session.text(text).await;
    }

    async fn on_message(&mut self, bytes: &[u8]) -> Flow {
        let Ok(raw) = serde_json::from_slice::<Value>(bytes) else {
            return Flow::Close(close::BAD_REQUEST, "Invalid message: not JSON".into());
        };
        let message = match serde_json::from_value::<ClientMessage>(raw.clone()) {
            Ok(message) => message,
            Err(err) => return Flow::Close(close::BAD_REQUEST, format!("Invalid message: {err}")),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                self.on_init(payload.unwrap_or_default()).await
            }
            ClientMessage::Start { id, payload } => {
                let raw_payload = raw.get("payload").cloned().unwrap_or_default();
                self.on_subscribe(id, payload, raw_payload).await
            }
            ClientMessage::Stop { id } => {
                if let Some(running) = self.operations.remove(&id) {
                    running.abort.abort();
                    if self.protocol == Protocol::Legacy {
                        let text = self.protocol.complete(&id);
                        self.send(text).await;
                    }
                }
                Flow::Continue
            }
            ClientMessage::ConnectionTerminate => Flow::Close(1000, "terminated".into()),
            ClientMessage::Ping { .. } => {
                let text = self.protocol.pong();
                self.send(text).await;
                Flow::Continue
            }
            ClientMessage::Pong { .. } => Flow::Continue,
        }
    }

    /// Refuses a connection before its acknowledgement: subscriptions-transport-ws
    /// clients are told with a message, graphql-transport-ws clients by the close code.
    async fn refuse_init(&mut self, code: u16, message: String) -> Flow {
        if let Some(text) = self.protocol.connection_error(&message) {
            self.send(text).await;
        }
        Flow::Close(code, message)
    }

    async fn on_init(&mut self, payload: Value) -> Flow {
        if matches!(self.phase, Phase::Ready(_)) {
            return Flow::Close(
                close::TOO_MANY_INITS,
                "Too many initialisation requests".into(),
            );
        }
        let Some(value) = authorization_of(&payload)
            .map(str::to_string)
            .or_else(|| self.header_token.clone())
        else {
            let message =
                "Forbidden: connection_init must carry {\"Authorization\": \"Bearer <token>\"}";
            return self.refuse_init(close::FORBIDDEN, message.into()).await;
        };
        let token = match caller::bearer_token(&value) {
            Ok(token) => token.to_string(),
            Err(message) => {
                return self
                    .refuse_init(close::FORBIDDEN, format!("Forbidden: {message}"))
                    .await;
            }
        };
        let identity =
            match caller::authorise(&self.state, &self.limiter, Ok(Some(&token)), self.address)
                .await
            {
                Ok(identity) if identity.is_anonymous() => {
                    return self
                        .refuse_init(close::FORBIDDEN, "Forbidden: a token is required".into())
                        .await;
                }
                Ok(identity) => identity,
                Err(Refusal::Unauthenticated(message))
                | Err(Refusal::Refused(crate::error::AppError::Forbidden(message))) => {
                    return self
                        .refuse_init(close::FORBIDDEN, format!("Forbidden: {message}"))
                        .await;
                }
                Err(Refusal::RateLimited(wait)) => {
                    let message = refusal_message(retry_after_seconds(wait));
                    return self.refuse_init(close::TRY_AGAIN_LATER, message).await;
                }
                Err(Refusal::Refused(err)) => {
                    let message = err.into_graphql().message;
                    return self.refuse_init(close::TRY_AGAIN_LATER, message).await;
                }
            };
        let Some(place) = self.sockets.connected.take(caller_key(&identity)) else {
            let message = format!(
                "too many connections for this subject (at most {})",
                self.state.settings.limits.ws_max_connections_per_subject
            );
            return self.refuse_init(close::TRY_AGAIN_LATER, message).await;
        };
        tracing::info!(subject = %identity.subject, request_id = %self.request_id, "subscription connected");
        self.phase = Phase::Ready(Ready {
            expires_at: expiry_of(&token),
            token,
            identity,
            _place: place,
            _counted: crate::metrics::WebSocketConnection::opened(),
        });
        let text = self.protocol.ack();
        self.send(text).await;
        Flow::Continue
    }

    async fn refuse_operation(&mut self, id: &str, error: Value) {
        let text = self.protocol.error(id, vec![error]);
        self.send(text).await;
    }

    async fn on_subscribe(
        &mut self,
        id: String,
        mut request: async_graphql::Request,
        mut raw: Value,
    ) -> Flow {
        let Phase::Ready(ready) = &self.phase else {
            return Flow::Close(close::UNAUTHORIZED, "Unauthorized".into());
        };
        if self.operations.contains_key(&id) {
            return Flow::Close(
                close::SUBSCRIBER_EXISTS,
                format!("Subscriber for {id} already exists"),
            );
        }
        let max = self.state.settings.limits.ws_max_subscriptions.max(1);
        if self.operations.len() >= max {
            let error = error_object(
                "TOO_MANY_SUBSCRIPTIONS",
                &format!(
                    "at most {max} operations may run at once on one connection; complete one first"
                ),
                Some(serde_json::json!({ "max": max })),
            );
            self.refuse_operation(&id, error).await;
            return Flow::Continue;
        }
        // Authorised now, as an HTTP request would be now.
        let token = ready.token.clone();
        let identity =
            match caller::authorise(&self.state, &self.limiter, Ok(Some(&token)), self.address)
                .await
            {
                Ok(identity) => identity,
                Err(Refusal::Unauthenticated(message)) => {
                    return Flow::Close(close::FORBIDDEN, format!("Forbidden: {message}"));
                }
                Err(Refusal::RateLimited(wait)) => {
                    let seconds = retry_after_seconds(wait);
                    let error = error_object(
                        "RATE_LIMITED",
                        &refusal_message(seconds),
                        Some(serde_json::json!({ "retryAfter": seconds })),
                    );
                    self.refuse_operation(&id, error).await;
                    return Flow::Continue;
                }
                Err(Refusal::Refused(err)) => {
                    let code = err.code().as_str();
                    let error = error_object(code, &err.into_graphql().message, None);
                    self.refuse_operation(&id, error).await;
                    return Flow::Continue;
                }
            };
        // A hash-only operation gets its text before anything reads it (whether it is
        // a subscription, whether its key claims a mutation), as over HTTP.
        if let Err(refused) = self.state.persisted_queries.resolve(&mut request) {
            crate::metrics::refusal(refused.code);
            let error = error_object(refused.code, &refused.message, None);
            self.refuse_operation(&id, error).await;
            return Flow::Continue;
        }
        crate::graphql::persisted::canonicalise(&mut raw, &request.query);
        let kind = operation_type(&request.query, request.operation_name.as_deref());
        let request_id = format!("{}.{}", self.request_id, self.next_seq);
        let claim = match idempotency_claim(&identity, kind, &raw, &request_id) {
            Ok(claim) => claim,
            Err(message) => {
                let error = error_object(rules::KEY_INVALID, &message, None);
                self.refuse_operation(&id, error).await;
                return Flow::Continue;
            }
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        // `authorise` took one token for the operation; its cost charges the rest, as
        // over HTTP.
        let charge = RateLimiter::cost_charge(
            self.limiter.clone(),
            caller::rate_key(Some(&identity), self.address),
            1,
        );
        let operation = Operation {
            id: id.clone(),
            seq,
            protocol: self.protocol,
            session: self.session.clone(),
            state: self.state.clone(),
            schema: self.schema.clone(),
            kind,
            context: RequestContext::new(identity, request_id),
            claim,
            charge,
            finished: self.finished_tx.clone(),
        };
        let handle = actix_web::rt::spawn(operation.run(request));
        self.operations.insert(
            id,
            Running {
                seq,
                abort: handle.abort_handle(),
            },
        );
        Flow::Continue
    }

    /// Stops every running operation, telling the client each is complete.
    async fn complete_all(&mut self) {
        let running: Vec<(String, Running)> = self.operations.drain().collect();
        for (id, running) in running {
            running.abort.abort();
            let text = self.protocol.complete(&id);
            self.send(text).await;
        }
    }

    /// Whether the registry still accepts the socket's token, as it would on a request
    /// (`TokenService::verify`: a key removed from the directory refuses its tokens).
    fn token_still_accepted(&self) -> bool {
        let Phase::Ready(ready) = &self.phase else {
            return true;
        };
        match self.state.tokens.verify(&ready.token) {
            Ok(_) => true,
            Err(err) => {
                tracing::info!(error = %err, request_id = %self.request_id, "a WebSocket's token is no longer accepted");
                false
            }
        }
    }

    /// Re-reads the partner's registration; once it is deactivated (or gone), every
    /// running operation ends with `FORBIDDEN`, as its next request over HTTP would.
    async fn recheck_partner(&mut self, max_age: Duration) {
        let Phase::Ready(ready) = &self.phase else {
            return;
        };
        let identity = ready.identity.clone();
        let result = self
            .state
            .partners
            .resolve_within(&self.state.db, identity, max_age)
            .await;
        let message = match result {
            Ok(_) => return,
            Err(crate::error::AppError::Forbidden(message)) => message,
            // The directory could not be read: the registration stands until it can.
            Err(err) => {
                tracing::warn!(error = %err, request_id = %self.request_id, "could not re-check a partner connection");
                return;
            }
        };
        let running: Vec<(String, Running)> = self.operations.drain().collect();
        for (id, running) in running {
            running.abort.abort();
            let error = error_object("FORBIDDEN", &message, None);
            self.refuse_operation(&id, error).await;
        }
    }
}

/// The claim of a keyed mutation: the key is `extensions.idempotencyKey` of the
/// `subscribe` payload (a WebSocket message has no headers), and the request compared
/// on a retry is the payload without it. Queries and subscriptions ignore the key.
fn idempotency_claim(
    identity: &Identity,
    kind: Option<OperationType>,
    payload: &Value,
    request_id: &str,
) -> Result<Option<Claim>, String> {
    let Some(key) = payload
        .get("extensions")
        .and_then(|e| e.get(IDEMPOTENCY_EXTENSION))
    else {
        return Ok(None);
    };
    let key = key
        .as_str()
        .ok_or_else(|| format!("extensions.{IDEMPOTENCY_EXTENSION} must be a string"))
        .and_then(|k| {
            rules::validate_key(k)
                .map_err(|e| e.replace("the Idempotency-Key header", "extensions.idempotencyKey"))
        })?;
    if identity.is_anonymous() || kind != Some(OperationType::Mutation) {
        return Ok(None);
    }
    let mut compared = payload.clone();
    if let Some(extensions) = compared
        .get_mut("extensions")
        .and_then(Value::as_object_mut)
    {
        extensions.remove(IDEMPOTENCY_EXTENSION);
        if extensions.is_empty()
            && let Some(object) = compared.as_object_mut()
        {
            object.remove("extensions");
        }
    }
    Ok(Some(Claim {
        subject: caller_key(identity),
        key: key.to_string(),
        request_hash: rules::fingerprint(&compared),
        request_id: request_id.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let p = json!({"Authorization": "Bearer a"});
        assert_eq!(authorization_of(&p), Some("Bearer a"));
        let p = json!({"authorization": "Bearer b"});
        assert_eq!(authorization_of(&p), Some("Bearer b"));
        assert_eq!(authorization_of(&json!({})), None);
        assert_eq!(authorization_of(&serde_json::Value::Null), None);
    }

    #[test]
    fn a_partner_is_rechecked_every_half_cache_time() {
        assert_eq!(
            partner_recheck(Duration::from_secs(5)),
            Duration::from_millis(2500)
        );
        assert_eq!(partner_recheck(Duration::ZERO), Duration::from_millis(500));
    }

    fn admin() -> Identity {
        Identity {
            role: Role::Admin,
            subject: "alice".into(),
            ..Identity::anonymous()
        }
    }

    #[test]
    fn a_keyed_mutation_is_claimed_without_its_key() {
        let payload = json!({"query": "mutation { a }", "extensions": {"idempotencyKey": "k-1"}});
        let claim = idempotency_claim(&admin(), Some(OperationType::Mutation), &payload, "r")
            .ok()
            .flatten();
        let Some(claim) = claim else {
            panic!("a keyed mutation makes a claim");
        };
        assert_eq!(claim.key, "k-1");
        assert_eq!(claim.subject, "admin:alice");
        // The key itself is not part of the request compared on a retry.
        assert_eq!(
            claim.request_hash,
            rules::fingerprint(&json!({"query": "mutation { a }"}))
        );
    }

    #[test]
    fn queries_and_unkeyed_operations_make_no_claim_and_bad_keys_are_refused() {
        let keyed = json!({"query": "{ a }", "extensions": {"idempotencyKey": "k"}});
        assert!(matches!(
            idempotency_claim(&admin(), Some(OperationType::Query), &keyed, "r"),
            Ok(None)
        ));
        let plain = json!({"query": "mutation { a }"});
        assert!(matches!(
            idempotency_claim(&admin(), Some(OperationType::Mutation), &plain, "r"),
            Ok(None)
        ));
        for bad in [json!(7), json!(""), json!("a b")] {
            let payload = json!({"query": "mutation { a }", "extensions": {"idempotencyKey": bad}});
            assert!(
                idempotency_claim(&admin(), Some(OperationType::Mutation), &payload, "r").is_err()
            );
        }
    }
}
