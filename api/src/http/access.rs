//! The access middleware, outermost on every route: gives each request its id (the
//! caller's usable `x-request-id`, or a new UUID; see `telemetry::RequestId`), writes one
//! access line when the response is ready (method, matched route pattern, status,
//! duration, request id, and the caller's role and subject when a token was verified),
//! and puts `x-request-id` on every response, 404s and refused upgrades included. It
//! also counts the request in the HTTP metrics (`crate::metrics::http_request`).

use crate::auth::Identity;
use crate::telemetry::RequestId;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;

/// The caller behind a verified token, recorded by the handler that verified it.
#[derive(Clone, Debug)]
pub struct Caller {
    pub role: &'static str,
    pub subject: String,
}

/// Tells the access line who called (nothing is recorded for the anonymous role).
pub fn record_caller(req: &actix_web::HttpRequest, identity: &Identity) {
    if !identity.is_anonymous() {
        req.extensions_mut().insert(Caller {
            role: identity.role.as_str(),
            subject: identity.subject.clone(),
        });
    }
}

/// The route label of a request that matched no route: one value, whatever the path
/// (a path is caller-chosen text).
pub const UNMATCHED_ROUTE: &str = "default";

pub async fn access_log<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let request_id = RequestId::from_headers(req.headers());
    req.extensions_mut().insert(request_id.clone());
    let method = req.method().clone();
    let mut response = match next.call(req).await {
        Ok(response) => response,
        Err(err) => {
            // Handlers' and extractors' errors arrive as responses; an error here came
            // from a middleware, and the request it belonged to is gone (it cannot be
            // kept: routing needs it unshared), so only the line is written.
            let status = err.as_response_error().status_code().as_u16();
            finished(&method, UNMATCHED_ROUTE, status, started, &request_id, None);
            return Err(err);
        }
    };
    if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(RequestId::HEADER), value);
    }
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_string());
    let caller = response.request().extensions().get::<Caller>().cloned();
    finished(
        &method,
        &route,
        response.status().as_u16(),
        started,
        &request_id,
        caller.as_ref(),
    );
    Ok(response)
}

/// The access line and the request metrics of one answered request.
fn finished(
    method: &actix_web::http::Method,
    route: &str,
    status: u16,
    started: Instant,
    request_id: &RequestId,
    caller: Option<&Caller>,
) {
    let elapsed = started.elapsed();
    crate::metrics::http_request(method.as_str(), route, status, elapsed);
    // Microsecond resolution is plenty and keeps the line short.
    let duration_ms = (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0;
    tracing::info!(
        target: "access",
        method = %method,
        route,
        status,
        duration_ms,
        request_id = %request_id,
        role = caller.map_or("anonymous", |c| c.role),
        subject = caller.map(|c| c.subject.as_str()),
        "request"
    );
}
