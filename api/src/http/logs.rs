//! The transparency logs over HTTP, as C2SP `tlog-tiles` lays them out:
//! `GET /logs/{registry|answers}/checkpoint` (short-lived), `/vkey` (the signed-note
//! verifier key), `/tile/<L>/<N>[.p/<W>]` (hash tiles) and, for the public registry log
//! only, `/tile/entries/<N>[.p/<W>]` (entry bundles). Tiles never change once they
//! exist, so they are cacheable forever; a tile the tree does not have yet is a 404.
//!
//! Witnesses (`logs.witnesses`) post their cosignatures of a checkpoint to
//! `POST /logs/{log}/cosignature` (C2SP `tlog-cosignature`); the checkpoint is then served
//! with their signature lines after the log's own.
//!
//! Every request here is anonymous and rate limited per client address: a checkpoint and
//! a cosignature as any anonymous request (`limits.public_rate_*`), a tile on a budget of
//! its own (`limits.public_log_rate_*`, large: a verifier replays a log tile after tile).
//! The reads run on the primary's anonymous pool, not on the connections partners'
//! checks use, and not on the read standby: a checkpoint and the tiles under it must come
//! from one history, and a standby a little behind would answer 404 for a tile of the
//! checkpoint the client was just given.

use super::graphql::refused_by_address;
use super::rate_limit::{RateKey, RateLimiter};
use crate::auth::Identity;
use crate::state::AppState;
use crate::store::tlog_store::{self, LogName};
use crate::tlog::TilePath;
use actix_web::{HttpResponse, web};
use std::sync::Arc;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT_LIVED: &str = "public, max-age=2";

fn not_found(what: &str) -> HttpResponse {
    HttpResponse::NotFound()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(format!("{what}\n"))
}

fn unavailable(e: &sea_orm::DbErr) -> HttpResponse {
    tracing::error!(error = %e, "transparency log: reading failed");
    HttpResponse::ServiceUnavailable()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body("the log cannot be read right now\n")
}

fn log_of(name: &str) -> Option<LogName> {
    LogName::parse(name)
}

/// The pool the logs are read on (see the module documentation).
fn log_reads(state: &AppState) -> &sea_orm::DatabaseConnection {
    state.pool_for(&Identity::anonymous())
}

/// `GET /logs/{log}/checkpoint`
pub async fn checkpoint(
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    state: web::Data<Arc<AppState>>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    if let Some(refused) = refused_by_address(&req, &limiter, RateKey::of_address).await {
        return refused;
    }
    let Some(log) = log_of(&path) else {
        return not_found("no such log");
    };
    match state.logs.cosigned_checkpoint(log_reads(&state), log).await {
        Ok(Some(note)) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("cache-control", SHORT_LIVED))
            .body(note),
        Ok(None) => not_found("the log has no checkpoint yet"),
        Err(e) => unavailable(&e),
    }
}

/// `GET /logs/{log}/vkey`
pub async fn vkey(path: web::Path<String>, state: web::Data<Arc<AppState>>) -> HttpResponse {
    let Some(log) = log_of(&path) else {
        return not_found("no such log");
    };
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(format!("{}\n", state.logs.key(log).vkey()))
}

/// `GET /logs/{log}/tile/{rest}`
pub async fn tile(
    req: actix_web::HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Arc<AppState>>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    if let Some(refused) = refused_by_address(&req, &limiter, RateKey::of_log_reader).await {
        return refused;
    }
    let (name, rest) = path.into_inner();
    let Some(log) = log_of(&name) else {
        return not_found("no such log");
    };
    let Ok(tile) = TilePath::parse(&rest) else {
        return not_found("not a tlog-tiles path");
    };
    if tile.level.is_none() && !log.entries_are_public() {
        return not_found("this log's entries are not public");
    }
    let db = log_reads(&state);
    let head = match tlog_store::head(db, log).await {
        Ok(Some(head)) => head,
        Ok(None) => return not_found("the log is empty"),
        Err(e) => return unavailable(&e),
    };
    let read = if tile.level.is_some() {
        tlog_store::read_tile(db, log, &tile, head.size).await
    } else {
        tlog_store::read_entry_bundle(db, log, &tile, head.size).await
    };
    match read {
        Ok(Some(bytes)) => HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header(("cache-control", IMMUTABLE))
            .body(bytes),
        Ok(None) => not_found("the log has no such tile yet"),
        Err(e) => unavailable(&e),
    }
}

/// A cosigned checkpoint is a few hundred bytes; a few witnesses' lines at most.
const MAX_COSIGNED_NOTE: usize = 16 * 1024;

fn refused(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(serde_json::json!({ "code": code, "message": message }))
}

/// `POST /logs/{log}/cosignature`: the body is the log's checkpoint as the witness
/// verified it, with the witness's cosignature line added (a signed note). Counted
/// against the client address's anonymous rate limit, like every public request.
pub async fn cosignature(
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<Arc<AppState>>,
    limiter: web::Data<RateLimiter>,
) -> HttpResponse {
    use crate::service::logs::CosignatureRefusal;
    use actix_web::http::StatusCode;
    if let Some(refused) = refused_by_address(&req, &limiter, RateKey::of_address).await {
        return refused;
    }
    let Some(log) = log_of(&path) else {
        return not_found("no such log");
    };
    if body.len() > MAX_COSIGNED_NOTE {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("a cosigned checkpoint is at most {MAX_COSIGNED_NOTE} bytes"),
        );
    }
    let Ok(note) = std::str::from_utf8(&body) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "BAD_CHECKPOINT",
            "the body is not UTF-8 text",
        );
    };
    match state.logs.accept_cosignature(&state.db, log, note).await {
        Ok(witnesses) => HttpResponse::Ok()
            .insert_header(("cache-control", "no-store"))
            .json(serde_json::json!({ "accepted": witnesses })),
        Err(CosignatureRefusal::Internal(e)) => {
            tracing::error!(error = %crate::error::one_line(&e), "transparency log: storing a cosignature failed");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "the cosignature cannot be stored right now",
            )
        }
        Err(refusal) => {
            let status = match refusal {
                CosignatureRefusal::UnknownWitness => StatusCode::FORBIDDEN,
                CosignatureRefusal::UnknownCheckpoint(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            refused(status, refusal.code(), &refusal.to_string())
        }
    }
}
