//! Logging: `tracing` with a request id per request (tracing-actix-web), human-readable
//! by default and JSON when `log_format = "json"`. `RUST_LOG` sets the filter.
//!
//! Every line goes to standard error: standard output belongs to the commands' answers
//! (`TOKEN=$(credit-registry token …)` must capture the token and nothing else, even on
//! a first run that warns about generating a development key).

use crate::config::LogFormat;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use std::sync::Arc;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests start several servers) is harmless: keep the first.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                fmt::layer()
                    .with_target(false)
                    // Colours only for a terminal, not in a log file.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

/// The id of one HTTP request: the caller's own `x-request-id` when it sent a usable one
/// (so a proxy's or partner's id follows the request through our logs), otherwise a new
/// UUID. It is the id of the request's span, its access line, its audit events and check
/// records, and the `x-request-id` of its response. Set by `http::access` before anything
/// else runs; handlers extract it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The request and response header.
    pub const HEADER: &'static str = "x-request-id";
    /// Longest caller-supplied id kept; a longer one is replaced (logs stay bounded).
    pub const MAX_LEN: usize = 128;

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string().into())
    }

    /// A caller-supplied id: 1–128 visible ASCII characters (no space or control
    /// character, so it is a valid header value and one token in a log line).
    pub fn parse(value: &[u8]) -> Option<Self> {
        let usable = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value.iter().all(|b| b.is_ascii_graphic());
        // Checked above: every byte is ASCII, so this is valid UTF-8.
        usable
            .then(|| std::str::from_utf8(value).ok())
            .flatten()
            .map(|s| Self(s.into()))
    }

    /// The caller's usable id, or a new one.
    pub fn from_headers(headers: &actix_web::http::header::HeaderMap) -> Self {
        headers
            .get(Self::HEADER)
            .and_then(|v| Self::parse(v.as_bytes()))
            .unwrap_or_else(Self::generate)
    }

    /// The id the access middleware gave this request (a new one, kept for the rest of
    /// the request, when none was given: a request served without the middleware).
    pub fn of(req: &actix_web::HttpRequest) -> Self {
        if let Some(id) = req.extensions().get::<RequestId>() {
            return id.clone();
        }
        let id = Self::generate();
        req.extensions_mut().insert(id.clone());
        id
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl actix_web::FromRequest for RequestId {
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        std::future::ready(Ok(Self::of(req)))
    }
}

/// The request span of tracing-actix-web's default builder, with the same fields, but
/// carrying our [`RequestId`] (tracing-actix-web's own is always a fresh UUID, so it
/// could not carry a caller's id).
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = RequestId::of(request.request());
        let route = request.match_pattern().unwrap_or_else(|| "default".into());
        let method = request.method().as_str();
        let connection = request.connection_info();
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = %http_flavor(request.version()),
            http.scheme = %connection.scheme(),
            http.host = %connection.host(),
            http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            http.target = %request.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            request_id = %request_id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// The HTTP version as tracing-actix-web writes it ("1.1", "2.0").
fn http_flavor(version: actix_web::http::Version) -> &'static str {
    use actix_web::http::Version;
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::RequestId;

    #[test]
    fn a_callers_visible_ascii_id_of_up_to_128_characters_is_kept() {
        for id in ["abc", "req-01J9Z/x:y=z", &"a".repeat(128)] {
            assert_eq!(
                RequestId::parse(id.as_bytes()).map(|r| r.as_str().to_string()),
                Some(id.to_string())
            );
        }
    }

    #[test]
    fn an_unusable_id_is_refused() {
        let too_long = "a".repeat(129);
        for id in [
            "".as_bytes(),
            b"has space",
            b"tab\there",
            b"new\nline",
            "编号".as_bytes(),
            &[0x7f],
            too_long.as_bytes(),
        ] {
            assert_eq!(RequestId::parse(id), None, "{id:?}");
        }
    }

    #[test]
    fn a_new_id_is_a_uuid() {
        let id = RequestId::generate();
        assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        assert_ne!(id, RequestId::generate());
    }
}
