//! Listings: the legal lifecycle (propose, decide, withdraw, revoke, correct), every
//! change versioned, audited and kept as a revision for record-time questions.

use super::audit::{self, AuditEntry};
use super::{Actor, Services, calendar, catalogue, ensure_scope, operators, required_text};
use crate::domain::china_date;
use crate::domain::document::DocumentNumber;
use crate::domain::lifecycle::{self, Action, ListingStatus, Period, StoredStatus};
use crate::domain::listing_rules::{self, ListRules};
use crate::domain::refusal::{Reason, Refusal};
use crate::domain::region::DivisionCode;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    credit_list, listing, listing_measure, listing_period, listing_revision, measure, operator,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, Set,
};
use serde_json::{Value, json};

/// A listing with what its state depends on.
#[derive(Clone, Debug)]
pub struct ListingView {
    pub listing: listing::Model,
    pub periods: Vec<listing_period::Model>,
}

pub fn to_period(p: &listing_period::Model) -> Period {
    Period {
        starts_at: p.starts_at,
        ends_at: p.ends_at,
        removed_at: p.removed_at,
    }
}

pub fn to_periods(rows: &[listing_period::Model]) -> Vec<Period> {
    rows.iter().map(to_period).collect()
}

pub fn status_at(
    l: &listing::Model,
    periods: &[listing_period::Model],
    at: DateTime<Utc>,
) -> AppResult<ListingStatus> {
    Ok(lifecycle::display_status(
        l.status,
        &to_periods(periods),
        at,
    ))
}

pub async fn periods_of<C: ConnectionTrait>(
    db: &C,
    listing_id: i64,
) -> AppResult<Vec<listing_period::Model>> {
    Ok(listing_period::Entity::find()
        .filter(listing_period::Column::ListingId.eq(listing_id))
        .order_by_asc(listing_period::Column::StartsAt)
        .order_by_asc(listing_period::Column::Id)
        .all(db)
        .await?)
}

pub async fn measure_codes_of<C: ConnectionTrait>(
    db: &C,
    listing_id: i64,
) -> AppResult<Vec<String>> {
    let links = listing_measure::Entity::find()
        .filter(listing_measure::Column::ListingId.eq(listing_id))
        .all(db)
        .await?;
    let ids: Vec<i64> = links.iter().map(|l| l.measure_id).collect();
    let mut codes: Vec<String> = measure::Entity::find()
        .filter(measure::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.code)
        .collect();
    codes.sort();
    Ok(codes)
}

/// The listing as a document: what the audit log and the revisions keep.
pub async fn snapshot<C: ConnectionTrait>(db: &C, l: &listing::Model) -> AppResult<Value> {
    let periods = periods_of(db, l.id).await?;
    let measures = measure_codes_of(db, l.id).await?;
    Ok(snapshot_of(l, &periods, &measures))
}

/// [`snapshot`] from what the caller already holds: the listing's periods (in start
/// order) and its measure codes (sorted). An import that has just written them builds the
/// document without reading them back.
pub(crate) fn snapshot_of(
    l: &listing::Model,
    periods: &[listing_period::Model],
    measures: &[String],
) -> Value {
    json!({
        "id": l.id, "operator_id": l.operator_id, "list_id": l.list_id, "status": l.status,
        "authority": l.authority, "authority_region": l.authority_region,
        "penalty_doc_no": l.penalty_doc_no, "penalty_date": l.penalty_date.to_string(),
        "violation_category": l.violation_category, "reason": l.reason, "legal_basis": l.legal_basis,
        "notice_date": l.notice_date.to_string(), "defence_deadline": l.defence_deadline.to_string(),
        "proposed_at": instant(l.proposed_at),
        "decision_doc_no": l.decision_doc_no, "decision_date": l.decision_date.map(|d| d.to_string()),
        "period_months_override": l.period_months_override,
        "removal_doc_no": l.removal_doc_no, "removal_reason": l.removal_reason,
        "publicity_stop_deadline": l.publicity_stop_deadline.map(|d| d.to_string()),
        "version": l.version,
        "periods": periods.iter().map(|p| json!({
            "starts_at": instant(p.starts_at), "ends_at": instant(p.ends_at),
            "removed_at": p.removed_at.map(instant), "removal_kind": p.removal_kind,
        })).collect::<Vec<_>>(),
        "measures": measures,
    })
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Closes the current revision and records the new one (record time).
async fn record_revision(
    tx: &DatabaseTransaction,
    l: &listing::Model,
    action: &str,
    doc: &Value,
    at: DateTime<Utc>,
) -> AppResult<()> {
    listing_revision::Entity::update_many()
        .col_expr(
            listing_revision::Column::SupersededAt,
            sea_orm::sea_query::Expr::value(Some(at)),
        )
        .filter(listing_revision::Column::ListingId.eq(l.id))
        .filter(listing_revision::Column::SupersededAt.is_null())
        .exec(tx)
        .await?;
    listing_revision::ActiveModel {
        listing_id: Set(l.id),
        version: Set(l.version),
        action: Set(action.to_string()),
        recorded_at: Set(at),
        superseded_at: Set(None),
        snapshot: Set(doc.clone()),
        ..Default::default()
    }
    .insert(tx)
    .await?;
    Ok(())
}

/// Writes the revision and the audit event of a change, in the change's transaction.
/// (Also used by the expiry job of the change feed, `service::feed`.)
pub(crate) async fn finish_change(
    tx: &DatabaseTransaction,
    actor: &Actor,
    saved: &listing::Model,
    action: &'static str,
    before: Option<Value>,
    reason: Option<String>,
) -> AppResult<()> {
    finish_marked_change(tx, actor, saved, action, before, reason, None).await
}

/// [`finish_change`] with a `marker` kept under the key `import` of the revision's
/// snapshot and the audit event's `after`: an import marks what it wrote (file,
/// SHA-256, batch, row).
pub(crate) async fn finish_marked_change(
    tx: &DatabaseTransaction,
    actor: &Actor,
    saved: &listing::Model,
    action: &'static str,
    before: Option<Value>,
    reason: Option<String>,
    marker: Option<Value>,
) -> AppResult<()> {
    let mut after = snapshot(tx, saved).await?;
    if let (Some(marker), Value::Object(doc)) = (marker, &mut after) {
        doc.insert("import".into(), marker);
    }
    record_revision(tx, saved, action, &after, saved.updated_at).await?;
    // The change acts at the instant its row records (`bump`), read from the clock.
    audit::record(
        tx,
        actor,
        saved.updated_at,
        AuditEntry::new(action, "listing", saved.id)
            .before(before)
            .after(Some(after))
            .reason(reason),
    )
    .await?;
    Ok(())
}

/// An open change of one listing: the write transaction (holding the audit chain's
/// lock), the instant it acts at, and the listing as it was.
struct Change {
    tx: DatabaseTransaction,
    at: DateTime<Utc>,
    listing: listing::Model,
    periods: Vec<listing_period::Model>,
    /// The listing's snapshot before the change, for the audit event.
    before: Value,
}

/// Begins a change of listing `id` (the caller's view of it at `expected_version`): it must exist, lie in the actor's region, be at the
/// expected version and be in a state that allows `action`.
async fn begin(
    services: &Services,
    actor: &Actor,
    (id, expected_version): (i64, i32),
    action: Action,
) -> AppResult<Change> {
    let (tx, at) = audit::begin_write_at(&services.db, &services.clock).await?;
    let l = in_scope(&tx, actor, id).await?;
    if l.version != expected_version {
        return Err(AppError::Conflict(format!(
            "listing {id} is at version {}, not {expected_version}: someone changed it; reload and retry",
            l.version
        )));
    }
    let periods = periods_of(&tx, id).await?;
    ensure_action(&l, &periods, action, at)?;
    let before = snapshot(&tx, &l).await?;
    Ok(Change {
        tx,
        at,
        listing: l,
        periods,
        before,
    })
}

/// Records the change's revision and audit event, commits, and announces it.
async fn commit_change(
    services: &Services,
    tx: DatabaseTransaction,
    actor: &Actor,
    saved: listing::Model,
    action: &'static str,
    before: Value,
    reason: Option<String>,
) -> AppResult<listing::Model> {
    finish_change(&tx, actor, &saved, action, Some(before), reason).await?;
    services.commit_list_change(tx).await?;
    Ok(saved)
}

/// **The one place** that loads a listing for an admin's change: it must exist and its
/// operator must lie in the admin's region (listing mutations, credit repair, typical
/// cases all come through here).
pub(crate) async fn in_scope<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    id: i64,
) -> AppResult<listing::Model> {
    let l = listing::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("there is no listing {id}")))?;
    let op = operator::Entity::find_by_id(l.operator_id)
        .one(db)
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("listing {id} names a missing operator"))
        })?;
    ensure_scope(actor, &op)?;
    Ok(l)
}

fn ensure_action(
    l: &listing::Model,
    periods: &[listing_period::Model],
    action: Action,
    at: DateTime<Utc>,
) -> AppResult<()> {
    let status = status_at(l, periods, at)?;
    lifecycle::ensure_allowed(status, action).map_err(|msg| {
        Refusal::new(Reason::InvalidTransition, msg)
            .with("status", crate::domain::enum_name(status))
            .into()
    })
}

/// Sets a listing's measures (and marks them used, which fixes their domain and effect).
pub(crate) async fn replace_measures(
    tx: &DatabaseTransaction,
    listing_id: i64,
    measures: &[measure::Model],
    at: DateTime<Utc>,
) -> AppResult<()> {
    listing_measure::Entity::delete_many()
        .filter(listing_measure::Column::ListingId.eq(listing_id))
        .exec(tx)
        .await?;
    let links: Vec<(i64, i64)> = measures.iter().map(|m| (listing_id, m.id)).collect();
    crate::store::insert_many::insert_listing_measures(tx, &links).await?;
    let ids: Vec<i64> = measures.iter().map(|m| m.id).collect();
    catalogue::mark_used(tx, &ids, at).await
}

pub(crate) fn bump(l: listing::Model, at: DateTime<Utc>) -> listing::ActiveModel {
    let version = l.version + 1;
    let mut a: listing::ActiveModel = l.into();
    a.version = Set(version);
    a.updated_at = Set(at);
    a
}

/// The list a listing is on.
pub(crate) async fn list_of<C: ConnectionTrait>(
    db: &C,
    l: &listing::Model,
) -> AppResult<credit_list::Model> {
    credit_list::Entity::find_by_id(l.list_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("listing {} names a missing list", l.id)))
}

/// A list's rules; a negative number in the catalogue is a data fault, not a default.
pub(crate) fn list_rules(list: &credit_list::Model) -> AppResult<ListRules> {
    ListRules::of(list).map_err(|e| AppError::internal(anyhow::anyhow!(e)))
}

#[derive(Clone, Debug)]
pub struct ProposeInput {
    pub uscc: String,
    pub list_code: String,
    pub authority: String,
    pub authority_region: Option<String>,
    pub penalty_doc_no: String,
    pub penalty_date: NaiveDate,
    pub violation_category: String,
    pub reason: String,
    pub legal_basis: String,
    /// When the party was told; defaults to today (Beijing).
    pub notice_date: Option<NaiveDate>,
}

/// Proposes a listing: the party has been told and may state its case until the
/// defence deadline (working days after the notice, per list).
pub async fn propose(
    services: &Services,
    actor: &Actor,
    input: ProposeInput,
) -> AppResult<listing::Model> {
    let code =
        crate::domain::uscc::Uscc::parse_format(&input.uscc).map_err(operators::uscc_error)?;
    let authority = required_text("authority", &input.authority, 200)?;
    let penalty_doc_no =
        DocumentNumber::parse("penaltyDocNo", &input.penalty_doc_no)?.into_string();
    let reason = required_text("reason", &input.reason, 5000)?;
    let legal_basis = required_text("legalBasis", &input.legal_basis, 2000)?;
    let db = &services.db;
    let (tx, at) = audit::begin_write_at(db, &services.clock).await?;
    let today = china_date(at);
    let notice_date = input.notice_date.unwrap_or(today);
    listing_rules::check_proposal_dates(input.penalty_date, notice_date, today)?;
    let op = operators::find_by_uscc(&tx, code.as_str())
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "operator {code} is not registered: upsertOperator first"
            ))
        })?;
    ensure_scope(actor, &op)?;
    let list = catalogue::list_by_code(&tx, &input.list_code).await?;
    if !list.active {
        return Err(AppError::bad_input(format!(
            "list {} is not active",
            list.code
        )));
    }
    catalogue::ensure_category(&tx, input.violation_category.trim()).await?;
    let authority_region = match input.authority_region.as_deref() {
        Some(r) => DivisionCode::parse("authorityRegion", r)?.into_string(),
        None => op.region_code.clone(),
    };
    // The same penalty decision however it was typed (brackets, widths, invisible
    // characters): the operator's open listings on this list are few.
    let penalty_key = DocumentNumber::matching_key(&penalty_doc_no);
    let duplicate = listing::Entity::find()
        .filter(listing::Column::OperatorId.eq(op.id))
        .filter(listing::Column::ListId.eq(list.id))
        .filter(listing::Column::Status.is_in([StoredStatus::Proposed, StoredStatus::Listed]))
        .all(&tx)
        .await?
        .into_iter()
        .find(|l| DocumentNumber::matching_key(&l.penalty_doc_no) == penalty_key);
    if let Some(d) = duplicate {
        return Err(AppError::Conflict(format!(
            "listing {} already rests on penalty decision {} for this operator and list",
            d.id, d.penalty_doc_no
        )));
    }
    let rules = list_rules(&list)?;
    let cal = calendar::load(&tx).await?;
    let defence_deadline = cal
        .add_working_days(notice_date, rules.defence_working_days)
        .map_err(calendar::calendar_error)?;
    let saved = listing::ActiveModel {
        operator_id: Set(op.id),
        list_id: Set(list.id),
        status: Set(StoredStatus::Proposed),
        authority: Set(authority),
        authority_region: Set(authority_region),
        penalty_doc_no: Set(penalty_doc_no),
        penalty_date: Set(input.penalty_date),
        violation_category: Set(input.violation_category.trim().to_string()),
        reason: Set(reason),
        legal_basis: Set(legal_basis),
        notice_date: Set(notice_date),
        defence_deadline: Set(defence_deadline),
        proposed_at: Set(at),
        decision_doc_no: Set(None),
        decision_date: Set(None),
        period_months_override: Set(None),
        removal_doc_no: Set(None),
        removal_reason: Set(None),
        publicity_stop_deadline: Set(None),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    finish_change(&tx, actor, &saved, "listing.proposed", None, None).await?;
    services.commit_list_change(tx).await?;
    Ok(saved)
}

#[derive(Clone, Debug)]
pub struct DecideInput {
    pub id: i64,
    pub expected_version: i32,
    pub decision_doc_no: String,
    pub decision_date: NaiveDate,
    /// The instant the listing takes effect; defaults to the start of the decision date
    /// (Beijing), may be later, never before it, never in the future
    /// (`listing_rules::effective_from`).
    pub effective_at: Option<DateTime<Utc>>,
    /// A longer period set by law, in months; defaults to the list's.
    pub period_months: Option<i32>,
    /// The measures applied; defaults to the list's default measures.
    pub measure_codes: Option<Vec<String>>,
    /// The party waived its right to state its case, so the decision may precede the
    /// defence deadline.
    pub defence_waived: bool,
}

/// A listing's natural key is its list, its decision document number and its operator's
/// code: an import matches its rows by it, and an export re-imports through it, so two
/// listings sharing it could not be told apart (the second row of such an export was
/// refused as a duplicate, and which recorded listing the first corrected was chance).
async fn ensure_decision_number_free(
    tx: &DatabaseTransaction,
    l: &listing::Model,
    decision_doc_no: &str,
) -> AppResult<()> {
    let other = listing::Entity::find()
        .filter(listing::Column::OperatorId.eq(l.operator_id))
        .filter(listing::Column::ListId.eq(l.list_id))
        .filter(listing::Column::DecisionDocNo.eq(decision_doc_no))
        .filter(listing::Column::Id.ne(l.id))
        .one(tx)
        .await?;
    match other {
        Some(o) => Err(AppError::Conflict(format!(
            "listing {} of this operator on this list already has decision {decision_doc_no}: a decision number names one listing",
            o.id
        ))),
        None => Ok(()),
    }
}

pub async fn decide(
    services: &Services,
    actor: &Actor,
    input: DecideInput,
) -> AppResult<listing::Model> {
    let doc = DocumentNumber::parse("decisionDocNo", &input.decision_doc_no)?.into_string();
    let target = (input.id, input.expected_version);
    let change = begin(services, actor, target, Action::Decide).await?;
    let (tx, at, l, before) = (change.tx, change.at, change.listing, change.before);
    listing_rules::check_decision_date(
        listing_rules::Proposal {
            notice_date: l.notice_date,
            defence_deadline: l.defence_deadline,
        },
        input.decision_date,
        input.defence_waived,
        china_date(at),
    )?;
    let effective = listing_rules::effective_from(input.decision_date, input.effective_at, at)?;
    let list = list_of(&tx, &l).await?;
    let rules = list_rules(&list)?;
    let months = listing_rules::period_months(input.period_months, rules)?;
    let ends_at = listing_rules::period_end(effective, months)?;
    let measures = match &input.measure_codes {
        Some(codes) => catalogue::measures_by_codes(&tx, codes).await?,
        None => catalogue::default_measures(&tx, list.id).await?,
    };
    listing_rules::check_measures_present(measures.len(), input.measure_codes.is_none())?;
    ensure_decision_number_free(&tx, &l, &doc).await?;
    listing_period::ActiveModel {
        listing_id: Set(l.id),
        starts_at: Set(effective),
        ends_at: Set(ends_at),
        removed_at: Set(None),
        removal_kind: Set(None),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    replace_measures(&tx, l.id, &measures, at).await?;
    let mut a = bump(l, at);
    a.status = Set(StoredStatus::Listed);
    a.decision_doc_no = Set(Some(doc));
    a.decision_date = Set(Some(input.decision_date));
    a.period_months_override = Set((months != rules.period_months)
        .then(|| i32::try_from(months))
        .transpose()
        .map_err(AppError::internal)?);
    let saved = a.update(&tx).await?;
    commit_change(services, tx, actor, saved, "listing.decided", before, None).await
}

#[derive(Clone, Debug)]
pub struct WithdrawInput {
    pub id: i64,
    pub expected_version: i32,
    pub reason: String,
}

/// Drops a proposal after the party's defence.
pub async fn withdraw(
    services: &Services,
    actor: &Actor,
    input: WithdrawInput,
) -> AppResult<listing::Model> {
    let reason = required_text("reason", &input.reason, 5000)?;
    let target = (input.id, input.expected_version);
    let change = begin(services, actor, target, Action::Withdraw).await?;
    let (tx, at, l, before) = (change.tx, change.at, change.listing, change.before);
    let mut a = bump(l, at);
    a.status = Set(StoredStatus::Withdrawn);
    a.removal_reason = Set(Some(reason.clone()));
    let saved = a.update(&tx).await?;
    commit_change(
        services,
        tx,
        actor,
        saved,
        "listing.withdrawn",
        before,
        Some(reason),
    )
    .await
}

/// Why a penalty no longer supports its listing (Order 44 Art. 19).
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum RevocationGround {
    PenaltyRevoked,
    ConfirmedIllegal,
    ConfirmedVoid,
}

impl RevocationGround {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PenaltyRevoked => "PENALTY_REVOKED",
            Self::ConfirmedIllegal => "CONFIRMED_ILLEGAL",
            Self::ConfirmedVoid => "CONFIRMED_VOID",
        }
    }
}

#[derive(Clone, Debug)]
pub struct RevokeInput {
    pub id: i64,
    pub expected_version: i32,
    pub ground: RevocationGround,
    pub revocation_doc_no: String,
    pub reason: String,
    /// When the listing stops being in force; defaults to now, never in the future.
    pub effective_at: Option<DateTime<Utc>>,
}

/// The penalty was revoked, confirmed illegal or void: the listing is revoked and
/// publicity must stop within the list's working-day limit (3 under Order 44).
pub async fn revoke(
    services: &Services,
    actor: &Actor,
    input: RevokeInput,
) -> AppResult<listing::Model> {
    let reason = required_text("reason", &input.reason, 5000)?;
    let doc = DocumentNumber::parse("revocationDocNo", &input.revocation_doc_no)?.into_string();
    let target = (input.id, input.expected_version);
    let change = begin(services, actor, target, Action::Revoke).await?;
    let (tx, at, l, before) = (change.tx, change.at, change.listing, change.before);
    let periods = change.periods;
    let effective = listing_rules::removal_effective_at(
        input.effective_at,
        periods.first().map(|p| p.starts_at),
        at,
    )?;
    let rules = list_rules(&list_of(&tx, &l).await?)?;
    // The revocation is the legal act and is recorded whatever the calendar holds; its
    // publicity-stop deadline may have to be counted on weekdays (`deadline_of_act`).
    let cal = calendar::load(&tx).await?;
    let deadline = calendar::deadline_of_act(
        &cal,
        china_date(at),
        rules.publicity_stop_working_days,
        &format!("listing {} revoked: publicity-stop deadline", l.id),
    )?;
    end_open_periods(&tx, &periods, effective, "REVOKED").await?;
    let mut a = bump(l, at);
    a.status = Set(StoredStatus::Revoked);
    a.removal_doc_no = Set(Some(doc));
    a.removal_reason = Set(Some(format!("{}: {reason}", input.ground.as_str())));
    a.publicity_stop_deadline = Set(Some(deadline));
    let saved = a.update(&tx).await?;
    commit_change(
        services,
        tx,
        actor,
        saved,
        "listing.revoked",
        before,
        Some(reason),
    )
    .await
}

/// When listing `id` was revoked, the instant its publicity-stop deadline was counted
/// at: the revision `revoke` wrote (`None` for a listing revoked otherwise, the import).
pub async fn revoked_at<C: ConnectionTrait>(db: &C, id: i64) -> AppResult<Option<DateTime<Utc>>> {
    Ok(listing_revision::Entity::find()
        .filter(listing_revision::Column::ListingId.eq(id))
        .filter(listing_revision::Column::Action.eq("listing.revoked"))
        .order_by_desc(listing_revision::Column::RecordedAt)
        .one(db)
        .await?
        .map(|r| r.recorded_at))
}

/// Ends every period still open at `at` (a period already over is left as it was).
pub async fn end_open_periods(
    tx: &DatabaseTransaction,
    periods: &[listing_period::Model],
    at: DateTime<Utc>,
    kind: &str,
) -> AppResult<()> {
    for p in periods.iter().filter(|p| to_period(p).is_open(at)) {
        let mut a: listing_period::ActiveModel = p.clone().into();
        a.removed_at = Set(Some(at.max(p.starts_at)));
        a.removal_kind = Set(Some(kind.to_string()));
        a.update(tx).await?;
    }
    Ok(())
}

/// Data fields a correction may change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct Correction {
    pub authority: Option<String>,
    pub authority_region: Option<String>,
    pub penalty_doc_no: Option<String>,
    pub penalty_date: Option<NaiveDate>,
    pub violation_category: Option<String>,
    pub listing_reason: Option<String>,
    pub legal_basis: Option<String>,
    pub decision_doc_no: Option<String>,
    pub decision_date: Option<NaiveDate>,
    /// Corrects the end of the current period (e.g. a longer statutory restriction).
    pub expires_at: Option<DateTime<Utc>>,
    pub measure_codes: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub struct CorrectInput {
    pub id: i64,
    pub expected_version: i32,
    pub reason: String,
    pub changes: Correction,
}

/// Corrects recorded data with a stated reason; the previous values stay in the
/// revisions and the audit log.
pub async fn correct(
    services: &Services,
    actor: &Actor,
    input: CorrectInput,
) -> AppResult<listing::Model> {
    let reason = required_text("reason", &input.reason, 5000)?;
    let c = input.changes;
    let target = (input.id, input.expected_version);
    let change = begin(services, actor, target, Action::Correct).await?;
    let (tx, at, l, before) = (change.tx, change.at, change.listing, change.before);
    let periods = change.periods;
    let mut changed = false;
    let measures_changed = c.measure_codes.is_some();
    // A proposal, or one withdrawn before any decision, has no decision, measures or
    // period: a correction cannot give it what only decideListing gives.
    let never_decided = matches!(l.status, StoredStatus::Proposed | StoredStatus::Withdrawn);
    if let Some(codes) = &c.measure_codes {
        if never_decided {
            return Err(AppError::bad_input(
                "measures are applied by decideListing; a listing never decided has none",
            ));
        }
        let measures = catalogue::measures_by_codes(&tx, codes).await?;
        listing_rules::check_measures_present(measures.len(), false)?;
        replace_measures(&tx, l.id, &measures, at).await?;
        changed = true;
    }
    if let Some(expires_at) = c.expires_at {
        let expires_at = crate::domain::truncate_instant(expires_at);
        let current = periods.last().ok_or_else(|| {
            AppError::bad_input("expiresAt can only be corrected on a decided listing")
        })?;
        listing_rules::check_corrected_end(current.starts_at, expires_at)?;
        listing_rules::check_corrected_end_keeps_state(
            current.ends_at,
            expires_at,
            current.removed_at.is_some(),
            at,
        )?;
        if let Some(removed_at) = current.removed_at {
            listing_rules::check_corrected_end_after_removal(removed_at, expires_at)?;
        }
        listing_rules::check_shortened_end_keeps_minimum(
            current.starts_at,
            current.ends_at,
            expires_at,
            current.removed_at.is_some(),
            list_rules(&list_of(&tx, &l).await?)?,
            at,
        )?;
        let mut p: listing_period::ActiveModel = current.clone().into();
        p.ends_at = Set(expires_at);
        p.update(&tx).await?;
        changed = true;
    }
    if let Some(code) = &c.violation_category {
        catalogue::ensure_category(&tx, code.trim()).await?;
    }
    if let Some(r) = &c.authority_region {
        DivisionCode::parse("authorityRegion", r)?;
    }
    if (c.decision_date.is_some() || c.decision_doc_no.is_some()) && never_decided {
        return Err(AppError::bad_input(
            "a listing never decided (proposed or withdrawn) has no decision to correct",
        ));
    }
    if c.penalty_date.is_some() || c.decision_date.is_some() {
        // Only when a date changes: a correction of other fields must not fail on how
        // older data was recorded.
        listing_rules::check_corrected_dates(
            listing_rules::CorrectedDates {
                penalty_date: c.penalty_date.unwrap_or(l.penalty_date),
                notice_date: l.notice_date,
                defence_deadline: l.defence_deadline,
                decision_date: c.decision_date.or(l.decision_date),
                // The waiver is not stored; a recorded decision inside the defence period
                // could only have been made with it.
                decided_inside_defence_period: l
                    .decision_date
                    .is_some_and(|d| d <= l.defence_deadline),
                first_start: periods.first().map(|p| p.starts_at),
            },
            china_date(at),
        )?;
    }
    let mut a = bump(l.clone(), at);
    let fields: [(&str, &Option<String>, usize); 6] = [
        ("authority", &c.authority, 200),
        ("penaltyDocNo", &c.penalty_doc_no, 200),
        ("violationCategory", &c.violation_category, 64),
        ("reason", &c.listing_reason, 5000),
        ("legalBasis", &c.legal_basis, 2000),
        ("decisionDocNo", &c.decision_doc_no, 200),
    ];
    for (name, value, max) in fields {
        if let Some(v) = value {
            let v = required_text(name, v, max)?;
            changed = true;
            match name {
                "authority" => a.authority = Set(v),
                "penaltyDocNo" => a.penalty_doc_no = Set(v),
                "violationCategory" => a.violation_category = Set(v),
                "reason" => a.reason = Set(v),
                "legalBasis" => a.legal_basis = Set(v),
                _ => {
                    ensure_decision_number_free(&tx, &l, &v).await?;
                    a.decision_doc_no = Set(Some(v));
                }
            }
        }
    }
    if let Some(r) = c.authority_region {
        a.authority_region = Set(r.trim().to_string());
        changed = true;
    }
    if let Some(d) = c.penalty_date {
        a.penalty_date = Set(d);
        changed = true;
    }
    if let Some(d) = c.decision_date {
        a.decision_date = Set(Some(d));
        changed = true;
    }
    if !changed {
        return Err(AppError::bad_input(
            "a correction must change at least one field",
        ));
    }
    let saved = a.update(&tx).await?;
    let action = if measures_changed {
        "listing.measures_changed"
    } else {
        "listing.corrected"
    };
    commit_change(services, tx, actor, saved, action, before, Some(reason)).await
}

/// The listing a credit-repair decision moves, with its periods, inside the repair
/// service's transaction (which checked the admin's region): `action` must be allowed
/// at `at`.
async fn load_for_repair(
    tx: &DatabaseTransaction,
    listing_id: i64,
    action: Action,
    at: DateTime<Utc>,
) -> AppResult<(listing::Model, Vec<listing_period::Model>)> {
    let l = listing::Entity::find_by_id(listing_id)
        .one(tx)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("there is no listing {listing_id}")))?;
    let periods = periods_of(tx, l.id).await?;
    ensure_action(&l, &periods, action, at)?;
    Ok((l, periods))
}

/// Early removal after an approved credit repair: the listing stops being in force at
/// `at`. Called by the repair service inside its own transaction.
pub async fn mark_repaired(
    tx: &DatabaseTransaction,
    actor: &Actor,
    listing_id: i64,
    at: DateTime<Utc>,
    reason: &str,
) -> AppResult<listing::Model> {
    let (l, periods) = load_for_repair(tx, listing_id, Action::Repair, at).await?;
    let before = snapshot(tx, &l).await?;
    end_open_periods(tx, &periods, at, "REPAIRED").await?;
    let mut a = bump(l, at);
    a.status = Set(StoredStatus::Repaired);
    a.removal_reason = Set(Some(reason.to_string()));
    let saved = a.update(tx).await?;
    finish_change(
        tx,
        actor,
        &saved,
        "listing.repaired",
        Some(before),
        Some(reason.to_string()),
    )
    .await?;
    Ok(saved)
}

/// A repair obtained by fraud is revoked: the listing is in force again from `at`, for
/// the remaining period (`RESUME`) or a full new one (`RESTART`).
pub async fn restore_after_repair_revocation(
    tx: &DatabaseTransaction,
    actor: &Actor,
    listing_id: i64,
    at: DateTime<Utc>,
    restart: bool,
    reason: &str,
) -> AppResult<listing::Model> {
    let (l, periods) = load_for_repair(tx, listing_id, Action::RevokeRepair, at).await?;
    let (Some(first), Some(last)) = (periods.first(), periods.last()) else {
        return Err(AppError::internal(anyhow::anyhow!(
            "repaired listing {listing_id} has no period"
        )));
    };
    let ends_at = listing_rules::restored_end(
        at,
        restart,
        l.period_months_override,
        (first.starts_at, first.ends_at),
        (last.ends_at, last.removed_at),
    )?;
    let before = snapshot(tx, &l).await?;
    listing_period::ActiveModel {
        listing_id: Set(l.id),
        starts_at: Set(at),
        ends_at: Set(ends_at),
        removed_at: Set(None),
        removal_kind: Set(None),
        ..Default::default()
    }
    .insert(tx)
    .await?;
    let mut a = bump(l, at);
    a.status = Set(StoredStatus::Listed);
    a.removal_reason = Set(None);
    let saved = a.update(tx).await?;
    finish_change(
        tx,
        actor,
        &saved,
        "listing.repair_revoked",
        Some(before),
        Some(reason.to_string()),
    )
    .await?;
    Ok(saved)
}
