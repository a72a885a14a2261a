//! Before measuring: do the server's answers agree with the seeded data? A sample of
//! operators listed in force must not be answered CLEAR without hits, and a sample of
//! the others must be answered CLEAR without hits (for the partner domains the seeded
//! lists restrict). Until `check` exists, every sampled code must be found by
//! `operator(uscc:)`.

use crate::client::{Connection, Target};
use crate::schema::{Schema, queries, verification_query};
use bench_seed::Population;
use bench_seed::population::Rng;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Debug, Serialize)]
pub struct Verification {
    pub query: String,
    pub domain: String,
    pub sampled: u32,
    pub agree: u32,
    pub disagreements: Vec<String>,
}

pub async fn verify(
    target: &Target,
    schema: &Schema,
    token: &str,
    population: &Population,
    domain: &str,
    samples: u32,
    seed: u64,
) -> anyhow::Result<Verification> {
    let mut rng = Rng::new(seed, 9000, u64::from(samples));
    let mut picks = Vec::new();
    for n in 0..samples {
        let listed = n % 2 == 0 && population.in_force > 0;
        let i = if listed {
            population.in_force_operator(rng.below(population.in_force))
        } else {
            // Not in force: draw until one is (90 % of operators are).
            let mut i = rng.below(population.operators);
            while population.is_in_force(i) {
                i = rng.below(population.operators);
            }
            i
        };
        picks.push((population.code(i), listed));
    }
    let check = verification_query(schema);
    let (name, query) = match &check {
        Some(q) => ("check", q.clone()),
        None => ("operator", queries(schema, None).single),
    };
    let mut conn = Connection::open(target).await?;
    let mut out = Verification {
        query: name.into(),
        domain: domain.into(),
        sampled: samples,
        agree: 0,
        disagreements: Vec::new(),
    };
    for (code, listed) in picks {
        let body = json!({"query": query, "variables": {"u": code, "d": domain}});
        let reply = conn
            .post(Bytes::from(serde_json::to_vec(&body)?), Some(token))
            .await?;
        let answer = reply.json();
        let ok = reply.ok() && agrees(&answer, name, &code, listed);
        if ok {
            out.agree += 1;
        } else if out.disagreements.len() < 3 {
            out.disagreements.push(format!(
                "{code} (listed in force: {listed}): {}",
                reply.snippet()
            ));
        }
    }
    Ok(out)
}

/// Whether one answer matches what was seeded for `code`.
fn agrees(answer: &Value, query: &str, code: &str, listed: bool) -> bool {
    if query == "operator" {
        return answer["data"]["operator"]["uscc"] == code;
    }
    let result = &answer["data"]["check"];
    let restricted = result["decision"].as_str().is_some_and(|d| d != "CLEAR")
        || result["hits"].as_array().is_some_and(|h| !h.is_empty());
    result["uscc"] == code && restricted == listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_codes_must_not_be_clear() {
        let restricted = json!({"data": {"check": {"uscc": "X", "decision": "RESTRICTED", "hits": [{"listingId": "1"}]}}});
        let clear = json!({"data": {"check": {"uscc": "X", "decision": "CLEAR", "hits": []}}});
        assert!(agrees(&restricted, "check", "X", true));
        assert!(!agrees(&restricted, "check", "X", false));
        assert!(agrees(&clear, "check", "X", false));
        assert!(!agrees(&clear, "check", "X", true));
        assert!(!agrees(&clear, "check", "Y", false));
        let found = json!({"data": {"operator": {"uscc": "X"}}});
        assert!(agrees(&found, "operator", "X", true));
        assert!(!agrees(
            &json!({"data": {"operator": null}}),
            "operator",
            "X",
            false
        ));
    }
}
