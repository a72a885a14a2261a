//! The transparency logs over HTTP, as C2SP `tlog-tiles` lays them out:
//! `GET /logs/{registry|answers}/checkpoint` (short-lived), `/vkey` (the signed-note
//! verifier key), `/tile/<L>/<N>[.p/<W>]` (hash tiles) and, for the public registry log
//! only, `/tile/entries/<N>[.p/<W>]` (entry bundles). Tiles never change once they
//! exist, so they are cacheable forever; a tile the tree does not have yet is a 404.

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

/// `GET /logs/{log}/checkpoint`
pub async fn checkpoint(path: web::Path<String>, state: web::Data<Arc<AppState>>) -> HttpResponse {
    let Some(log) = log_of(&path) else {
        return not_found("no such log");
    };
    match tlog_store::head(&state.db, log).await {
        Ok(Some(head)) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("cache-control", SHORT_LIVED))
            .body(head.checkpoint),
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
    path: web::Path<(String, String)>,
    state: web::Data<Arc<AppState>>,
) -> HttpResponse {
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
    let head = match tlog_store::head(&state.db, log).await {
        Ok(Some(head)) => head,
        Ok(None) => return not_found("the log is empty"),
        Err(e) => return unavailable(&e),
    };
    let read = if tile.level.is_some() {
        tlog_store::read_tile(&state.db, log, &tile, head.size).await
    } else {
        tlog_store::read_entry_bundle(&state.db, log, &tile, head.size).await
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
