//! HTTP routes: `/graphql`, health, the SDL download, the receipt keys (JWKS).

pub mod graphql;
mod health;
pub mod rate_limit;
mod receipts;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphql", web::post().to(graphql::post))
        .route("/graphql", web::get().to(graphql::graphiql))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/schema.graphql", web::get().to(health::schema_sdl))
        .route("/.well-known/jwks.json", web::get().to(receipts::jwks));
}

/// A GraphQL-shaped error body for refusals made before GraphQL runs.
pub(crate) fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}
