//! CORS for partners' browser clients: only the origins in `cors.allowed_origins` get CORS
//! headers (and a preflight answer). Any other origin's request is served without them,
//! so a browser keeps its page from reading the answer, and cannot send a JSON POST at
//! all (that needs a preflight); `text/plain` POSTs, which need none, are refused (415).

use crate::config::CorsSettings;
use actix_cors::Cors;
use actix_web::http::{Method, header};

/// Why an entry of `cors.allowed_origins` is not an origin a browser would send.
pub fn check_origin(origin: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("cors.allowed_origins: {origin:?} {why}"));
    let Some((scheme, rest)) = origin.split_once("://") else {
        return bad("is not scheme://host[:port]");
    };
    if scheme != "http" && scheme != "https" {
        return bad("must start with http:// or https://");
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ', '@']) {
        return bad("must be scheme://host[:port], with no path, wildcard or user");
    }
    if origin.parse::<actix_web::http::Uri>().is_err() {
        return bad("is not a valid origin");
    }
    Ok(())
}

/// Checks every configured origin (called at start, so a typo stops it).
pub fn check(settings: &CorsSettings) -> Result<(), String> {
    settings
        .allowed_origins
        .iter()
        .try_for_each(|o| check_origin(o))
}

/// The middleware for the configured origins (already checked by [`check`]).
pub fn middleware(settings: &CorsSettings) -> Cors {
    let cors = settings
        .allowed_origins
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
    cors.allowed_methods([Method::GET, Method::POST])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static(super::graphql::IDEMPOTENCY_KEY),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static(super::graphql::IDEMPOTENT_REPLAYED),
        ])
        .max_age(3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked() {
        assert!(check_origin("https://bid.example.gov.cn").is_ok());
        assert!(check_origin("http://127.0.0.1:8080").is_ok());
        assert!(check_origin("bid.example.gov.cn").is_err());
        assert!(check_origin("https://bid.example.gov.cn/").is_err());
        assert!(check_origin("https://*.example.gov.cn").is_err());
        assert!(check_origin("ftp://example.gov.cn").is_err());
        assert!(check_origin("*").is_err());
        assert!(check_origin("https://").is_err());
    }
}
