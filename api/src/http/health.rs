use crate::state::AppState;
use actix_web::{HttpResponse, web};
use std::sync::Arc;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers. With a read standby configured, `replica` says whether heavy
/// reads use it, its lag and, when not in use, why: a standby that lags or is down does
/// not make the instance unready (the primary serves those reads).
pub async fn readyz(state: web::Data<Arc<AppState>>) -> HttpResponse {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => {
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

pub async fn schema_sdl() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(crate::graphql::sdl())
}
