//! Counts every GraphQL operation by name and outcome (`crate::metrics`): the name is the
//! one async-graphql resolved for execution (so a named operation counts under its name
//! even when the request does not repeat it in `operationName`); a request refused before
//! execution (parse, validation, limits) counts with no name, under its error's code.

use super::limits::{code_errors, outcome};
use async_graphql::Response;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest,
};
use std::sync::{Arc, Mutex};

pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetricsExtension::default())
    }
}

#[derive(Default)]
struct OperationMetricsExtension {
    /// The executed operation's name: `Some(None)` for an anonymous one.
    executed: Mutex<Option<Option<String>>>,
}

#[async_trait::async_trait]
impl Extension for OperationMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        // The HTTP layer codes the same way; coding here lets the outcome be the code
        // the caller will see.
        code_errors(&mut response);
        let executed = self.executed.lock().ok().and_then(|mut e| e.take());
        let name = match &executed {
            Some(Some(name)) => Some(name.as_str()),
            Some(None) => None,
            None => Some("-"),
        };
        crate::metrics::graphql_operation(name, &outcome(&response));
        response
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Ok(mut executed) = self.executed.lock() {
            *executed = Some(operation_name.map(str::to_string));
        }
        next.run(ctx, operation_name).await
    }
}
