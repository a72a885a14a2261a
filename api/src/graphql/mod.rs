//! The GraphQL schema: one file per area, merged into the root types here.

pub mod checks;
pub mod operators;
pub mod partners;

use crate::auth::Identity;
use crate::config::Settings;
use crate::startup::AppState;
use async_graphql::{EmptySubscription, MergedObject, Schema, SchemaBuilder};
use std::sync::Arc;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    operators::OperatorQuery,
    partners::PartnerQuery,
    checks::CheckQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    operators::OperatorMutation,
    partners::PartnerMutation,
    checks::CheckMutation,
);

pub type RegistrySchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Per-request data: the caller and the request id, resolved once by the HTTP layer.
#[derive(Clone)]
pub struct RequestContext {
    identity: Identity,
    request_id: String,
}

impl RequestContext {
    pub fn new(identity: Identity, request_id: String) -> Self {
        Self {
            identity,
            request_id,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    pub fn actor(&self) -> crate::service::Actor {
        crate::service::Actor {
            identity: self.identity.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// The schema's shape with no data attached: enough for the SDL.
pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, EmptySubscription> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        EmptySubscription,
    )
}

/// The SDL as served at `/schema.graphql` and printed by `print-schema`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// The executable schema with its limits and shared state.
pub fn build_schema(state: Arc<AppState>, settings: &Settings) -> RegistrySchema {
    let limits = &settings.limits;
    let mut builder = schema_builder()
        .data(state)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32);
    if settings.is_production() {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// Shared state from a resolver's context.
pub fn state<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
}

pub fn request<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a RequestContext> {
    ctx.data::<RequestContext>()
}
