//! One operation of a socket, run in a task of its own once the connection authorised it:
//! a subscription streams its results; a query or mutation runs exactly as over HTTP
//! (`graphql::execute`: the request timeout, and the Idempotency-Key given in the
//! `subscribe` payload's `extensions.idempotencyKey`).

use super::protocol::{Protocol, error_object};
use crate::graphql::limits::CostCharge;
use crate::graphql::{RegistrySchema, RequestContext};
use crate::http::graphql::{Executed, execute};
use crate::service::idempotency::Claim;
use crate::state::AppState;
use actix_ws::Session;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, Request};
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Where the idempotency key goes in a `subscribe` payload.
pub const IDEMPOTENCY_EXTENSION: &str = "idempotencyKey";

pub struct Operation {
    pub id: String,
    /// Tells this run apart from a later one that reuses its id.
    pub seq: u64,
    pub protocol: Protocol,
    pub session: Session,
    pub state: Arc<AppState>,
    pub schema: RegistrySchema,
    pub kind: Option<OperationType>,
    pub context: RequestContext,
    pub claim: Option<Claim>,
    /// Charges the operation's cost to the caller's rate bucket once it is measured.
    pub charge: CostCharge,
    /// Told when the operation has finished, so the connection frees its place.
    pub finished: UnboundedSender<(String, u64)>,
}

impl Operation {
    pub async fn run(mut self, request: Request) {
        let id = self.id.clone();
        let seq = self.seq;
        let finished = self.finished.clone();
        // A send fails only once the socket is closed: nothing is left to do then.
        let _ = match self.kind {
            Some(OperationType::Subscription) => self.stream(request).await,
            _ => self.single(request).await,
        };
        let _ = finished.send((id, seq));
    }

    async fn stream(&mut self, request: Request) -> Result<(), actix_ws::Closed> {
        let request = request.data(self.context.clone()).data(self.charge.clone());
        // Counted from here until the stream ends or the task is aborted (`stop`, the
        // socket closing): the guard drops either way.
        let _counted = crate::metrics::Subscription::started();
        let mut results = self.schema.execute_stream(request);
        while let Some(response) = results.next().await {
            let mut batch = async_graphql::BatchResponse::Single(response);
            crate::http::graphql::code_every_error(&mut batch);
            let payload = serde_json::to_value(&batch).unwrap_or(Value::Null);
            self.session
                .text(self.protocol.next(&self.id, payload))
                .await?;
        }
        self.session.text(self.protocol.complete(&self.id)).await
    }

    async fn single(&mut self, request: Request) -> Result<(), actix_ws::Closed> {
        let executed = execute(
            &self.state,
            &self.schema,
            BatchRequest::Single(request),
            self.context.clone(),
            self.claim.as_ref(),
            Some(self.charge.clone()),
        )
        .await;
        match executed {
            Executed::Answer { body, replayed, .. } => {
                // An answer without `data` is a refusal made before GraphQL ran (a
                // timeout, a lost answer kept for the key): it is the operation's error.
                if body.get("data").is_none() {
                    let errors = errors_of(&body);
                    return self
                        .session
                        .text(self.protocol.error(&self.id, errors))
                        .await;
                }
                let mut body = body;
                if replayed && let Some(object) = body.as_object_mut() {
                    // Over HTTP the header `Idempotent-Replayed: true` says it.
                    let extensions = object
                        .entry("extensions")
                        .or_insert_with(|| Value::Object(Default::default()));
                    if let Some(extensions) = extensions.as_object_mut() {
                        extensions.insert("idempotentReplayed".into(), Value::Bool(true));
                    }
                }
                self.session
                    .text(self.protocol.next(&self.id, body))
                    .await?;
                self.session.text(self.protocol.complete(&self.id)).await
            }
            Executed::Refused { code, message, .. } => {
                let errors = vec![error_object(code, &message, None)];
                self.session
                    .text(self.protocol.error(&self.id, errors))
                    .await
            }
        }
    }
}

/// The error objects of an answer (one generic error when it has none).
fn errors_of(body: &Value) -> Vec<Value> {
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => errors.clone(),
        _ => vec![error_object("INTERNAL", "the operation failed", None)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_errors_of_a_refusal_are_passed_on() {
        let body = json!({"errors": [{"message": "m", "extensions": {"code": "TIMEOUT"}}]});
        assert_eq!(errors_of(&body)[0]["extensions"]["code"], "TIMEOUT");
        assert_eq!(errors_of(&json!({}))[0]["extensions"]["code"], "INTERNAL");
    }
}
