//! Joint-punishment checks (联合惩戒核查): "may this operator take part in my procedure,
//! as of this moment?"
//!
//! The hot path. One database query answers a single check or a whole batch (operators
//! by code, joined with the listings in force at `asOf` and their measures for the
//! domain; on PostgreSQL the single checks of concurrent requests share one query, see
//! `check_lookups`); the answers are signed, and their records are handed to the
//! group-commit writers, which must acknowledge them before any answer is returned.

mod findings;
mod question;
mod reconstruction;

use findings::lookup;
pub(crate) use findings::{Findings, SingleAsk, SnapshotRevision, lookup_singles};
use question::warnings_for;
pub use question::{
    authorize_domain, clean_reference, parse_batch, parse_single, resolve_as_of, resolve_known_at,
};
pub(crate) use reconstruction::hit_measure_codes;
use reconstruction::{lookup_known_at, measure_codes_of_hits};

use super::Actor;
use super::check_lookups::CheckLookups;
use super::check_records::CheckRecorder;
use super::receipts::{
    ReceiptPayload, ReceiptService, ReceiptSigner, RegistryLogHead, tlog_receipt,
};
use crate::config::ReceiptFormat;
use crate::domain::decision::{Decision, decide};
use crate::domain::measures::{Domain, Effect};
use crate::domain::uscc::Uscc;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::check_record;
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// Longest reference (tender number) a partner may attach.
pub const MAX_REFERENCE: usize = 200;
/// How far ahead of the registry's clock `asOf` may be (a partner's clock may run
/// fast); a later instant is refused, because nobody can answer for the future.
pub const AS_OF_SKEW_SECONDS: i64 = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WarningCode {
    /// The code is well-formed but fails its check digit (some genuine older codes do).
    CheckDigit,
    /// The registry knows no operator with this code: CLEAR only means nothing is recorded.
    UnknownOperator,
}

impl WarningCode {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::CheckDigit => "CHECK_DIGIT",
            WarningCode::UnknownOperator => "UNKNOWN_OPERATOR",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckWarning {
    pub code: WarningCode,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HitMeasure {
    pub code: String,
    pub name: String,
    pub effect: Effect,
    pub legal_basis: String,
}

/// A listing in force at `asOf` with measures for the checked domain.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub listing_id: i64,
    pub list_code: String,
    pub list_name: String,
    pub authority: String,
    pub decision_doc_no: Option<String>,
    /// Start of the period in force at `asOf`.
    pub listed_at: DateTime<Utc>,
    /// Scheduled end of that period.
    pub expires_at: DateTime<Utc>,
    pub measures: Vec<HitMeasure>,
}

/// One answer, as returned to the caller and recorded.
#[derive(Clone, Debug)]
pub struct CheckOutcome {
    pub receipt_id: String,
    pub uscc: String,
    pub operator_name: Option<String>,
    pub domain: Domain,
    pub as_of: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub decision: Decision,
    pub hits: Vec<Hit>,
    pub warnings: Vec<CheckWarning>,
    pub receipt: String,
    /// A reconstruction as the registry's records stood at this instant.
    pub known_at: Option<DateTime<Utc>>,
    /// The registry log's tree head the answer was computed from (as in the receipt).
    pub registry_log: Option<RegistryLogHead>,
}

/// Everything a check needs from the running service.
pub struct CheckContext<'a> {
    pub db: &'a DatabaseConnection,
    pub receipts: &'a ReceiptService,
    pub recorder: &'a CheckRecorder,
    /// Shared lookups for single checks (PostgreSQL); `None`: each check queries alone.
    pub lookups: Option<&'a CheckLookups>,
    pub max_batch: usize,
    /// The registry's clock: a check answers as of now by it.
    pub clock: &'a crate::clock::Clock,
    /// The transparency logs: the registry log's head a receipt names.
    pub logs: &'a super::logs::TransparencyLogs,
    /// What a receipt is (tlog proof, or the JWS of before during a transition).
    pub receipt_format: crate::config::ReceiptFormat,
}

/// What a caller asks of every code in one check or batch.
#[derive(Clone, Debug)]
pub struct CheckQuestion {
    pub domain: Domain,
    /// Valid time: default now.
    pub as_of: Option<DateTime<Utc>>,
    /// The partner's reference (tender number).
    pub reference: Option<String>,
    /// Record time, for audit reconstructions.
    pub known_at: Option<DateTime<Utc>>,
    /// Marks the records of one `checkBatch` call.
    pub batch: bool,
}

/// What a code's answer holds besides its receipt payload.
struct Answer<'f> {
    findings: Option<&'f Findings>,
    hits: Vec<Hit>,
    warnings: Vec<CheckWarning>,
}

/// Answers, signs and records a check of `codes` (in order, duplicates answered at
/// each place). `batch` marks the records of one `checkBatch` call.
pub async fn run(
    cx: &CheckContext<'_>,
    actor: &Actor,
    codes: Vec<Uscc>,
    ask: CheckQuestion,
) -> AppResult<Vec<CheckOutcome>> {
    let CheckQuestion {
        domain,
        as_of,
        reference,
        known_at,
        batch,
    } = ask;
    authorize_domain(&actor.identity, domain)?;
    let checked_at = cx.clock.now();
    let as_of = resolve_as_of(as_of, checked_at)?;
    let reference = clean_reference(reference)?;
    let known_at = resolve_known_at(&actor.identity, known_at, checked_at)?;

    let mut unique: Vec<&str> = codes.iter().map(Uscc::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let (found, revision): (HashMap<String, Findings>, SnapshotRevision) =
        match (known_at, cx.lookups, unique.as_slice()) {
            (None, Some(lookups), [code]) => {
                let (findings, revision) = lookups.lookup(code, as_of, domain).await?;
                let found = findings
                    .map(|findings| (code.to_string(), findings))
                    .into_iter()
                    .collect();
                (found, revision)
            }
            (None, _, _) => lookup(cx.db, &unique, as_of, domain).await?,
            (Some(k), _, _) => (
                lookup_known_at(cx.db, &unique, as_of, k, domain).await?,
                crate::service::feed::revision_known_at(cx.db, k).await?,
            ),
        };

    let batch_id = batch.then(|| uuid::Uuid::now_v7().to_string());
    // The registry log's tree head of exactly the state the answer was read from: the
    // list the lookup saw, or for a reconstruction (`knownAt`) the list as known then.
    let registry_head = cx.logs.registry_head_for(cx.db, revision).await?;
    let registry_log = Some(RegistryLogHead {
        size: registry_head.size,
        root: crate::tlog::hash_b64(&registry_head.root),
    });
    // First what each code gets, then every receipt in one signing pass (on several
    // cores for a large batch), then the answers and their records.
    let mut answers = Vec::with_capacity(codes.len());
    let mut payloads = Vec::with_capacity(codes.len());
    for code in codes {
        let findings = found.get(code.as_str());
        let hits: Vec<Hit> = findings
            .map(|f| f.hits.values().cloned().collect())
            .unwrap_or_default();
        let decision = decide(
            hits.iter()
                .flat_map(|h| h.measures.iter().map(|m| m.effect)),
        );
        let warnings = warnings_for(&code, findings.is_some());
        let hit_ids: Vec<i64> = hits.iter().map(|h| h.listing_id).collect();
        payloads.push(ReceiptPayload {
            iss: cx.receipts.issuer().to_string(),
            receipt_id: uuid::Uuid::now_v7().to_string(),
            sub: actor.identity.subject.clone(),
            uscc: code.as_str().to_string(),
            domain,
            as_of,
            checked_at,
            decision,
            hit_listing_ids: hit_ids,
            reference: reference.clone(),
            warnings: warnings
                .iter()
                .map(|w| w.code.as_str().to_string())
                .collect(),
            known_at,
            registry_log: registry_log.clone(),
        });
        answers.push(Answer {
            findings,
            hits,
            warnings,
        });
    }
    // The answer-log entry of each answer: its payload, exactly as the receipt carries it.
    let entries = payloads
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<Vec<_>, _>>()
        .map_err(AppError::internal)?;
    let jws = match cx.receipt_format {
        ReceiptFormat::Jws => Some(
            ReceiptSigner::new(cx.receipts)
                .sign_all(&payloads)
                .map_err(AppError::internal)?,
        ),
        ReceiptFormat::TlogProof => None,
    };

    let mut outcomes = Vec::with_capacity(answers.len());
    let mut records = Vec::with_capacity(answers.len());
    for (answer, payload) in answers.into_iter().zip(payloads) {
        let Answer {
            findings,
            hits,
            warnings,
        } = answer;
        records.push(check_record::Model {
            id: payload.receipt_id.clone(),
            subject: actor.identity.subject.clone(),
            role: actor.identity.role.as_str().to_string(),
            domain: domain.into(),
            uscc: payload.uscc.clone(),
            operator_id: findings.map(|f| f.operator_id),
            as_of,
            checked_at,
            reference: reference.clone(),
            decision: payload.decision.into(),
            hit_listing_ids: json!(payload.hit_listing_ids),
            hit_measure_codes: Some(json!(measure_codes_of_hits(&hits))),
            warnings: json!(warnings),
            request_id: actor.request_id.clone(),
            batch_id: batch_id.clone(),
            known_at,
        });
        outcomes.push(CheckOutcome {
            receipt_id: payload.receipt_id,
            uscc: payload.uscc,
            operator_name: findings.map(|f| f.operator_name.clone()),
            domain,
            as_of,
            checked_at,
            reference: reference.clone(),
            decision: payload.decision,
            hits,
            warnings,
            receipt: String::new(),
            known_at,
            registry_log: payload.registry_log.clone(),
        });
    }
    // No answer without its record and its answer-log leaf under a signed checkpoint:
    // this returns only after both are committed.
    match jws {
        Some(signed) => {
            // A JWS receipt needs neither the entries back nor inclusion proofs.
            cx.recorder.record(records, entries, false).await?;
            for (outcome, receipt) in outcomes.iter_mut().zip(signed) {
                outcome.receipt = receipt;
            }
        }
        None => {
            let logged = cx.recorder.record(records, entries.clone(), true).await?;
            for ((outcome, entry), at) in outcomes.iter_mut().zip(&entries).zip(logged) {
                outcome.receipt = tlog_receipt(entry, at.index, at.proof, &at.checkpoint);
            }
        }
    }
    for outcome in &outcomes {
        crate::metrics::check_answered(
            crate::domain::enum_name(domain),
            crate::domain::enum_name(outcome.decision),
        );
    }
    Ok(outcomes)
}
