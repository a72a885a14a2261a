//! `GET /metrics`: the Prometheus exposition (`crate::metrics`). Metrics tell an outsider
//! how the registry is used (operations, partners' volumes), so they are not public:
//! with `metrics.token` set, a scraper sends it as a bearer token, from any address;
//! without one, only direct loopback connections may read them (a request relayed by a
//! proxy, which would carry `Forwarded` or `X-Forwarded-For`, is refused even from
//! loopback, so a reverse proxy on the same host does not publish them).

use super::error_body;
use crate::state::AppState;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq)]
enum Access {
    Allowed,
    /// A token is configured and the request did not carry it.
    WrongToken,
    /// No token is configured and the request is not a direct loopback one.
    NotLocal,
}

fn access(
    configured: Option<&str>,
    authorization: Option<&str>,
    peer: Option<IpAddr>,
    forwarded: bool,
) -> Access {
    match configured {
        Some(token) => {
            let sent = authorization
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim);
            // Digests are compared, so the time taken says nothing about the token.
            let matches = sent.is_some_and(|sent| {
                Sha256::digest(sent.as_bytes()) == Sha256::digest(token.as_bytes())
            });
            if matches {
                Access::Allowed
            } else {
                Access::WrongToken
            }
        }
        None if peer.is_some_and(|ip| ip.is_loopback()) && !forwarded => Access::Allowed,
        None => Access::NotLocal,
    }
}

pub async fn scrape(req: HttpRequest, state: web::Data<Arc<AppState>>) -> HttpResponse {
    let headers = req.headers();
    let forwarded = headers.contains_key("forwarded") || headers.contains_key("x-forwarded-for");
    let verdict = access(
        state.settings.metrics.token.as_deref(),
        headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()),
        req.peer_addr().map(|a| a.ip()),
        forwarded,
    );
    match verdict {
        Access::Allowed => {}
        Access::WrongToken => {
            return HttpResponse::Unauthorized().json(error_body(
                "UNAUTHENTICATED",
                "/metrics needs the configured metrics token: Authorization: Bearer <metrics.token>",
            ));
        }
        Access::NotLocal => {
            return HttpResponse::Forbidden().json(error_body(
                "FORBIDDEN",
                "/metrics is served only to direct loopback connections unless metrics.token is set",
            ));
        }
    }
    if let Some(replica) = &state.replica {
        crate::metrics::replica_sample(&replica.status());
    }
    match crate::metrics::render(&state.db).await {
        Some(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        None => HttpResponse::ServiceUnavailable().json(error_body(
            "SERVICE_UNAVAILABLE",
            "metrics are not being recorded in this process",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    const REMOTE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 2, 3)));

    #[test]
    fn without_a_token_only_direct_loopback_requests_may_read() {
        assert_eq!(access(None, None, LOOPBACK, false), Access::Allowed);
        let v6 = Some(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST));
        assert_eq!(access(None, None, v6, false), Access::Allowed);
        assert_eq!(access(None, None, LOOPBACK, true), Access::NotLocal);
        assert_eq!(access(None, None, REMOTE, false), Access::NotLocal);
        assert_eq!(access(None, None, None, false), Access::NotLocal);
    }

    #[test]
    fn with_a_token_only_the_token_counts() {
        let t = Some("s3cret");
        assert_eq!(
            access(t, Some("Bearer s3cret"), REMOTE, true),
            Access::Allowed
        );
        assert_eq!(
            access(t, Some("Bearer wrong"), LOOPBACK, false),
            Access::WrongToken
        );
        assert_eq!(access(t, None, LOOPBACK, false), Access::WrongToken);
        assert_eq!(
            access(t, Some("s3cret"), LOOPBACK, false),
            Access::WrongToken
        );
    }
}
