//! Query limits enforced inside async-graphql, and a stable `extensions.code` for every
//! error async-graphql raises itself (its parse and validation errors carry none).
//!
//! One [`QueryLimits`] extension instance runs per request:
//! - after parsing: refuses documents with too many aliases (`TOO_MANY_ALIASES`), tags
//!   parse failures `GRAPHQL_PARSE_FAILED` (a document nested beyond the parser's recursion
//!   bound is `QUERY_TOO_DEEP`), and notes whether the document only introspects;
//! - after validation: tags rule failures `GRAPHQL_VALIDATION_FAILED`, then applies the
//!   depth limit (`QUERY_TOO_DEEP`) to the figure async-graphql computed and the cost
//!   budget of the caller's role (`QUERY_TOO_COMPLEX`) to the document's cost in rows
//!   ([`super::cost`], computed after parsing with the request's variables), then charges
//!   that cost to the caller's rate-limit bucket through the request's [`CostCharge`]
//!   (`RATE_LIMITED`). The schema itself is built without depth/complexity limits so
//!   that this extension can measure an introspection-only document without counting its
//!   `ofType` chains: GraphiQL's introspection query nests `ofType` nine levels deep, and
//!   each level is a single (non-list) value, so it cannot multiply work;
//! - around execution: admits the operation into its caller's class
//!   ([`super::capacity`]), or refuses it with `SERVICE_UNAVAILABLE`.
//!
//! Everything here runs per operation, whichever transport brought it (HTTP or
//! WebSocket), and finds the caller in the request data ([`super::RequestContext`]).

use super::RequestContext;
use super::cost::{CostRules, document_cost};
use super::document_cache::{AcceptedDocument, DocumentCache};
use crate::auth::Role;
use crate::config::Limits;
use crate::state::AppState;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, Selection, SelectionSet,
};
use async_graphql::{
    Name, Positioned, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const TOO_DEEP: &str = "QUERY_TOO_DEEP";
pub const TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
pub const TOO_MANY_ALIASES: &str = "TOO_MANY_ALIASES";
pub const INTROSPECTION_DISABLED: &str = "INTROSPECTION_DISABLED";
/// An operation whose cost the caller's rate-limit bucket cannot pay now (HTTP 429).
pub const RATE_LIMITED: &str = "RATE_LIMITED";
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";

/// Charges an operation's cost to its caller's rate limit: put in the request data by
/// the transport (see `http::rate_limit::RateLimiter::cost_charge`); `Err` says how
/// long to wait. Without one, nothing is charged here.
#[derive(Clone)]
pub struct CostCharge(Arc<ChargeFn>);

/// `charge(cost, refused)`, asynchronous: the bucket may live in a shared store.
type ChargeFn = dyn Fn(usize, bool) -> futures_util::future::BoxFuture<'static, Result<(), Duration>>
    + Send
    + Sync;

impl CostCharge {
    /// `charge(cost, refused)`: `refused` is true for a document refused for its cost,
    /// charged anyway (into debt) so that resending it is refused at the door.
    pub fn new(
        charge: impl Fn(usize, bool) -> futures_util::future::BoxFuture<'static, Result<(), Duration>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self(Arc::new(charge))
    }

    pub async fn charge(&self, cost: usize) -> Result<(), Duration> {
        (self.0)(cost, false).await
    }

    /// Charges a document refused for costing more than the caller's budget.
    pub async fn charge_refused(&self, cost: usize) {
        let _ = (self.0)(cost, true).await;
    }
}

/// The cost budget of one operation for a caller of `role`: anonymous callers get the
/// smallest (one full page of the public list), everyone else the default (one full
/// `checkBatch`, or one 500-row page of anything).
pub fn budget(limits: &Limits, role: Role) -> usize {
    match role {
        Role::Anonymous => limits.max_complexity_anonymous,
        Role::Admin | Role::Partner | Role::Auditor => limits.max_complexity,
    }
}

/// Codes of errors that refuse the whole document before anything runs (HTTP 400).
pub const DOCUMENT_REFUSALS: [&str; 6] = [
    PARSE_FAILED,
    VALIDATION_FAILED,
    TOO_DEEP,
    TOO_COMPLEX,
    TOO_MANY_ALIASES,
    INTROSPECTION_DISABLED,
];

/// The extension factory registered on the schema.
pub struct QueryLimits {
    max_depth: usize,
    limits: Arc<Limits>,
    max_aliases: usize,
    /// Introspection documents may nest `ofType` freely (development only: production
    /// disables introspection altogether).
    introspection_allowed: bool,
    /// Accepted documents by text, shared by every request of this schema.
    documents: Arc<DocumentCache>,
}

impl QueryLimits {
    pub fn new(limits: &Limits, introspection_allowed: bool) -> Self {
        Self {
            max_depth: limits.max_depth,
            limits: Arc::new(limits.clone()),
            max_aliases: limits.max_aliases,
            introspection_allowed,
            documents: Arc::new(DocumentCache::new(
                limits.document_cache_entries,
                super::document_cache::MAX_CACHED_QUERY_BYTES,
            )),
        }
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            max_depth: self.max_depth,
            limits: self.limits.clone(),
            max_aliases: self.max_aliases,
            introspection_allowed: self.introspection_allowed,
            introspection_depth: Mutex::new(None),
            cost: Mutex::new(None),
            documents: self.documents.clone(),
        })
    }
}

struct QueryLimitsExtension {
    max_depth: usize,
    limits: Arc<Limits>,
    max_aliases: usize,
    introspection_allowed: bool,
    /// Set after parsing when the document only introspects: its depth without `ofType`.
    introspection_depth: Mutex<Option<usize>>,
    /// The document's cost with this request's variables, set after parsing.
    cost: Mutex<Option<usize>>,
    documents: Arc<DocumentCache>,
}

/// An error with a code, as async-graphql reports request-level errors.
pub fn coded_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut err = ServerError::new(message, None);
    set_code(&mut err, code);
    err
}

/// Gives every error of a response a code: async-graphql's own request-level errors that
/// no extension hook saw (an unknown operation name, say) are validation failures; field
/// errors without a code come from input coercion (a variable of the wrong type).
pub fn code_errors(response: &mut async_graphql::Response) {
    for err in &mut response.errors {
        let has_code = err
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if has_code {
            continue;
        }
        if err.path.is_empty() {
            set_code(err, VALIDATION_FAILED);
        } else {
            tracing::debug!(message = %err.message, "field error without a code");
            set_code(err, "BAD_USER_INPUT");
        }
    }
}

/// The first error's code, or `OK` (errors are coded by [`code_errors`]).
pub fn outcome(response: &async_graphql::Response) -> String {
    match response.errors.first() {
        None => "OK".into(),
        Some(err) => err
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(|v| match v {
                async_graphql::Value::String(code) => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| VALIDATION_FAILED.to_string()),
    }
}

/// Sets `extensions.code` unless the error already has one.
pub fn set_code(err: &mut ServerError, code: &str) {
    let ext = err.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
}

impl QueryLimitsExtension {
    fn note_introspection_depth(&self, depth: Option<usize>) {
        if let (Some(depth), Ok(mut slot)) = (depth, self.introspection_depth.lock()) {
            *slot = Some(depth);
        }
    }

    fn note_cost(&self, ctx: &ExtensionContext<'_>, doc: &ExecutableDocument, vars: &Variables) {
        let rules = CostRules {
            max_page_size: self.limits.max_page_size,
            max_batch: self.limits.max_check_batch,
        };
        let cost = document_cost(&ctx.schema_env.registry, rules, doc, vars);
        match self.cost.lock() {
            Ok(mut slot) => *slot = Some(cost),
            Err(poisoned) => *poisoned.into_inner() = Some(cost),
        }
    }

    /// The cost noted after parsing; a document never measured (impossible: parsing
    /// precedes validation) counts as unaffordable rather than free.
    fn noted_cost(&self) -> usize {
        let slot = match self.cost.lock() {
            Ok(slot) => *slot,
            Err(poisoned) => *poisoned.into_inner(),
        };
        slot.unwrap_or(usize::MAX)
    }
}

fn caller_role(ctx: &ExtensionContext<'_>) -> Role {
    // No request context: built without a transport (the SDL, unit tests): the default.
    ctx.data_opt::<RequestContext>()
        .map_or(Role::Admin, |r| r.identity().role)
}

/// A refusal whose `extensions.details` carry figures.
fn detailed_error(message: String, code: &str, details: &[(&str, u64)]) -> ServerError {
    let mut err = coded_error(message, code);
    let mut map = async_graphql::indexmap::IndexMap::new();
    for (key, value) in details {
        map.insert(Name::new(*key), async_graphql::Value::from(*value));
    }
    if let Some(ext) = err.extensions.as_mut() {
        ext.set("details", async_graphql::Value::Object(map));
    }
    err
}

#[async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(accepted) = self.documents.get(query) {
            self.note_introspection_depth(accepted.introspection_depth);
            self.note_cost(ctx, &accepted.document, variables);
            return Ok(accepted.document.clone());
        }
        let doc = match next.run(ctx, query, variables).await {
            Ok(doc) => doc,
            Err(mut err) => {
                // The parser's own nesting bound (limit_recursive_depth) reports this way.
                let code = if err.message.contains("recursion depth") {
                    TOO_DEEP
                } else {
                    PARSE_FAILED
                };
                set_code(&mut err, code);
                return Err(err);
            }
        };
        let aliases = alias_count(&doc);
        if aliases > self.max_aliases {
            return Err(coded_error(
                format!(
                    "the query uses {aliases} aliases; at most {} are allowed",
                    self.max_aliases
                ),
                TOO_MANY_ALIASES,
            ));
        }
        if !self.introspection_allowed && selects_schema_introspection(&doc) {
            // async-graphql would answer null; say why instead.
            return Err(coded_error(
                "introspection is disabled in production; download the schema from /schema.graphql",
                INTROSPECTION_DISABLED,
            ));
        }
        let introspection_depth = (self.introspection_allowed && is_introspection_only(&doc))
            .then(|| depth_without_of_type(&doc));
        self.note_introspection_depth(introspection_depth);
        self.note_cost(ctx, &doc, variables);
        self.documents.insert(
            query,
            AcceptedDocument {
                document: doc.clone(),
                introspection_depth,
            },
        );
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|mut errors| {
            for err in &mut errors {
                set_code(err, VALIDATION_FAILED);
            }
            errors
        })?;
        let introspection_depth = self.introspection_depth.lock().ok().and_then(|d| *d);
        let depth = introspection_depth.unwrap_or(result.depth);
        if depth > self.max_depth {
            return Err(vec![coded_error(
                format!(
                    "the query is nested {depth} levels deep; at most {} are allowed",
                    self.max_depth
                ),
                TOO_DEEP,
            )]);
        }
        let role = caller_role(ctx);
        let cost = self.noted_cost();
        let budget = budget(&self.limits, role);
        if cost > budget {
            if let Some(charge) = ctx.data_opt::<CostCharge>() {
                charge.charge_refused(cost).await;
            }
            return Err(vec![detailed_error(
                format!(
                    "the query costs {cost} (rows and fields it would read); at most {budget} is allowed for {} callers",
                    role.as_str()
                ),
                TOO_COMPLEX,
                &[
                    ("cost", u64::try_from(cost).unwrap_or(u64::MAX)),
                    ("max", u64::try_from(budget).unwrap_or(u64::MAX)),
                ],
            )]);
        }
        if let Some(charge) = ctx.data_opt::<CostCharge>()
            && let Err(wait) = charge.charge(cost).await
        {
            let seconds = u64::try_from(wait.as_millis().div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1);
            return Err(vec![detailed_error(
                format!(
                    "too many requests: this query costs {cost}, more than the rate limit has left; retry in {seconds} s"
                ),
                RATE_LIMITED,
                &[
                    ("cost", u64::try_from(cost).unwrap_or(u64::MAX)),
                    ("retryAfterSeconds", seconds),
                ],
            )]);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let Some(state) = ctx.data_opt::<Arc<AppState>>() else {
            return next.run(ctx, operation_name).await;
        };
        match state.capacity.admit(caller_role(ctx)).await {
            Ok(_permit) => next.run(ctx, operation_name).await,
            Err(busy) => {
                Response::from_errors(vec![coded_error(busy.message(), SERVICE_UNAVAILABLE)])
            }
        }
    }
}

type Fragments = HashMap<Name, Positioned<FragmentDefinition>>;

/// The number of aliased fields the largest operation would resolve, with fragment
/// spreads expanded (a fragment of 10 aliases spread 10 times is 100). Saturates rather
/// than overflows on fragments that double at every level.
pub fn alias_count(doc: &ExecutableDocument) -> usize {
    largest_operation(doc, aliases_in)
}

/// A selection-set measure (fragments memoised by name, the stack guarding cycles).
type Measure<'a> =
    fn(&'a SelectionSet, &'a Fragments, &mut HashMap<&'a str, usize>, &mut Vec<&'a str>) -> usize;

/// `measure` of the document's largest operation (0 without any).
fn largest_operation<'a>(doc: &'a ExecutableDocument, measure: Measure<'a>) -> usize {
    let mut memo = HashMap::new();
    doc.operations
        .iter()
        .map(|(_, op)| {
            let mut stack = Vec::new();
            measure(
                &op.node.selection_set.node,
                &doc.fragments,
                &mut memo,
                &mut stack,
            )
        })
        .max()
        .unwrap_or(0)
}

fn aliases_in<'a>(
    set: &'a SelectionSet,
    fragments: &'a Fragments,
    memo: &mut HashMap<&'a str, usize>,
    stack: &mut Vec<&'a str>,
) -> usize {
    let mut total = 0usize;
    for item in &set.items {
        let n = match &item.node {
            Selection::Field(field) => {
                let own = usize::from(field.node.alias.is_some());
                own.saturating_add(aliases_in(
                    &field.node.selection_set.node,
                    fragments,
                    memo,
                    stack,
                ))
            }
            Selection::InlineFragment(inline) => {
                aliases_in(&inline.node.selection_set.node, fragments, memo, stack)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                fragment_measure(name, fragments, memo, stack, aliases_in)
            }
        };
        total = total.saturating_add(n);
    }
    total
}

/// Memoised measure of a named fragment; a fragment already being measured (a cycle,
/// which validation refuses anyway) or unknown counts 0.
fn fragment_measure<'a>(
    name: &'a str,
    fragments: &'a Fragments,
    memo: &mut HashMap<&'a str, usize>,
    stack: &mut Vec<&'a str>,
    measure: Measure<'a>,
) -> usize {
    if let Some(&n) = memo.get(name) {
        return n;
    }
    if stack.contains(&name) {
        return 0;
    }
    let Some((key, fragment)) = fragments.get_key_value(name) else {
        return 0;
    };
    stack.push(key.as_str());
    let n = measure(&fragment.node.selection_set.node, fragments, memo, stack);
    stack.pop();
    memo.insert(key.as_str(), n);
    n
}

/// Every operation selects only introspection fields (`__schema`, `__type`, `__typename`)
/// at its top level, through fragments too.
pub fn is_introspection_only(doc: &ExecutableDocument) -> bool {
    let mut stack = Vec::new();
    match &doc.operations {
        DocumentOperations::Single(op) => {
            top_level_introspects(&op.node.selection_set.node, &doc.fragments, &mut stack)
        }
        DocumentOperations::Multiple(ops) => ops.values().all(|op| {
            top_level_introspects(&op.node.selection_set.node, &doc.fragments, &mut stack)
        }),
    }
}

fn top_level_introspects<'a>(
    set: &'a SelectionSet,
    fragments: &'a Fragments,
    stack: &mut Vec<&'a str>,
) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => field.node.name.node.starts_with("__"),
        Selection::InlineFragment(inline) => {
            top_level_introspects(&inline.node.selection_set.node, fragments, stack)
        }
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            if stack.contains(&name) {
                return true;
            }
            let Some((key, fragment)) = fragments.get_key_value(name) else {
                return false;
            };
            stack.push(key.as_str());
            let ok = top_level_introspects(&fragment.node.selection_set.node, fragments, stack);
            stack.pop();
            ok
        }
    })
}

/// Some operation selects `__schema` or `__type` (they exist on the query root only).
pub fn selects_schema_introspection(doc: &ExecutableDocument) -> bool {
    let mut stack = Vec::new();
    doc.operations.iter().any(|(_, op)| {
        top_level_any(
            &op.node.selection_set.node,
            &doc.fragments,
            &mut stack,
            &|name| name == "__schema" || name == "__type",
        )
    })
}

fn top_level_any<'a>(
    set: &'a SelectionSet,
    fragments: &'a Fragments,
    stack: &mut Vec<&'a str>,
    wanted: &dyn Fn(&str) -> bool,
) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => wanted(field.node.name.node.as_str()),
        Selection::InlineFragment(inline) => {
            top_level_any(&inline.node.selection_set.node, fragments, stack, wanted)
        }
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            if stack.contains(&name) {
                return false;
            }
            let Some((key, fragment)) = fragments.get_key_value(name) else {
                return false;
            };
            stack.push(key.as_str());
            let found = top_level_any(&fragment.node.selection_set.node, fragments, stack, wanted);
            stack.pop();
            found
        }
    })
}

/// Field depth of the deepest operation, fragments expanded, not counting `ofType` fields.
pub fn depth_without_of_type(doc: &ExecutableDocument) -> usize {
    largest_operation(doc, depth_in)
}

fn depth_in<'a>(
    set: &'a SelectionSet,
    fragments: &'a Fragments,
    memo: &mut HashMap<&'a str, usize>,
    stack: &mut Vec<&'a str>,
) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(field) => {
                let own = usize::from(field.node.name.node != "ofType");
                own + depth_in(&field.node.selection_set.node, fragments, memo, stack)
            }
            Selection::InlineFragment(inline) => {
                depth_in(&inline.node.selection_set.node, fragments, memo, stack)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                fragment_measure(name, fragments, memo, stack, depth_in)
            }
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn doc(q: &str) -> ExecutableDocument {
        parse_query(q).unwrap()
    }

    #[test]
    fn aliases_are_counted_through_fragments() {
        assert_eq!(alias_count(&doc("{ a b c }")), 0);
        assert_eq!(alias_count(&doc("{ x: a y: b { z: c } }")), 3);
        // A fragment with two aliases spread three times is six.
        let q = "query { ...F ...F o: obj { ...F } } fragment F on Q { p: a q: b }";
        assert_eq!(alias_count(&doc(q)), 7);
        // The largest operation counts, not the sum.
        assert_eq!(
            alias_count(&doc("query A { x: a } query B { x: a y: b }")),
            2
        );
    }

    #[test]
    fn doubling_fragments_saturate_instead_of_overflowing() {
        let mut q = String::from("query { ...F0 } fragment F0 on Q { a: x }");
        for i in 1..80 {
            q.push_str(&format!(
                " fragment F{i} on Q {{ ...F{} ...F{} }}",
                i - 1,
                i - 1
            ));
        }
        q = q.replacen("...F0 }", "...F79 }", 1);
        assert!(alias_count(&doc(&q)) > 1_000_000);
    }

    #[test]
    fn fragment_cycles_terminate() {
        let q = "query { ...A } fragment A on Q { x: a ...B } fragment B on Q { y: b ...A }";
        assert_eq!(alias_count(&doc(q)), 2);
        assert!(!is_introspection_only(&doc(q)));
        assert_eq!(depth_without_of_type(&doc(q)), 1);
    }

    #[test]
    fn introspection_only_documents_are_recognised() {
        assert!(is_introspection_only(&doc(
            "{ __schema { types { name } } }"
        )));
        assert!(is_introspection_only(&doc(
            "query { ...S } fragment S on Query { __type(name: \"X\") { name } __typename }"
        )));
        assert!(!is_introspection_only(&doc(
            "{ __schema { types { name } } operator(uscc: \"x\") { id } }"
        )));
    }

    #[test]
    fn schema_introspection_is_found_through_fragments() {
        assert!(selects_schema_introspection(&doc(
            "{ __schema { types { name } } }"
        )));
        assert!(selects_schema_introspection(&doc(
            "query { ... on Query { ...T } } fragment T on Query { __type(name: \"X\") { name } }"
        )));
        assert!(!selects_schema_introspection(&doc("{ __typename }")));
        assert!(!selects_schema_introspection(&doc(
            "{ operator(uscc: \"x\") { __typename } }"
        )));
    }

    #[test]
    fn of_type_chains_do_not_count_towards_introspection_depth() {
        let d = doc(
            "{ __schema { types { fields { type { kind ofType { kind ofType { kind ofType { name } } } } } } } }",
        );
        assert_eq!(depth_without_of_type(&d), 5);
    }
}
