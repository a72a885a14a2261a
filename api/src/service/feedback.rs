//! Execution feedback (执行反馈): the partner that made a check reports which measure it
//! actually applied (e.g. "bid rejected in tender X"), closing the joint-punishment loop.

use super::audit::{self, AuditEntry};
use super::{Actor, Services};
use crate::auth::Role;
use crate::domain::refusal::{Reason, Refusal};
use crate::error::{AppError, AppResult};
use entity::{check_record, measure, partner_feedback};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
};
use serde_json::json;

const MAX_CONTEXT: usize = 2_000;
const MAX_NOTE: usize = 4_000;

#[derive(Clone, Debug)]
pub struct FeedbackInput {
    pub receipt_id: String,
    pub measure_code: String,
    pub context: String,
    pub note: Option<String>,
}

fn bounded(field: &str, value: &str, max: usize) -> AppResult<()> {
    if value.chars().count() > max {
        return Err(AppError::bad_input(format!(
            "{field} is longer than {max} characters"
        )));
    }
    Ok(())
}

/// Only the partner that made the check may report on it.
pub fn may_report(actor: &Actor, record: &check_record::Model) -> AppResult<()> {
    if actor.identity.role != Role::Partner {
        return Err(AppError::Forbidden(
            "only the partner that made a check reports the measure it applied".into(),
        ));
    }
    if record.role != Role::Partner.as_str() || record.subject != actor.identity.subject {
        return Err(AppError::Forbidden(format!(
            "receipt {} belongs to another caller's check",
            record.id
        )));
    }
    Ok(())
}

/// Feedback reports a measure applied *because of* a check's answer, so it must be one of
/// the measures that produced that answer: nothing for a CLEAR answer (which has no
/// hits), else a measure of one of its hits. Otherwise the yearly report would count a
/// restriction that never was.
pub fn ensure_applied_measure_was_a_hit(
    record: &check_record::Model,
    hit_measures: &[String],
    measure_code: &str,
) -> AppResult<()> {
    if hit_measures.iter().any(|m| m == measure_code) {
        return Ok(());
    }
    let message = if hit_measures.is_empty() {
        format!(
            "receipt {} answered {} with no hits: no measure was applied because of it",
            record.id,
            record.decision.to_value()
        )
    } else {
        format!(
            "measure {measure_code} was not among the hits of receipt {} ({})",
            record.id,
            hit_measures.join(", ")
        )
    };
    Err(Refusal::new(Reason::MeasureNotAHit, message)
        .on("measureCode")
        .with("decision", record.decision.to_value())
        .into())
}

pub fn snapshot(m: &partner_feedback::Model) -> serde_json::Value {
    json!({
        "id": m.id, "receipt_id": m.receipt_id, "subject": m.subject,
        "measure_code": m.measure_code, "context": m.context, "note": m.note,
    })
}

pub async fn report(
    services: &Services,
    actor: &Actor,
    input: FeedbackInput,
) -> AppResult<partner_feedback::Model> {
    let db = &services.db;
    let receipt_id = input.receipt_id.trim().to_string();
    let measure_code = input.measure_code.trim().to_string();
    let context = input.context.trim().to_string();
    let note = input
        .note
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if context.is_empty() {
        return Err(AppError::bad_input(
            "context must say where the measure was applied (e.g. the tender)",
        ));
    }
    bounded("context", &context, MAX_CONTEXT)?;
    if let Some(note) = &note {
        bounded("note", note, MAX_NOTE)?;
    }

    // A check record never changes once written: read it and its hits before the write.
    let record = check_record::Entity::find_by_id(receipt_id.clone())
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no check with receipt id '{receipt_id}'")))?;
    may_report(actor, &record)?;
    let hits = super::checks::hit_measure_codes(db, &record).await?;
    let (tx, at) = audit::begin_write_at(db, &services.clock).await?;
    let measure = measure::Entity::find()
        .filter(measure::Column::Code.eq(measure_code.as_str()))
        .one(&tx)
        .await?
        .ok_or_else(|| {
            AppError::bad_input_with(
                format!("'{measure_code}' is not a measure in the catalogue"),
                json!({ "field": "measureCode" }),
            )
        })?;
    if measure.domain != record.domain {
        return Err(AppError::bad_input_with(
            format!(
                "measure {} restricts {}, but receipt {} is a {} check",
                measure.code,
                measure.domain.to_value(),
                record.id,
                record.domain.to_value()
            ),
            json!({ "field": "measureCode" }),
        ));
    }
    ensure_applied_measure_was_a_hit(&record, &hits, &measure.code)?;
    let saved = partner_feedback::ActiveModel {
        receipt_id: Set(record.id.clone()),
        subject: Set(actor.identity.subject.clone()),
        measure_code: Set(measure.code),
        context: Set(context),
        note: Set(note),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    audit::record(
        &tx,
        actor,
        at,
        AuditEntry::new("partner_feedback.report", "partner_feedback", saved.id)
            .after(Some(snapshot(&saved))),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

#[derive(Clone, Debug, Default)]
pub struct FeedbackFilter {
    /// Set for partners (their own feedback only).
    pub subject: Option<String>,
    pub receipt_id: Option<String>,
    pub measure_code: Option<String>,
}

/// One page of feedback, newest first, and whether more follow.
pub async fn list(
    db: &DatabaseConnection,
    filter: &FeedbackFilter,
    first: u64,
    after_id: Option<i64>,
) -> AppResult<(Vec<partner_feedback::Model>, bool)> {
    use partner_feedback::Column as C;
    let mut query = partner_feedback::Entity::find();
    if let Some(subject) = &filter.subject {
        query = query.filter(C::Subject.eq(subject.as_str()));
    }
    if let Some(receipt_id) = &filter.receipt_id {
        query = query.filter(C::ReceiptId.eq(receipt_id.as_str()));
    }
    if let Some(code) = &filter.measure_code {
        query = query.filter(C::MeasureCode.eq(code.as_str()));
    }
    super::page::fetch(
        db,
        super::page::descending_before(query, C::Id, after_id),
        first,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Identity;

    fn record(subject: &str, role: &str) -> check_record::Model {
        check_record::Model {
            id: "r1".into(),
            subject: subject.into(),
            role: role.into(),
            domain: entity::measure::Domain::Procurement,
            uscc: "91110000101623741K".into(),
            operator_id: None,
            as_of: chrono::Utc::now(),
            checked_at: chrono::Utc::now(),
            reference: None,
            decision: entity::check_record::Decision::Clear,
            hit_listing_ids: json!([]),
            hit_measure_codes: Some(json!([])),
            warnings: json!([]),
            request_id: "req".into(),
            batch_id: None,
            known_at: None,
        }
    }

    fn actor(subject: &str, role: Role) -> Actor {
        Actor {
            identity: Identity {
                subject: subject.into(),
                role,
                domains: vec![],
                region: None,
                token_id: None,
            },
            request_id: "req".into(),
        }
    }

    #[test]
    fn only_a_hit_measure_was_applied() {
        let clear = record("p1", "partner");
        let e = ensure_applied_measure_was_a_hit(&clear, &[], "PROCUREMENT_RESTRICT").unwrap_err();
        assert!(e.to_string().contains("no hits"), "{e}");
        let hits = vec!["BIDDING_RESTRICT".to_string()];
        assert!(ensure_applied_measure_was_a_hit(&clear, &hits, "BIDDING_RESTRICT").is_ok());
        assert!(ensure_applied_measure_was_a_hit(&clear, &hits, "BIDDING_CONSIDER").is_err());
    }

    #[test]
    fn only_the_checking_partner_reports() {
        let rec = record("p1", "partner");
        assert!(may_report(&actor("p1", Role::Partner), &rec).is_ok());
        assert!(may_report(&actor("p2", Role::Partner), &rec).is_err());
        assert!(may_report(&actor("p1", Role::Admin), &rec).is_err());
        // An admin's check with the same subject name is not the partner's.
        assert!(may_report(&actor("p1", Role::Partner), &record("p1", "admin")).is_err());
    }
}
