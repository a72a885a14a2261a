//! Writes audit events. Every mutating transaction starts with [`begin_write`], which
//! takes the audit chain's lock first, so events are chained in commit order and the
//! chain never forks; on SQLite the transaction is `IMMEDIATE`, so it waits for the
//! write lock instead of failing half-way.

use super::Actor;
use crate::clock::Clock;
use crate::domain::audit_chain::{ChainedEvent, event_hash};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::{audit_event, audit_head};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect, Set, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use serde_json::Value;

/// One change, as the audit log records it.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entity_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
}

impl AuditEntry {
    /// An event of `action` on one entity; what it was and became, and why, are added
    /// with [`before`](Self::before), [`after`](Self::after) and [`reason`](Self::reason).
    pub fn new(action: &'static str, entity_type: &'static str, entity_id: impl ToString) -> Self {
        Self {
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            before: None,
            after: None,
            reason: None,
        }
    }

    pub fn before(mut self, before: Option<Value>) -> Self {
        self.before = before;
        self
    }

    pub fn after(mut self, after: Option<Value>) -> Self {
        self.after = after;
        self
    }

    pub fn reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

/// Begins a write transaction holding the audit chain lock.
///
/// Every write of the registry begins here, so this is where pool waits are measured
/// (`registry_db_pool_waits_total`, `registry_db_pool_wait_seconds`): sea-orm takes
/// connections for plain reads inside its own calls, where nothing can time the wait,
/// so those are not counted. A begin that failed (the pool's acquire timeout) is
/// counted too. A write that records the instant it acts at takes it from
/// [`begin_write_at`] instead.
pub async fn begin_write(db: &DatabaseConnection) -> AppResult<DatabaseTransaction> {
    let waited = !crate::metrics::pool_has_idle(db);
    let started = std::time::Instant::now();
    let begun = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await;
    crate::metrics::pool_acquired(waited, started.elapsed());
    let tx = begun?;
    let backend = tx.get_database_backend();
    tx.execute_raw(Statement::from_string(
        backend,
        "UPDATE audit_head SET last_event_id = last_event_id WHERE id = 1",
    ))
    .await?;
    Ok(tx)
}

/// [`begin_write`], and the instant the write acts at, read from `clock` once the chain's
/// lock is held. Writes take the lock one after another, so the instants they record
/// follow the chain: a change is on record from when it could first be seen, never
/// before the change ahead of it committed. Read before the lock, a change that waited
/// for it (behind an import's chunk, say) would be on record from before the changes it
/// queued behind, and `knownAt` for an instant in between would show it although no
/// check then could see it.
///
/// The instant is also never before the newest event's: instances' clocks differ by a
/// few milliseconds, and a change written by a slower one right after a faster one's
/// would otherwise be on record before it (its revision superseding the other's before
/// that one began, the audit log's times running backwards). It is then the microsecond
/// after that event's.
pub async fn begin_write_at(
    db: &DatabaseConnection,
    clock: &Clock,
) -> AppResult<(DatabaseTransaction, DateTime<Utc>)> {
    let tx = begin_write(db).await?;
    let now = clock.now();
    // The chain head's event, in one statement.
    let head_event = sea_orm::sea_query::Query::select()
        .column(audit_head::Column::LastEventId)
        .from(audit_head::Entity)
        .and_where(audit_head::Column::Id.eq(1))
        .to_owned();
    let newest: Option<DateTime<Utc>> = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::OccurredAt)
        .filter(audit_event::Column::Id.in_subquery(head_event))
        .into_tuple()
        .one(&tx)
        .await?;
    Ok((tx, not_before(now, newest)))
}

/// How far behind the newest event this instance's clock may be and still follow it.
/// Clocks kept by NTP differ by milliseconds; a larger gap is a clock to fix, and
/// following it would carry one instance's wrong time into every other's writes.
const MAX_CLOCK_SKEW: chrono::Duration = chrono::Duration::seconds(1);

/// `now`, or the microsecond after `newest` when the clock is not past it (by at most
/// [`MAX_CLOCK_SKEW`]; beyond that `now`, and the gap is logged).
fn not_before(now: DateTime<Utc>, newest: Option<DateTime<Utc>>) -> DateTime<Utc> {
    match newest {
        Some(t) if t >= now && t - now <= MAX_CLOCK_SKEW => t + chrono::Duration::microseconds(1),
        Some(t) if t > now => {
            tracing::warn!(
                behind_ms = (t - now).num_milliseconds(),
                "this instance's clock is behind the newest audit event by more than a second: check the instances' clocks (NTP)"
            );
            now
        }
        _ => now,
    }
}

/// Appends one event to the chain inside `tx` (which must come from [`begin_write`]),
/// as occurring at `occurred_at`: the instant the change acts at, read from the
/// registry's clock once the lock is held ([`begin_write_at`]).
pub async fn record(
    tx: &DatabaseTransaction,
    actor: &Actor,
    occurred_at: DateTime<Utc>,
    entry: AuditEntry,
) -> AppResult<audit_event::Model> {
    let head = head(tx).await?;
    let (event, hash) = chained(&head.last_hash, actor, occurred_at, entry);
    let event = event.insert(tx).await?;
    audit_head::ActiveModel {
        id: Set(1),
        last_event_id: Set(event.id),
        last_hash: Set(hash),
    }
    .update(tx)
    .await?;
    Ok(event)
}

/// Appends `entries` to the chain inside `tx` (from [`begin_write`]), in order: the same
/// events, links and hashes as one [`record`] each, but the head is read once, the events
/// are written with multi-row INSERTs and the head moves once. An import writes a chunk's
/// events this way.
pub async fn record_many(
    tx: &DatabaseTransaction,
    actor: &Actor,
    occurred_at: DateTime<Utc>,
    entries: Vec<AuditEntry>,
) -> AppResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let head = head(tx).await?;
    let mut last_hash = head.last_hash;
    let mut events = Vec::with_capacity(entries.len());
    let mut hashes = Vec::with_capacity(entries.len());
    for entry in entries {
        let (event, hash) = chained(&last_hash, actor, occurred_at, entry);
        events.push(event);
        hashes.push(hash.clone());
        last_hash = hash;
    }
    let returned = crate::store::insert_many::insert_returning_columns(
        tx,
        events,
        &[audit_event::Column::Id, audit_event::Column::Hash],
    )
    .await?;
    let mut stored: Vec<(i64, String)> = Vec::with_capacity(returned.len());
    for row in returned {
        stored.push((row.try_get("", "id")?, row.try_get("", "hash")?));
    }
    // The chain is read in id order: the ids the database gave must follow the links.
    stored.sort_unstable_by_key(|(id, _)| *id);
    let in_order = stored.len() == hashes.len()
        && stored
            .iter()
            .zip(&hashes)
            .all(|((_, stored), made)| stored == made);
    if !in_order {
        return Err(AppError::internal(anyhow::anyhow!(
            "the audit events of one statement were not numbered in the order they were chained"
        )));
    }
    let last_event_id = stored.last().map_or(head.last_event_id, |(id, _)| *id);
    audit_head::ActiveModel {
        id: Set(1),
        last_event_id: Set(last_event_id),
        last_hash: Set(last_hash),
    }
    .update(tx)
    .await?;
    Ok(())
}

async fn head(tx: &DatabaseTransaction) -> AppResult<audit_head::Model> {
    audit_head::Entity::find_by_id(1)
        .one(tx)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("audit_head row is missing")))
}

/// The event that follows the one hashed `prev_hash`, and its own hash.
fn chained(
    prev_hash: &str,
    actor: &Actor,
    occurred_at: DateTime<Utc>,
    entry: AuditEntry,
) -> (audit_event::ActiveModel, String) {
    let role = actor.identity.role.as_str();
    let hash = event_hash(
        prev_hash,
        &ChainedEvent {
            occurred_at,
            actor: &actor.identity.subject,
            role,
            action: entry.action,
            entity_type: entry.entity_type,
            entity_id: &entry.entity_id,
            before: entry.before.as_ref(),
            after: entry.after.as_ref(),
            reason: entry.reason.as_deref(),
            request_id: &actor.request_id,
        },
    );
    let event = audit_event::ActiveModel {
        occurred_at: Set(occurred_at),
        actor: Set(actor.identity.subject.clone()),
        role: Set(role.to_string()),
        action: Set(entry.action.to_string()),
        entity_type: Set(entry.entity_type.to_string()),
        entity_id: Set(entry.entity_id),
        before: Set(entry.before),
        after: Set(entry.after),
        reason: Set(entry.reason),
        request_id: Set(actor.request_id.clone()),
        prev_hash: Set(prev_hash.to_string()),
        hash: Set(hash.clone()),
        ..Default::default()
    };
    (event, hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_write_is_never_on_record_before_the_event_ahead_of_it() {
        let t = Utc.with_ymd_and_hms(2026, 12, 4, 8, 0, 0).unwrap();
        let micro = chrono::Duration::microseconds(1);
        assert_eq!(not_before(t, None), t);
        assert_eq!(not_before(t, Some(t - micro)), t);
        // Another instance's clock ran ahead: the next microsecond after its event.
        assert_eq!(not_before(t, Some(t)), t + micro);
        let ahead = t + chrono::Duration::milliseconds(40);
        assert_eq!(not_before(t, Some(ahead)), ahead + micro);
        // A clock an hour ahead is not followed (it is logged).
        let wrong = t + chrono::Duration::hours(1);
        assert_eq!(not_before(t, Some(wrong)), t);
    }
}
