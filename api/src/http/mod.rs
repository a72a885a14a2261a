//! HTTP routes: `/graphql`, health, `/metrics`, the SDL download, the receipt keys (JWKS); the access
//! middleware (`access`) wraps them all.

pub mod access;
mod caller;
pub mod cors;
mod exports;
mod graphiql;
pub mod graphql;
mod health;
mod logs;
pub mod media;
mod pages;
mod prometheus;
pub mod rate_limit;
mod receipts;
pub mod refusal_hold;
mod ws;

pub use pages::StatisticsPages;
pub use ws::Sockets;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/graphql", web::post().to(graphql::post))
        .route("/graphql", web::get().to(graphiql_or_subscribe))
        .route("/graphql/ws", web::get().to(ws::subscribe))
        .route(
            "/graphiql/assets/{version}/{name}",
            web::get().to(graphiql::asset),
        )
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(prometheus::scrape))
        .route("/schema.graphql", web::get().to(health::schema_sdl))
        .route("/.well-known/jwks.json", web::get().to(receipts::jwks))
        .route(
            "/exports/check-records.csv",
            web::get().to(exports::check_records),
        )
        .route("/exports/{file}", web::get().to(exports::public_list))
        .route("/logs/{log}/checkpoint", web::get().to(logs::checkpoint))
        .route("/logs/{log}/vkey", web::get().to(logs::vkey))
        .route("/logs/{log}/cosignature", web::post().to(logs::cosignature))
        .route("/logs/{log}/tile/{rest:.*}", web::get().to(logs::tile))
        .configure(pages::routes);
}

/// `GET /graphql`: a WebSocket upgrade is a subscription; anything else is a query in the
/// URL or, for a browser, GraphiQL (`graphql::get`).
async fn graphiql_or_subscribe(
    req: actix_web::HttpRequest,
    payload: web::Payload,
    request_id: crate::telemetry::RequestId,
    state: web::Data<std::sync::Arc<crate::state::AppState>>,
    schema: web::Data<crate::graphql::RegistrySchema>,
    limiter: web::Data<rate_limit::RateLimiter>,
    sockets: web::Data<ws::Sockets>,
) -> actix_web::Result<actix_web::HttpResponse> {
    if ws::is_upgrade(&req) {
        ws::subscribe(req, payload, state, schema, limiter, sockets).await
    } else {
        Ok(graphql::get(req, request_id, state, schema, limiter).await)
    }
}

/// The policy every response carries unless it sets its own (GraphiQL does): the public
/// pages have no script, their styles are inline (`templates/base.html`), the statistics
/// chart is inline SVG, and their forms post to themselves. Nothing may frame them (the
/// `/verify` form), nothing loads from elsewhere, and `<base>` cannot redirect links.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// GraphiQL's own policy (development only): its embedded scripts, stylesheet and fonts,
/// its inline style, and requests (HTTP and the subscriptions' WebSocket) to this origin.
pub const GRAPHIQL_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers added to every response that does not set them: the policy above, no MIME
/// sniffing (plain-text errors and `.csv`/`.jsonl` exports are never run as something
/// else), and no referrer sent from the pages.
pub fn security_headers() -> actix_web::middleware::DefaultHeaders {
    actix_web::middleware::DefaultHeaders::new()
        .add(("content-security-policy", CONTENT_SECURITY_POLICY))
        .add(("x-content-type-options", "nosniff"))
        .add(("referrer-policy", "no-referrer"))
}

/// A GraphQL-shaped error body for refusals made before GraphQL runs.
pub(crate) fn error_body(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}
