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

/// Builds the operations from the schema; `selection` overrides the check selection.
pub fn queries(schema: &Schema, selection: Option<&str>) -> Queries {
    let batch = schema.query_field("checkBatch").map(|f| {
        let sel = selection
            .map(str::to_string)
            .unwrap_or_else(|| schema.selection(&schema.return_type(f), 2));
        format!(
            "query BenchCheckBatch($u: [String!]!, $d: Domain!) {{ checkBatch(usccs: $u, domain: $d) {{ {sel} }} }}"
        )
    });
    match schema.query_field("check") {
        Some(f) => {
            let sel = selection
                .map(str::to_string)
                .unwrap_or_else(|| schema.selection(&schema.return_type(f), 2));
            Queries {
                single_name: "check".into(),
                single: format!(
                    "query BenchCheck($u: String!, $d: Domain!) {{ check(uscc: $u, domain: $d) {{ {sel} }} }}"
                ),
                batch,
            }
        }
        None => Queries {
            single_name: "operator".into(),
            single: "query BenchOperator($u: String!) { operator(uscc: $u) { id uscc name regionCode version } }".into(),
            batch,
        },
    }
}

/// Registers the bench partner when `registerPartner` exists, filling its arguments by
/// name (subject, name, domains). Returns (registered, subject to put in the token, note).
pub async fn register_partner(
    target: &Target,
    schema: &Schema,
    admin_token: &str,
    subject: &str,
    name: &str,
    domains: &[String],
) -> anyhow::Result<(bool, String, String)> {
    let Some(field) = schema.mutation_field("registerPartner") else {
        return Ok((
            false,
            subject.to_string(),
            "registerPartner does not exist yet: the partner token is used unregistered".into(),
        ));
    };
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
    // Either one input object argument, or flat arguments.
    let (args, decl, call) = match field.args.as_slice() {
        [only] if schema.input_fields(only.ty.named().1).is_some() => {
            let input_type = only.ty.named().1.to_string();
            let fields = schema
                .input_fields(&input_type)
                .cloned()
                .unwrap_or_default();
            let value = match fill(&fields) {
                Ok(v) => v,
                Err(e) => return Ok((false, subject.to_string(), e)),
            };
            let mut args = Map::new();
            args.insert("a".into(), Value::Object(value));
            (
                args,
                format!("$a: {input_type}!"),
                format!("{}: $a", only.name),
            )
        }
        flat => {
            let value = match fill(flat) {
                Ok(v) => v,
                Err(e) => return Ok((false, subject.to_string(), e)),
            };
            let mut decls = Vec::new();
            let mut calls = Vec::new();
            for (i, a) in flat
                .iter()
                .filter(|a| value.contains_key(&a.name))
                .enumerate()
            {
                decls.push(format!("$v{i}: {}", render_type(&a.ty)));
                calls.push(format!("{}: $v{i}", a.name));
            }
            let mut args = Map::new();
            for (i, a) in flat
                .iter()
                .filter(|a| value.contains_key(&a.name))
                .enumerate()
            {
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
    let query = format!("mutation BenchRegister({decl}) {{ registerPartner({call}){selection} }}");
    let reply = graphql(target, Some(admin_token), &query, Value::Object(args)).await?;
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

    #[test]
    fn types_render_as_graphql() {
        let t: TypeRef = serde_json::from_value(json!({"kind": "NON_NULL", "name": null, "ofType": {"kind": "LIST", "name": null, "ofType": {"kind": "NON_NULL", "name": null, "ofType": {"kind": "ENUM", "name": "Domain"}}}})).unwrap();
        assert_eq!(render_type(&t), "[Domain!]!");
        assert_eq!(t.named(), ("ENUM", "Domain"));
    }
}
