//! What the public may see (公示): listings in force now, with public fields only, and
//! the typical cases of a year (plan task 14). The public view is built from an
//! explicit list of fields: no legal representative, identity number or address can
//! reach it, whatever is added to operators later.

use super::audit::{self, AuditEntry};
use super::listing_search::{self, ListingFilter};
use super::{Actor, Services};
use crate::domain::lifecycle::in_force_at;
use crate::error::{AppError, AppResult};
use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{credit_list, listing, listing_period, operator, typical_case};
use sea_orm::ActiveEnum;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use std::collections::HashMap;

/// A listing as the public sees it: the operator's name and code, the list, the
/// authority, the decision, the dates and the reason. Nothing personal.
#[derive(Clone, Debug, PartialEq, SimpleObject, serde::Serialize)]
pub struct PublicListing {
    pub id: ID,
    /// Unified social credit code.
    pub uscc: String,
    pub operator_name: String,
    pub list_code: String,
    pub list_name: String,
    /// The listing authority.
    pub authority: String,
    /// The penalty decision the listing rests on.
    pub penalty_doc_no: String,
    pub decision_doc_no: Option<String>,
    pub decision_date: Option<NaiveDate>,
    /// When the listing first took effect.
    pub listed_at: Option<DateTime<Utc>>,
    /// The scheduled end of the current period.
    pub expires_at: Option<DateTime<Utc>>,
    /// Violation category code (Order 44 Arts. 5-10).
    pub violation_category: String,
    pub reason: String,
    pub legal_basis: String,
}

/// The public fields of a listing (live or recorded), its periods, its operator and list.
pub fn public_view(
    l: &listing::Model,
    periods: &[listing_period::Model],
    op: Option<&operator::Model>,
    list: Option<&credit_list::Model>,
) -> PublicListing {
    PublicListing {
        id: ID(l.id.to_string()),
        uscc: op.map(|o| o.uscc.clone()).unwrap_or_default(),
        operator_name: op.map(|o| o.name.clone()).unwrap_or_default(),
        list_code: list.map(|x| x.code.clone()).unwrap_or_default(),
        list_name: list.map(|x| x.name.clone()).unwrap_or_default(),
        authority: l.authority.clone(),
        penalty_doc_no: l.penalty_doc_no.clone(),
        decision_doc_no: l.decision_doc_no.clone(),
        decision_date: l.decision_date,
        listed_at: periods.iter().map(|p| p.starts_at).min(),
        expires_at: periods
            .iter()
            .max_by_key(|p| p.starts_at)
            .map(|p| p.ends_at),
        violation_category: l.violation_category.clone(),
        reason: l.reason.clone(),
        legal_basis: l.legal_basis.clone(),
    }
}

/// Operators and lists of a set of listings, two queries.
pub struct Related {
    pub operators: HashMap<i64, operator::Model>,
    pub lists: HashMap<i64, credit_list::Model>,
}

impl Related {
    pub async fn load<C: ConnectionTrait>(db: &C, rows: &[&listing::Model]) -> AppResult<Self> {
        let mut op_ids: Vec<i64> = rows.iter().map(|l| l.operator_id).collect();
        op_ids.sort_unstable();
        op_ids.dedup();
        let mut list_ids: Vec<i64> = rows.iter().map(|l| l.list_id).collect();
        list_ids.sort_unstable();
        list_ids.dedup();
        let operators = if op_ids.is_empty() {
            HashMap::new()
        } else {
            operator::Entity::find()
                .filter(operator::Column::Id.is_in(op_ids))
                .all(db)
                .await?
                .into_iter()
                .map(|o| (o.id, o))
                .collect()
        };
        let lists = if list_ids.is_empty() {
            HashMap::new()
        } else {
            credit_list::Entity::find()
                .filter(credit_list::Column::Id.is_in(list_ids))
                .all(db)
                .await?
                .into_iter()
                .map(|x| (x.id, x))
                .collect()
        };
        Ok(Self { operators, lists })
    }

    pub fn view(&self, l: &listing::Model, periods: &[listing_period::Model]) -> PublicListing {
        public_view(
            l,
            periods,
            self.operators.get(&l.operator_id),
            self.lists.get(&l.list_id),
        )
    }
}

async fn periods_by_listing<C: ConnectionTrait>(
    db: &C,
    ids: Vec<i64>,
) -> AppResult<HashMap<i64, Vec<listing_period::Model>>> {
    let mut out: HashMap<i64, Vec<listing_period::Model>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for p in listing_period::Entity::find()
        .filter(listing_period::Column::ListingId.is_in(ids))
        .order_by_asc(listing_period::Column::StartsAt)
        .all(db)
        .await?
    {
        out.entry(p.listing_id).or_default().push(p);
    }
    Ok(out)
}

/// Why a search text of the public list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchRefusal {
    TooLong,
    TooShort,
    /// A NUL or other control character: PostgreSQL refuses a NUL in text as an error of
    /// the statement, and no name holds one.
    ControlCharacter,
}

/// Characters a search text may hold.
pub const MAX_SEARCH_CHARS: usize = 100;

/// The search text of the public list: a code or part of a name, 3 to 100 characters,
/// on one line. Shorter text cannot use the name index (trigrams, see
/// `store::name_search`) and would scan every operator for every anonymous caller (a code
/// is 18 characters, a name part of one or two characters finds too much to be useful
/// anyway). The one rule for GraphQL ([`search_text`]) and the public pages.
pub fn check_search(search: Option<&str>) -> Result<Option<&str>, SearchRefusal> {
    let min = crate::store::name_search::MIN_INDEXED_CHARS;
    match search.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) if s.chars().count() > MAX_SEARCH_CHARS => Err(SearchRefusal::TooLong),
        Some(s) if s.chars().any(char::is_control) => Err(SearchRefusal::ControlCharacter),
        Some(s) if crate::domain::names::normalize_name(s).chars().count() < min => {
            Err(SearchRefusal::TooShort)
        }
        Some(s) => Ok(Some(s)),
    }
}

/// [`check_search`] as the GraphQL error: a short text is refused with
/// `details.reason = "SEARCH_TOO_SHORT"`.
pub fn search_text(search: Option<&str>) -> AppResult<Option<String>> {
    let min = crate::store::name_search::MIN_INDEXED_CHARS;
    match check_search(search) {
        Ok(s) => Ok(s.map(str::to_string)),
        Err(SearchRefusal::TooLong) => Err(AppError::bad_input(format!(
            "search is longer than {MAX_SEARCH_CHARS} characters"
        ))),
        Err(SearchRefusal::ControlCharacter) => Err(AppError::bad_input(
            "search contains a control character",
        )),
        Err(SearchRefusal::TooShort) => Err(crate::domain::refusal::Refusal::new(
            crate::domain::refusal::Reason::SearchTooShort,
            format!(
                "search needs at least {min} characters: a unified social credit code or {min} or more characters of a name"
            ),
        )
        .on("search")
        .with("min", min)
        .into()),
    }
}

/// One page of listings in force now, in id order, optionally matching a code or part
/// of an operator's name.
pub async fn in_force_now<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    search: Option<&str>,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<PublicListing>, bool)> {
    let filter = ListingFilter {
        in_force_at: Some(now),
        operator: search_text(search)?,
        ..Default::default()
    };
    let (rows, has_next) = listing_search::search(db, &filter, now, first, after).await?;
    let related = Related::load(db, &rows.iter().collect::<Vec<_>>()).await?;
    let periods = periods_by_listing(db, rows.iter().map(|l| l.id).collect()).await?;
    let views = rows
        .iter()
        .map(|l| related.view(l, periods.get(&l.id).map_or(&[][..], Vec::as_slice)))
        .collect();
    Ok((views, has_next))
}

/// A typical case with its listing's public fields.
#[derive(Clone, Debug)]
pub struct TypicalCaseView {
    pub case: typical_case::Model,
    pub listing: PublicListing,
    /// Whether the listing is in force now: publicity stops when it is not.
    pub in_force: bool,
}

/// A year the registry can report on or publish cases for.
fn check_year(year: i32) -> AppResult<()> {
    crate::domain::check_reporting_year(year).map_err(AppError::bad_input)
}

/// The typical cases of a year, in the order they were marked. `public_only` keeps
/// only those whose listing is still in force (publicity of a listing stops when it
/// expires, is repaired or revoked).
pub async fn typical_cases<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    year: i32,
    public_only: bool,
) -> AppResult<Vec<TypicalCaseView>> {
    check_year(year)?;
    let cases = typical_case::Entity::find()
        .filter(typical_case::Column::Year.eq(year))
        .order_by_asc(typical_case::Column::Id)
        .all(db)
        .await?;
    let ids: Vec<i64> = cases.iter().map(|c| c.listing_id).collect();
    let listings: HashMap<i64, listing::Model> = if ids.is_empty() {
        HashMap::new()
    } else {
        listing::Entity::find()
            .filter(listing::Column::Id.is_in(ids.clone()))
            .all(db)
            .await?
            .into_iter()
            .map(|l| (l.id, l))
            .collect()
    };
    let related = Related::load(db, &listings.values().collect::<Vec<_>>()).await?;
    let periods = periods_by_listing(db, ids).await?;
    let mut out = Vec::new();
    for case in cases {
        let Some(l) = listings.get(&case.listing_id) else {
            continue;
        };
        let ps = periods.get(&l.id).map_or(&[][..], Vec::as_slice);
        let in_force = in_force_at(&super::listings::to_periods(ps), now);
        if public_only && !in_force {
            continue;
        }
        out.push(TypicalCaseView {
            listing: related.view(l, ps),
            case,
            in_force,
        });
    }
    Ok(out)
}

fn case_doc(c: &typical_case::Model) -> serde_json::Value {
    serde_json::json!({
        "id": c.id, "listing_id": c.listing_id, "year": c.year, "commentary": c.commentary,
        "created_at": c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// Marks a decided listing as a typical case of `year` with a commentary; marking it
/// again replaces the commentary. Audited.
pub async fn mark_typical_case(
    services: &Services,
    actor: &Actor,
    listing_id: i64,
    year: i32,
    commentary: &str,
) -> AppResult<typical_case::Model> {
    let db = &services.db;
    check_year(year)?;
    let commentary = commentary.trim();
    if commentary.is_empty() {
        return Err(AppError::bad_input("commentary must not be empty"));
    }
    if commentary.chars().count() > 10_000 {
        return Err(AppError::bad_input(
            "commentary is longer than 10000 characters",
        ));
    }
    let (tx, now) = audit::begin_write_at(db, &services.clock).await?;
    let l = super::listings::in_scope(&tx, actor, listing_id).await?;
    if l.decision_date.is_none() {
        return Err(crate::domain::refusal::Refusal::new(
            crate::domain::refusal::Reason::NotDecided,
            format!(
                "listing {listing_id} was never decided ({}): only decided listings can be typical cases",
                l.status.to_value()
            ),
        )
        .with("status", l.status.to_value())
        .into());
    }
    let existing = typical_case::Entity::find()
        .filter(typical_case::Column::ListingId.eq(listing_id))
        .filter(typical_case::Column::Year.eq(year))
        .one(&tx)
        .await?;
    let (saved, action, before) = match existing {
        Some(c) => {
            let before = case_doc(&c);
            let mut a: typical_case::ActiveModel = c.into();
            a.commentary = Set(commentary.to_string());
            (a.update(&tx).await?, "typical_case.updated", Some(before))
        }
        None => {
            let saved = typical_case::ActiveModel {
                listing_id: Set(listing_id),
                year: Set(year),
                commentary: Set(commentary.to_string()),
                created_at: Set(now),
                ..Default::default()
            }
            .insert(&tx)
            .await?;
            (saved, "typical_case.marked", None)
        }
    };
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new(action, "typical_case", saved.id)
            .before(before)
            .after(Some(case_doc(&saved))),
    )
    .await?;
    tx.commit().await?;
    Ok(saved)
}

/// Removes a listing from the typical cases of `year`. Audited.
pub async fn unmark_typical_case(
    services: &Services,
    actor: &Actor,
    listing_id: i64,
    year: i32,
) -> AppResult<()> {
    let db = &services.db;
    check_year(year)?;
    let (tx, now) = audit::begin_write_at(db, &services.clock).await?;
    super::listings::in_scope(&tx, actor, listing_id).await?;
    let existing = typical_case::Entity::find()
        .filter(typical_case::Column::ListingId.eq(listing_id))
        .filter(typical_case::Column::Year.eq(year))
        .one(&tx)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "listing {listing_id} is not a typical case of {year}"
            ))
        })?;
    let before = case_doc(&existing);
    let id = existing.id;
    typical_case::Entity::delete_by_id(id).exec(&tx).await?;
    audit::record(
        &tx,
        actor,
        now,
        AuditEntry::new("typical_case.unmarked", "typical_case", id).before(Some(before)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One listing in force now, as the public sees it, with its measures (each with its
/// legal basis) and its periods; `None` when there is none, or it is not in force:
/// publicity stops with the listing.
pub async fn in_force_listing<C: ConnectionTrait>(
    db: &C,
    now: DateTime<Utc>,
    id: i64,
) -> AppResult<
    Option<(
        PublicListing,
        Vec<entity::measure::Model>,
        Vec<listing_period::Model>,
    )>,
> {
    use entity::{listing_measure, measure};
    let Some(l) = listing::Entity::find_by_id(id)
        .filter(crate::store::in_force::listing_in_force(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let related = Related::load(db, &[&l]).await?;
    let periods = periods_by_listing(db, vec![l.id])
        .await?
        .remove(&l.id)
        .unwrap_or_default();
    let measure_ids: Vec<i64> = listing_measure::Entity::find()
        .filter(listing_measure::Column::ListingId.eq(l.id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.measure_id)
        .collect();
    let measures = if measure_ids.is_empty() {
        Vec::new()
    } else {
        measure::Entity::find()
            .filter(measure::Column::Id.is_in(measure_ids))
            .order_by_asc(measure::Column::Code)
            .all(db)
            .await?
    };
    Ok(Some((related.view(&l, &periods), measures, periods)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn search_text_is_trimmed_and_bounded() {
        assert_eq!(search_text(None).unwrap(), None);
        assert_eq!(search_text(Some("  ")).unwrap(), None);
        assert_eq!(
            search_text(Some(" 清远市 ")).unwrap().as_deref(),
            Some("清远市")
        );
        assert!(search_text(Some(&"x".repeat(101))).is_err());
        // Fewer than three characters (after normalisation) make no trigram.
        for short in ["清远", "a", "%_", "ａ　ｂ"] {
            let err = search_text(Some(short)).unwrap_err();
            assert_eq!(err.code().as_str(), "BAD_USER_INPUT", "{short:?}");
        }
        assert!(search_text(Some("a_b")).is_ok());
    }

    #[test]
    fn the_public_view_carries_no_personal_data() {
        let t = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        let op = operator::Model {
            id: 1,
            uscc: "91110000101623741K".into(),
            name: "某某有限公司".into(),
            name_normalized: "某某有限公司".into(),
            former_names: serde_json::json!([]),
            entity_type: None,
            region_code: "441802".into(),
            legal_representative: Some("张三丰".into()),
            legal_rep_id_number: Some("441802199001011234".into()),
            address: Some("清城区某路1号".into()),
            address_is_personal: true,
            check_digit_override: None,
            version: 1,
            created_at: t,
            updated_at: t,
        };
        let l = listing::Model {
            id: 9,
            operator_id: 1,
            list_id: 1,
            status: entity::listing::StoredStatus::Listed,
            authority: "清远市市场监督管理局".into(),
            authority_region: "441802".into(),
            penalty_doc_no: "P".into(),
            penalty_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            violation_category: "CONSUMER_HARM".into(),
            reason: "r".into(),
            legal_basis: "b".into(),
            notice_date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            defence_deadline: NaiveDate::from_ymd_opt(2026, 1, 9).unwrap(),
            proposed_at: t,
            decision_doc_no: Some("D".into()),
            decision_date: NaiveDate::from_ymd_opt(2026, 3, 2),
            period_months_override: None,
            removal_doc_no: None,
            removal_reason: None,
            publicity_stop_deadline: None,
            version: 2,
            created_at: t,
            updated_at: t,
        };
        let v = public_view(&l, &[], Some(&op), None);
        let json = serde_json::to_string(&v).unwrap();
        for personal in ["张三丰", "441802199001011234", "某路1号"] {
            assert!(!json.contains(personal), "{json}");
        }
        assert_eq!(v.uscc, "91110000101623741K");
        assert_eq!(v.listed_at, None);
    }
}
