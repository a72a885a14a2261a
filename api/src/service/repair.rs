//! Credit repair (信用修复): recording applications with their eligibility, the decision
//! deadline in working days, approval (early removal, REPAIRED) or rejection, revocation
//! of a repair obtained by fraud, and the deadline queries. Every change is versioned
//! and audited in its transaction.

use super::audit::{self, AuditEntry};
use super::{Actor, Services, calendar, listings, required_text};
use crate::domain::lifecycle::{ListingStatus, StoredStatus};
use crate::domain::listing_rules::ListRules;
use crate::domain::refusal::{Reason, Refusal};
use crate::domain::region::{DivisionCode, ScopeMatch, scope_match};
use crate::domain::repair::{
    self, ConditionResult, DocumentKind, Facts, LaterListing, LaterSince, OnTimeRate, RepairStatus,
    Statement, Statements,
};
use crate::domain::{china_date, china_midnight};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Days, NaiveDate, Utc};
use entity::repair_application::RepairStatus as StoredRepairStatus;
use entity::{listing, operator, repair_application};
use sea_orm::ActiveEnum;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const MAX_DOCUMENTS: usize = 50;
const MAX_NOTE_CHARS: usize = 2000;
const MAX_REASON_CHARS: usize = 5000;

/// One document received, as recorded (the file itself stays in the authority's
/// document system; the digest identifies it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    pub kind: DocumentKind,
    pub file_name: String,
    pub sha256: String,
}

#[derive(Clone, Debug)]
pub struct SubmitInput {
    pub listing_id: i64,
    pub received_date: NaiveDate,
    pub documents: Vec<Document>,
    pub statements: Statements,
}

/// An application as the API shows it: the row with its JSON parsed.
#[derive(Clone, Debug)]
pub struct RepairView {
    pub row: repair_application::Model,
    pub status: RepairStatus,
    pub documents: Vec<Document>,
    pub statements: Statements,
    pub eligibility: Vec<ConditionResult>,
}

impl RepairView {
    pub fn from_row(row: repair_application::Model) -> AppResult<Self> {
        let corrupt = |what: &str| {
            AppError::internal(anyhow::anyhow!(
                "repair application {} has unreadable {what}",
                row.id
            ))
        };
        let status = row.status.into();
        let documents =
            serde_json::from_value(row.documents.clone()).map_err(|_| corrupt("documents"))?;
        let statements =
            serde_json::from_value(row.statements.clone()).map_err(|_| corrupt("statements"))?;
        let eligibility =
            serde_json::from_value(row.eligibility.clone()).map_err(|_| corrupt("eligibility"))?;
        Ok(Self {
            row,
            status,
            documents,
            statements,
            eligibility,
        })
    }

    /// Pending after its due date, or decided after it.
    pub fn overdue(&self, today: NaiveDate) -> bool {
        repair::is_overdue(
            self.status,
            self.row.due_date,
            self.row.decided_at.map(china_date),
            today,
        )
    }
}

fn clean_statement(field: &str, s: Statement) -> AppResult<Statement> {
    let note = match s.note.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => {
            return Err(AppError::bad_input(format!(
                "{field}.note is longer than {MAX_NOTE_CHARS} characters"
            )));
        }
        Some(n) => Some(n.to_string()),
    };
    Ok(Statement {
        affirmed: s.affirmed,
        note,
    })
}

fn clean_documents(docs: Vec<Document>) -> AppResult<Vec<Document>> {
    if docs.len() > MAX_DOCUMENTS {
        return Err(AppError::bad_input(format!(
            "at most {MAX_DOCUMENTS} documents per application"
        )));
    }
    docs.into_iter()
        .enumerate()
        .map(|(i, d)| {
            let sha256 = repair::parse_sha256(&d.sha256).map_err(|msg| {
                AppError::from(
                    Refusal::new(
                        Reason::InvalidSha256,
                        format!("documents[{i}].sha256: {msg}"),
                    )
                    .with("index", i),
                )
            })?;
            Ok(Document {
                kind: d.kind,
                file_name: required_text(&format!("documents[{i}].fileName"), &d.file_name, 255)?,
                sha256,
            })
        })
        .collect()
}

/// Other listings of the operator that show a new heavier penalty since `since` (the
/// listing's start): decided ones (LISTED or REPAIRED, not revoked) that took effect
/// after it, and proposed ones whose penalty was decided after its Beijing date. A
/// proposal is a penalty already decided whose listing waits for the party's defence;
/// leaving it out let a listing be removed early although a heavier penalty had come
/// since. A withdrawn proposal or a revoked listing does not count.
async fn later_listings<C: ConnectionTrait>(
    db: &C,
    l: &listing::Model,
    since: DateTime<Utc>,
) -> AppResult<Vec<LaterListing>> {
    let others = listing::Entity::find()
        .filter(listing::Column::OperatorId.eq(l.operator_id))
        .filter(listing::Column::Id.ne(l.id))
        .filter(listing::Column::Status.is_in([
            StoredStatus::Listed,
            StoredStatus::Repaired,
            StoredStatus::Proposed,
        ]))
        .order_by_asc(listing::Column::Id)
        .all(db)
        .await?;
    let listed_on = china_date(since);
    let mut out = Vec::new();
    for other in others {
        let counted = if other.status == StoredStatus::Proposed {
            (other.penalty_date > listed_on).then_some(LaterSince::Proposed {
                penalty_date: other.penalty_date,
            })
        } else {
            let Some(first) = listings::periods_of(db, other.id).await?.into_iter().next() else {
                continue;
            };
            (first.starts_at > since).then(|| LaterSince::Listed(china_date(first.starts_at)))
        };
        if let Some(since) = counted {
            let list = listings::list_of(db, &other).await?;
            out.push(LaterListing {
                id: other.id,
                list_code: list.code,
                since,
            });
        }
    }
    Ok(out)
}

/// What an application is judged against besides its own statements and documents, at
/// submission and again at approval: the rules of the listing's list (its repair
/// minimum) and the operator's listings since the listing took effect (`listed_since`).
async fn judged_against<C: ConnectionTrait>(
    db: &C,
    l: &listing::Model,
    listed_since: DateTime<Utc>,
) -> AppResult<(ListRules, Vec<LaterListing>)> {
    let list = listings::list_of(db, l).await?;
    let rules = listings::list_rules(&list)?;
    Ok((rules, later_listings(db, l, listed_since).await?))
}

fn snapshot(a: &repair_application::Model) -> Value {
    let instant = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    };
    json!({
        "id": a.id, "listing_id": a.listing_id, "status": a.status,
        "received_date": a.received_date.to_string(),
        "accepted_at": instant(a.accepted_at),
        "due_date": a.due_date.map(|d| d.to_string()),
        "documents": a.documents, "statements": a.statements, "eligibility": a.eligibility,
        "decided_at": instant(a.decided_at), "decided_by": a.decided_by,
        "decision_reason": a.decision_reason, "decided_on_time": a.decided_on_time,
        "revoked_at": instant(a.revoked_at), "revocation_reason": a.revocation_reason,
        "version": a.version,
    })
}

async fn audit_change(
    tx: &DatabaseTransaction,
    actor: &Actor,
    at: DateTime<Utc>,
    action: &'static str,
    before: Option<Value>,
    saved: &repair_application::Model,
    reason: Option<String>,
) -> AppResult<()> {
    audit::record(
        tx,
        actor,
        at,
        AuditEntry::new(action, "repair_application", saved.id)
            .before(before)
            .after(Some(snapshot(saved)))
            .reason(reason),
    )
    .await?;
    Ok(())
}

/// Records an application received for a listing. Eligibility is judged condition by
/// condition; an ineligible application is recorded as INELIGIBLE with its verdicts
/// (the answer, not an error). An eligible one is PENDING and due the list's number of
/// working days after it was received: the authority accepts on receipt, and recording
/// it later must not move the legal deadline.
pub async fn submit(
    services: &Services,
    actor: &Actor,
    repair_max_months: i32,
    input: SubmitInput,
) -> AppResult<RepairView> {
    let documents = clean_documents(input.documents)?;
    let statements = Statements {
        obligations_performed: clean_statement(
            "obligationsPerformed",
            input.statements.obligations_performed,
        )?,
        harm_corrected: clean_statement("harmCorrected", input.statements.harm_corrected)?,
        statutory_restriction_ended: clean_statement(
            "statutoryRestrictionEnded",
            input.statements.statutory_restriction_ended,
        )?,
    };
    let db = &services.db;
    let (tx, at) = audit::begin_write_at(db, &services.clock).await?;
    let today = china_date(at);
    if input.received_date > today {
        return Err(AppError::bad_input("receivedDate is in the future"));
    }
    let l = listings::in_scope(&tx, actor, input.listing_id).await?;
    let periods = listings::periods_of(&tx, l.id).await?;
    let status = listings::status_at(&l, &periods, at)?;
    if status != ListingStatus::Listed {
        return Err(Refusal::new(
            Reason::ListingNotInForce,
            format!(
                "listing {} is {}: credit repair applies only to a listing in force (LISTED)",
                l.id,
                crate::domain::enum_name(status)
            ),
        )
        .with("status", crate::domain::enum_name(status))
        .into());
    }
    let first = periods.first().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("listed listing {} has no period", l.id))
    })?;
    let listed_on = china_date(first.starts_at);
    if input.received_date < listed_on {
        return Err(AppError::bad_input(format!(
            "receivedDate {} is before the listing took effect ({listed_on})",
            input.received_date
        )));
    }
    let open = repair_application::Entity::find()
        .filter(repair_application::Column::ListingId.eq(l.id))
        .filter(repair_application::Column::Status.eq(StoredRepairStatus::Pending))
        .one(&tx)
        .await?;
    if let Some(open) = open {
        return Err(AppError::Conflict(format!(
            "listing {} already has a pending repair application ({}): decide it first",
            l.id, open.id
        )));
    }
    let (rules, later) = judged_against(&tx, &l, first.starts_at).await?;
    let kinds: Vec<DocumentKind> = documents.iter().map(|d| d.kind).collect();
    let eligibility = repair::assess(&Facts {
        listed_on,
        received_on: input.received_date,
        min_months: rules.repair_min_months,
        max_months: u32::try_from(repair_max_months).map_err(|_| {
            AppError::internal(anyhow::anyhow!(
                "rules.repair_max_months is negative ({repair_max_months})"
            ))
        })?,
        statements: &statements,
        later_listings: &later,
        documents: &kinds,
    });
    let (status, accepted_at, due_date) = if repair::is_eligible(&eligibility) {
        // An eligible application is recorded whatever the calendar holds; its due date
        // may have to be counted on weekdays (`deadline_of_act`, `dueDateProvisional`).
        let cal = calendar::load(&tx).await?;
        let due = calendar::deadline_of_act(
            &cal,
            input.received_date,
            rules.repair_decision_working_days,
            &format!("repair application for listing {}: due date", l.id),
        )?;
        (RepairStatus::Pending, Some(at), Some(due))
    } else {
        (RepairStatus::Ineligible, None, None)
    };
    let to_json = |v: serde_json::Result<Value>| v.map_err(AppError::internal);
    let saved = repair_application::ActiveModel {
        listing_id: Set(l.id),
        status: Set(status.into()),
        received_date: Set(input.received_date),
        accepted_at: Set(accepted_at),
        due_date: Set(due_date),
        documents: Set(to_json(serde_json::to_value(&documents))?),
        statements: Set(to_json(serde_json::to_value(&statements))?),
        eligibility: Set(to_json(serde_json::to_value(&eligibility))?),
        decided_at: Set(None),
        decided_by: Set(None),
        decision_reason: Set(None),
        revoked_at: Set(None),
        revocation_reason: Set(None),
        decided_on_time: Set(None),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let action = if status == RepairStatus::Pending {
        "repair.accepted"
    } else {
        "repair.ineligible"
    };
    audit_change(&tx, actor, at, action, None, &saved, None).await?;
    tx.commit().await?;
    RepairView::from_row(saved)
}

/// Loads an application for a change: it must exist, its listing's operator must lie in
/// the actor's region, and it must be at the expected version (when one is given).
async fn load_for_change(
    tx: &DatabaseTransaction,
    actor: &Actor,
    id: i64,
    expected_version: Option<i32>,
) -> AppResult<(repair_application::Model, listing::Model)> {
    let a = repair_application::Entity::find_by_id(id)
        .one(tx)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("there is no repair application {id}")))?;
    let l = listings::in_scope(tx, actor, a.listing_id).await?;
    if let Some(expected) = expected_version
        && a.version != expected
    {
        return Err(AppError::Conflict(format!(
            "repair application {id} is at version {}, not {expected}: someone changed it; reload and retry",
            a.version
        )));
    }
    Ok((a, l))
}

fn ensure_status(a: &repair_application::Model, wanted: RepairStatus, what: &str) -> AppResult<()> {
    if RepairStatus::from(a.status) == wanted {
        Ok(())
    } else {
        Err(Refusal::new(
            Reason::InvalidTransition,
            format!(
                "repair application {} is {}: only a {} application can be {what}",
                a.id,
                a.status.to_value(),
                crate::domain::enum_name(wanted)
            ),
        )
        .with("status", a.status.to_value())
        .into())
    }
}

fn bump(a: repair_application::Model, at: DateTime<Utc>) -> repair_application::ActiveModel {
    let version = a.version + 1;
    let mut m: repair_application::ActiveModel = a.into();
    m.version = Set(version);
    m.updated_at = Set(at);
    m
}

/// Refuses to approve an application that the registry as it stands no longer supports
/// (`repair::reassess`: a heavier penalty listed since it was submitted, the listing's
/// start corrected), naming each failed condition. Nothing is written; the application
/// stays PENDING, to be rejected.
async fn ensure_still_eligible(
    tx: &DatabaseTransaction,
    a: &repair_application::Model,
    l: &listing::Model,
) -> AppResult<()> {
    let recorded = RepairView::from_row(a.clone())?;
    let periods = listings::periods_of(tx, l.id).await?;
    let first = periods
        .first()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("listing {} has no period", l.id)))?;
    let (rules, later) = judged_against(tx, l, first.starts_at).await?;
    let kinds: Vec<DocumentKind> = recorded.documents.iter().map(|d| d.kind).collect();
    let now = repair::reassess(
        &Facts {
            listed_on: china_date(first.starts_at),
            received_on: a.received_date,
            min_months: rules.repair_min_months,
            max_months: u32::MAX,
            statements: &recorded.statements,
            later_listings: &later,
            documents: &kinds,
        },
        &recorded.eligibility,
    );
    if repair::is_eligible(&now) {
        return Ok(());
    }
    let failed: Vec<&ConditionResult> = now.iter().filter(|r| !r.met).collect();
    let named: Vec<String> = failed
        .iter()
        .map(|r| {
            format!(
                "{} ({})",
                crate::domain::enum_name(r.condition),
                r.explanation
            )
        })
        .collect();
    Err(Refusal::new(
        Reason::NoLongerEligible,
        format!(
            "repair application {} can no longer be approved: as the registry stands now it fails {}; reject it instead",
            a.id,
            named.join("; ")
        ),
    )
    .with(
        "failedConditions",
        failed
            .iter()
            .map(|r| crate::domain::enum_name(r.condition))
            .collect::<Vec<_>>(),
    )
    .into())
}

#[derive(Clone, Debug)]
pub struct DecideInput {
    pub id: i64,
    pub expected_version: i32,
    pub approve: bool,
    pub reason: String,
}

/// Decides a pending application. Approval judges eligibility again on the registry as
/// it stands (`ensure_still_eligible`) and removes the listing early (REPAIRED) at the
/// decision instant, in the same transaction; rejection leaves it as it is.
pub async fn decide(
    services: &Services,
    actor: &Actor,
    input: DecideInput,
) -> AppResult<RepairView> {
    let reason = required_text("reason", &input.reason, MAX_REASON_CHARS)?;
    let db = &services.db;
    let (tx, at) = audit::begin_write_at(db, &services.clock).await?;
    let (a, l) = load_for_change(&tx, actor, input.id, Some(input.expected_version)).await?;
    let what = if input.approve {
        "approved"
    } else {
        "rejected"
    };
    ensure_status(&a, RepairStatus::Pending, what)?;
    let due = a.due_date.ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "pending repair application {} has no due date",
            a.id
        ))
    })?;
    if input.approve {
        ensure_still_eligible(&tx, &a, &l).await?;
        listings::mark_repaired(
            &tx,
            actor,
            l.id,
            at,
            &format!("credit repair application {} approved: {reason}", a.id),
        )
        .await?;
    }
    let before = snapshot(&a);
    let mut m = bump(a, at);
    let status = if input.approve {
        RepairStatus::Approved
    } else {
        RepairStatus::Rejected
    };
    m.status = Set(status.into());
    m.decided_at = Set(Some(at));
    m.decided_by = Set(Some(actor.identity.subject.clone()));
    m.decision_reason = Set(Some(reason.clone()));
    m.decided_on_time = Set(Some(repair::decided_on_time(due, china_date(at))));
    let saved = m.update(&tx).await?;
    let action = if input.approve {
        "repair.approved"
    } else {
        "repair.rejected"
    };
    audit_change(&tx, actor, at, action, Some(before), &saved, Some(reason)).await?;
    // Approving or revoking a repair changes the list.
    services.commit_list_change(tx).await?;
    RepairView::from_row(saved)
}

#[derive(Clone, Debug)]
pub struct RevokeInput {
    pub id: i64,
    pub expected_version: Option<i32>,
    pub reason: String,
}

/// A repair obtained by fraud: the application is REVOKED and the listing is in force
/// again from now, for a full new period (list policy RESTART) or the time it had left
/// (RESUME).
pub async fn revoke(
    services: &Services,
    actor: &Actor,
    input: RevokeInput,
) -> AppResult<RepairView> {
    let reason = required_text("reason", &input.reason, MAX_REASON_CHARS)?;
    let db = &services.db;
    let (tx, at) = audit::begin_write_at(db, &services.clock).await?;
    let (a, l) = load_for_change(&tx, actor, input.id, input.expected_version).await?;
    ensure_status(&a, RepairStatus::Approved, "revoked")?;
    let list = listings::list_of(&tx, &l).await?;
    let restart = list.repair_revocation_policy == "RESTART";
    listings::restore_after_repair_revocation(
        &tx,
        actor,
        l.id,
        at,
        restart,
        &format!("credit repair application {} revoked: {reason}", a.id),
    )
    .await?;
    let before = snapshot(&a);
    let mut m = bump(a, at);
    m.status = Set(StoredRepairStatus::Revoked);
    m.revoked_at = Set(Some(at));
    m.revocation_reason = Set(Some(reason.clone()));
    let saved = m.update(&tx).await?;
    audit_change(
        &tx,
        actor,
        at,
        "repair.revoked",
        Some(before),
        &saved,
        Some(reason),
    )
    .await?;
    // Approving or revoking a repair changes the list.
    services.commit_list_change(tx).await?;
    RepairView::from_row(saved)
}

pub async fn by_id<C: ConnectionTrait>(db: &C, id: i64) -> AppResult<Option<RepairView>> {
    repair_application::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(RepairView::from_row)
        .transpose()
}

#[derive(Clone, Debug, Default)]
pub struct RepairFilter {
    pub status: Option<RepairStatus>,
    pub listing_id: Option<i64>,
    pub overdue: Option<bool>,
    /// Due strictly before this date.
    pub due_before: Option<NaiveDate>,
    /// Due strictly after this date.
    pub due_after: Option<NaiveDate>,
}

/// `overdue` as SQL: pending with the due date passed, or decided late.
fn overdue_condition(today: NaiveDate) -> Condition {
    Condition::any()
        .add(
            Condition::all()
                .add(repair_application::Column::Status.eq(StoredRepairStatus::Pending))
                .add(repair_application::Column::DueDate.lt(today)),
        )
        .add(repair_application::Column::DecidedOnTime.eq(false))
}

/// The complement of [`overdue_condition`], spelled out: `NOT` over nullable columns
/// would drop the rows where they are null (an ineligible application has no due date).
fn not_overdue_condition(today: NaiveDate) -> Condition {
    Condition::all()
        .add(
            Condition::any()
                .add(repair_application::Column::Status.ne(StoredRepairStatus::Pending))
                .add(repair_application::Column::DueDate.gte(today)),
        )
        .add(
            Condition::any()
                .add(repair_application::Column::DecidedOnTime.is_null())
                .add(repair_application::Column::DecidedOnTime.eq(true)),
        )
}

pub fn condition(filter: &RepairFilter, today: NaiveDate) -> Condition {
    let mut cond = Condition::all();
    if let Some(s) = filter.status {
        cond = cond.add(repair_application::Column::Status.eq(StoredRepairStatus::from(s)));
    }
    if let Some(id) = filter.listing_id {
        cond = cond.add(repair_application::Column::ListingId.eq(id));
    }
    match filter.overdue {
        Some(true) => cond = cond.add(overdue_condition(today)),
        Some(false) => cond = cond.add(not_overdue_condition(today)),
        None => {}
    }
    if let Some(d) = filter.due_before {
        cond = cond.add(repair_application::Column::DueDate.lt(d));
    }
    if let Some(d) = filter.due_after {
        cond = cond.add(repair_application::Column::DueDate.gt(d));
    }
    cond
}

/// One page in id order after `after`; `first + 1` rows are read to learn whether
/// another page follows.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    filter: &RepairFilter,
    today: NaiveDate,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<RepairView>, bool)> {
    let q = repair_application::Entity::find().filter(condition(filter, today));
    let q = super::page::ascending_after(q, repair_application::Column::Id, after);
    let (rows, has_next) = super::page::fetch(db, q, first).await?;
    let views = rows
        .into_iter()
        .map(RepairView::from_row)
        .collect::<AppResult<Vec<_>>>()?;
    Ok((views, has_next))
}

/// `listing_id IN (listings of operators registered in region)`, with the region-scope
/// rule of admins: a city code (`xxxx00`) covers its counties.
fn region_condition(region: &str) -> Condition {
    let operators = match scope_match(Some(region)) {
        ScopeMatch::Everything => Condition::all(),
        ScopeMatch::Prefix(prefix) => {
            Condition::all().add(operator::Column::RegionCode.starts_with(prefix))
        }
        ScopeMatch::Exactly(code) => Condition::all().add(operator::Column::RegionCode.eq(code)),
    };
    Condition::all().add(
        repair_application::Column::ListingId.in_subquery(
            Query::select()
                .column(listing::Column::Id)
                .from(listing::Entity)
                .and_where(
                    listing::Column::OperatorId.in_subquery(
                        Query::select()
                            .column(operator::Column::Id)
                            .from(operator::Entity)
                            .cond_where(operators)
                            .to_owned(),
                    ),
                )
                .to_owned(),
        ),
    )
}

/// The decisions made between `from` and `to` (Beijing dates, inclusive), optionally
/// only on operators registered in `region`, and how many were on time.
pub async fn on_time_rate<C: ConnectionTrait>(
    db: &C,
    from: NaiveDate,
    to: NaiveDate,
    region: Option<&str>,
) -> AppResult<OnTimeRate> {
    if from > to {
        return Err(AppError::bad_input("from is after to"));
    }
    let end = to
        .checked_add_days(Days::new(1))
        .ok_or_else(|| AppError::bad_input("to is beyond the supported calendar"))?;
    let mut cond = Condition::all()
        .add(repair_application::Column::DecidedAt.gte(china_midnight(from)))
        .add(repair_application::Column::DecidedAt.lt(china_midnight(end)))
        .add(repair_application::Column::DecidedOnTime.is_not_null());
    if let Some(r) = region {
        let r = DivisionCode::parse("region", r)?;
        cond = cond.add(region_condition(r.as_str()));
    }
    let decided = repair_application::Entity::find()
        .filter(cond.clone())
        .count(db)
        .await?;
    let on_time = repair_application::Entity::find()
        .filter(cond)
        .filter(repair_application::Column::DecidedOnTime.eq(true))
        .count(db)
        .await?;
    let as_i64 = |n: u64| i64::try_from(n).map_err(AppError::internal);
    Ok(repair::on_time_rate(as_i64(decided)?, as_i64(on_time)?))
}

/// Applications of a set of listings, for the per-request loader.
pub async fn of_listings<C: ConnectionTrait>(
    db: &C,
    listing_ids: &[i64],
) -> AppResult<Vec<RepairView>> {
    repair_application::Entity::find()
        .filter(repair_application::Column::ListingId.is_in(listing_ids.to_vec()))
        .order_by_asc(repair_application::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(RepairView::from_row)
        .collect()
}
