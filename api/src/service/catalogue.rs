//! The catalogues as data: lists, measures and violation categories. Seeded by
//! migrations, edited by admins, every edit audited.

use super::{Actor, Services, required_text};

/// Catalogue texts (names, legal bases) are short.
const MAX_TEXT: usize = 1000;
use super::audit::{self, AuditEntry};
use crate::domain::measures::{Domain, Effect, refusal_to_edit_in_use};
use crate::error::{AppError, AppResult};
use entity::{credit_list, list_default_measure, measure, violation_category};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde_json::json;

pub async fn lists<C: ConnectionTrait>(db: &C) -> AppResult<Vec<credit_list::Model>> {
    Ok(credit_list::Entity::find()
        .order_by_asc(credit_list::Column::Id)
        .all(db)
        .await?)
}

pub async fn list_by_code<C: ConnectionTrait>(db: &C, code: &str) -> AppResult<credit_list::Model> {
    credit_list::Entity::find()
        .filter(credit_list::Column::Code.eq(code.trim()))
        .one(db)
        .await?
        .ok_or_else(|| AppError::bad_input(format!("there is no list with code '{}'", code.trim())))
}

pub async fn measures<C: ConnectionTrait>(
    db: &C,
    domain: Option<Domain>,
) -> AppResult<Vec<measure::Model>> {
    let mut q = measure::Entity::find().order_by_asc(measure::Column::Id);
    if let Some(domain) = domain {
        q = q.filter(measure::Column::Domain.eq(entity::measure::Domain::from(domain)));
    }
    Ok(q.all(db).await?)
}

/// Measures by code; every code must exist and be active.
pub async fn measures_by_codes<C: ConnectionTrait>(
    db: &C,
    codes: &[String],
) -> AppResult<Vec<measure::Model>> {
    let mut wanted: Vec<String> = codes.iter().map(|c| c.trim().to_string()).collect();
    wanted.sort();
    wanted.dedup();
    let found = measure::Entity::find()
        .filter(measure::Column::Code.is_in(wanted.clone()))
        .all(db)
        .await?;
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|c| !found.iter().any(|m| &m.code == *c && m.active))
        .collect();
    if !unknown.is_empty() {
        return Err(AppError::bad_input_with(
            format!(
                "unknown or inactive measure codes: {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            json!({ "unknownMeasures": unknown }),
        ));
    }
    Ok(found)
}

pub async fn default_measures<C: ConnectionTrait>(
    db: &C,
    list_id: i64,
) -> AppResult<Vec<measure::Model>> {
    let links = list_default_measure::Entity::find()
        .filter(list_default_measure::Column::ListId.eq(list_id))
        .all(db)
        .await?;
    let ids: Vec<i64> = links.iter().map(|l| l.measure_id).collect();
    Ok(measure::Entity::find()
        .filter(measure::Column::Id.is_in(ids))
        .filter(measure::Column::Active.eq(true))
        .order_by_asc(measure::Column::Id)
        .all(db)
        .await?)
}

pub async fn violation_categories<C: ConnectionTrait>(
    db: &C,
) -> AppResult<Vec<violation_category::Model>> {
    Ok(violation_category::Entity::find()
        .order_by_asc(violation_category::Column::Id)
        .all(db)
        .await?)
}

pub async fn ensure_category<C: ConnectionTrait>(db: &C, code: &str) -> AppResult<()> {
    let exists = violation_category::Entity::find()
        .filter(violation_category::Column::Code.eq(code))
        .one(db)
        .await?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(AppError::bad_input(format!(
            "there is no violation category '{code}'"
        )))
    }
}

fn measure_json(m: &measure::Model) -> serde_json::Value {
    json!({"code": m.code, "name": m.name, "domain": m.domain, "effect": m.effect, "legal_basis": m.legal_basis, "active": m.active, "version": m.version})
}

fn list_json(l: &credit_list::Model, defaults: &[String]) -> serde_json::Value {
    json!({
        "code": l.code, "name": l.name, "legal_basis": l.legal_basis,
        "default_period_months": l.default_period_months, "defence_working_days": l.defence_working_days,
        "publicity_stop_working_days": l.publicity_stop_working_days, "repair_min_months": l.repair_min_months,
        "repair_decision_working_days": l.repair_decision_working_days,
        "repair_revocation_policy": l.repair_revocation_policy, "active": l.active, "version": l.version,
        "default_measures": defaults,
    })
}

fn valid_code(code: &str) -> AppResult<String> {
    let c = code.trim();
    if c.is_empty()
        || c.len() > 64
        || !c
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(AppError::bad_input(format!(
            "code '{c}' must be 1-64 characters of A-Z, 0-9 and _"
        )));
    }
    Ok(c.to_string())
}

/// Marks `measure_ids` as used by a listing from `at` (those not marked yet), in the
/// transaction that writes the listing's measures: from then on their domain and effect
/// are fixed ([`refusal_to_edit_in_use`]). Both take the audit chain's lock, so an edit of
/// the catalogue and a listing's first use of a measure never pass each other.
pub async fn mark_used<C: ConnectionTrait>(
    db: &C,
    measure_ids: &[i64],
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    if measure_ids.is_empty() {
        return Ok(());
    }
    measure::Entity::update_many()
        .col_expr(
            measure::Column::FirstUsedAt,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(measure::Column::FirstUsedAt.is_null())
        .filter(measure::Column::Id.is_in(measure_ids.iter().copied()))
        .exec(db)
        .await?;
    Ok(())
}

#[derive(Clone, Debug)]
pub struct MeasureInput {
    pub code: String,
    pub name: String,
    pub domain: Domain,
    pub effect: Effect,
    pub legal_basis: String,
    pub active: bool,
}

/// Adds a measure to the catalogue or edits one; audited.
pub async fn upsert_measure(
    services: &Services,
    actor: &Actor,
    input: MeasureInput,
) -> AppResult<measure::Model> {
    let db = &services.db;
    let code = valid_code(&input.code)?;
    let name = required_text("name", &input.name, MAX_TEXT)?;
    let basis = required_text("legalBasis", &input.legal_basis, MAX_TEXT)?;
    let (tx, now) = audit::begin_write_at(db, &services.clock).await?;
    let existing = measure::Entity::find()
        .filter(measure::Column::Code.eq(&code))
        .one(&tx)
        .await?;
    let before = existing.as_ref().map(measure_json);
    let saved = match existing {
        Some(m) => {
            if let Some(refusal) = refusal_to_edit_in_use(
                &m.code,
                m.first_used_at,
                (m.domain.into(), m.effect.into()),
                (input.domain, input.effect),
            ) {
                return Err(AppError::Conflict(refusal));
            }
            let version = m.version + 1;
            let mut a: measure::ActiveModel = m.into();
            a.name = Set(name);
            a.domain = Set(input.domain.into());
            a.effect = Set(input.effect.into());
            a.legal_basis = Set(basis);
            a.active = Set(input.active);
            a.version = Set(version);
            a.updated_at = Set(now);
            a.update(&tx).await?
        }
        None => {
            measure::ActiveModel {
                code: Set(code),
                name: Set(name),
                domain: Set(input.domain.into()),
                effect: Set(input.effect.into()),
                legal_basis: Set(basis),
                active: Set(input.active),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&tx)
            .await?
        }
    };
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new("measure.upsert", "measure", &saved.code)
            .before(before)
            .after(Some(measure_json(&saved))),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

#[derive(Clone, Debug, Default)]
pub struct ListInput {
    pub code: String,
    pub name: Option<String>,
    pub legal_basis: Option<String>,
    pub default_period_months: Option<i32>,
    pub defence_working_days: Option<i32>,
    pub publicity_stop_working_days: Option<i32>,
    pub repair_min_months: Option<i32>,
    pub repair_decision_working_days: Option<i32>,
    pub repair_revocation_policy: Option<String>,
    pub default_measure_codes: Option<Vec<String>>,
    pub active: Option<bool>,
    pub expected_version: Option<i32>,
}

fn positive(field: &str, v: Option<i32>, max: i32) -> AppResult<Option<i32>> {
    match v {
        Some(n) if n < 1 || n > max => Err(AppError::bad_input(format!(
            "{field} must be between 1 and {max}"
        ))),
        other => Ok(other),
    }
}

/// Creates a list or edits its rules (periods, time limits, default measures); audited.
pub async fn upsert_list(
    services: &Services,
    actor: &Actor,
    input: ListInput,
) -> AppResult<credit_list::Model> {
    let db = &services.db;
    let code = valid_code(&input.code)?;
    let period = positive("defaultPeriodMonths", input.default_period_months, 240)?;
    let defence = positive("defenceWorkingDays", input.defence_working_days, 60)?;
    let publicity = positive(
        "publicityStopWorkingDays",
        input.publicity_stop_working_days,
        60,
    )?;
    let repair_min = positive("repairMinMonths", input.repair_min_months, 240)?;
    let repair_days = positive(
        "repairDecisionWorkingDays",
        input.repair_decision_working_days,
        120,
    )?;
    if let Some(p) = &input.repair_revocation_policy
        && p != "RESUME"
        && p != "RESTART"
    {
        return Err(AppError::bad_input(
            "repairRevocationPolicy must be RESUME or RESTART",
        ));
    }
    let (tx, now) = audit::begin_write_at(db, &services.clock).await?;
    let measures = match &input.default_measure_codes {
        Some(codes) => Some(measures_by_codes(&tx, codes).await?),
        None => None,
    };
    let existing = credit_list::Entity::find()
        .filter(credit_list::Column::Code.eq(&code))
        .one(&tx)
        .await?;
    let before = match &existing {
        Some(l) => {
            let codes: Vec<String> = default_measures(&tx, l.id)
                .await?
                .into_iter()
                .map(|m| m.code)
                .collect();
            Some(list_json(l, &codes))
        }
        None => None,
    };
    let saved = match existing {
        Some(l) => {
            if let Some(expected) = input.expected_version
                && expected != l.version
            {
                return Err(AppError::Conflict(format!(
                    "list {} is at version {}, not {expected}: reload and retry",
                    l.code, l.version
                )));
            }
            let version = l.version + 1;
            let mut a: credit_list::ActiveModel = l.into();
            if let Some(v) = &input.name {
                a.name = Set(required_text("name", v, MAX_TEXT)?);
            }
            if let Some(v) = &input.legal_basis {
                a.legal_basis = Set(required_text("legalBasis", v, MAX_TEXT)?);
            }
            if let Some(v) = period {
                a.default_period_months = Set(v);
            }
            if let Some(v) = defence {
                a.defence_working_days = Set(v);
            }
            if let Some(v) = publicity {
                a.publicity_stop_working_days = Set(v);
            }
            if let Some(v) = repair_min {
                a.repair_min_months = Set(v);
            }
            if let Some(v) = repair_days {
                a.repair_decision_working_days = Set(v);
            }
            if let Some(v) = &input.repair_revocation_policy {
                a.repair_revocation_policy = Set(v.clone());
            }
            if let Some(v) = input.active {
                a.active = Set(v);
            }
            a.version = Set(version);
            a.updated_at = Set(now);
            a.update(&tx).await?
        }
        None => {
            let d = crate::domain::listing_rules::ListRules::DEFAULT;
            // The defaults are small constants: they always fit the column.
            let default = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
            let name = required_text("name", input.name.as_deref().unwrap_or_default(), MAX_TEXT)?;
            let basis = required_text(
                "legalBasis",
                input.legal_basis.as_deref().unwrap_or_default(),
                MAX_TEXT,
            )?;
            credit_list::ActiveModel {
                code: Set(code),
                name: Set(name),
                legal_basis: Set(basis),
                default_period_months: Set(period.unwrap_or(default(d.period_months))),
                defence_working_days: Set(defence.unwrap_or(default(d.defence_working_days))),
                publicity_stop_working_days: Set(
                    publicity.unwrap_or(default(d.publicity_stop_working_days))
                ),
                repair_min_months: Set(repair_min.unwrap_or(default(d.repair_min_months))),
                repair_decision_working_days: Set(
                    repair_days.unwrap_or(default(d.repair_decision_working_days))
                ),
                repair_revocation_policy: Set(input
                    .repair_revocation_policy
                    .clone()
                    .unwrap_or_else(|| "RESTART".into())),
                active: Set(input.active.unwrap_or(true)),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&tx)
            .await?
        }
    };
    if let Some(measures) = measures {
        list_default_measure::Entity::delete_many()
            .filter(list_default_measure::Column::ListId.eq(saved.id))
            .exec(&tx)
            .await?;
        for m in &measures {
            list_default_measure::ActiveModel {
                list_id: Set(saved.id),
                measure_id: Set(m.id),
            }
            .insert(&tx)
            .await?;
        }
    }
    let codes: Vec<String> = default_measures(&tx, saved.id)
        .await?
        .into_iter()
        .map(|m| m.code)
        .collect();
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new("list.upsert", "credit_list", &saved.code)
            .before(before)
            .after(Some(list_json(&saved, &codes))),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// Adds or renames a violation category; audited.
pub async fn upsert_category(
    services: &Services,
    actor: &Actor,
    code: &str,
    name: &str,
    article: &str,
) -> AppResult<violation_category::Model> {
    let db = &services.db;
    let code = valid_code(code)?;
    let name = required_text("name", name, MAX_TEXT)?;
    let article = required_text("article", article, MAX_TEXT)?;
    let (tx, now) = audit::begin_write_at(db, &services.clock).await?;
    let existing = violation_category::Entity::find()
        .filter(violation_category::Column::Code.eq(&code))
        .one(&tx)
        .await?;
    let before = existing
        .as_ref()
        .map(|c| json!({"code": c.code, "name": c.name, "article": c.article}));
    let saved = match existing {
        Some(c) => {
            let mut a: violation_category::ActiveModel = c.into();
            a.name = Set(name);
            a.article = Set(article);
            a.update(&tx).await?
        }
        None => {
            violation_category::ActiveModel {
                code: Set(code),
                name: Set(name),
                article: Set(article),
                ..Default::default()
            }
            .insert(&tx)
            .await?
        }
    };
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new(
            "violation_category.upsert",
            "violation_category",
            &saved.code,
        )
        .before(before)
        .after(Some(
            json!({"code": saved.code, "name": saved.name, "article": saved.article}),
        )),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}
