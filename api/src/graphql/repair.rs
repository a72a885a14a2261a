//! Credit repair: applications, decisions, revocations, and the deadline queries.

use super::connection::{decode_id_cursor, forward_page, page_size};
use super::listings::Listing;
use super::{parse_id, request, state};
use crate::domain::china_date;
use crate::domain::repair::{
    ConditionResult, DocumentKind, OnTimeRate, RepairCondition, RepairStatus,
};
use crate::graphql::guards::{ADMIN, ADMIN_OR_AUDITOR};
use crate::service::repair::{self as svc, RepairView};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};

/// An application for credit repair (信用修复) of one listing: early removal once the
/// operator has corrected its conduct.
pub struct RepairApplication(pub RepairView);

#[derive(SimpleObject, Clone)]
pub struct RepairDocument {
    pub kind: DocumentKind,
    pub file_name: String,
    /// SHA-256 of the file kept in the authority's document system (lower-case hex).
    pub sha256: String,
}

#[derive(SimpleObject, Clone)]
pub struct RepairStatement {
    /// The applicant states that the condition holds.
    pub affirmed: bool,
    pub note: Option<String>,
}

impl From<&crate::domain::repair::Statement> for RepairStatement {
    fn from(s: &crate::domain::repair::Statement) -> Self {
        Self {
            affirmed: s.affirmed,
            note: s.note.clone(),
        }
    }
}

/// The applicant's statements on the conditions only it can attest.
#[derive(SimpleObject, Clone)]
pub struct RepairStatements {
    pub obligations_performed: RepairStatement,
    pub harm_corrected: RepairStatement,
    pub statutory_restriction_ended: RepairStatement,
}

#[Object]
impl RepairApplication {
    async fn id(&self) -> ID {
        ID(self.0.row.id.to_string())
    }
    async fn listing_id(&self) -> ID {
        ID(self.0.row.listing_id.to_string())
    }
    async fn listing(&self, ctx: &Context<'_>) -> Result<Option<Listing>> {
        let db = &state(ctx)?.db;
        let loaders = request(ctx)?.loaders(db);
        Ok(super::load_one(&loaders.listings, self.0.row.listing_id)
            .await?
            .map(Listing::live))
    }
    async fn status(&self) -> RepairStatus {
        self.0.status
    }
    /// Whether every eligibility condition was met when the application was received.
    async fn eligible(&self) -> bool {
        crate::domain::repair::is_eligible(&self.0.eligibility)
    }
    /// Every condition, met or not, with its explanation.
    async fn eligibility(&self) -> Vec<ConditionResult> {
        self.0.eligibility.clone()
    }
    /// The conditions not met (empty for an eligible application).
    async fn failed_conditions(&self) -> Vec<RepairCondition> {
        self.0
            .eligibility
            .iter()
            .filter(|c| !c.met)
            .map(|c| c.condition)
            .collect()
    }
    /// The date the application was received; the decision deadline counts from it.
    async fn received_date(&self) -> NaiveDate {
        self.0.row.received_date
    }
    /// When the eligible application was recorded as accepted (null when ineligible).
    async fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.0.row.accepted_at
    }
    /// The last day for the decision: the list's working days after receipt (null when
    /// ineligible).
    async fn due_date(&self) -> Option<NaiveDate> {
        self.0.row.due_date
    }
    /// Whether `dueDate` was counted without the holiday notice of a year it reaches
    /// into (none was loaded when the application was accepted, so Monday to Friday
    /// counted as working days there, or the notice was loaded since): check it against
    /// the notice. False without a due date.
    async fn due_date_provisional(&self, ctx: &Context<'_>) -> Result<bool> {
        let (Some(due), Some(accepted_at)) = (self.0.row.due_date, self.0.row.accepted_at) else {
            return Ok(false);
        };
        let db = &state(ctx)?.db;
        Ok(crate::service::calendar::counted_without_notice(
            db,
            self.0.row.received_date,
            due,
            accepted_at,
        )
        .await?)
    }
    /// Still pending after the due date (Beijing), or decided after it.
    async fn overdue(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.0.overdue(china_date(state(ctx)?.clock.now())))
    }
    /// Whether the decision was made on or before the due date (null until decided).
    async fn decided_on_time(&self) -> Option<bool> {
        self.0.row.decided_on_time
    }
    async fn documents(&self) -> Vec<RepairDocument> {
        self.0
            .documents
            .iter()
            .map(|d| RepairDocument {
                kind: d.kind,
                file_name: d.file_name.clone(),
                sha256: d.sha256.clone(),
            })
            .collect()
    }
    async fn statements(&self) -> RepairStatements {
        let s = &self.0.statements;
        RepairStatements {
            obligations_performed: (&s.obligations_performed).into(),
            harm_corrected: (&s.harm_corrected).into(),
            statutory_restriction_ended: (&s.statutory_restriction_ended).into(),
        }
    }
    async fn decided_at(&self) -> Option<DateTime<Utc>> {
        self.0.row.decided_at
    }
    /// The token subject of the admin who decided.
    async fn decided_by(&self) -> Option<&str> {
        self.0.row.decided_by.as_deref()
    }
    async fn decision_reason(&self) -> Option<&str> {
        self.0.row.decision_reason.as_deref()
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.row.revoked_at
    }
    async fn revocation_reason(&self) -> Option<&str> {
        self.0.row.revocation_reason.as_deref()
    }
    /// Optimistic concurrency: pass it back as `expectedVersion`.
    async fn version(&self) -> i32 {
        self.0.row.version
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.row.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.row.updated_at
    }
}

pub type RepairApplicationConnection = Connection<String, RepairApplication>;

#[derive(InputObject, Default)]
pub struct RepairApplicationFilter {
    pub status: Option<RepairStatus>,
    pub listing_id: Option<ID>,
    /// Only overdue (true) or only not overdue (false) applications.
    pub overdue: Option<bool>,
    /// Due strictly before this date.
    pub due_before: Option<NaiveDate>,
    /// Due strictly after this date.
    pub due_after: Option<NaiveDate>,
}

/// Resolves `Listing.repairApplications` through the per-request loader.
pub async fn applications_of_listing(
    ctx: &Context<'_>,
    listing_id: i64,
) -> Result<Vec<RepairApplication>> {
    let db = &state(ctx)?.db;
    let loaders = request(ctx)?.loaders(db);
    Ok(super::load_one(&loaders.listing_repairs, listing_id)
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(RepairApplication)
        .collect())
}

#[derive(Default)]
pub struct RepairQuery;

#[Object]
impl RepairQuery {
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn repair_application(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<Option<RepairApplication>> {
        let id = parse_id(&id, "repair application")?;
        let db = &state(ctx)?.db;
        Ok(svc::by_id(db, id).await?.map(RepairApplication))
    }

    /// Repair applications matching a filter, in id order (admins and auditors).
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn repair_applications(
        &self,
        ctx: &Context<'_>,
        filter: Option<RepairApplicationFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<RepairApplicationConnection> {
        let st = state(ctx)?;
        let first = page_size(first, st.settings.limits.max_page_size)?;
        let after = decode_id_cursor("repair", after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = svc::RepairFilter {
            status: f.status,
            listing_id: f
                .listing_id
                .as_ref()
                .map(|id| parse_id(id, "listing"))
                .transpose()?,
            overdue: f.overdue,
            due_before: f.due_before,
            due_after: f.due_after,
        };
        let today = china_date(st.clock.now());
        let (rows, has_next) = svc::search(&st.db, &filter, today, first, after).await?;
        Ok(forward_page(
            "repair",
            rows.into_iter()
                .map(|r| (r.row.id.to_string(), RepairApplication(r)))
                .collect(),
            has_next,
        ))
    }

    /// Decisions made from `from` to `to` (Beijing dates, inclusive) and how many were
    /// made by their due date; optionally only for operators registered in `region`
    /// (a city code covers its counties). The plan's target is at least 98 %. An admin
    /// limited to a division reports on it (or a part of it), as `report` does.
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn repair_on_time_rate(
        &self,
        ctx: &Context<'_>,
        from: NaiveDate,
        to: NaiveDate,
        region: Option<String>,
    ) -> Result<OnTimeRate> {
        let scope = request(ctx)?.identity().region.clone();
        let region = crate::service::report::effective_region(scope.as_deref(), region.as_deref())?;
        let db = &state(ctx)?.db;
        Ok(svc::on_time_rate(db, from, to, region.as_deref()).await?)
    }
}

#[derive(InputObject)]
pub struct RepairDocumentInput {
    pub kind: DocumentKind,
    pub file_name: String,
    /// SHA-256 of the file, 64 hexadecimal characters.
    pub sha256: String,
}

#[derive(InputObject)]
pub struct RepairStatementInput {
    /// The applicant states that the condition holds.
    pub affirmed: bool,
    pub note: Option<String>,
}

impl From<RepairStatementInput> for crate::domain::repair::Statement {
    fn from(s: RepairStatementInput) -> Self {
        Self {
            affirmed: s.affirmed,
            note: s.note,
        }
    }
}

#[derive(InputObject)]
pub struct RepairStatementsInput {
    pub obligations_performed: RepairStatementInput,
    pub harm_corrected: RepairStatementInput,
    pub statutory_restriction_ended: RepairStatementInput,
}

#[derive(InputObject)]
pub struct SubmitRepairApplicationInput {
    /// The listing to be removed early; it must be in force (LISTED).
    pub listing_id: ID,
    /// The date the application was received (not in the future).
    pub received_date: NaiveDate,
    pub documents: Vec<RepairDocumentInput>,
    pub statements: RepairStatementsInput,
}

#[derive(Default)]
pub struct RepairMutation;

#[Object]
impl RepairMutation {
    /// Records an application received for a listing, with its eligibility condition by
    /// condition: PENDING with a due date when eligible, INELIGIBLE with the failed
    /// conditions otherwise (admin; audited).
    #[graphql(guard = "ADMIN")]
    async fn submit_repair_application(
        &self,
        ctx: &Context<'_>,
        input: SubmitRepairApplicationInput,
    ) -> Result<RepairApplication> {
        let actor = request(ctx)?.actor();
        let st = state(ctx)?;
        let s = input.statements;
        let view = svc::submit(
            &st.services,
            &actor,
            st.settings.rules.repair_max_months,
            svc::SubmitInput {
                listing_id: parse_id(&input.listing_id, "listing")?,
                received_date: input.received_date,
                documents: input
                    .documents
                    .into_iter()
                    .map(|d| svc::Document {
                        kind: d.kind,
                        file_name: d.file_name,
                        sha256: d.sha256,
                    })
                    .collect(),
                statements: crate::domain::repair::Statements {
                    obligations_performed: s.obligations_performed.into(),
                    harm_corrected: s.harm_corrected.into(),
                    statutory_restriction_ended: s.statutory_restriction_ended.into(),
                },
            },
        )
        .await?;
        Ok(RepairApplication(view))
    }

    /// Decides a pending application with a mandatory reason. Approval removes the
    /// listing early (REPAIRED) at the decision instant; rejection keeps it (admin of the
    /// operator's region; audited).
    #[graphql(guard = "ADMIN")]
    async fn decide_repair_application(
        &self,
        ctx: &Context<'_>,
        id: ID,
        expected_version: i32,
        approve: bool,
        reason: String,
    ) -> Result<RepairApplication> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let view = svc::decide(
            services,
            &actor,
            svc::DecideInput {
                id: parse_id(&id, "repair application")?,
                expected_version,
                approve,
                reason,
            },
        )
        .await?;
        Ok(RepairApplication(view))
    }

    /// Revokes a repair obtained by fraud: the listing is in force again, for a full new
    /// period or the time it had left, as its list says (admin; audited).
    #[graphql(guard = "ADMIN")]
    async fn revoke_repair(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
        expected_version: Option<i32>,
    ) -> Result<RepairApplication> {
        let actor = request(ctx)?.actor();
        let services = &state(ctx)?.services;
        let view = svc::revoke(
            services,
            &actor,
            svc::RevokeInput {
                id: parse_id(&id, "repair application")?,
                expected_version,
                reason,
            },
        )
        .await?;
        Ok(RepairApplication(view))
    }
}
