use crate::state::AppState;
use actix_web::{HttpResponse, web};
use std::sync::Arc;

/// `GET /.well-known/jwks.json`: the public keys that verify check receipts (RFC 7517,
/// OKP/Ed25519 keys with their `kid`). Old keys stay listed, so old receipts keep verifying.
pub async fn jwks(state: web::Data<Arc<AppState>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header(("cache-control", "public, max-age=300"))
        .json(state.receipts.jwks())
}
