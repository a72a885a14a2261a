//! `POST /graphql`: resolves the bearer token once, applies the rate limit, reads the body
//! under a size cap (async-graphql-actix-web would read any size), bounds batches, honours
//! `Idempotency-Key` on mutations, and runs the request under a timeout. Refusals made
//! here carry their own code and HTTP status; every error async-graphql itself raises is
//! given a code too (see `graphql::limits`), so no error leaves without one.

use super::caller::{self, Refusal, caller_key};
use super::error_body;
use super::media::{self, Media};
use super::rate_limit::{RateKey, RateLimiter, refusal_message, retry_after_seconds};
use crate::auth::Identity;
use crate::domain::idempotency as rules;
use crate::error::{AppError, ErrorCode};
use crate::graphql::input_guard::{UPLOAD_MARKER, UploadedFiles};
use crate::graphql::limits::{CostCharge, DOCUMENT_REFUSALS, RATE_LIMITED, code_errors};
use crate::graphql::persisted;
use crate::graphql::{RegistrySchema, RequestContext};
use crate::service::idempotency::{self as keys, Begin, Claim};
use crate::state::AppState;
use crate::telemetry::RequestId;
use actix_web::http::header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse, Response};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Set on an answer replayed for a retried Idempotency-Key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

fn refuse(status: StatusCode, code: &str, message: &str, request_id: &str) -> HttpResponse {
    crate::metrics::refusal(code);
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
    payload: web::Payload,
    request_id: RequestId,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    let media = media::negotiate(&req);
    let response = post_answer(req, payload, request_id, state, schema, limiter, media).await;
    media::label(response, media)
}

/// Who is calling, whether they may call again so soon, and (a partner token) whether
/// its partner is still registered and active: the same authorisation as every
/// WebSocket operation (`caller::authorise`).
async fn authorise_http(
    req: &HttpRequest,
    state: &AppState,
    limiter: &RateLimiter,
    request_id: &str,
) -> Result<(Identity, RateKey), HttpResponse> {
    let address = limiter.client_address(req);
    let identity = match caller::authorise(state, limiter, bearer_of(req), address).await {
        Ok(identity) => identity,
        Err(Refusal::RateLimited(wait)) => return Err(rate_limited(wait, request_id)),
        Err(Refusal::Unauthenticated(message)) => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                &message,
                request_id,
            ));
        }
        Err(Refusal::Refused(err)) => return Err(refuse_app_error(err, request_id)),
    };
    super::access::record_caller(req, &identity);
    let rate_key = caller::rate_key(Some(&identity), address);
    Ok((identity, rate_key))
}

/// The code of a POST whose body is not `application/json` (HTTP 415).
pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";

async fn post_answer(
    req: HttpRequest,
    mut payload: web::Payload,
    request_id: RequestId,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
    media: Media,
) -> HttpResponse {
    let request_id = request_id.to_string();
    let limits = &state.settings.limits;

    // 1. The caller (see `authorise_http`), then the body's type: only JSON.
    let (identity, rate_key) = match authorise_http(&req, &state, &limiter, &request_id).await {
        Ok(authorised) => authorised,
        Err(refused) => return refused,
    };
    if let Err(message) = media::check_request_type(media::content_type_of(&req)) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UNSUPPORTED_MEDIA_TYPE,
            &message,
            &request_id,
        );
    }

    // 2. Body, under the cap: refuse early on a declared length, and stop reading at the cap.
    //    A multipart request (the GraphQL multipart request spec: file uploads for
    //    `importListings`) has its own cap, `limits.max_import_bytes`, for admins only:
    //    nobody else may upload, and the body is read whole before its operation is
    //    known, so anyone else's multipart body gets the ordinary cap.
    let multipart = is_multipart(&req);
    let cap = if multipart && identity.role == crate::auth::Role::Admin {
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
    let mut batch: BatchRequest = match parsed {
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
    // Hash-only requests get their text here, before anything reads it.
    if let Err(refused) = resolve_persisted(&state, &mut batch) {
        return answer(refused, media, request_id);
    }
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
            && let Err(wait) = limiter.check(&rate_key, extra).await
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

    // 5. Execute under the timeout (and the key), keep the answer for retries of the key.
    let context = RequestContext::new(identity, request_id.clone());
    // Each operation was charged one token above; its cost charges the rest once the
    // query-limits extension has measured it, before it executes.
    let charge = RateLimiter::cost_charge(limiter.clone().into_inner(), rate_key, 1);
    let executed = execute(
        &state,
        &schema,
        batch,
        context,
        claim.as_ref(),
        Some(charge),
    )
    .await;
    answer(executed, media, request_id)
}

/// The HTTP answer to an executed request, in the client's media type: a request error
/// has no `data`, and is 200 for a legacy `application/json` client (see `media`).
fn answer(executed: Executed, media: Media, request_id: String) -> HttpResponse {
    match executed {
        Executed::Answer {
            status,
            mut body,
            replayed,
        } => {
            let status = media.status_of_executed(status);
            media::strip_request_error_data(&mut body);
            let mut response = HttpResponse::build(status);
            response.insert_header(("x-request-id", request_id));
            if replayed {
                response.insert_header((IDEMPOTENT_REPLAYED, "true"));
            }
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response.insert_header((RETRY_AFTER, "1"));
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let seconds = body["errors"][0]["extensions"]["details"]["retryAfterSeconds"]
                    .as_u64()
                    .unwrap_or(1);
                response.insert_header((RETRY_AFTER, seconds.to_string()));
            }
            response.json(body)
        }
        Executed::Refused {
            status,
            code,
            message,
        } => {
            let mut response = HttpResponse::build(status);
            response.insert_header(("x-request-id", request_id));
            if matches!(
                status,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::CONFLICT
            ) {
                response.insert_header((RETRY_AFTER, "1"));
            }
            response.json(error_body(code, &message))
        }
    }
}

/// What running a GraphQL request came to.
pub(super) enum Executed {
    /// It ran (or timed out: `TIMEOUT`, HTTP 504), or this is the stored answer of an
    /// earlier run with the same Idempotency-Key (`replayed`).
    Answer {
        status: StatusCode,
        body: serde_json::Value,
        replayed: bool,
    },
    /// Its Idempotency-Key did not let it run.
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

/// Runs a request (or batch) under the request timeout and, with a claim, under its
/// Idempotency-Key: the one way a query or mutation runs, over HTTP and over WebSocket.
pub(super) async fn execute(
    state: &AppState,
    schema: &RegistrySchema,
    batch: BatchRequest,
    context: RequestContext,
    claim: Option<&Claim>,
    charge: Option<CostCharge>,
) -> Executed {
    let limits = &state.settings.limits;
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    if let Some(claim) = claim {
        let stale_after = chrono::Duration::milliseconds(
            i64::try_from(limits.request_timeout_ms).unwrap_or(i64::MAX / 2),
        ) + chrono::Duration::seconds(2);
        match keys::begin(&state.db, &state.clock, claim, stale_after).await {
            Ok(Begin::Proceed) => {}
            Ok(Begin::Replay { status, body }) => {
                return Executed::Answer {
                    status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                    body,
                    replayed: true,
                };
            }
            Ok(Begin::Reused) => {
                return Executed::Refused {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    code: rules::KEY_REUSED,
                    message: "this Idempotency-Key was already used with a different request"
                        .into(),
                };
            }
            Ok(Begin::InProgress) => {
                return Executed::Refused {
                    status: StatusCode::CONFLICT,
                    code: rules::KEY_IN_PROGRESS,
                    message: "a request with this Idempotency-Key is still running; retry shortly"
                        .into(),
                };
            }
            Err(err) => {
                let code = err.code().as_str();
                let status = match code {
                    "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
                    "TIMEOUT" => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                // Logs internal causes; the client gets the generic message only.
                let message = err.into_graphql().message;
                return Executed::Refused {
                    status,
                    code,
                    message,
                };
            }
        }
    }

    // Each request says how many files it carries, for the input guard's `Upload` check.
    let with_files = |r: async_graphql::Request| {
        let files = UploadedFiles(r.uploads.len());
        r.data(files)
    };
    let batch = match batch {
        BatchRequest::Single(r) => BatchRequest::Single(with_files(r)),
        BatchRequest::Batch(rs) => BatchRequest::Batch(rs.into_iter().map(with_files).collect()),
    };
    let batch = match charge {
        Some(charge) => batch.data(context).data(charge),
        None => batch.data(context),
    };
    // The clock audit events are stamped with: `settle_claim` looks for this attempt's
    // events from here on.
    let started = state.clock.now();
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
    if let Some(claim) = claim {
        settle_claim(state, claim, started, status, &body, answered).await;
    }
    Executed::Answer {
        status,
        body,
        replayed: false,
    }
}

/// Resolves the automatic persisted queries of every request (`graphql::persisted`), so
/// that everything after this reads full texts. When one cannot be resolved nothing
/// runs: a single request gets its refusal (a request error), a batch an answer per
/// operation, the refused ones with their code and the others `BATCH_NOT_RUN` (a batch
/// is sent again as a whole, as Apollo's batch link does).
pub(super) fn resolve_persisted(
    state: &AppState,
    batch: &mut BatchRequest,
) -> Result<(), Executed> {
    let requests: &mut [async_graphql::Request] = match batch {
        BatchRequest::Single(r) => std::slice::from_mut(r),
        BatchRequest::Batch(rs) => rs.as_mut_slice(),
    };
    let outcomes: Vec<_> = requests
        .iter_mut()
        .map(|r| state.persisted_queries.resolve(r))
        .collect();
    if outcomes.iter().all(Result::is_ok) {
        return Ok(());
    }
    if let [Err(refused)] = outcomes.as_slice()
        && matches!(batch, BatchRequest::Single(_))
    {
        return Err(persisted_refusal(refused));
    }
    let answers: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|outcome| {
            let error = match outcome {
                Err(refused) => {
                    crate::metrics::refusal(refused.code);
                    refused.to_json()
                }
                Ok(_) => serde_json::json!({
                    "message": "not run: another operation of this batch was refused; send the batch again",
                    "extensions": {"code": BATCH_NOT_RUN},
                }),
            };
            serde_json::json!({ "errors": [error] })
        })
        .collect();
    Err(Executed::Answer {
        status: StatusCode::OK,
        body: serde_json::Value::Array(answers),
        replayed: false,
    })
}

/// The answer to a single request whose persisted query was refused: a request error.
fn persisted_refusal(refused: &persisted::Refused) -> Executed {
    crate::metrics::refusal(refused.code);
    Executed::Answer {
        status: StatusCode::BAD_REQUEST,
        body: serde_json::json!({ "errors": [refused.to_json()] }),
        replayed: false,
    }
}

/// The code of a batch's operation left unrun because another one was refused first.
pub const BATCH_NOT_RUN: &str = "BATCH_NOT_RUN";

/// async-graphql marks an uploaded file in the variables as `#__graphql_file__:<index>`
/// and its `Upload` scalar panics on a marker whose index is not a number or names no
/// file of the request. A client can write such a string into any variable (JSON or the
/// multipart `operations`), so over HTTP a marker without a valid index is refused
/// before anything runs, as a malformed request. The input guard's `Upload` check
/// (`graphql::input_guard`) is what covers every transport and the document's literals;
/// this earlier refusal keeps HTTP's answer to a forged variable a 400.
fn has_forged_upload(batch: &BatchRequest) -> bool {
    fn forged(v: &async_graphql::Value, files: usize) -> bool {
        match v {
            async_graphql::Value::String(s) => s
                .strip_prefix(UPLOAD_MARKER)
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

/// The 429 for an anonymous HTTP request whose bucket (`key_of` its client address)
/// refuses it, or `None` when it is admitted: the same answer as anonymous GraphQL's.
pub(super) async fn refused_by_address(
    req: &HttpRequest,
    limiter: &RateLimiter,
    key_of: fn(std::net::IpAddr) -> RateKey,
) -> Option<HttpResponse> {
    let key = key_of(limiter.client_address(req));
    let wait = limiter.check(&key, 1).await.err()?;
    Some(rate_limited(wait, "-"))
}

pub(super) fn rate_limited(wait: Duration, request_id: &str) -> HttpResponse {
    let seconds = retry_after_seconds(wait);
    crate::metrics::refusal("RATE_LIMITED");
    HttpResponse::TooManyRequests()
        .insert_header(("x-request-id", request_id.to_string()))
        .insert_header((RETRY_AFTER, seconds.to_string()))
        .json(error_body("RATE_LIMITED", &refusal_message(seconds)))
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
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_string())?;
    // A retry may send the hash alone, or the text: the same request either way.
    match (batch, &mut value) {
        (BatchRequest::Single(r), value) => persisted::canonicalise(value, &r.query),
        (BatchRequest::Batch(rs), serde_json::Value::Array(items)) => {
            for (item, r) in items.iter_mut().zip(rs) {
                persisted::canonicalise(item, &r.query);
            }
        }
        _ => {}
    }
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
        operation_type(&r.query, r.operation_name.as_deref()) == Some(OperationType::Mutation)
    })
}

/// The type of the operation a request runs: `None` when the document does not parse or
/// does not say which operation (execution then answers the error).
pub(super) fn operation_type(query: &str, operation_name: Option<&str>) -> Option<OperationType> {
    let doc = async_graphql::parser::parse_query(query).ok()?;
    let op = match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        _ => None,
    };
    op.map(|op| op.node.ty)
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
        let committed =
            keys::committed(&state.db, &claim.request_id, &claim.subject, started).await?;
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

/// Gives every error a code (`graphql::limits::code_errors`); also used over WebSocket.
pub(crate) fn code_every_error(response: &mut BatchResponse) {
    let responses: &mut [Response] = match response {
        BatchResponse::Single(r) => std::slice::from_mut(r),
        BatchResponse::Batch(rs) => rs.as_mut_slice(),
    };
    for r in responses {
        code_errors(r);
    }
}

/// HTTP status of a GraphQL answer: 200, unless a single request failed as a whole
/// (no data) on an unavailable database (503), a timeout (504), or before execution (a
/// request error: parse, validation, variables, a limit; 400, which `Media` turns into
/// 200 for `application/json` clients).
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
        Some("SERVICE_UNAVAILABLE") => StatusCode::SERVICE_UNAVAILABLE,
        Some("TIMEOUT") => StatusCode::GATEWAY_TIMEOUT,
        Some(RATE_LIMITED) => StatusCode::TOO_MANY_REQUESTS,
        Some(c) if DOCUMENT_REFUSALS.contains(&c) => StatusCode::BAD_REQUEST,
        _ if !r.errors.is_empty() && r.errors.iter().all(|e| e.path.is_empty()) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    }
}

/// The bearer token of a request: none (the public), or why its `Authorization`
/// header cannot be one.
pub(super) fn bearer_of(req: &HttpRequest) -> Result<Option<&str>, String> {
    let Some(value) = req.headers().get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "the Authorization header is not text".to_string())?;
    caller::bearer_token(value).map(Some)
}

/// `GET /graphql`: a browser (`Accept: text/html`, no `query`) gets GraphiQL; anything
/// else is a GraphQL request in the query string (`query`, `operationName`, and
/// `variables` and `extensions` as JSON text; `query` may be left out when `extensions`
/// names a persisted query). GET runs queries only: a mutation is
/// refused with 405 and `Allow: POST`, since a GET may be repeated or prefetched.
pub async fn get(
    req: HttpRequest,
    request_id: RequestId,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    let media = media::negotiate(&req);
    let response = get_answer(req, request_id, state, schema, limiter, media).await;
    media::label(response, media)
}

async fn get_answer(
    req: HttpRequest,
    request_id: RequestId,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
    limiter: web::Data<RateLimiter>,
    media: Media,
) -> HttpResponse {
    let request_id = request_id.to_string();
    let params = match web::Query::<HashMap<String, String>>::from_query(req.query_string()) {
        Ok(params) => params.into_inner(),
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the query string could not be read",
                &request_id,
            );
        }
    };
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
    if !params.contains_key("query")
        && !params.contains_key("extensions")
        && media::wants_html(accept)
    {
        return graphiql(state).await;
    }
    let (identity, rate_key) = match authorise_http(&req, &state, &limiter, &request_id).await {
        Ok(authorised) => authorised,
        Err(refused) => return refused,
    };
    let mut request = match request_from_params(params) {
        Ok(request) => request,
        Err(message) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &message,
                &request_id,
            );
        }
    };
    // A hash-only GET (Apollo's `useGETForHashedQueries`) gets its text before the
    // mutation check, so a persisted mutation is refused here like a sent one.
    if let Err(refused) = state.persisted_queries.resolve(&mut request) {
        return answer(persisted_refusal(&refused), media, request_id);
    }
    if operation_type(&request.query, request.operation_name.as_deref())
        == Some(OperationType::Mutation)
    {
        let mut response = refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "a mutation must be sent with POST",
            &request_id,
        );
        response.headers_mut().insert(
            ALLOW,
            actix_web::http::header::HeaderValue::from_static("POST"),
        );
        return response;
    }
    let context = RequestContext::new(identity, request_id.clone());
    // As over POST: one token was taken above, the cost charges the rest.
    let charge = RateLimiter::cost_charge(limiter.clone().into_inner(), rate_key, 1);
    let executed = execute(
        &state,
        &schema,
        BatchRequest::Single(request),
        context,
        None,
        Some(charge),
    )
    .await;
    answer(executed, media, request_id)
}

/// A GraphQL request from GET parameters, read by the same rules as a POST body.
fn request_from_params(
    mut params: HashMap<String, String>,
) -> Result<async_graphql::Request, String> {
    let mut object = serde_json::Map::new();
    // Without `query`, `extensions` must name a persisted query (checked when resolved).
    let query = match params.remove("query") {
        Some(query) => query,
        None if params.contains_key("extensions") => String::new(),
        None => return Err("a GraphQL GET needs a `query` parameter".into()),
    };
    object.insert("query".into(), serde_json::Value::String(query));
    if let Some(name) = params.remove("operationName").filter(|n| !n.is_empty()) {
        object.insert("operationName".into(), serde_json::Value::String(name));
    }
    for key in ["variables", "extensions"] {
        if let Some(text) = params.remove(key).filter(|t| !t.is_empty()) {
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|_| format!("the `{key}` parameter is not JSON"))?;
            object.insert(key.into(), value);
        }
    }
    serde_json::from_value(serde_json::Value::Object(object)).map_err(|_| {
        "the parameters are not a GraphQL request: `variables` and `extensions` must be JSON objects"
            .to_string()
    })
}

/// GraphiQL for people exploring the API; not served in production.
pub async fn graphiql(state: web::Data<Arc<AppState>>) -> HttpResponse {
    if state.settings.is_production() {
        return HttpResponse::NotFound().finish();
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // Its own policy: the server-wide one forbids scripts.
        .insert_header((
            "content-security-policy",
            super::GRAPHIQL_CONTENT_SECURITY_POLICY,
        ))
        .body(super::graphiql::page())
}
