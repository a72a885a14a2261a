use crate::state::AppState;
use actix_web::{HttpResponse, web};
use std::sync::Arc;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers and holds every migration this build needs. With a read standby
/// configured, `replica` says whether heavy reads use it, its lag and, when not in use,
/// why: a standby that lags or is down does not make the instance unready (the primary
/// serves those reads).
pub async fn readyz(state: web::Data<Arc<AppState>>) -> HttpResponse {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => {
            if let Some(pending) = pending_migrations(&state).await {
                // Started with `--no-migrate` before `credit-registry migrate` ran (a
                // rolling upgrade): requests would reach tables and columns not there.
                return HttpResponse::ServiceUnavailable().json(serde_json::json!({
                    "status": "unavailable",
                    "database": "ok",
                    "migrations": format!("{pending} pending: run credit-registry migrate"),
                }));
            }
            let mut body = serde_json::json!({ "status": "ready", "database": "ok" });
            if let Some(replica) = &state.replica {
                body["replica"] = serde_json::json!(replica.status());
            }
            HttpResponse::Ok().json(body)
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "unavailable", "database": "unreachable" }))
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({ "status": "unavailable", "database": "timeout" })),
    }
}

/// How many of this build's migrations the database lacks, until it lacks none (then
/// remembered: a schema does not lose migrations). A failed look is not "pending": the
/// ping just answered, and readiness should not flap on one slow query.
async fn pending_migrations(state: &AppState) -> Option<usize> {
    use std::sync::atomic::Ordering;
    if state.schema_current.load(Ordering::Relaxed) {
        return None;
    }
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        crate::db::migration_status(&state.db),
    )
    .await;
    let status = match status {
        Ok(Ok(status)) => status,
        Ok(Err(err)) => {
            // Not "pending", but not silent either: a schema this build cannot read its
            // migrations from (e.g. one migrated by a newer build) is for the operator
            // to know about. Once per process: /readyz is polled every few seconds.
            static LOGGED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(error = %format!("{err:#}"), "readiness could not read the migration status; answering ready on the ping alone");
            }
            return None;
        }
        Err(_) => return None,
    };
    let pending = status.iter().filter(|(_, applied)| !applied).count();
    if pending == 0 {
        state.schema_current.store(true, Ordering::Relaxed);
        None
    } else {
        Some(pending)
    }
}

/// `GET /schema.graphql`: anonymous, so rate limited per client address like any
/// anonymous request; the SDL is rendered once (building the schema and printing it on
/// every request cost a core to whoever looped on it), it cannot change in a process.
pub async fn schema_sdl(
    req: actix_web::HttpRequest,
    limiter: web::Data<super::rate_limit::RateLimiter>,
) -> HttpResponse {
    static SDL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let of_address = super::rate_limit::RateKey::of_address;
    if let Some(refused) = super::graphql::refused_by_address(&req, &limiter, of_address).await {
        return refused;
    }
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(SDL.get_or_init(crate::graphql::sdl).as_str())
}
