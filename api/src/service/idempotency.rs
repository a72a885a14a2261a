//! Idempotency keys over the database.
//!
//! The primary key (caller, key) is the lock: the first attempt inserts a *pending* row
//! (committed at once, outside the mutation's transaction) and runs; any other attempt
//! finds the row and replays the stored answer, is told the first is still running, or,
//! when the pending row outlived every possible request, recovers it. Whether a dead
//! attempt committed anything is known from the audit log: every mutation writes its
//! audit events, carrying the request id, in its own transaction.

use crate::clock::Clock;
use crate::domain::idempotency::{Existing, Stored, answer_lost_body, judge};
use crate::error::AppResult;
use chrono::{DateTime, Duration, Utc};
use entity::{audit_event, idempotency_key};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set, TryInsertResult,
};
use serde_json::Value;

/// One attempt at a keyed request.
#[derive(Clone, Debug)]
pub struct Claim {
    /// `role:subject` of the caller: keys of different callers never meet.
    pub subject: String,
    pub key: String,
    pub request_hash: String,
    /// This attempt's request id (the one its audit events will carry).
    pub request_id: String,
}

/// What the attempt should do.
#[derive(Clone, Debug, PartialEq)]
pub enum Begin {
    /// This attempt owns the key: run the request, then [`finish`] or [`release`].
    Proceed,
    /// Answer with what the first attempt answered.
    Replay { status: u16, body: Value },
    /// The key was used with a different request.
    Reused,
    /// The first attempt is still running.
    InProgress,
}

/// Deletes the keys older than the retention (`domain::idempotency::retention`): their
/// answers are no longer replayed (an old key counts as new), so keeping them would only
/// grow the table. Returns how many went.
pub async fn purge_expired(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<u64> {
    let cutoff = now - crate::domain::idempotency::retention();
    let deleted = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Runs [`purge_expired`] every `interval` while the server lives; keys expire by the
/// registry's clock.
pub async fn purge_job(db: DatabaseConnection, clock: Clock, interval: std::time::Duration) {
    use crate::cluster::locks::{Lock, run_exclusive};
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // One instance of several on PostgreSQL runs each tick (`cluster::locks`).
        match run_exclusive(&db, Lock::IdempotencyPurge, purge_expired(&db, clock.now())).await {
            Ok(None | Some(0)) => {}
            Ok(Some(n)) => tracing::info!(deleted = n, "expired idempotency keys deleted"),
            Err(e) => {
                tracing::warn!(error = %crate::error::one_line(&e), "deleting expired idempotency keys failed")
            }
        }
    }
}

/// Claims the key for this attempt, or says why not.
pub async fn begin(
    db: &DatabaseConnection,
    clock: &Clock,
    claim: &Claim,
    stale_after: Duration,
) -> AppResult<Begin> {
    // Each pass either decides or observes a row that changed under it; a few passes
    // settle any race (a concurrent delete, an expiry, another recovery).
    for _ in 0..4 {
        let now = clock.now();
        if insert_pending(db, claim, now).await? {
            return Ok(Begin::Proceed);
        }
        let Some(row) =
            idempotency_key::Entity::find_by_id((claim.subject.clone(), claim.key.clone()))
                .one(db)
                .await?
        else {
            continue;
        };
        let stored = Stored::from_text(&row.response);
        match judge(
            &row.request_hash,
            stored,
            row.created_at,
            &claim.request_hash,
            now,
            stale_after,
        ) {
            Existing::Expired => {
                idempotency_key::Entity::delete_many()
                    .filter(idempotency_key::Column::Subject.eq(&row.subject))
                    .filter(idempotency_key::Column::Key.eq(&row.key))
                    .filter(idempotency_key::Column::Response.eq(&row.response))
                    .exec(db)
                    .await?;
            }
            Existing::Reused => return Ok(Begin::Reused),
            Existing::Replay { status, body } => return Ok(Begin::Replay { status, body }),
            Existing::InProgress => return Ok(Begin::InProgress),
            Existing::Abandoned { request_id } => {
                if committed(db, &request_id, &row.subject, row.created_at).await? {
                    // It ran; only its answer is missing. Keep that fact as the answer.
                    let done = Stored::Done {
                        status: 409,
                        body: answer_lost_body(&request_id),
                    };
                    replace_if_unchanged(db, &row, &done, row.created_at).await?;
                    return Ok(Begin::Replay {
                        status: 409,
                        body: answer_lost_body(&request_id),
                    });
                }
                let mine = Stored::Pending {
                    request_id: claim.request_id.clone(),
                };
                if replace_if_unchanged(db, &row, &mine, now).await? {
                    return Ok(Begin::Proceed);
                }
            }
        }
    }
    Ok(Begin::InProgress)
}

/// Stores the attempt's answer for replay.
pub async fn finish(
    db: &DatabaseConnection,
    claim: &Claim,
    status: u16,
    body: Value,
) -> AppResult<()> {
    let done = Stored::Done { status, body };
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::Response,
            Expr::value(done.to_text()),
        )
        .filter(still_pending(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives the key up after an attempt that committed nothing, so a retry runs afresh.
pub async fn release(db: &DatabaseConnection, claim: &Claim) -> AppResult<()> {
    idempotency_key::Entity::delete_many()
        .filter(still_pending(claim))
        .exec(db)
        .await?;
    Ok(())
}

/// True when an audit event of this caller (`role:subject`) carries this request id: the
/// attempt committed a change. A request id may be the caller's own `x-request-id`, so
/// only the caller's own events count: another caller sending the same id cannot make an
/// attempt look committed. The search starts shortly before the key was claimed, on the
/// `occurred_at` index.
pub async fn committed(
    db: &DatabaseConnection,
    request_id: &str,
    caller: &str,
    claimed_at: DateTime<Utc>,
) -> AppResult<bool> {
    let Some((role, subject)) = caller.split_once(':') else {
        return Ok(false);
    };
    if request_id.is_empty() {
        return Ok(false);
    }
    // Tolerates a wall clock that stepped back a little between claim and commit.
    let since = claimed_at - Duration::minutes(5);
    let found = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Id)
        .filter(audit_event::Column::OccurredAt.gte(since))
        .filter(audit_event::Column::RequestId.eq(request_id))
        .filter(audit_event::Column::Role.eq(role))
        .filter(audit_event::Column::Actor.eq(subject))
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// The key row of `claim` while it is still pending for this attempt.
fn still_pending(claim: &Claim) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(idempotency_key::Column::Subject.eq(&claim.subject))
        .add(idempotency_key::Column::Key.eq(&claim.key))
        .add(idempotency_key::Column::Response.eq(pending_text(claim)))
}

fn pending_text(claim: &Claim) -> String {
    Stored::Pending {
        request_id: claim.request_id.clone(),
    }
    .to_text()
}

async fn insert_pending(
    db: &DatabaseConnection,
    claim: &Claim,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let row = idempotency_key::ActiveModel {
        subject: Set(claim.subject.clone()),
        key: Set(claim.key.clone()),
        request_hash: Set(claim.request_hash.clone()),
        response: Set(pending_text(claim)),
        created_at: Set(now),
    };
    let result = idempotency_key::Entity::insert(row)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    Ok(matches!(result, TryInsertResult::Inserted(n) if n > 0))
}

/// Compare-and-set on the whole row: succeeds only if nobody changed it meanwhile.
async fn replace_if_unchanged(
    db: &DatabaseConnection,
    row: &idempotency_key::Model,
    next: &Stored,
    created_at: DateTime<Utc>,
) -> AppResult<bool> {
    let result = idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::Response,
            Expr::value(next.to_text()),
        )
        .col_expr(idempotency_key::Column::CreatedAt, Expr::value(created_at))
        .filter(idempotency_key::Column::Subject.eq(&row.subject))
        .filter(idempotency_key::Column::Key.eq(&row.key))
        .filter(idempotency_key::Column::Response.eq(&row.response))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
