//! Listings: the lifecycle mutations and the queries over them.

use super::catalogue::{CreditList, Measure};
use super::connection::{decode_id_cursor, forward_page, page_size};
use super::operators::Operator;
use super::{parse_id, request, state};
use crate::domain::lifecycle::{ListingStatus, in_force_at};
use crate::domain::measures::Domain;
use crate::graphql::guards::{ADMIN, ADMIN_OR_AUDITOR};
use crate::service::history::{self, RecordedListing};
use crate::service::listing_search::{self, ListingFilter as SearchFilter};
use crate::service::listings::{self as svc, RevocationGround};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{listing, listing_period, measure};
use std::sync::Arc;

/// One operator on one list, decided by one authority.
///
/// Backed either by the live row (periods and measures through the request's
/// DataLoaders) or by a revision (record time, `knownAt`): then the row, the periods and
/// the measure codes are those the revision recorded, and the status is evaluated at
/// `knownAt`. Every field resolver reads through the same accessors, so both kinds
/// answer the same fields.
pub struct Listing {
    row: listing::Model,
    recorded: Option<Arc<Recorded>>,
}

/// What a revision adds to a listing read at record time.
struct Recorded {
    known_at: DateTime<Utc>,
    periods: Vec<listing_period::Model>,
    measure_codes: Vec<String>,
}

impl Listing {
    /// The listing as it is now.
    pub fn live(row: listing::Model) -> Self {
        Self {
            row,
            recorded: None,
        }
    }

    /// The listing as the registry recorded it at `known_at`.
    pub fn as_recorded(r: RecordedListing, known_at: DateTime<Utc>) -> Self {
        Self {
            row: r.row,
            recorded: Some(Arc::new(Recorded {
                known_at,
                periods: r.periods,
                measure_codes: r.measure_codes,
            })),
        }
    }

    pub fn row(&self) -> &listing::Model {
        &self.row
    }
}

impl From<listing::Model> for Listing {
    fn from(row: listing::Model) -> Self {
        Self::live(row)
    }
}

#[derive(SimpleObject, Clone)]
pub struct ListingPeriod {
    pub starts_at: DateTime<Utc>,
    /// Scheduled end (expiry).
    pub ends_at: DateTime<Utc>,
    /// Early end (revocation, repair).
    pub removed_at: Option<DateTime<Utc>>,
    pub removal_kind: Option<String>,
}

impl From<&listing_period::Model> for ListingPeriod {
    fn from(p: &listing_period::Model) -> Self {
        Self {
            starts_at: p.starts_at,
            ends_at: p.ends_at,
            removed_at: p.removed_at,
            removal_kind: p.removal_kind.clone(),
        }
    }
}

impl Listing {
    async fn period_rows(&self, ctx: &Context<'_>) -> Result<Vec<listing_period::Model>> {
        if let Some(r) = &self.recorded {
            return Ok(r.periods.clone());
        }
        let db = &state(ctx)?.db;
        let loaders = request(ctx)?.loaders(db);
        Ok(super::load_one(&loaders.periods, self.row.id)
            .await?
            .unwrap_or_default())
    }

    async fn measure_rows(&self, ctx: &Context<'_>) -> Result<Vec<measure::Model>> {
        let db = &state(ctx)?.db;
        let loaders = request(ctx)?.loaders(db);
        let Some(r) = &self.recorded else {
            return Ok(super::load_one(&loaders.measures, self.row.id)
                .await?
                .unwrap_or_default());
        };
        let keys: Vec<(String, DateTime<Utc>)> = r
            .measure_codes
            .iter()
            .map(|c| (c.clone(), r.known_at))
            .collect();
        let found = loaders.measures_known_at.load_many(keys.clone()).await?;
        // As the catalogue held them at `knownAt` (a domain or effect may have changed since).
        Ok(keys.iter().filter_map(|k| found.get(k).cloned()).collect())
    }

    /// The instant the status is evaluated at: now (the registry's clock), or `knownAt`
    /// for a record-time read.
    fn status_instant(&self, ctx: &Context<'_>) -> Result<DateTime<Utc>> {
        let now = state(ctx)?.clock.now();
        Ok(self.recorded.as_ref().map_or(now, |r| r.known_at))
    }
}

#[Object]
impl Listing {
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// The state now (at `knownAt` for a record-time read); EXPIRED is computed from
    /// the dates, never stored.
    async fn status(&self, ctx: &Context<'_>) -> Result<ListingStatus> {
        let periods = self.period_rows(ctx).await?;
        Ok(svc::status_at(
            &self.row,
            &periods,
            self.status_instant(ctx)?,
        )?)
    }
    /// Set when this is the listing as the registry recorded it at that instant
    /// (`knownAt`), before any later correction; null for the current data.
    async fn known_at(&self) -> Option<DateTime<Utc>> {
        self.recorded.as_ref().map(|r| r.known_at)
    }
    /// Whether the listing is in force at `at` (default now).
    async fn in_force(&self, ctx: &Context<'_>, at: Option<DateTime<Utc>>) -> Result<bool> {
        let periods = self.period_rows(ctx).await?;
        Ok(in_force_at(
            &svc::to_periods(&periods),
            at.unwrap_or(state(ctx)?.clock.now()),
        ))
    }
    async fn operator(&self, ctx: &Context<'_>) -> Result<Option<Operator>> {
        let db = &state(ctx)?.db;
        let loaders = request(ctx)?.loaders(db);
        Ok(super::load_one(&loaders.operators, self.row.operator_id)
            .await?
            .map(Operator))
    }
    async fn list(&self, ctx: &Context<'_>) -> Result<Option<CreditList>> {
        let db = &state(ctx)?.db;
        let loaders = request(ctx)?.loaders(db);
        Ok(super::load_one(&loaders.lists, self.row.list_id)
            .await?
            .map(CreditList))
    }
    async fn authority(&self) -> &str {
        &self.row.authority
    }
    async fn authority_region(&self) -> &str {
        &self.row.authority_region
    }
    /// The penalty decision the listing rests on.
    async fn penalty_doc_no(&self) -> &str {
        &self.row.penalty_doc_no
    }
    async fn penalty_date(&self) -> NaiveDate {
        self.row.penalty_date
    }
    async fn violation_category(&self) -> &str {
        &self.row.violation_category
    }
    async fn reason(&self) -> &str {
        &self.row.reason
    }
    async fn legal_basis(&self) -> &str {
        &self.row.legal_basis
    }
    async fn notice_date(&self) -> NaiveDate {
        self.row.notice_date
    }
    /// Last day the party may state its case (working days after the notice).
    async fn defence_deadline(&self) -> NaiveDate {
        self.row.defence_deadline
    }
    async fn proposed_at(&self) -> DateTime<Utc> {
        self.row.proposed_at
    }
    async fn decision_doc_no(&self) -> Option<&str> {
        self.row.decision_doc_no.as_deref()
    }
    async fn decision_date(&self) -> Option<NaiveDate> {
        self.row.decision_date
    }
    /// When the listing first took effect.
    async fn listed_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.period_rows(ctx).await?.first().map(|p| p.starts_at))
    }
    /// The scheduled end of the current period.
    async fn expires_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self.period_rows(ctx).await?.last().map(|p| p.ends_at))
    }
    /// When the current period was ended early (revocation, repair).
    async fn removed_at(&self, ctx: &Context<'_>) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .period_rows(ctx)
            .await?
            .last()
            .and_then(|p| p.removed_at))
    }
    async fn periods(&self, ctx: &Context<'_>) -> Result<Vec<ListingPeriod>> {
        Ok(self
            .period_rows(ctx)
            .await?
            .iter()
            .map(Into::into)
            .collect())
    }
    /// A longer period set by law, in months (null: the list's default).
    async fn period_months_override(&self) -> Option<i32> {
        self.row.period_months_override
    }
    async fn removal_doc_no(&self) -> Option<&str> {
        self.row.removal_doc_no.as_deref()
    }
    async fn removal_reason(&self) -> Option<&str> {
        self.row.removal_reason.as_deref()
    }
    /// After a revocation: the date by which publicity must have stopped.
    async fn publicity_stop_deadline(&self) -> Option<NaiveDate> {
        self.row.publicity_stop_deadline
    }
    /// Whether `publicityStopDeadline` was counted without the holiday notice of a year
    /// it reaches into (none was loaded when the listing was revoked, so Monday to Friday
    /// counted as working days there, or the notice was loaded since): check it against
    /// the notice. False without a deadline.
    async fn publicity_stop_deadline_provisional(&self, ctx: &Context<'_>) -> Result<bool> {
        let Some(deadline) = self.row.publicity_stop_deadline else {
            return Ok(false);
        };
        let db = &state(ctx)?.db;
        let counted_at = svc::revoked_at(db, self.row.id)
            .await?
            .unwrap_or(self.row.updated_at);
        let from = crate::domain::china_date(counted_at);
        Ok(
            crate::service::calendar::counted_without_notice(db, from, deadline, counted_at)
                .await?,
        )
    }
    /// The measures applied, optionally only those of one domain.
    async fn measures(&self, ctx: &Context<'_>, domain: Option<Domain>) -> Result<Vec<Measure>> {
        let all = self.measure_rows(ctx).await?;
        Ok(all
            .into_iter()
            .filter(|m| domain.is_none_or(|d| Domain::from(m.domain) == d))
            .map(Measure)
            .collect())
    }
    /// The credit-repair applications for this listing, in id order.
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn repair_applications(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<super::repair::RepairApplication>> {
        super::repair::applications_of_listing(ctx, self.row.id).await
    }
    /// Optimistic concurrency: pass it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.row.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.row.updated_at
    }
}

#[derive(InputObject, Default)]
pub struct ListingFilter {
    pub status: Option<ListingStatus>,
    /// List code, e.g. SAMR_SERIOUS_DISHONEST.
    pub list: Option<String>,
    pub authority: Option<String>,
    /// Division where the operator is registered.
    pub region: Option<String>,
    /// Violation category code.
    pub category: Option<String>,
    /// Only listings in force at this instant.
    pub in_force_at: Option<DateTime<Utc>>,
    /// An exact unified social credit code, or part of the operator's name.
    pub operator: Option<String>,
}

impl From<ListingFilter> for SearchFilter {
    fn from(f: ListingFilter) -> Self {
        Self {
            status: f.status,
            list_code: f.list,
            authority: f.authority,
            region: f.region,
            category: f.category,
            in_force_at: f.in_force_at,
            operator: f.operator,
            operator_id: None,
        }
    }
}

pub type ListingConnection = Connection<String, Listing>;

pub fn listing_connection(rows: Vec<listing::Model>, has_next: bool) -> ListingConnection {
    connection_of(rows.into_iter().map(Listing::live).collect(), has_next)
}

/// A page of listings, live or recorded, with cursors on the listing id.
pub fn connection_of(nodes: Vec<Listing>, has_next: bool) -> ListingConnection {
    forward_page(
        "listing",
        nodes
            .into_iter()
            .map(|node| (node.row.id.to_string(), node))
            .collect(),
        has_next,
    )
}

/// Valid time: `asOf` and `filter.inForceAt` mean the same; given both, they must agree.
fn valid_time(
    filter_at: Option<DateTime<Utc>>,
    as_of: Option<DateTime<Utc>>,
) -> Result<Option<DateTime<Utc>>, crate::error::AppError> {
    match (filter_at, as_of) {
        (Some(a), Some(b)) if a != b => Err(crate::error::AppError::bad_input(
            "asOf and filter.inForceAt ask about different instants; give one of them",
        )),
        (a, b) => Ok(a.or(b)),
    }
}

#[derive(Default)]
pub struct ListingQuery;

#[Object]
impl ListingQuery {
    /// A listing; with `knownAt`, as the registry recorded it at that instant (null if it
    /// had not been recorded yet).
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn listing(
        &self,
        ctx: &Context<'_>,
        id: ID,
        known_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Listing>> {
        let id = parse_id(&id, "listing")?;
        let db = &state(ctx)?.db;
        match known_at {
            None => Ok(listing_search::by_id(db, id).await?.map(Listing::live)),
            Some(k) => Ok(history::by_id_known_at(db, id, k)
                .await?
                .map(|r| Listing::as_recorded(r, k))),
        }
    }

    /// Listings matching a filter, in id order (admins and auditors). Valid time:
    /// `asOf` (or `filter.inForceAt`) keeps those in force at that instant. Record time:
    /// `knownAt` answers from the data as recorded at that instant, before any later
    /// correction. Both together: in force at `asOf` as the registry knew it at `knownAt`.
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn listings(
        &self,
        ctx: &Context<'_>,
        filter: Option<ListingFilter>,
        first: Option<i32>,
        after: Option<String>,
        as_of: Option<DateTime<Utc>>,
        known_at: Option<DateTime<Utc>>,
    ) -> Result<ListingConnection> {
        let st = state(ctx)?;
        let first = page_size(first, st.settings.limits.max_page_size)?;
        let after = decode_id_cursor("listing", after.as_deref())?;
        let mut filter: SearchFilter = filter.unwrap_or_default().into();
        filter.in_force_at = valid_time(filter.in_force_at, as_of)?;
        match known_at {
            None => {
                let (rows, has_next) =
                    listing_search::search(&st.db, &filter, st.clock.now(), first, after).await?;
                Ok(listing_connection(rows, has_next))
            }
            Some(k) => {
                let (rows, has_next) =
                    history::search_known_at(st.heavy_reads(false), &filter, k, first, after)
                        .await?;
                Ok(connection_of(
                    rows.into_iter()
                        .map(|r| Listing::as_recorded(r, k))
                        .collect(),
                    has_next,
                ))
            }
        }
    }
}

#[derive(InputObject)]
pub struct ProposeListingInput {
    /// The operator's unified social credit code; it must be registered.
    pub uscc: String,
    /// List code, e.g. SAMR_SERIOUS_DISHONEST.
    pub list: String,
    /// The listing authority (the one that made the penalty decision).
    pub authority: String,
    /// Division of the authority; defaults to the operator's.
    pub authority_region: Option<String>,
    pub penalty_doc_no: String,
    pub penalty_date: NaiveDate,
    pub violation_category: String,
    pub reason: String,
    pub legal_basis: String,
    /// When the party was told of the proposal; defaults to today (Beijing).
    pub notice_date: Option<NaiveDate>,
}

#[derive(InputObject)]
pub struct DecideListingInput {
    pub id: ID,
    pub expected_version: i32,
    pub decision_doc_no: String,
    pub decision_date: NaiveDate,
    /// When the listing takes effect: defaults to the start of the decision date (Beijing
    /// time); may be later, never before the decision date and never in the future.
    pub effective_at: Option<DateTime<Utc>>,
    /// A longer period set by law, in months.
    pub period_months: Option<i32>,
    /// The measures applied; defaults to the list's default measures.
    pub measure_codes: Option<Vec<String>>,
    /// The party waived its right to state its case.
    #[graphql(default = false)]
    pub defence_waived: bool,
}

#[derive(InputObject)]
pub struct WithdrawListingInput {
    pub id: ID,
    pub expected_version: i32,
    pub reason: String,
}

#[derive(InputObject)]
pub struct RevokeListingInput {
    pub id: ID,
    pub expected_version: i32,
    pub ground: RevocationGround,
    pub revocation_doc_no: String,
    pub reason: String,
    /// When the listing stops being in force; defaults to now.
    pub effective_at: Option<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct CorrectListingInput {
    pub id: ID,
    pub expected_version: i32,
    /// Why the data is corrected (mandatory).
    pub reason: String,
    pub authority: Option<String>,
    pub authority_region: Option<String>,
    pub penalty_doc_no: Option<String>,
    pub penalty_date: Option<NaiveDate>,
    pub violation_category: Option<String>,
    /// The listing's stated reason.
    pub listing_reason: Option<String>,
    pub legal_basis: Option<String>,
    pub decision_doc_no: Option<String>,
    pub decision_date: Option<NaiveDate>,
    /// Corrects the end of the current period.
    pub expires_at: Option<DateTime<Utc>>,
    /// Replaces the measures applied.
    pub measure_codes: Option<Vec<String>>,
}

#[derive(Default)]
pub struct ListingMutation;

#[Object]
impl ListingMutation {
    /// Proposes a listing: the party is told and may state its case until the defence deadline.
    #[graphql(guard = "ADMIN")]
    async fn propose_listing(
        &self,
        ctx: &Context<'_>,
        input: ProposeListingInput,
    ) -> Result<Listing> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let saved = svc::propose(
            services,
            &actor,
            svc::ProposeInput {
                uscc: input.uscc,
                list_code: input.list,
                authority: input.authority,
                authority_region: input.authority_region,
                penalty_doc_no: input.penalty_doc_no,
                penalty_date: input.penalty_date,
                violation_category: input.violation_category,
                reason: input.reason,
                legal_basis: input.legal_basis,
                notice_date: input.notice_date,
            },
        )
        .await?;
        Ok(Listing::live(saved))
    }

    /// Decides a proposed listing: LISTED, with its period and measures.
    #[graphql(guard = "ADMIN")]
    async fn decide_listing(
        &self,
        ctx: &Context<'_>,
        input: DecideListingInput,
    ) -> Result<Listing> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let saved = svc::decide(
            services,
            &actor,
            svc::DecideInput {
                id: parse_id(&input.id, "listing")?,
                expected_version: input.expected_version,
                decision_doc_no: input.decision_doc_no,
                decision_date: input.decision_date,
                effective_at: input.effective_at,
                period_months: input.period_months,
                measure_codes: input.measure_codes,
                defence_waived: input.defence_waived,
            },
        )
        .await?;
        Ok(Listing::live(saved))
    }

    /// Drops a proposal after the party's defence: WITHDRAWN.
    #[graphql(guard = "ADMIN")]
    async fn withdraw_listing(
        &self,
        ctx: &Context<'_>,
        input: WithdrawListingInput,
    ) -> Result<Listing> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let saved = svc::withdraw(
            services,
            &actor,
            svc::WithdrawInput {
                id: parse_id(&input.id, "listing")?,
                expected_version: input.expected_version,
                reason: input.reason,
            },
        )
        .await?;
        Ok(Listing::live(saved))
    }

    /// The penalty was revoked, confirmed illegal or void: REVOKED, publicity stops.
    #[graphql(guard = "ADMIN")]
    async fn revoke_listing(
        &self,
        ctx: &Context<'_>,
        input: RevokeListingInput,
    ) -> Result<Listing> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let saved = svc::revoke(
            services,
            &actor,
            svc::RevokeInput {
                id: parse_id(&input.id, "listing")?,
                expected_version: input.expected_version,
                ground: input.ground,
                revocation_doc_no: input.revocation_doc_no,
                reason: input.reason,
                effective_at: input.effective_at,
            },
        )
        .await?;
        Ok(Listing::live(saved))
    }

    /// Corrects a listing's data with a mandatory reason; earlier values stay in history.
    #[graphql(guard = "ADMIN")]
    async fn correct_listing(
        &self,
        ctx: &Context<'_>,
        input: CorrectListingInput,
    ) -> Result<Listing> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let saved = svc::correct(
            services,
            &actor,
            svc::CorrectInput {
                id: parse_id(&input.id, "listing")?,
                expected_version: input.expected_version,
                reason: input.reason,
                changes: svc::Correction {
                    authority: input.authority,
                    authority_region: input.authority_region,
                    penalty_doc_no: input.penalty_doc_no,
                    penalty_date: input.penalty_date,
                    violation_category: input.violation_category,
                    listing_reason: input.listing_reason,
                    legal_basis: input.legal_basis,
                    decision_doc_no: input.decision_doc_no,
                    decision_date: input.decision_date,
                    expires_at: input.expires_at,
                    measure_codes: input.measure_codes,
                },
            },
        )
        .await?;
        Ok(Listing::live(saved))
    }
}
