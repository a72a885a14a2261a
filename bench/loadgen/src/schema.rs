//! What the running server offers, read by introspection: whether `check`/`checkBatch`
//! exist yet (else the harness measures `operator(uscc:)` and says so), which fields a
//! partner would select, and how to call `registerPartner`.

use crate::client::{Target, graphql};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

const INTROSPECTION: &str = r#"query {
  __schema {
    queryType { name }
    mutationType { name }
    types {
      name kind
      fields { name args { name defaultValue type { ...T } } type { ...T } }
      inputFields { name defaultValue type { ...T } }
    }
  }
}
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } }"#;

#[derive(Clone, Debug, Deserialize)]
pub struct TypeRef {
    pub kind: String,
    pub name: Option<String>,
    #[serde(rename = "ofType")]
    pub of_type: Option<Box<TypeRef>>,
}

impl TypeRef {
    /// The named type under NON_NULL and LIST wrappers.
    pub fn named(&self) -> (&str, &str) {
        match (&self.of_type, &self.name) {
            (Some(inner), None) => inner.named(),
            (_, Some(name)) => (self.kind.as_str(), name.as_str()),
            (None, None) => (self.kind.as_str(), ""),
        }
    }

    pub fn required(&self) -> bool {
        self.kind == "NON_NULL"
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct InputValue {
    pub name: String,
    #[serde(rename = "defaultValue")]
    pub default_value: Option<String>,
    #[serde(rename = "type")]
    pub ty: TypeRef,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(default)]
    pub args: Vec<InputValue>,
    #[serde(rename = "type")]
    pub ty: TypeRef,
}

#[derive(Clone, Debug, Deserialize)]
pub struct FullType {
    pub name: Option<String>,
    pub fields: Option<Vec<Field>>,
    #[serde(rename = "inputFields")]
    pub input_fields: Option<Vec<InputValue>>,
}

#[derive(Clone, Debug, Deserialize)]
struct Named {
    name: String,
}

#[derive(Clone, Debug, Deserialize)]
struct RawSchema {
    #[serde(rename = "queryType")]
    query_type: Named,
    #[serde(rename = "mutationType")]
    mutation_type: Option<Named>,
    types: Vec<FullType>,
}

pub struct Schema {
    query: String,
    mutation: Option<String>,
    types: HashMap<String, FullType>,
}

impl Schema {
    pub async fn fetch(target: &Target, token: Option<&str>) -> anyhow::Result<Self> {
        let reply = graphql(target, token, INTROSPECTION, json!({})).await?;
        anyhow::ensure!(
            reply.ok(),
            "introspection failed (development profile needed): {}",
            reply.snippet()
        );
        let raw: RawSchema = serde_json::from_value(reply.json()["data"]["__schema"].clone())?;
        Ok(Self::from_raw(raw))
    }

    fn from_raw(raw: RawSchema) -> Self {
        Self {
            query: raw.query_type.name,
            mutation: raw.mutation_type.map(|m| m.name),
            types: raw
                .types
                .into_iter()
                .filter_map(|t| t.name.clone().map(|n| (n, t)))
                .collect(),
        }
    }

    fn field(&self, type_name: &str, field: &str) -> Option<&Field> {
        self.types
            .get(type_name)?
            .fields
            .as_ref()?
            .iter()
            .find(|f| f.name == field)
    }

    pub fn query_field(&self, name: &str) -> Option<&Field> {
        self.field(&self.query, name)
    }

    pub fn mutation_field(&self, name: &str) -> Option<&Field> {
        self.field(self.mutation.as_deref()?, name)
    }

    /// A selection of every scalar field of `type_name`, and of its object fields down to
    /// `depth` levels, skipping fields that need arguments and paginated connections:
    /// roughly what a partner's client would ask for.
    pub fn selection(&self, type_name: &str, depth: u32) -> String {
        let Some(fields) = self.types.get(type_name).and_then(|t| t.fields.as_ref()) else {
            return String::new();
        };
        let mut parts = Vec::new();
        for f in fields {
            if f.args
                .iter()
                .any(|a| a.ty.required() && a.default_value.is_none())
            {
                continue;
            }
            let (kind, name) = f.ty.named();
            match kind {
                "SCALAR" | "ENUM" => parts.push(f.name.clone()),
                "OBJECT" if depth > 0 && !name.ends_with("Connection") => {
                    let inner = self.selection(name, depth - 1);
                    if !inner.is_empty() {
                        parts.push(format!("{} {{ {inner} }}", f.name));
                    }
                }
                _ => {}
            }
        }
        parts.join(" ")
    }

    /// The named return type of a query field.
    pub fn return_type(&self, field: &Field) -> String {
        field.ty.named().1.to_string()
    }

    fn input_fields(&self, type_name: &str) -> Option<&Vec<InputValue>> {
        self.types.get(type_name)?.input_fields.as_ref()
    }
}

/// What the harness measures as "a single check".
#[derive(Clone, Debug)]
pub struct Queries {
    /// `check` when it exists, else `operator` (the fallback, said so in every record).
    pub single_name: String,
    pub single: String,
    /// `checkBatch`, when it exists.
    pub batch: Option<String>,
}

/// The declared type of argument `name` of `field`, or `default` when it has none.
fn arg_type(field: &Field, name: &str, default: &str) -> String {
    field
        .args
        .iter()
        .find(|a| a.name == name)
        .map_or_else(|| default.to_string(), |a| render_type(&a.ty))
}

/// Builds the operations from the schema; `selection` overrides the check selection.
/// Variable types are the arguments' declared types, so a renamed enum still works.
pub fn queries(schema: &Schema, selection: Option<&str>) -> Queries {
    let select = |f: &Field| {
        selection
            .map(str::to_string)
            .unwrap_or_else(|| schema.selection(&schema.return_type(f), 2))
    };
    let batch = schema.query_field("checkBatch").map(|f| {
        format!(
            "query BenchCheckBatch($u: {}, $d: {}) {{ checkBatch(usccs: $u, domain: $d) {{ {} }} }}",
            arg_type(f, "usccs", "[String!]!"),
            arg_type(f, "domain", "Domain!"),
            select(f)
        )
    });
    match schema.query_field("check") {
        Some(f) => Queries {
            single_name: "check".into(),
            single: format!(
                "query BenchCheck($u: {}, $d: {}) {{ check(uscc: $u, domain: $d) {{ {} }} }}",
                arg_type(f, "uscc", "String!"),
                arg_type(f, "domain", "Domain!"),
                select(f)
            ),
            batch,
        },
        None => Queries {
            single_name: "operator".into(),
            single: "query BenchOperator($u: String!) { operator(uscc: $u) { id uscc name regionCode version } }".into(),
            batch,
        },
    }
}

/// A minimal single lookup (`uscc decision hits { listingId }` for `check`) used to
/// verify that the server's answers agree with the seeded data.
pub fn verification_query(schema: &Schema) -> Option<String> {
    let f = schema.query_field("check")?;
    let hits = if schema.field(&schema.return_type(f), "hits").is_some() {
        " hits { listingId }"
    } else {
        ""
    };
    Some(format!(
        "query BenchVerify($u: {}, $d: {}) {{ check(uscc: $u, domain: $d) {{ uscc decision{hits} }} }}",
        arg_type(f, "uscc", "String!"),
        arg_type(f, "domain", "Domain!"),
    ))
}

/// The `registerPartner` call for the bench partner, its arguments filled by name (an
/// input object or flat arguments: `subject`, `name`, any `…domain…` list). `Err` says
/// why the harness cannot call it.
pub fn registration(
    schema: &Schema,
    subject: &str,
    name: &str,
    domains: &[String],
) -> Result<(String, Value), String> {
    let field = schema.mutation_field("registerPartner").ok_or_else(|| {
        "registerPartner does not exist yet: the partner token is used unregistered".to_string()
    })?;
    let fill = |values: &[InputValue]| -> Result<Map<String, Value>, String> {
        let mut out = Map::new();
        for v in values {
            let lower = v.name.to_lowercase();
            let value = if lower.contains("domain") {
                json!(domains)
            } else if lower == "subject" || lower == "sub" || lower.ends_with("subject") {
                json!(subject)
            } else if lower == "name" || lower.ends_with("name") {
                json!(name)
            } else if v.ty.required() && v.default_value.is_none() {
                return Err(format!(
                    "registerPartner needs '{}', which the harness cannot fill",
                    v.name
                ));
            } else {
                continue;
            };
            out.insert(v.name.clone(), value);
        }
        Ok(out)
    };
    let (args, decl, call) = match field.args.as_slice() {
        [only] if schema.input_fields(only.ty.named().1).is_some() => {
            let fields = schema
                .input_fields(only.ty.named().1)
                .cloned()
                .unwrap_or_default();
            let mut args = Map::new();
            args.insert("a".into(), Value::Object(fill(&fields)?));
            (
                args,
                format!("$a: {}", render_type(&only.ty)),
                format!("{}: $a", only.name),
            )
        }
        flat => {
            let value = fill(flat)?;
            let mut args = Map::new();
            let mut decls = Vec::new();
            let mut calls = Vec::new();
            for (i, a) in flat
                .iter()
                .filter(|a| value.contains_key(&a.name))
                .enumerate()
            {
                decls.push(format!("$v{i}: {}", render_type(&a.ty)));
                calls.push(format!("{}: $v{i}", a.name));
                args.insert(format!("v{i}"), value[&a.name].clone());
            }
            (args, decls.join(", "), calls.join(", "))
        }
    };
    let selection = schema.selection(&schema.return_type(field), 0);
    let selection = if selection.is_empty() {
        String::new()
    } else {
        format!(" {{ {selection} }}")
    };
    let decl = if decl.is_empty() {
        String::new()
    } else {
        format!("({decl})")
    };
    let call = if call.is_empty() {
        String::new()
    } else {
        format!("({call})")
    };
    Ok((
        format!("mutation BenchRegister{decl} {{ registerPartner{call}{selection} }}"),
        Value::Object(args),
    ))
}

/// Registers the bench partner when `registerPartner` exists (see `registration`).
/// Returns (registered, subject to put in the token, note).
pub async fn register_partner(
    target: &Target,
    schema: &Schema,
    admin_token: &str,
    subject: &str,
    name: &str,
    domains: &[String],
) -> anyhow::Result<(bool, String, String)> {
    let (query, variables) = match registration(schema, subject, name, domains) {
        Ok(call) => call,
        Err(why) => return Ok((false, subject.to_string(), why)),
    };
    let reply = graphql(target, Some(admin_token), &query, variables).await?;
    let body = reply.json();
    if reply.ok() {
        let registered_subject = body["data"]["registerPartner"]["subject"]
            .as_str()
            .unwrap_or(subject)
            .to_string();
        return Ok((true, registered_subject, "registered".into()));
    }
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("");
    if code == "CONFLICT" {
        return Ok((true, subject.to_string(), "already registered".into()));
    }
    Ok((false, subject.to_string(), reply.snippet()))
}

fn render_type(t: &TypeRef) -> String {
    match (t.kind.as_str(), &t.of_type, &t.name) {
        ("NON_NULL", Some(inner), _) => format!("{}!", render_type(inner)),
        ("LIST", Some(inner), _) => format!("[{}]", render_type(inner)),
        (_, _, Some(name)) => name.clone(),
        _ => "String".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let raw: RawSchema = serde_json::from_value(json!({
            "queryType": {"name": "QueryRoot"},
            "mutationType": {"name": "MutationRoot"},
            "types": [
                {"name": "QueryRoot", "kind": "OBJECT", "fields": [
                    {"name": "check", "args": [], "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "OBJECT", "name": "CheckResult"}}}
                ]},
                {"name": "MutationRoot", "kind": "OBJECT", "fields": []},
                {"name": "CheckResult", "kind": "OBJECT", "fields": [
                    {"name": "decision", "args": [], "type": {"kind": "ENUM", "name": "Decision"}},
                    {"name": "receipt", "args": [], "type": {"kind": "SCALAR", "name": "String"}},
                    {"name": "hits", "args": [], "type": {"kind": "LIST", "name": null, "ofType": {"kind": "OBJECT", "name": "Hit"}}},
                    {"name": "history", "args": [{"name": "first", "defaultValue": null, "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "SCALAR", "name": "Int"}}}], "type": {"kind": "SCALAR", "name": "String"}}
                ]},
                {"name": "Hit", "kind": "OBJECT", "fields": [
                    {"name": "listingId", "args": [], "type": {"kind": "SCALAR", "name": "ID"}},
                    {"name": "listings", "args": [], "type": {"kind": "OBJECT", "name": "ListingConnection"}}
                ]}
            ]
        }))
        .unwrap();
        Schema::from_raw(raw)
    }

    #[test]
    fn selections_take_scalars_and_shallow_objects() {
        let s = schema();
        assert_eq!(
            s.selection("CheckResult", 2),
            "decision receipt hits { listingId }"
        );
        let q = queries(&s, None);
        assert_eq!(q.single_name, "check");
        assert!(
            q.single
                .contains("check(uscc: $u, domain: $d) { decision receipt")
        );
        assert!(q.batch.is_none());
        assert!(
            queries(&s, Some("decision"))
                .single
                .contains("{ decision }")
        );
    }

    fn with_mutation(fields: Value, input: Option<Value>) -> Schema {
        let mut types = vec![
            json!({"name": "QueryRoot", "kind": "OBJECT", "fields": []}),
            json!({"name": "MutationRoot", "kind": "OBJECT", "fields": [
                {"name": "registerPartner", "args": fields, "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "OBJECT", "name": "Partner"}}}
            ]}),
            json!({"name": "Partner", "kind": "OBJECT", "fields": [
                {"name": "id", "args": [], "type": {"kind": "SCALAR", "name": "ID"}},
                {"name": "subject", "args": [], "type": {"kind": "SCALAR", "name": "String"}}
            ]}),
        ];
        types.extend(input);
        let raw: RawSchema = serde_json::from_value(json!({
            "queryType": {"name": "QueryRoot"},
            "mutationType": {"name": "MutationRoot"},
            "types": types,
        }))
        .unwrap();
        Schema::from_raw(raw)
    }

    fn string_arg(name: &str, required: bool) -> Value {
        let ty = json!({"kind": "SCALAR", "name": "String"});
        let ty = if required {
            json!({"kind": "NON_NULL", "name": null, "ofType": ty})
        } else {
            ty
        };
        json!({"name": name, "defaultValue": null, "type": ty})
    }

    #[test]
    fn registration_fills_an_input_object_by_name() {
        let input = json!({"name": "RegisterPartnerInput", "kind": "INPUT_OBJECT", "inputFields": [
            string_arg("subject", true),
            string_arg("name", true),
            {"name": "domains", "defaultValue": null, "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "LIST", "name": null, "ofType": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "ENUM", "name": "Domain"}}}}},
            string_arg("contact", false)
        ]});
        let schema = with_mutation(
            json!([{"name": "input", "defaultValue": null, "type": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "INPUT_OBJECT", "name": "RegisterPartnerInput"}}}]),
            Some(input),
        );
        let (query, vars) =
            registration(&schema, "bench", "压测", &["PROCUREMENT".to_string()]).unwrap();
        assert_eq!(
            query,
            "mutation BenchRegister($a: RegisterPartnerInput!) { registerPartner(input: $a) { id subject } }"
        );
        assert_eq!(
            vars,
            json!({"a": {"subject": "bench", "name": "压测", "domains": ["PROCUREMENT"]}})
        );
    }

    #[test]
    fn registration_fills_flat_arguments_and_refuses_unknown_required_ones() {
        let flat = with_mutation(
            json!([string_arg("name", true), string_arg("subject", false)]),
            None,
        );
        let (query, vars) = registration(&flat, "bench", "压测", &[]).unwrap();
        assert_eq!(
            query,
            "mutation BenchRegister($v0: String!, $v1: String) { registerPartner(name: $v0, subject: $v1) { id subject } }"
        );
        assert_eq!(vars, json!({"v0": "压测", "v1": "bench"}));
        let secret = with_mutation(json!([string_arg("secret", true)]), None);
        assert!(
            registration(&secret, "bench", "x", &[])
                .unwrap_err()
                .contains("'secret'")
        );
        let empty = schema();
        assert!(
            registration(&empty, "b", "x", &[])
                .unwrap_err()
                .contains("does not exist")
        );
    }

    #[test]
    fn types_render_as_graphql() {
        let t: TypeRef = serde_json::from_value(json!({"kind": "NON_NULL", "name": null, "ofType": {"kind": "LIST", "name": null, "ofType": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "ENUM", "name": "Domain"}}}})).unwrap();
        assert_eq!(render_type(&t), "[Domain!]!");
        assert_eq!(t.named(), ("ENUM", "Domain"));
    }
}
