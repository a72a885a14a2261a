//! The GraphQL schema: one file per area, merged into the root types here.

pub mod capacity;
pub mod catalogue;
pub mod checks;
pub mod connection;
pub mod cost;
pub mod document_cache;
pub mod feed;
pub mod guards;
pub mod history;
pub mod import;
pub mod input_guard;
pub mod limits;
pub mod listings;
pub mod loaders;
pub mod operation_metrics;
pub mod operators;
pub mod partners;
pub mod persisted;
pub mod public;
pub mod repair;
pub mod report;

use crate::auth::Identity;
use crate::config::Settings;
use crate::state::AppState;
use async_graphql::{MergedObject, MergedSubscription, Schema, SchemaBuilder};
use std::sync::Arc;

#[derive(MergedObject, Default)]
pub struct QueryRoot(
    operators::OperatorQuery,
    listings::ListingQuery,
    catalogue::CatalogueQuery,
    partners::PartnerQuery,
    checks::CheckQuery,
    repair::RepairQuery,
    history::HistoryQuery,
    feed::FeedQuery,
    public::PublicQuery,
    report::ReportQuery,
);

#[derive(MergedObject, Default)]
pub struct MutationRoot(
    operators::OperatorMutation,
    listings::ListingMutation,
    catalogue::CatalogueMutation,
    partners::PartnerMutation,
    checks::CheckMutation,
    repair::RepairMutation,
    public::PublicMutation,
    import::ImportMutation,
);

#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(feed::FeedSubscription);

pub type RegistrySchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Per-request data: the caller and the request id, resolved once by the HTTP layer.
#[derive(Clone)]
pub struct RequestContext {
    identity: Identity,
    request_id: String,
    /// Built on first use: most requests (checks) never need them.
    loaders: Arc<std::sync::OnceLock<loaders::Loaders>>,
}

impl RequestContext {
    pub fn new(identity: Identity, request_id: String) -> Self {
        Self {
            identity,
            request_id,
            loaders: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// This request's DataLoaders.
    pub fn loaders(&self, db: &sea_orm::DatabaseConnection) -> &loaders::Loaders {
        self.loaders.get_or_init(|| loaders::Loaders::new(db))
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
pub fn schema_builder() -> SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
}

/// The SDL as served at `/schema.graphql` and printed by `print-schema`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// The parser refuses documents nested deeper than this before any rule runs (it bounds
/// the recursion of parsing and validation; `limits.max_depth` is checked afterwards).
pub const MAX_RECURSIVE_DEPTH: usize = 32;

/// The executable schema with its limits and shared state. Depth, complexity and alias
/// limits are applied by [`limits::QueryLimits`] (which also gives async-graphql's own
/// errors a code), not by `limit_depth`/`limit_complexity`; every input value is checked
/// by [`input_guard::InputGuard`] before anything executes.
pub fn build_schema(state: Arc<AppState>, settings: &Settings) -> RegistrySchema {
    let mut builder = schema_builder()
        .data(state)
        .extension(input_guard::InputGuard::new(&settings.limits))
        .extension(limits::QueryLimits::new(
            &settings.limits,
            !settings.is_production(),
        ))
        .extension(operation_metrics::OperationMetrics)
        .limit_recursive_depth(MAX_RECURSIVE_DEPTH);
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

/// Parses a numeric `ID`.
pub fn parse_id(id: &async_graphql::ID, what: &str) -> Result<i64, crate::error::AppError> {
    id.parse::<i64>().map_err(|_| {
        crate::error::AppError::bad_input(format!("'{}' is not a {what} id", id.as_str()))
    })
}

/// Loads a value through a per-request loader.
pub async fn load_one<L, V>(
    loader: &async_graphql::dataloader::DataLoader<L>,
    key: i64,
) -> async_graphql::Result<Option<V>>
where
    L: async_graphql::dataloader::Loader<i64, Value = V, Error = async_graphql::Error>,
    V: Send + Sync + Clone + 'static,
{
    loader.load_one(key).await
}
