//! `POST /graphql`: reads the body under a size cap (async-graphql-actix-web would read
//! any size), resolves the bearer token once, bounds batches, and runs the request
//! under a timeout. Refusals made here carry their own code and HTTP status.

use super::error_body;
use crate::auth::Identity;
use crate::graphql::{RegistrySchema, RequestContext};
use crate::startup::AppState;
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::BatchRequest;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tracing_actix_web::RequestId;

fn refuse(status: StatusCode, code: &str, message: &str, request_id: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("x-request-id", request_id.to_string()))
        .json(error_body(code, message))
}

pub async fn post(
    req: HttpRequest,
    mut payload: web::Payload,
    request_id: RequestId,
    state: web::Data<Arc<AppState>>,
    schema: web::Data<RegistrySchema>,
) -> HttpResponse {
    let request_id = request_id.to_string();
    let limits = &state.settings.limits;

    // 1. Body, under the cap: refuse early on a declared length, and stop reading at the cap.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!(
                "the request body is larger than {} bytes",
                limits.max_body_bytes
            ),
            &request_id,
        )
    };
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return too_large();
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the request body could not be read",
                &request_id,
            );
        };
        if body.len() + chunk.len() > limits.max_body_bytes {
            return too_large();
        }
        body.extend_from_slice(&chunk);
    }

    // 2. Who is calling.
    let identity = match resolve_identity(&req, &state) {
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

    // 3. The GraphQL request(s).
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "the body is not a GraphQL request: expected JSON with a \"query\" string",
                &request_id,
            );
        }
    };
    if let BatchRequest::Batch(items) = &batch
        && items.len() > limits.max_batch_operations
    {
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
    let context = RequestContext::new(identity, request_id.clone());
    let batch = batch.data(context);

    // 4. Execute under the timeout.
    let timeout = Duration::from_millis(limits.request_timeout_ms);
    match tokio::time::timeout(timeout, schema.execute_batch(batch)).await {
        Ok(response) => HttpResponse::Ok()
            .insert_header(("x-request-id", request_id))
            .json(response),
        Err(_) => refuse(
            StatusCode::GATEWAY_TIMEOUT,
            "TIMEOUT",
            "the request took too long and was stopped",
            &request_id,
        ),
    }
}

/// No header: the public. A header that is not a valid bearer token: refused.
fn resolve_identity(req: &HttpRequest, state: &AppState) -> Result<Identity, String> {
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
