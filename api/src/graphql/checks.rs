//! Joint-punishment checks: `check`, `checkBatch`, `checkRecords`, `verifyReceipt`,
//! `reportMeasureApplied`, `partnerFeedback`. The operation names are a contract with
//! partner systems.

use super::{request, state};
use crate::auth::Role;
use crate::domain::decision::Decision;
use crate::domain::measures::{Domain, Effect};
use crate::error::AppError;
use crate::graphql::guards::AUTHENTICATED;
use crate::service::Actor;
use crate::service::check_records::{self as records, RecordCursor, RecordFilter};
use crate::service::checks::{self as svc, CheckContext, CheckOutcome, CheckWarning, WarningCode};
use crate::service::feedback::{self, FeedbackFilter, FeedbackInput};
use crate::state::AppState;
use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{check_record, partner_feedback};
use std::sync::Arc;

/// A measure in force for the checked domain, with what it does and why.
#[derive(SimpleObject)]
pub struct HitMeasure {
    pub code: String,
    pub name: String,
    pub effect: Effect,
    pub legal_basis: String,
}

/// A listing in force at `asOf` with measures for the checked domain.
#[derive(SimpleObject)]
pub struct CheckHit {
    pub listing_id: ID,
    /// Code of the list (e.g. SAMR_SERIOUS_DISHONEST).
    pub list_code: String,
    pub list_name: String,
    /// The listing authority.
    pub authority: String,
    /// The listing decision's document number.
    pub decision_doc_no: Option<String>,
    /// Start of the listing period in force at `asOf`.
    pub listed_at: DateTime<Utc>,
    /// Scheduled end of that period (removal happens by itself then).
    pub expires_at: DateTime<Utc>,
    /// The listing's measures for the checked domain.
    pub measures: Vec<HitMeasure>,
}

/// Something the caller should know about an answer.
#[derive(SimpleObject)]
#[graphql(name = "CheckWarning")]
pub struct CheckWarningInfo {
    pub code: WarningCode,
    pub message: String,
}

impl From<CheckWarning> for CheckWarningInfo {
    fn from(w: CheckWarning) -> Self {
        Self {
            code: w.code,
            message: w.message,
        }
    }
}

/// The answer to one check, with its signed receipt.
pub struct CheckResult(pub CheckOutcome);

#[Object]
impl CheckResult {
    /// The check record's id; also inside the receipt.
    async fn receipt_id(&self) -> ID {
        ID(self.0.receipt_id.clone())
    }
    /// Compact JWS (EdDSA) over what this answer says: file it as evidence, verify it
    /// offline against /.well-known/jwks.json.
    async fn receipt(&self) -> &str {
        &self.0.receipt
    }
    /// The code as checked (trimmed, upper-case).
    async fn uscc(&self) -> &str {
        &self.0.uscc
    }
    /// A status proof of this answer (JSON, `credit-registry/status-proof@v1`): the
    /// code's entries in the status map of the registry-log checkpoint the receipt names
    /// (none: the code has no listing in the log), and their path to the map root in
    /// that signed checkpoint. With the registry log's verifier key alone it proves the
    /// decision and hits (`credit-registry verify-receipt --status-proof`). Computed
    /// only when asked for. Null when that tree head is not a checkpoint with a map (an
    /// answer read while an append was under way, or a head logged before the map
    /// existed): the receipt still names the head, and `--recompute` replays to it.
    async fn status_proof(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let Some(head) = &self.0.registry_log else {
            return Ok(None);
        };
        let state = state(ctx)?;
        let db = state.pool_for(request(ctx)?.identity());
        // Bounded over all requests (`state::status_proof_permits`); the semaphore is
        // never closed.
        let _permit = state
            .status_proofs
            .acquire()
            .await
            .map_err(|e| AppError::internal(anyhow::anyhow!("status proof permits: {e}")))?;
        Ok(
            crate::service::status_map::status_proof(db, &self.0.uscc, head.size, &head.root)
                .await?
                .map(|p| p.to_text()),
        )
    }
    /// The operator's name, when the registry knows the code.
    async fn operator_name(&self) -> Option<&str> {
        self.0.operator_name.as_deref()
    }
    async fn domain(&self) -> Domain {
        self.0.domain
    }
    /// The instant the answer is for.
    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
    /// When the registry answered.
    async fn checked_at(&self) -> DateTime<Utc> {
        self.0.checked_at
    }
    /// Set on a reconstruction: the answer as the registry's records stood then.
    async fn known_at(&self) -> Option<DateTime<Utc>> {
        self.0.known_at
    }
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    async fn decision(&self) -> Decision {
        self.0.decision
    }
    /// The listings in force at `asOf` with measures for the domain (empty when CLEAR).
    async fn hits(&self) -> Vec<CheckHit> {
        self.0
            .hits
            .iter()
            .map(|h| CheckHit {
                listing_id: ID(h.listing_id.to_string()),
                list_code: h.list_code.clone(),
                list_name: h.list_name.clone(),
                authority: h.authority.clone(),
                decision_doc_no: h.decision_doc_no.clone(),
                listed_at: h.listed_at,
                expires_at: h.expires_at,
                measures: h
                    .measures
                    .iter()
                    .map(|m| HitMeasure {
                        code: m.code.clone(),
                        name: m.name.clone(),
                        effect: m.effect,
                        legal_basis: m.legal_basis.clone(),
                    })
                    .collect(),
            })
            .collect()
    }
    async fn warnings(&self) -> Vec<CheckWarningInfo> {
        self.0.warnings.iter().cloned().map(Into::into).collect()
    }
}

/// One recorded check: who asked what, and what the registry answered.
pub struct CheckRecord(pub check_record::Model);

#[Object]
impl CheckRecord {
    async fn receipt_id(&self) -> ID {
        ID(self.0.id.clone())
    }
    /// Who asked (token subject) and in which role.
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    async fn role(&self) -> &str {
        &self.0.role
    }
    async fn domain(&self) -> Option<Domain> {
        Some(self.0.domain.into())
    }
    async fn uscc(&self) -> &str {
        &self.0.uscc
    }
    async fn operator_id(&self) -> Option<ID> {
        self.0.operator_id.map(|id| ID(id.to_string()))
    }
    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
    async fn checked_at(&self) -> DateTime<Utc> {
        self.0.checked_at
    }
    async fn reference(&self) -> Option<&str> {
        self.0.reference.as_deref()
    }
    async fn decision(&self) -> Option<Decision> {
        Some(self.0.decision.into())
    }
    async fn hit_listing_ids(&self) -> Vec<ID> {
        serde_json::from_value::<Vec<i64>>(self.0.hit_listing_ids.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|id| ID(id.to_string()))
            .collect()
    }
    async fn warnings(&self) -> Vec<CheckWarningInfo> {
        serde_json::from_value::<Vec<CheckWarning>>(self.0.warnings.clone())
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect()
    }
    /// The request that asked (matches the `x-request-id` header and the logs).
    async fn request_id(&self) -> &str {
        &self.0.request_id
    }
    /// Shared by the records of one `checkBatch` call.
    async fn batch_id(&self) -> Option<&str> {
        self.0.batch_id.as_deref()
    }
}

/// What a partner reported it did with a check (执行反馈).
pub struct PartnerFeedback(pub partner_feedback::Model);

#[Object]
impl PartnerFeedback {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn receipt_id(&self) -> ID {
        ID(self.0.receipt_id.clone())
    }
    /// The partner that reported it.
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    async fn measure_code(&self) -> &str {
        &self.0.measure_code
    }
    /// Where it was applied (e.g. "bid rejected in tender QY-2026-001").
    async fn context(&self) -> &str {
        &self.0.context
    }
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Whether a receipt is genuine and, if so, what it says.
#[derive(SimpleObject, Default)]
pub struct ReceiptVerification {
    /// The signature holds under one of the registry's keys.
    pub valid: bool,
    /// Why it is not valid.
    pub reason: Option<String>,
    /// The key that signed it.
    pub kid: Option<String>,
    pub receipt_id: Option<ID>,
    pub issuer: Option<String>,
    /// Who made the check.
    pub subject: Option<String>,
    pub uscc: Option<String>,
    pub domain: Option<Domain>,
    pub as_of: Option<DateTime<Utc>>,
    pub checked_at: Option<DateTime<Utc>>,
    pub decision: Option<Decision>,
    pub hit_listing_ids: Option<Vec<ID>>,
    pub reference: Option<String>,
    pub warnings: Option<Vec<String>>,
    /// The registry holds this check's record and it says the same (null when invalid).
    pub recorded: Option<bool>,
    /// The `statusProof` given with the receipt proves its answer: its checkpoint is
    /// the registry log's at the head the receipt names, its path leads to that
    /// checkpoint's status map, and the code's entries there give the receipt's decision
    /// and hits at its `asOf`. False when the proof does not hold or gives another
    /// answer. Null when no status proof was given, the receipt is not valid, or the
    /// proof holds but cannot recompute the answer at its `asOf` (one before the code's
    /// last logged change): `statusReason` says which.
    pub status_proven: Option<bool>,
    /// What the status proof showed, or why it does not hold.
    pub status_reason: Option<String>,
}

#[derive(InputObject, Default)]
pub struct CheckRecordFilter {
    /// Only checks made by this subject (partners always see only their own).
    pub subject: Option<String>,
    pub domain: Option<Domain>,
    pub decision: Option<Decision>,
    pub uscc: Option<String>,
    pub reference: Option<String>,
    /// Checked at or after this instant.
    pub checked_from: Option<DateTime<Utc>>,
    /// Checked before this instant.
    pub checked_before: Option<DateTime<Utc>>,
}

#[derive(InputObject, Default)]
pub struct PartnerFeedbackFilter {
    pub receipt_id: Option<String>,
    /// Only feedback from this partner (partners always see only their own).
    pub subject: Option<String>,
    pub measure_code: Option<String>,
}

/// Partners see only their own records; asking for another subject's is refused.
fn own_subject(actor: &Actor, asked: Option<String>) -> Result<Option<String>, AppError> {
    if actor.identity.role != Role::Partner {
        return Ok(asked);
    }
    match asked {
        Some(other) if other != actor.identity.subject => Err(AppError::Forbidden(
            "a partner sees only its own records".into(),
        )),
        _ => Ok(Some(actor.identity.subject.clone())),
    }
}

fn check_context(state: &Arc<AppState>) -> CheckContext<'_> {
    CheckContext {
        db: &state.db,
        receipts: &state.receipts,
        recorder: &state.check_recorder,
        lookups: state.check_lookups.as_ref(),
        max_batch: state.settings.limits.max_check_batch,
        clock: &state.clock,
        logs: &state.logs,
        receipt_format: state.settings.receipts.format,
    }
}

#[derive(Default)]
pub struct CheckQuery;

#[Object]
impl CheckQuery {
    /// May this operator take part in a procedure of `domain`, as of `asOf` (default now)?
    /// Partners may check only their own domains. Every check is recorded before it is
    /// answered, and the answer carries a signed receipt.
    #[graphql(guard = "AUTHENTICATED")]
    async fn check(
        &self,
        ctx: &Context<'_>,
        uscc: String,
        domain: Domain,
        as_of: Option<DateTime<Utc>>,
        reference: Option<String>,
        #[graphql(
            desc = "Audit only (admins, auditors): answer as the registry's records stood at this instant"
        )]
        known_at: Option<DateTime<Utc>>,
    ) -> Result<CheckResult> {
        let actor = request(ctx)?.actor();
        let code = svc::parse_single(&uscc)?;
        let cx = check_context(state(ctx)?);
        let ask = svc::CheckQuestion {
            domain,
            as_of,
            reference,
            known_at,
            batch: false,
        };
        let mut outcomes = svc::run(&cx, &actor, vec![code], ask).await?;
        let outcome = outcomes
            .pop()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a check produced no answer")))?;
        Ok(CheckResult(outcome))
    }

    /// Checks up to `limits.max_check_batch` (default 1000) codes at once: results in the
    /// order asked, a repeated code answered at each place. Any malformed code refuses
    /// the whole request with BAD_USER_INPUT naming each bad position.
    #[graphql(guard = "AUTHENTICATED")]
    async fn check_batch(
        &self,
        ctx: &Context<'_>,
        usccs: Vec<String>,
        domain: Domain,
        as_of: Option<DateTime<Utc>>,
        reference: Option<String>,
        #[graphql(
            desc = "Audit only (admins, auditors): answer as the registry's records stood at this instant"
        )]
        known_at: Option<DateTime<Utc>>,
    ) -> Result<Vec<CheckResult>> {
        let actor = request(ctx)?.actor();
        let cx = check_context(state(ctx)?);
        let codes = svc::parse_batch(&usccs, cx.max_batch)?;
        let outcomes = svc::run(
            &cx,
            &actor,
            codes,
            svc::CheckQuestion {
                domain,
                as_of,
                reference,
                known_at,
                batch: true,
            },
        )
        .await?;
        Ok(outcomes.into_iter().map(CheckResult).collect())
    }

    /// Recorded checks, newest first. Partners see their own; auditors and admins all.
    #[graphql(guard = "AUTHENTICATED")]
    async fn check_records(
        &self,
        ctx: &Context<'_>,
        filter: Option<CheckRecordFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, CheckRecord>> {
        let actor = request(ctx)?.actor();
        let state = state(ctx)?;
        let first =
            crate::graphql::connection::page_size(first, state.settings.limits.max_page_size)?;
        let rules = state.settings.limits.input_rules();
        let after = after
            .as_deref()
            .map(|c| RecordCursor::decode(c, &rules))
            .transpose()?;
        let filter = filter.unwrap_or_default();
        let uscc = filter
            .uscc
            .as_deref()
            .map(svc::parse_single)
            .transpose()?
            .map(|c| c.into_string());
        let filter = RecordFilter {
            subject: own_subject(&actor, filter.subject)?,
            // A partner's own records are a partner's: an admin or auditor token minted
            // with the same subject name is another caller.
            role: (actor.identity.role == Role::Partner)
                .then(|| Role::Partner.as_str().to_string()),
            domain: filter.domain,
            decision: filter.decision,
            uscc,
            reference: filter.reference,
            checked_from: filter.checked_from,
            checked_before: filter.checked_before,
        };
        let (rows, more) = records::list(&state.db, &filter, first, after.as_ref()).await?;
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(rows.into_iter().map(|row| {
            let cursor = RecordCursor {
                checked_at: row.checked_at,
                id: row.id.clone(),
            };
            Edge::new(cursor.encode(), CheckRecord(row))
        }));
        Ok(connection)
    }

    /// Is this receipt genuine, and what does it say? Needs no token: the signature is
    /// checked against the registry's keys (the same ones /.well-known/jwks.json lists).
    async fn verify_receipt(
        &self,
        ctx: &Context<'_>,
        receipt: String,
        #[graphql(desc = "The check's `statusProof`, to be checked against the receipt's answer.")]
        status_proof: Option<String>,
    ) -> Result<ReceiptVerification> {
        let state = state(ctx)?;
        let verified = match state.receipts.verify(&receipt) {
            Ok(verified) => verified,
            Err(reason) => {
                return Ok(ReceiptVerification {
                    valid: false,
                    reason: Some(reason.to_string()),
                    ..Default::default()
                });
            }
        };
        let p = verified.payload;
        let status = status_proof.map(|proof| {
            let head = p.registry_head()?;
            let registry_vkey = state
                .logs
                .key(crate::store::tlog_store::LogName::Registry)
                .vkey();
            crate::tlog::client::check_status_proof(
                &proof,
                &registry_vkey,
                head.size,
                &head.root,
                &(&p).into(),
            )
        });
        let db = state.pool_for(request(ctx)?.identity());
        let recorded = records::find(db, &p.receipt_id).await?.is_some_and(|r| {
            r.uscc == p.uscc
                && Domain::from(r.domain) == p.domain
                && Decision::from(r.decision) == p.decision
                && r.as_of == p.as_of
                && r.subject == p.sub
        });
        Ok(ReceiptVerification {
            valid: true,
            reason: None,
            kid: Some(verified.kid),
            receipt_id: Some(ID(p.receipt_id)),
            issuer: Some(p.iss),
            subject: Some(p.sub),
            uscc: Some(p.uscc),
            domain: Some(p.domain),
            as_of: Some(p.as_of),
            checked_at: Some(p.checked_at),
            decision: Some(p.decision),
            hit_listing_ids: Some(
                p.hit_listing_ids
                    .into_iter()
                    .map(|id| ID(id.to_string()))
                    .collect(),
            ),
            reference: p.reference,
            warnings: Some(p.warnings),
            recorded: Some(recorded),
            // Proven only when the proof gave the answer; a proof that holds but cannot
            // say anything about the receipt's instant leaves it undecided (null).
            status_proven: status.as_ref().and_then(|r| match r {
                Ok(check) => check.recomputed.then_some(true),
                Err(_) => Some(false),
            }),
            status_reason: status.map(|r| r.map_or_else(|why| why, |check| check.report)),
        })
    }

    /// Execution feedback, newest first. Partners see their own; auditors and admins all.
    #[graphql(guard = "AUTHENTICATED")]
    async fn partner_feedback(
        &self,
        ctx: &Context<'_>,
        filter: Option<PartnerFeedbackFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, PartnerFeedback>> {
        let actor = request(ctx)?.actor();
        let state = state(ctx)?;
        let first =
            crate::graphql::connection::page_size(first, state.settings.limits.max_page_size)?;
        let after_id = after
            .as_deref()
            .map(|a| {
                a.parse::<i64>().map_err(|_| {
                    AppError::bad_input("`after` is not a cursor returned by partnerFeedback")
                })
            })
            .transpose()?;
        let filter = filter.unwrap_or_default();
        let filter = FeedbackFilter {
            subject: own_subject(&actor, filter.subject)?,
            receipt_id: filter.receipt_id,
            measure_code: filter.measure_code,
        };
        let (rows, more) = feedback::list(&state.db, &filter, first, after_id).await?;
        let mut connection = Connection::new(after_id.is_some(), more);
        connection.edges.extend(
            rows.into_iter()
                .map(|row| Edge::new(row.id.to_string(), PartnerFeedback(row))),
        );
        Ok(connection)
    }
}

#[derive(Default)]
pub struct CheckMutation;

#[Object]
impl CheckMutation {
    /// Reports which measure the partner applied after a check (执行反馈), e.g. "bid
    /// rejected in tender X". Only the partner that made the check may report. Audited.
    #[graphql(guard = "AUTHENTICATED")]
    async fn report_measure_applied(
        &self,
        ctx: &Context<'_>,
        receipt_id: String,
        measure_code: String,
        context: String,
        note: Option<String>,
    ) -> Result<PartnerFeedback> {
        let actor = request(ctx)?.actor();
        let saved = feedback::report(
            &state(ctx)?.services,
            &actor,
            FeedbackInput {
                receipt_id,
                measure_code,
                context,
                note,
            },
        )
        .await?;
        Ok(PartnerFeedback(saved))
    }
}
