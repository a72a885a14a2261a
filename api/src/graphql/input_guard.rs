//! Every input of every operation checked against `domain::input` before anything runs.
//!
//! One extension, so that no resolver can forget it: after parsing, it walks each
//! operation's (and fragment's) fields, looks each argument up in the schema, and
//! follows the argument's type through input objects and lists — into variables too,
//! and into variables' defaults — to every string. Each string must pass
//! [`InputRules::text`]; a `DateTime` must also lie in the configured years
//! ([`InputRules::instant`]) and a `NaiveDate` likewise ([`InputRules::date`]). A
//! refusal is a request error `BAD_USER_INPUT` naming the field, with
//! `extensions.details {field, reason}`, and nothing executes: no SQL runs, and no
//! shared lookup statement can be failed for others by one caller's bad value.
//!
//! The walk runs right after parsing and its refusal is reported right after validation
//! (before execution): a document that is invalid as well is refused as invalid
//! (`GRAPHQL_VALIDATION_FAILED`). Values the walk cannot place (an unknown field or
//! argument, a value of the wrong shape) are left alone for validation to refuse.

use crate::domain::input::{InputRules, Refused, TextKind};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use async_graphql::{Name, Pos, ServerError, ServerResult, ValidationResult, Variables};
use async_graphql_value::{ConstValue, Value};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// Argument and input-field names that hold free text (prose pasted from documents),
/// where `\t`, `\n` and `\r` are allowed. Every other string is a single line. A name
/// missing here only makes its field stricter, never looser. `receipt` is a C2SP tlog
/// proof (issue 17): lines of base64 and a signed note.
pub const PROSE_FIELDS: [&str; 9] = [
    "reason",
    "listingReason",
    "legalBasis",
    "commentary",
    "note",
    "context",
    "article",
    "checkDigitOverrideReason",
    "receipt",
];

/// Arguments bounded by caps of their own instead of `limits.max_string_chars`, by root
/// field and argument (a name alone would exempt any later argument that took it). Both
/// are texts the registry produced and asks callers to paste back whole, so a length
/// meant for typed input refuses genuine ones: a status proof embeds every logged entry
/// of its code (one listing with a long reason, or a few listings, is past 10,000
/// characters), and a receipt its logged payload and checkpoint. Each gets the cap its
/// parser enforces (bytes, so the characters are bounded too), and the request body cap
/// (`limits.max_body_bytes`) bounds them in turn. Control characters are still refused.
pub const OWN_CAPS: [(&str, &str, usize); 2] = [
    (
        "verifyReceipt",
        "receipt",
        crate::tlog::proof::MAX_PROOF_TEXT,
    ),
    (
        "verifyReceipt",
        "statusProof",
        crate::tlog::status_map::MAX_PROOF_TEXT,
    ),
];

/// The extension factory registered on the schema.
pub struct InputGuard {
    rules: InputRules,
}

impl InputGuard {
    pub fn new(limits: &crate::config::Limits) -> Self {
        Self {
            rules: limits.input_rules(),
        }
    }
}

impl ExtensionFactory for InputGuard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(InputGuardExtension {
            rules: self.rules,
            refusal: Mutex::new(None),
        })
    }
}

/// How many files a request carries (the GraphQL multipart request spec), put in the
/// request's data by the HTTP handler. A request without it (WebSocket, JSON) carries
/// none.
#[derive(Clone, Copy, Debug)]
pub struct UploadedFiles(pub usize);

/// The marker async-graphql puts where a multipart request maps a file,
/// `#__graphql_file__:<index>`.
pub const UPLOAD_MARKER: &str = "#__graphql_file__:";

/// One per request.
struct InputGuardExtension {
    rules: InputRules,
    /// Found after parsing (where the document and variables are at hand), reported
    /// after validation, so that an invalid document is still refused as invalid.
    refusal: Mutex<Option<ServerError>>,
}

#[async_trait::async_trait]
impl Extension for InputGuardExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let files = ctx.data_opt::<UploadedFiles>().map_or(0, |f| f.0);
        if let Err(refusal) = check_document(
            &ctx.schema_env.registry,
            &self.rules,
            &doc,
            variables,
            files,
        ) {
            match self.refusal.lock() {
                Ok(mut slot) => *slot = Some(refusal),
                // Never let a bad value through: refuse now instead.
                Err(_) => return Err(refusal),
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        let refusal = match self.refusal.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        match refusal {
            Some(refusal) => Err(vec![refusal]),
            None => Ok(result),
        }
    }
}

/// Checks every argument of `doc` (with `variables`) against `rules`.
/// The default of each variable a request may leave out: from the first operation that
/// declares it (a request executes one operation, and fragments are shared). The cost
/// walk (`graphql::cost`) reads variables the same way.
pub(crate) fn variable_defaults(doc: &ExecutableDocument) -> HashMap<&str, &ConstValue> {
    let mut defaults: HashMap<&str, &ConstValue> = HashMap::new();
    for (_, op) in doc.operations.iter() {
        for def in &op.node.variable_definitions {
            if let Some(default) = &def.node.default_value {
                defaults
                    .entry(def.node.name.node.as_str())
                    .or_insert(&default.node);
            }
        }
    }
    defaults
}

pub fn check_document(
    registry: &Registry,
    rules: &InputRules,
    doc: &ExecutableDocument,
    variables: &Variables,
    files: usize,
) -> Result<(), ServerError> {
    // A variable the request leaves out takes its default from the operation (the
    // first that declares it: a request executes one operation, and fragments are
    // shared).
    let defaults = variable_defaults(doc);
    let walk = Walk {
        registry,
        rules,
        variables,
        defaults,
        files,
    };
    for (_, op) in doc.operations.iter() {
        let root = match op.node.ty {
            OperationType::Query => Some(registry.query_type.as_str()),
            OperationType::Mutation => registry.mutation_type.as_deref(),
            OperationType::Subscription => registry.subscription_type.as_deref(),
        };
        if let Some(root) = root {
            walk.selection_set(root, &op.node.selection_set.node)?;
        }
    }
    // Fragments once each, by their own type condition (spreads are not followed).
    for (_, fragment) in doc.fragments.iter() {
        let on = fragment.node.type_condition.node.on.node.as_str();
        walk.selection_set(on, &fragment.node.selection_set.node)?;
    }
    Ok(())
}

/// An input value as the walk sees it: a literal of the document or a variable's value.
enum View<'a, V> {
    Variable(&'a Name),
    Text(&'a str),
    List(&'a [V]),
    Object(&'a IndexMap<Name, V>),
    Other,
}

trait Input: Sized {
    fn view(&self) -> View<'_, Self>;
}

impl Input for Value {
    fn view(&self) -> View<'_, Self> {
        match self {
            Value::Variable(name) => View::Variable(name),
            Value::String(s) => View::Text(s),
            Value::List(items) => View::List(items),
            Value::Object(fields) => View::Object(fields),
            _ => View::Other,
        }
    }
}

impl Input for ConstValue {
    fn view(&self) -> View<'_, Self> {
        match self {
            ConstValue::String(s) => View::Text(s),
            ConstValue::List(items) => View::List(items),
            ConstValue::Object(fields) => View::Object(fields),
            _ => View::Other,
        }
    }
}

struct Walk<'a> {
    registry: &'a Registry,
    rules: &'a InputRules,
    variables: &'a Variables,
    defaults: HashMap<&'a str, &'a ConstValue>,
    /// Files the request carries: an `Upload` value must name one of them.
    files: usize,
}

/// Where a value sits: a chain of steps from the field's argument, spelled out only
/// for a refusal (`proposeListing(input.reason)`, `checkBatch(usccs[3])`), so that a
/// valid request allocates nothing for it.
struct Place<'p> {
    step: Step<'p>,
    parent: Option<&'p Place<'p>>,
    /// The argument or input field the value belongs to (a list's elements share it).
    name: &'p str,
    pos: Pos,
    /// The argument's own cap in bytes ([`OWN_CAPS`]), in place of `max_string_chars`.
    own_cap: Option<usize>,
}

enum Step<'p> {
    Argument { field: &'p str, argument: &'p str },
    Field(&'p str),
    Index(usize),
}

impl Place<'_> {
    fn path(&self) -> String {
        let mut path = self.parent.map(Place::path).unwrap_or_default();
        match self.step {
            Step::Argument { field, argument } => path.push_str(&format!("{field}({argument}")),
            Step::Field(name) => path.push_str(&format!(".{name}")),
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
        path
    }
}

impl Walk<'_> {
    fn selection_set(&self, parent: &str, set: &SelectionSet) -> Result<(), ServerError> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let Some(meta) = self
                        .registry
                        .types
                        .get(parent)
                        .and_then(|t| t.field_by_name(name))
                    else {
                        continue;
                    };
                    let root = parent == self.registry.query_type;
                    for (arg, value) in &field.arguments {
                        let Some(input) = meta.args.get(arg.node.as_str()) else {
                            continue;
                        };
                        let own_cap = OWN_CAPS
                            .iter()
                            .find(|(f, a, _)| root && *f == name && *a == arg.node.as_str())
                            .map(|(_, _, cap)| *cap);
                        let place = Place {
                            step: Step::Argument {
                                field: name,
                                argument: arg.node.as_str(),
                            },
                            parent: None,
                            name: arg.node.as_str(),
                            pos: value.pos,
                            own_cap,
                        };
                        self.value(&input.ty, &value.node, &place)?;
                    }
                    let returns = MetaTypeName::concrete_typename(&meta.ty);
                    self.selection_set(returns, &field.selection_set.node)?;
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map_or(parent, |c| c.node.on.node.as_str());
                    self.selection_set(on, &inline.node.selection_set.node)?;
                }
                Selection::FragmentSpread(_) => {}
            }
        }
        Ok(())
    }

    fn value<V: Input>(&self, ty: &str, value: &V, place: &Place<'_>) -> Result<(), ServerError> {
        let view = value.view();
        if let View::Variable(name) = view {
            let given = self
                .variables
                .get(name)
                .or_else(|| self.defaults.get(name.as_str()).copied());
            return match given {
                Some(v) => self.value(ty, v, place),
                None => Ok(()),
            };
        }
        match MetaTypeName::create(ty) {
            MetaTypeName::NonNull(inner) => self.value(inner, value, place),
            MetaTypeName::List(inner) => match view {
                View::List(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let element = Place {
                            step: Step::Index(i),
                            parent: Some(place),
                            name: place.name,
                            pos: place.pos,
                            own_cap: place.own_cap,
                        };
                        self.value(inner, item, &element)?;
                    }
                    Ok(())
                }
                // A single value where a list is expected is coerced to a list of one.
                _ => self.value(inner, value, place),
            },
            MetaTypeName::Named(name) => match (self.registry.types.get(name), view) {
                (Some(MetaType::InputObject { input_fields, .. }), View::Object(fields)) => {
                    for (key, v) in fields {
                        let Some(input) = input_fields.get(key.as_str()) else {
                            continue;
                        };
                        let field = Place {
                            step: Step::Field(key.as_str()),
                            parent: Some(place),
                            name: key.as_str(),
                            pos: place.pos,
                            own_cap: None,
                        };
                        self.value(&input.ty, v, &field)?;
                    }
                    Ok(())
                }
                (_, View::Text(text)) => self.scalar(name, text, place),
                // Anything else is for validation to judge.
                _ => Ok(()),
            },
        }
    }

    fn scalar(&self, ty: &str, text: &str, place: &Place<'_>) -> Result<(), ServerError> {
        let kind = if PROSE_FIELDS.contains(&place.name) {
            TextKind::Prose
        } else {
            TextKind::Line
        };
        let rules = match place.own_cap {
            Some(cap) if text.len() > cap => {
                return Err(refusal(
                    place,
                    Refused {
                        reason: crate::domain::input::Refusal::TooLong,
                        message: format!("is {} bytes long; at most {cap} are allowed", text.len()),
                    },
                ));
            }
            // Within its cap in bytes, so in characters too.
            Some(cap) => InputRules {
                max_string_chars: cap,
                ..*self.rules
            },
            None => *self.rules,
        };
        let checked = rules.text(text, kind).and_then(|()| match ty {
            // Parsed as async-graphql's scalars parse them; what they refuse, they refuse.
            "DateTime" => text
                .parse::<DateTime<Utc>>()
                .map_or(Ok(()), |t| self.rules.instant(t)),
            "NaiveDate" => {
                NaiveDate::parse_from_str(text, "%Y-%m-%d").map_or(Ok(()), |d| self.rules.date(d))
            }
            // async-graphql's `Upload` panics on a marker whose index is not a number
            // (while parsing the argument, before any guard) and on one that names no
            // file (when read). A file only arrives by a multipart request mapping it to
            // a variable, so anything else — a literal in the document, a variable's
            // default, a marker typed into JSON or sent over WebSocket — is refused here,
            // on every transport.
            "Upload" => self.upload(text),
            _ => Ok(()),
        });
        checked.map_err(|refused| refusal(place, refused))
    }
}

impl Walk<'_> {
    fn upload(&self, text: &str) -> Result<(), Refused> {
        let names_a_file = text
            .strip_prefix(UPLOAD_MARKER)
            .and_then(|i| i.parse::<usize>().ok())
            .is_some_and(|i| i < self.files);
        if names_a_file {
            Ok(())
        } else {
            Err(Refused {
                reason: crate::domain::input::Refusal::NoSuchUpload,
                message: "names no file of this request: send the file as a GraphQL multipart request, mapped to a variable".into(),
            })
        }
    }
}

fn refusal(place: &Place<'_>, refused: Refused) -> ServerError {
    let field = format!("{})", place.path());
    let mut err = ServerError::new(format!("{field} {}", refused.message), Some(place.pos));
    let ext = err.extensions.get_or_insert_with(Default::default);
    ext.set("code", BAD_USER_INPUT);
    let mut details = IndexMap::new();
    details.insert(Name::new("field"), ConstValue::String(field));
    details.insert(
        Name::new("reason"),
        ConstValue::String(refused.reason.as_str().into()),
    );
    ext.set("details", ConstValue::Object(details));
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: InputRules = InputRules {
        min_year: 1900,
        max_year: 2200,
        max_string_chars: 50,
    };

    /// Runs `query` through the schema with only this extension; the guard's refusal as
    /// (field, reason), or `None` when the guard let it through (the resolvers then fail
    /// for want of a database, which is not what is tested here).
    async fn refusal_of(query: &str, variables: serde_json::Value) -> Option<(String, String)> {
        let schema = crate::graphql::schema_builder()
            .extension(InputGuard { rules: RULES })
            .finish();
        let request = async_graphql::Request::new(query).variables(Variables::from_json(variables));
        let response = schema.execute(request).await;
        response.errors.iter().find_map(|err| {
            let ext = err.extensions.as_ref()?;
            let details = ext.get("details")?.clone().into_json().ok()?;
            assert_eq!(ext.get("code"), Some(&ConstValue::from(BAD_USER_INPUT)));
            Some((
                details["field"].as_str()?.to_string(),
                details["reason"].as_str()?.to_string(),
            ))
        })
    }

    fn refused(field: &str, reason: &str) -> Option<(String, String)> {
        Some((field.to_string(), reason.to_string()))
    }

    /// A forged file marker made async-graphql's `Upload` panic while the argument was
    /// parsed (before the resolver's guard); every way of writing one is refused first.
    #[tokio::test]
    async fn an_upload_must_name_a_file_of_the_request() {
        let field = "importListings(file)";
        for marker in [
            "#__graphql_file__:x",
            "#__graphql_file__:0",
            "#__graphql_file__:99999999999999999999999",
            "not a marker",
        ] {
            let literal =
                format!(r#"mutation {{ importListings(file: "{marker}") {{ batchId }} }}"#);
            assert_eq!(
                refusal_of(&literal, json!({})).await,
                refused(field, "NO_SUCH_UPLOAD"),
                "{marker} as a literal"
            );
            let default = format!(
                r#"mutation($f: Upload = "{marker}") {{ importListings(file: $f) {{ batchId }} }}"#
            );
            assert_eq!(
                refusal_of(&default, json!({})).await,
                refused(field, "NO_SUCH_UPLOAD"),
                "{marker} as a default"
            );
            let variable = "mutation($f: Upload!) { importListings(file: $f) { batchId } }";
            assert_eq!(
                refusal_of(variable, json!({ "f": marker })).await,
                refused(field, "NO_SUCH_UPLOAD"),
                "{marker} as a variable of a request with no file"
            );
        }
    }

    #[tokio::test]
    async fn literal_arguments_are_checked() {
        let ok = r#"{ publicListings(search: "清远") { edges { cursor } } }"#;
        assert_eq!(refusal_of(ok, json!({})).await, None);
        let nul = r#"{ publicListings(search: "a\u0000b") { edges { cursor } } }"#;
        assert_eq!(
            refusal_of(nul, json!({})).await,
            refused("publicListings(search)", "CONTROL_CHARACTER")
        );
    }

    #[tokio::test]
    async fn variables_input_objects_and_lists_are_followed() {
        let q = "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }";
        assert_eq!(
            refusal_of(q, json!({"i": {"uscc": "x", "name": "a\u{0}"}})).await,
            refused("upsertOperator(input.name)", "CONTROL_CHARACTER")
        );
        let q = "query($u: [String!]!) { checkBatch(usccs: $u, domain: BIDDING) { uscc } }";
        assert_eq!(
            refusal_of(q, json!({"u": ["A", "B", "x".repeat(51)]})).await,
            refused("checkBatch(usccs[2])", "TOO_LONG")
        );
    }

    #[tokio::test]
    async fn instants_and_dates_out_of_range_are_refused_wherever_they_are() {
        let q = r#"{ check(uscc: "x", domain: BIDDING, asOf: "0000-01-01T00:00:00Z") { uscc } }"#;
        assert_eq!(
            refusal_of(q, json!({})).await,
            refused("check(asOf)", "OUT_OF_RANGE")
        );
        // An argument of a nested field, reached through a fragment.
        let q = "{ operator(uscc: \"x\") { ...F } } \
                 fragment F on Operator { listings(asOf: \"2201-01-01T00:00:00Z\") { id } }";
        assert_eq!(
            refusal_of(q, json!({})).await,
            refused("listings(asOf)", "OUT_OF_RANGE")
        );
        // A variable's default counts when the request leaves it out.
        let q = "query($d: NaiveDate! = \"0001-01-01\") { addWorkingDays(from: $d, days: 1) }";
        assert_eq!(
            refusal_of(q, json!({})).await,
            refused("addWorkingDays(from)", "OUT_OF_RANGE")
        );
        // Not a date at all: left to the scalar to refuse.
        let q = r#"{ addWorkingDays(from: "soon", days: 1) }"#;
        assert_eq!(refusal_of(q, json!({})).await, None);
    }

    #[tokio::test]
    async fn line_breaks_are_allowed_in_prose_only() {
        let q = "mutation($r: String!) { withdrawListing(input: {id: \"1\", expectedVersion: 1, reason: $r}) { id } }";
        assert_eq!(
            refusal_of(q, json!({"r": "第一段\n第二段\t。"})).await,
            None
        );
        let q = "mutation($n: String!) { upsertOperator(input: {uscc: \"x\", name: $n}) { id } }";
        assert_eq!(
            refusal_of(q, json!({"n": "某某\n公司"})).await,
            refused("upsertOperator(input.name)", "CONTROL_CHARACTER")
        );
    }

    /// `verifyReceipt`'s receipt and status proof are texts the registry made, longer
    /// than typed input may be: bounded by their parsers' caps, not `max_string_chars`
    /// (50 here), and still refused past those caps or with a control character.
    #[tokio::test]
    async fn a_receipt_and_a_status_proof_have_caps_of_their_own() {
        let q = "query($r: String!, $s: String) { verifyReceipt(receipt: $r, statusProof: $s) { valid } }";
        let long = "x".repeat(20_000);
        assert_eq!(refusal_of(q, json!({"r": long, "s": long})).await, None);
        let receipt_cap = crate::tlog::proof::MAX_PROOF_TEXT;
        assert_eq!(
            refusal_of(q, json!({"r": "x".repeat(receipt_cap + 1)})).await,
            refused("verifyReceipt(receipt)", "TOO_LONG")
        );
        // Bytes, not characters: a cap's worth of three-byte characters is over it.
        assert_eq!(
            refusal_of(q, json!({"r": "清".repeat(receipt_cap / 3 + 1)})).await,
            refused("verifyReceipt(receipt)", "TOO_LONG")
        );
        let proof_cap = crate::tlog::status_map::MAX_PROOF_TEXT;
        assert_eq!(
            refusal_of(q, json!({"r": "x", "s": "x".repeat(proof_cap + 1)})).await,
            refused("verifyReceipt(statusProof)", "TOO_LONG")
        );
        assert_eq!(
            refusal_of(q, json!({"r": "x", "s": "a\u{0}b"})).await,
            refused("verifyReceipt(statusProof)", "CONTROL_CHARACTER")
        );
        // The exemption is by field and argument: other strings keep the limit.
        let other = "query($u: String!) { check(uscc: $u, domain: BIDDING) { uscc } }";
        assert_eq!(
            refusal_of(other, json!({"u": "x".repeat(51)})).await,
            refused("check(uscc)", "TOO_LONG")
        );
    }

    #[tokio::test]
    async fn an_invalid_document_is_refused_as_invalid_first() {
        let q = r#"{ publicListings(search: "a\u0000b", bogus: 1) { edges { cursor } } }"#;
        assert_eq!(refusal_of(q, json!({})).await, None);
        let schema = crate::graphql::schema_builder()
            .extension(InputGuard { rules: RULES })
            .finish();
        let response = schema.execute(q).await;
        assert_eq!(response.errors.len(), 1, "{:?}", response.errors);
        assert!(
            response.errors[0].message.contains("bogus"),
            "{:?}",
            response.errors
        );
    }

    #[test]
    fn every_prose_field_is_an_input_of_the_schema() {
        // A renamed field would silently become single-line; keep the list honest.
        let sdl = crate::graphql::sdl();
        for name in PROSE_FIELDS {
            assert!(
                sdl.contains(&format!("{name}: String")),
                "{name} is no string input of the schema"
            );
        }
    }
}
