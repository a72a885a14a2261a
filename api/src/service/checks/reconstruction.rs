//! Checks as the registry's records stood at an earlier instant (`knownAt`), rebuilt
//! from the listing revisions: audit reconstructions, and the hits of a recorded check
//! written before records kept them.

use super::findings::Findings;
use super::{Hit, HitMeasure};
use crate::domain::decision::{Decision, bears_on_answer};
use crate::domain::measures::{Domain, Effect};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::check_record;
use sea_orm::DatabaseConnection;
use std::collections::{BTreeMap, HashMap};

/// Findings from the listing revisions recorded at `k` (record time) for the listings
/// in force at `as_of` (valid time), with the measures as the catalogue defined them
/// then. Audit queries: one pass per operator, not the hot path.
pub(super) async fn lookup_known_at(
    db: &DatabaseConnection,
    codes: &[&str],
    as_of: DateTime<Utc>,
    k: DateTime<Utc>,
    domain: Domain,
) -> AppResult<HashMap<String, Findings>> {
    use entity::{credit_list, operator};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let operators = operator::Entity::find()
        .filter(operator::Column::Uscc.is_in(codes.iter().map(|c| c.to_string())))
        .filter(operator::Column::CreatedAt.lte(k))
        .all(db)
        .await?;
    let lists: HashMap<i64, credit_list::Model> = credit_list::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect();
    let mut found = HashMap::with_capacity(operators.len());
    for op in operators {
        let mut findings = Findings {
            operator_id: op.id,
            operator_name: op.name.clone(),
            hits: BTreeMap::new(),
        };
        let in_force: Vec<_> = crate::service::history::for_operator_known_at(db, op.id, k)
            .await?
            .into_iter()
            .filter(|r| r.in_force_at(as_of))
            .collect();
        // The catalogue as it stood at `k`, read once for all these listings' measures.
        let mut codes: Vec<String> = in_force
            .iter()
            .flat_map(|r| r.measure_codes.clone())
            .collect();
        codes.sort();
        codes.dedup();
        let catalogue = crate::service::history::measures_known_at(db, &codes, k).await?;
        for r in in_force {
            let measures = r.measure_codes.iter().filter_map(|c| catalogue.get(c));
            let mut hit_measures: Vec<HitMeasure> = Vec::new();
            for m in measures.filter(|m| Domain::from(m.domain) == domain) {
                let effect = Effect::from(m.effect);
                if !bears_on_answer(effect) {
                    continue;
                }
                hit_measures.push(HitMeasure {
                    code: m.code.clone(),
                    name: m.name.clone(),
                    effect,
                    legal_basis: m.legal_basis.clone(),
                });
            }
            if hit_measures.is_empty() {
                continue;
            }
            hit_measures.sort_by(|a, b| a.code.cmp(&b.code));
            let period = r
                .periods
                .iter()
                .find(|p| crate::service::listings::to_period(p).covers(as_of));
            let list = lists.get(&r.row.list_id);
            findings.hits.insert(
                r.row.id,
                Hit {
                    listing_id: r.row.id,
                    list_code: list.map(|l| l.code.clone()).unwrap_or_default(),
                    list_name: list.map(|l| l.name.clone()).unwrap_or_default(),
                    authority: r.row.authority.clone(),
                    decision_doc_no: r.row.decision_doc_no.clone(),
                    listed_at: period.map(|p| p.starts_at).unwrap_or(as_of),
                    expires_at: period.map(|p| p.ends_at).unwrap_or(as_of),
                    measures: hit_measures,
                },
            );
        }
        found.insert(op.uscc, findings);
    }
    Ok(found)
}

/// The codes of the measures that produced a check's answer, in code order: none for
/// CLEAR. Records keep them; for a record written before they were kept, they are rebuilt
/// from the listing revisions as they stood when it was answered (its `knownAt`, or the
/// instant it was checked), limited to the listings the record names.
pub(crate) async fn hit_measure_codes(
    db: &DatabaseConnection,
    record: &check_record::Model,
) -> AppResult<Vec<String>> {
    let corrupt = |e: &dyn std::fmt::Display| {
        AppError::internal(anyhow::anyhow!("check record {}: {e}", record.id))
    };
    if let Some(kept) = &record.hit_measure_codes {
        return serde_json::from_value(kept.clone()).map_err(|e| corrupt(&e));
    }
    if Decision::from(record.decision) == Decision::Clear {
        return Ok(Vec::new());
    }
    let domain = Domain::from(record.domain);
    let named: Vec<i64> =
        serde_json::from_value(record.hit_listing_ids.clone()).map_err(|e| corrupt(&e))?;
    let basis = record.known_at.unwrap_or(record.checked_at);
    let found = lookup_known_at(db, &[record.uscc.as_str()], record.as_of, basis, domain).await?;
    let hits: Vec<Hit> = found
        .get(record.uscc.as_str())
        .map(|f| {
            f.hits
                .values()
                .filter(|h| named.contains(&h.listing_id))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Ok(measure_codes_of_hits(&hits))
}

/// The distinct measure codes of `hits`, in code order.
pub(super) fn measure_codes_of_hits(hits: &[Hit]) -> Vec<String> {
    let mut codes: Vec<String> = hits
        .iter()
        .flat_map(|h| h.measures.iter().map(|m| m.code.clone()))
        .collect();
    codes.sort();
    codes.dedup();
    codes
}
