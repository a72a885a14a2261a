//! `POST /graphql`: resolves the bearer token once, applies the rate limit, reads the body
//! under a size cap (async-graphql-actix-web would read any size), bounds batches, honours
//! `Idempotency-Key` on mutations, and runs the request under a timeout. Refusals made
//! here carry their own code and HTTP status; every error async-graphql itself raises is
//! given a code too (see `graphql::limits`), so no error leaves without one.

use super::error_body;
use super::rate_limit::{RateKey, RateLimiter, refusal_message, retry_after_seconds};
use crate::auth::Identity;
use crate::domain::idempotency as rules;
use crate::error::{AppError, ErrorCode};
use crate::graphql::limits::{DOCUMENT_REFUSALS, VALIDATION_FAILED, set_code};
use crate::graphql::{RegistrySchema, RequestContext};
use crate::service::idempotency::{self as keys, Begin, Claim};
use crate::startup::AppState;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse, Response};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::RequestId;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer replayed for a retried Idempotency-Key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

fn refuse(status: StatusCode, code: &str, message: &str, request_id: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("x-request-id", request_id.to_string()))
        .json(error_body(code, message))
}

/// A refusal from a service error, with the HTTP status its code stands for.
fn refuse_app_error(err: AppError, request_id: &str) -> HttpResponse {
    let code = err.code();
    let status = match code {
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = err.to_string();
    // Logs internal causes; the client gets the generic message only.
    drop(err.into_graphql());
    refuse(status, code.as_str(), &message, request_id)
}

pub async fn post(
    req: HttpRequest,
    mut payload: web::Payload,
    request_id: RequestId,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    let request_id = request_id.to_string();
    let limits = &state.settings.limits;

    // 1. Who is calling, and whether they may call again so soon. A refused token is
    //    counted against the client address like an anonymous call.
    let identity = resolve_identity(&req, &state);
    let rate_key = match &identity {
        Ok(identity) if !identity.is_anonymous() => RateKey::Subject(caller_key(identity)),
        _ => RateKey::Address(limiter.client_address(&req)),
    };
    if let Err(wait) = limiter.check(&rate_key, 1) {
        return rate_limited(wait, &request_id);
    }
    let identity = match identity {
        Ok(identity) => identity,
        Err(message) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                &message,
                &request_id,
            );
        }
    };

    // 1b. A partner token counts only for a registered, active partner (cached briefly).
    let identity = match state.partners.resolve(&state.db, identity).await {
        Ok(identity) => identity,
        Err(err) => return refuse_app_error(err, &request_id),
    };

    // 2. Body, under the cap: refuse early on a declared length, and stop reading at the cap.
    //    A multipart request (the GraphQL multipart request spec: file uploads for
    //    `importListings`) has its own cap, `limits.max_import_bytes`.
    let multipart = is_multipart(&req);
    let cap = if multipart {
        limits.max_import_bytes
    } else {
        limits.max_body_bytes
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("the request body is larger than {cap} bytes"),
            &request_id,
        )
    };
    if declared.is_some_and(|n| n > cap) {
        return too_large();
    }
    let body = match read_body(&mut payload, limits, cap).await {
        Ok(body) => body,
        Err(BodyRefusal::TooLarge) => return too_large(),
        Err(BodyRefusal::Unreadable) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the request body could not be read",
                &request_id,
            );
        }
        Err(BodyRefusal::TooSlow) => {
            // The client is still sending: close the connection rather than drain it.
            let mut response = refuse(
                StatusCode::REQUEST_TIMEOUT,
                REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive within {} ms",
                    limits.body_read_timeout_ms
                ),
                &request_id,
            );
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            return response;
        }
    };

    // 3. The GraphQL request(s).
    let parsed = if multipart {
        multipart_batch(&req, &body, cap).await
    } else {
        serde_json::from_slice(&body).map_err(|_| ())
    };
    let batch: BatchRequest = match parsed {
        Ok(batch) => batch,
        Err(()) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the body is not a GraphQL request: expected JSON with a \"query\" string (or a GraphQL multipart request)",
                &request_id,
            );
        }
    };
    if has_forged_upload(&batch) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "a variable names an uploaded file that the request does not carry",
            &request_id,
        );
    }
    if let BatchRequest::Batch(items) = &batch {
        if items.len() > limits.max_batch_operations {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BATCH_TOO_LARGE",
                &format!(
                    "at most {} operations may be sent in one batch",
                    limits.max_batch_operations
                ),
                &request_id,
            );
        }
        // Every operation of a batch counts against the rate limit.
        let extra = u32::try_from(items.len().saturating_sub(1)).unwrap_or(u32::MAX);
        if extra > 0
            && let Err(wait) = limiter.check(&rate_key, extra)
        {
            return rate_limited(wait, &request_id);
        }
    }

    // 4. Idempotency-Key, for authenticated callers' mutations.
    let claim = match idempotency_claim(&req, &identity, &batch, &body, &request_id, multipart) {
        Ok(claim) => claim,
        Err(message) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                rules::KEY_INVALID,
                &message,
                &request_id,
            );
        }
    };
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    if let Some(claim) = &claim {
        let stale_after = chrono::Duration::milliseconds(
            i64::try_from(limits.request_timeout_ms).unwrap_or(i64::MAX / 2),
        ) + chrono::Duration::seconds(2);
        match keys::begin(&state.db, claim, stale_after).await {
            Ok(Begin::Proceed) => {}
            Ok(Begin::Replay { status, body }) => {
                return HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
                    .insert_header(("x-request-id", request_id))
                    .insert_header((IDEMPOTENT_REPLAYED, "true"))
                    .json(body);
            }
            Ok(Begin::Reused) => {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    rules::KEY_REUSED,
                    "this Idempotency-Key was already used with a different request",
                    &request_id,
                );
            }
            Ok(Begin::InProgress) => {
                return HttpResponse::Conflict()
                    .insert_header(("x-request-id", request_id))
                    .insert_header((RETRY_AFTER, "1"))
                    .json(error_body(
                        rules::KEY_IN_PROGRESS,
                        "a request with this Idempotency-Key is still running; retry shortly",
                    ));
            }
            Err(err) => return app_error_response(err, &request_id),
        }
    }

    // 5. Execute under the timeout.
    let context = RequestContext::new(identity, request_id.clone());
    let batch = batch.data(context);
    let started = crate::domain::now();
    let outcome = tokio::time::timeout(timeout, schema.execute_batch(batch)).await;
    let (status, body, answered) = match outcome {
        Ok(mut response) => {
            code_every_error(&mut response);
            let status = status_of(&response);
            (
                status,
                serde_json::to_value(&response).unwrap_or(serde_json::Value::Null),
                true,
            )
        }
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            error_body("TIMEOUT", "the request took too long and was stopped"),
            false,
        ),
    };

    // 6. Keep the answer for retries of the same key.
    if let Some(claim) = &claim {
        settle_claim(&state, claim, started, status, &body, answered).await;
    }
    let mut response = HttpResponse::build(status);
    response.insert_header(("x-request-id", request_id));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((RETRY_AFTER, "1"));
    }
    response.json(body)
}

/// async-graphql marks an uploaded file in the variables as `#__graphql_file__:<index>`
/// and its `Upload` scalar panics on a marker whose index is not a number or names no
/// file of the request. A client can
/// write such a string into any variable (JSON or the multipart `operations`), so a
/// marker without a valid index is refused before anything runs.
fn has_forged_upload(batch: &BatchRequest) -> bool {
    const MARKER: &str = "#__graphql_file__:";
    fn forged(v: &async_graphql::Value, files: usize) -> bool {
        match v {
            async_graphql::Value::String(s) => s
                .strip_prefix(MARKER)
                .is_some_and(|i| i.parse::<usize>().map_or(true, |i| i >= files)),
            async_graphql::Value::List(items) => items.iter().any(|v| forged(v, files)),
            async_graphql::Value::Object(fields) => fields.values().any(|v| forged(v, files)),
            _ => false,
        }
    }
    let requests = match batch {
        BatchRequest::Single(r) => std::slice::from_ref(r),
        BatchRequest::Batch(rs) => rs.as_slice(),
    };
    requests.iter().any(|r| {
        let files = r.uploads.len();
        r.variables.values().any(|v| forged(v, files))
    })
}

fn is_multipart(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

/// A GraphQL multipart request (operations, map, files), already read under its cap:
/// async-graphql parses it and keeps each file in a temporary file.
async fn multipart_batch(req: &HttpRequest, body: &[u8], cap: usize) -> Result<BatchRequest, ()> {
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let opts = async_graphql::http::MultipartOptions::default()
        .max_file_size(cap)
        .max_num_files(1);
    async_graphql::http::receive_batch_body(content_type, futures_util::io::Cursor::new(body), opts)
        .await
        .map_err(|e| tracing::debug!(error = %e, "unreadable multipart request"))
}

/// The code of a body that did not arrive in time (HTTP 408).
pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";

enum BodyRefusal {
    TooLarge,
    Unreadable,
    TooSlow,
}

/// The whole body, at most `limits.max_body_bytes`, within `limits.body_read_timeout_ms`
/// from the first read: a client trickling a byte a second must not hold a worker's
/// request (actix-web's `client_request_timeout` covers the headers only). Every route
/// that reads a body reads it here (today only `POST /graphql` does).
async fn read_body(
    payload: &mut web::Payload,
    limits: &crate::config::Limits,
    cap: usize,
) -> Result<web::BytesMut, BodyRefusal> {
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyRefusal::Unreadable)?;
            if body.len() + chunk.len() > cap {
                return Err(BodyRefusal::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let timeout = Duration::from_millis(limits.body_read_timeout_ms);
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(BodyRefusal::TooSlow))
}

/// `role:subject`: subjects of different roles never share a bucket or a key space.
pub(super) fn caller_key(identity: &Identity) -> String {
    format!("{}:{}", identity.role.as_str(), identity.subject)
}

pub(super) fn rate_limited(wait: Duration, request_id: &str) -> HttpResponse {
    let seconds = retry_after_seconds(wait);
    HttpResponse::TooManyRequests()
        .insert_header(("x-request-id", request_id.to_string()))
        .insert_header((RETRY_AFTER, seconds.to_string()))
        .json(error_body("RATE_LIMITED", &refusal_message(seconds)))
}

fn app_error_response(err: crate::error::AppError, request_id: &str) -> HttpResponse {
    let code = err.code().as_str();
    let status = match code {
        "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        "TIMEOUT" => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let gql = err.into_graphql();
    let mut response = HttpResponse::build(status);
    response.insert_header(("x-request-id", request_id.to_string()));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((RETRY_AFTER, "1"));
    }
    response.json(error_body(code, &gql.message))
}

/// The claim for a keyed request: only authenticated callers' requests that contain a
/// mutation (a query changes nothing, so retrying it is harmless anyway).
fn idempotency_claim(
    req: &HttpRequest,
    identity: &Identity,
    batch: &BatchRequest,
    body: &[u8],
    request_id: &str,
    multipart: bool,
) -> Result<Option<Claim>, String> {
    let Some(header) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    if multipart {
        // An import is idempotent by itself (its natural key); the key is not needed.
        return Ok(None);
    }
    let key = header
        .to_str()
        .map_err(|_| "the Idempotency-Key header is not text".to_string())
        .and_then(rules::validate_key)?;
    if identity.is_anonymous() || !contains_mutation(batch) {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    Ok(Some(Claim {
        subject: caller_key(identity),
        key: key.to_string(),
        request_hash: rules::fingerprint(&value),
        request_id: request_id.to_string(),
    }))
}

fn contains_mutation(batch: &BatchRequest) -> bool {
    let requests = match batch {
        BatchRequest::Single(r) => std::slice::from_ref(r),
        BatchRequest::Batch(rs) => rs.as_slice(),
    };
    requests.iter().any(|r| {
        let Ok(doc) = async_graphql::parser::parse_query(&r.query) else {
            return false;
        };
        let op = match (&doc.operations, r.operation_name.as_deref()) {
            (DocumentOperations::Single(op), _) => Some(op),
            (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
            _ => None,
        };
        op.is_some_and(|op| op.node.ty == OperationType::Mutation)
    })
}

/// Stores the answer, or gives the key up when the attempt changed nothing and did not
/// reach a definite answer, so that a retry runs afresh. A failure here leaves the
/// pending row, which a later retry recovers once it is stale.
async fn settle_claim(
    state: &AppState,
    claim: &Claim,
    started: chrono::DateTime<chrono::Utc>,
    status: StatusCode,
    body: &serde_json::Value,
    answered: bool,
) {
    let result = async {
        if answered && rules::is_definitive(body) {
            return keys::finish(&state.db, claim, status.as_u16(), body.clone()).await;
        }
        let committed = keys::committed(&state.db, &claim.request_id, started).await?;
        match (committed, answered) {
            (false, _) => keys::release(&state.db, claim).await,
            (true, true) => keys::finish(&state.db, claim, status.as_u16(), body.clone()).await,
            (true, false) => {
                keys::finish(
                    &state.db,
                    claim,
                    StatusCode::CONFLICT.as_u16(),
                    rules::answer_lost_body(&claim.request_id),
                )
                .await
            }
        }
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, key = %claim.key, "could not settle an idempotency key; a retry will recover it");
    }
}

/// Gives every error a code: async-graphql's own request-level errors that no extension
/// hook saw (an unknown operation name, say) are validation failures; field errors
/// without a code come from input coercion (a variable of the wrong type).
fn code_every_error(response: &mut BatchResponse) {
    let responses: &mut [Response] = match response {
        BatchResponse::Single(r) => std::slice::from_mut(r),
        BatchResponse::Batch(rs) => rs.as_mut_slice(),
    };
    for r in responses {
        for err in &mut r.errors {
            let has_code = err
                .extensions
                .as_ref()
                .is_some_and(|e| e.get("code").is_some());
            if has_code {
                continue;
            }
            if err.path.is_empty() {
                set_code(err, VALIDATION_FAILED);
            } else {
                tracing::debug!(message = %err.message, "field error without a code");
                set_code(err, "BAD_USER_INPUT");
            }
        }
    }
}

/// HTTP status of a GraphQL answer: 200, unless a single request failed as a whole
/// (no data) on a refused document (400), an unavailable database (503) or a timeout (504).
fn status_of(response: &BatchResponse) -> StatusCode {
    let BatchResponse::Single(r) = response else {
        return StatusCode::OK;
    };
    if r.data != async_graphql::Value::Null {
        return StatusCode::OK;
    }
    let code = r.errors.first().and_then(|e| {
        e.extensions.as_ref().and_then(|ext| match ext.get("code") {
            Some(async_graphql::Value::String(s)) => Some(s.as_str()),
            _ => None,
        })
    });
    match code {
        Some(c) if DOCUMENT_REFUSALS.contains(&c) => StatusCode::BAD_REQUEST,
        Some("SERVICE_UNAVAILABLE") => StatusCode::SERVICE_UNAVAILABLE,
        Some("TIMEOUT") => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::OK,
    }
}

/// No header: the public. A header that is not a valid bearer token: refused.
pub(super) fn resolve_identity(req: &HttpRequest, state: &AppState) -> Result<Identity, String> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(Identity::anonymous());
    };
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text".to_string())?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| "the Authorization header must be 'Bearer <token>'".to_string())?;
    state.tokens.verify(token.trim()).map_err(|e| e.to_string())
}

/// GraphiQL for people exploring the API; not served in production.
pub async fn graphiql(state: web::Data<Arc<AppState>>) -> HttpResponse {
    if state.settings.is_production() {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(
            async_graphql::http::GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql/ws")
                .finish(),
        )
}
