//! What a GraphQL document costs, counted in rows rather than fields.
//!
//! async-graphql's own complexity counts one point per field, so thirty aliases of
//! `publicListings(first: 500)` looked like about a hundred points while they read
//! 15,000 rows. Here a field costs one point plus its selection, and a field that
//! returns many items multiplies its selection by how many:
//!
//! - a field with a `first` argument (every paginated list): by `first`, or by the
//!   default page size (50, as `connection::page_size` uses) when it is absent;
//! - a field with a `usccs` argument (`checkBatch`): by the number of codes, from the
//!   literal list or from the variable's value.
//!
//! Each item costs one point itself on top of its selection (a row read, a check
//! answered and recorded), so `checkBatch(usccs: [1000 codes]) { decision }` is
//! 1 + 1000 × (1 + 1) = 2001 and `publicListings(first: 500) { edges { node { id } } }`
//! is 1 + 500 × (1 + 3) = 2001. Multipliers are clamped to the largest value the
//! resolver accepts (`limits.max_page_size`, `limits.max_check_batch`): a larger one is
//! refused by the resolver with its own `BAD_USER_INPUT`, which says more than a cost.
//! Other lists (a listing's periods, an operator's listings) are small and bounded by
//! the data, and count once. Arithmetic saturates: fragments that double at every level
//! cost `usize::MAX`, never overflow.
//!
//! The figure is computed from the parsed document and the request's variables, walking
//! the schema's registry so that a default page size applies to fields that take `first`
//! even when the caller leaves it out. Values the walk cannot place (unknown fields, a
//! variable of the wrong type) count as their defaults: validation refuses them anyway.

use super::input_guard::variable_defaults;
use async_graphql::parser::types::{
    ExecutableDocument, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::registry::{MetaTypeName, Registry};
use async_graphql::{Name, Positioned, Variables};
use async_graphql_value::{ConstValue, Value};
use std::collections::HashMap;

/// The argument that sets a list's page size.
pub const PAGE_ARGUMENT: &str = "first";
/// Arguments whose list length is the number of items answered.
pub const BATCH_ARGUMENTS: [&str; 1] = ["usccs"];
/// Fields that read more than one row each time they resolve, and how many: a status
/// proof reads its checkpoint, its bucket's codes, its path's nodes and the code's
/// entries. Every other field costs one point.
pub const FIELD_ROWS: [(&str, &str, usize); 1] = [("CheckResult", "statusProof", 4)];
/// The page size when `first` is absent (as `connection::page_size`).
pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// The largest multipliers the resolvers accept.
#[derive(Clone, Copy, Debug)]
pub struct CostRules {
    pub max_page_size: u64,
    pub max_batch: usize,
}

/// The cost of the document's costliest operation with `variables` (0 without any).
pub fn document_cost(
    registry: &Registry,
    rules: CostRules,
    doc: &ExecutableDocument,
    variables: &Variables,
) -> usize {
    let defaults = variable_defaults(doc);
    let mut walk = Walk {
        registry,
        rules,
        variables,
        defaults,
        fragments: &doc.fragments,
        memo: HashMap::new(),
        stack: Vec::new(),
    };
    doc.operations
        .iter()
        .map(|(_, op)| {
            let root = match op.node.ty {
                OperationType::Query => Some(registry.query_type.as_str()),
                OperationType::Mutation => registry.mutation_type.as_deref(),
                OperationType::Subscription => registry.subscription_type.as_deref(),
            };
            root.map_or(0, |root| {
                walk.selection_set(root, &op.node.selection_set.node)
            })
        })
        .max()
        .unwrap_or(0)
}

struct Walk<'a> {
    registry: &'a Registry,
    rules: CostRules,
    variables: &'a Variables,
    defaults: HashMap<&'a str, &'a ConstValue>,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    /// Fragments already measured (their cost does not depend on where they are spread).
    memo: HashMap<&'a str, usize>,
    /// Fragments being measured: a cycle (which validation refuses) counts 0.
    stack: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn selection_set(&mut self, parent: &str, set: &'a SelectionSet) -> usize {
        let mut total = 0usize;
        for item in &set.items {
            let cost = match &item.node {
                Selection::Field(field) => self.field(parent, &field.node),
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(parent, |c| c.node.on.node.as_str());
                    self.selection_set(on, &inline.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str())
                }
            };
            total = total.saturating_add(cost);
        }
        total
    }

    fn field(&mut self, parent: &str, field: &'a async_graphql::parser::types::Field) -> usize {
        let meta = self
            .registry
            .types
            .get(parent)
            .and_then(|t| t.field_by_name(field.name.node.as_str()));
        let Some(meta) = meta else {
            // Unknown here (validation refuses it) or `__typename`: one point.
            return 1;
        };
        let returns = MetaTypeName::concrete_typename(&meta.ty);
        let children = self.selection_set(returns, &field.selection_set.node);
        let own = FIELD_ROWS
            .iter()
            .find(|(on, name, _)| *on == parent && *name == field.name.node.as_str())
            .map_or(1, |(_, _, rows)| *rows);
        match self.multiplier(&meta.args, field) {
            None => children.saturating_add(own),
            Some(n) => n
                .saturating_mul(children.saturating_add(1))
                .saturating_add(1),
        }
    }

    /// How many items the field answers, when it answers a page or a batch.
    fn multiplier<A>(
        &self,
        declared: &async_graphql::indexmap::IndexMap<String, A>,
        field: &async_graphql::parser::types::Field,
    ) -> Option<usize> {
        let given = |name: &str| {
            field
                .arguments
                .iter()
                .find(|(arg, _)| arg.node == name)
                .map(|(_, v)| &v.node)
        };
        if declared.contains_key(PAGE_ARGUMENT) {
            let first = given(PAGE_ARGUMENT)
                .and_then(|v| self.int(v))
                .map_or(DEFAULT_PAGE_SIZE, |n| n.clamp(1, self.rules.max_page_size));
            return Some(usize::try_from(first).unwrap_or(usize::MAX));
        }
        for name in BATCH_ARGUMENTS {
            if declared.contains_key(name) {
                let n = given(name).map_or(0, |v| self.list_len(v));
                return Some(n.clamp(1, self.rules.max_batch.max(1)));
            }
        }
        None
    }

    fn resolve<'v>(&'v self, name: &Name) -> Option<&'v ConstValue> {
        self.variables
            .get(name)
            .or_else(|| self.defaults.get(name.as_str()).copied())
    }

    /// An integer argument (negative values count as 0, then clamp to 1).
    fn int(&self, value: &Value) -> Option<u64> {
        let number = match value {
            Value::Variable(name) => match self.resolve(name)? {
                ConstValue::Number(n) => n.clone(),
                _ => return None,
            },
            Value::Number(n) => n.clone(),
            _ => return None,
        };
        number
            .as_u64()
            .or_else(|| number.as_i64().map(|n| u64::try_from(n).unwrap_or(0)))
    }

    /// The length of a list argument; a single value is coerced to a list of one.
    fn list_len(&self, value: &Value) -> usize {
        match value {
            Value::Variable(name) => match self.resolve(name) {
                Some(ConstValue::List(items)) => items.len(),
                Some(ConstValue::Null) | None => 0,
                Some(_) => 1,
            },
            Value::List(items) => items.len(),
            Value::Null => 0,
            _ => 1,
        }
    }

    fn fragment(&mut self, name: &'a str) -> usize {
        if let Some(&n) = self.memo.get(name) {
            return n;
        }
        if self.stack.contains(&name) {
            return 0;
        }
        let fragments = self.fragments;
        let Some((key, fragment)) = fragments.get_key_value(name) else {
            return 0;
        };
        self.stack.push(key.as_str());
        let on = fragment.node.type_condition.node.on.node.as_str();
        let n = self.selection_set(on, &fragment.node.selection_set.node);
        self.stack.pop();
        self.memo.insert(key.as_str(), n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextParseQuery,
    };
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    const RULES: CostRules = CostRules {
        max_page_size: 500,
        max_batch: 1000,
    };

    /// Records the cost of each document it sees (the registry is only reachable from
    /// inside the schema).
    struct Probe(Arc<Mutex<usize>>);
    struct ProbeExtension(Arc<Mutex<usize>>);

    impl ExtensionFactory for Probe {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(ProbeExtension(self.0.clone()))
        }
    }

    #[async_trait::async_trait]
    impl Extension for ProbeExtension {
        async fn parse_query(
            &self,
            ctx: &ExtensionContext<'_>,
            query: &str,
            variables: &Variables,
            next: NextParseQuery<'_>,
        ) -> async_graphql::ServerResult<ExecutableDocument> {
            let doc = next.run(ctx, query, variables).await?;
            *self.0.lock().unwrap() =
                document_cost(&ctx.schema_env.registry, RULES, &doc, variables);
            // Stop here: only the figure is wanted.
            Err(async_graphql::ServerError::new("measured", None))
        }
    }

    async fn cost(query: &str, variables: serde_json::Value) -> usize {
        let seen = Arc::new(Mutex::new(0));
        let schema = crate::graphql::schema_builder()
            .extension(Probe(seen.clone()))
            .finish();
        let request = async_graphql::Request::new(query).variables(Variables::from_json(variables));
        let response = schema.execute(request).await;
        assert_eq!(
            response.errors[0].message, "measured",
            "{:?}",
            response.errors
        );
        *seen.lock().unwrap()
    }

    fn codes(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("C{i}")).collect()
    }

    #[tokio::test]
    async fn plain_fields_cost_one_each() {
        assert_eq!(cost("{ __typename }", json!({})).await, 1);
        assert_eq!(
            cost(r#"{ operator(uscc: "x") { id name } }"#, json!({})).await,
            3
        );
    }

    #[tokio::test]
    async fn pages_multiply_their_selection_by_first() {
        let q = "{ publicListings(first: 500) { edges { node { id } } } }";
        assert_eq!(cost(q, json!({})).await, 1 + 500 * (1 + 3));
        // Absent: the default page of 50.
        let q = "{ publicListings { edges { node { id } } } }";
        assert_eq!(cost(q, json!({})).await, 1 + 50 * (1 + 3));
        // From a variable, and from a variable's default.
        let q = "query($n: Int) { publicListings(first: $n) { edges { node { id } } } }";
        assert_eq!(cost(q, json!({"n": 10})).await, 1 + 10 * 4);
        let q = "query($n: Int = 20) { publicListings(first: $n) { edges { node { id } } } }";
        assert_eq!(cost(q, json!({})).await, 1 + 20 * 4);
        // Beyond the page limit the resolver refuses; the cost counts the limit.
        let q = "{ publicListings(first: 100000) { edges { node { id } } } }";
        assert_eq!(cost(q, json!({})).await, 1 + 500 * 4);
    }

    #[tokio::test]
    async fn batches_multiply_by_their_codes() {
        let literal = format!(
            "{{ checkBatch(usccs: {}, domain: PROCUREMENT) {{ decision }} }}",
            serde_json::to_string(&codes(1000)).unwrap()
        );
        assert_eq!(cost(&literal, json!({})).await, 1 + 1000 * 2);
        let q = "query($u: [String!]!) { checkBatch(usccs: $u, domain: PROCUREMENT) { decision } }";
        assert_eq!(cost(q, json!({"u": codes(7)})).await, 1 + 7 * 2);
        // A single string is coerced to a list of one.
        let q = r#"{ checkBatch(usccs: "x", domain: PROCUREMENT) { decision } }"#;
        assert_eq!(cost(q, json!({})).await, 1 + 2);
    }

    #[tokio::test]
    async fn a_status_proof_costs_the_rows_it_reads() {
        let q = "query($u: [String!]!) { checkBatch(usccs: $u, domain: PROCUREMENT) { decision statusProof } }";
        assert_eq!(
            cost(q, json!({"u": codes(1000)})).await,
            1 + 1000 * (1 + 1 + 4)
        );
    }

    #[tokio::test]
    async fn aliases_and_fragments_add_up() {
        let one = "publicListings(first: 500) { edges { node { id } } }";
        let thirty: String = (0..30).map(|i| format!("a{i}: {one} ")).collect();
        assert_eq!(cost(&format!("{{ {thirty} }}"), json!({})).await, 30 * 2001);
        let q = format!("{{ ...F ...F }} fragment F on QueryRoot {{ {one} }}");
        assert_eq!(cost(&q, json!({})).await, 2 * 2001);
        // Nested pages multiply.
        let q = "{ listings(first: 10) { edges { node { id } } } }";
        assert_eq!(cost(q, json!({})).await, 1 + 10 * 4);
    }

    #[tokio::test]
    async fn fragments_spread_many_times_count_every_time() {
        let mut q = String::from(
            "query { ...F12 } fragment F0 on QueryRoot { publicListings(first: 500) { edges { cursor } } }",
        );
        for i in 1..=12 {
            q.push_str(&format!(
                " fragment F{i} on QueryRoot {{ ...F{} ...F{} }}",
                i - 1,
                i - 1
            ));
        }
        assert_eq!(cost(&q, json!({})).await, 4096 * (1 + 500 * 3));
    }
}
