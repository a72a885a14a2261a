//! The audit log for auditors and admins: `auditEvents` and `verifyAuditChain`.

use super::connection::{decode_id_cursor, forward_page, page_size};
use super::state;
use crate::graphql::guards::ADMIN_OR_AUDITOR;
use crate::service::audit_query::{self, AuditFilter};
use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::audit_event;

/// Events are read a page at a time while the chain is verified.
const VERIFY_PAGE: u64 = 1000;

/// One change: who, what, when, the values before and after, and its link in the chain.
pub struct AuditEvent(pub audit_event::Model);

#[Object]
impl AuditEvent {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// The token subject that made the change (`system` for the server's own jobs).
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn role(&self) -> &str {
        &self.0.role
    }
    /// E.g. `listing.corrected`.
    async fn action(&self) -> &str {
        &self.0.action
    }
    async fn entity_type(&self) -> &str {
        &self.0.entity_type
    }
    async fn entity_id(&self) -> &str {
        &self.0.entity_id
    }
    async fn before(&self) -> Option<Json<serde_json::Value>> {
        self.0.before.clone().map(Json)
    }
    async fn after(&self) -> Option<Json<serde_json::Value>> {
        self.0.after.clone().map(Json)
    }
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The request the change came from (also in the server's logs).
    async fn request_id(&self) -> &str {
        &self.0.request_id
    }
    /// The hash of the event before this one (64 zeros for the first).
    async fn prev_hash(&self) -> &str {
        &self.0.prev_hash
    }
    /// sha256 over `prev_hash` and this event's canonical fields.
    async fn hash(&self) -> &str {
        &self.0.hash
    }
}

pub type AuditEventConnection = Connection<String, AuditEvent>;

#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// E.g. `listing`, `operator`, `typical_case`.
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// The token subject.
    pub actor: Option<String>,
    /// E.g. `listing.corrected`.
    pub action: Option<String>,
    /// Occurred at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Occurred before this instant.
    pub to: Option<DateTime<Utc>>,
}

/// The verdict of `verifyAuditChain`.
#[derive(SimpleObject)]
pub struct AuditChainReport {
    pub ok: bool,
    pub checked_events: u64,
    /// The first event whose link does not hold.
    pub first_broken_event_id: Option<ID>,
    pub problem: Option<String>,
    pub last_event_id: Option<ID>,
}

impl From<audit_query::ChainReport> for AuditChainReport {
    fn from(r: audit_query::ChainReport) -> Self {
        Self {
            ok: r.ok,
            checked_events: r.checked_events,
            first_broken_event_id: r.first_broken_event_id.map(|id| ID(id.to_string())),
            problem: r.problem,
            last_event_id: r.last_event_id.map(|id| ID(id.to_string())),
        }
    }
}

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// Audit events in chain order, filtered by entity, actor, action and time
    /// (auditors and admins).
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditEventFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<AuditEventConnection> {
        let st = state(ctx)?;
        let first = page_size(first, st.settings.limits.max_page_size)?;
        let after = decode_id_cursor("audit", after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = AuditFilter {
            entity_type: f.entity_type,
            entity_id: f.entity_id,
            actor: f.actor,
            action: f.action,
            from: f.from,
            to: f.to,
        };
        let (rows, has_next) =
            audit_query::search(st.heavy_reads(false), &filter, first, after).await?;
        Ok(forward_page(
            "audit",
            rows.into_iter()
                .map(|e| (e.id.to_string(), AuditEvent(e)))
                .collect(),
            has_next,
        ))
    }

    /// Recomputes every event's hash from its stored fields, checks each link to the
    /// event before it and that the chain's head names the last event; reports the
    /// first broken link (auditors and admins).
    #[graphql(guard = "ADMIN_OR_AUDITOR")]
    async fn verify_audit_chain(&self, ctx: &Context<'_>) -> Result<AuditChainReport> {
        let st = state(ctx)?;
        Ok(audit_query::verify_chain(&st.db, VERIFY_PAGE).await?.into())
    }
}
