//! Check records: every check is on disk before its answer leaves the registry.
//!
//! Requests hand their records to background writers through a channel and wait for
//! the acknowledgement. A writer takes everything queued since its last commit and
//! writes it as one statement (group commit), so a busy registry pays one statement and
//! one commit for many checks while no answer is ever sent without its record. If the
//! write fails, every waiting check fails with it.
//!
//! The same transaction appends the group's answer-log leaves (one per record, its
//! receipt payload) and the one checkpoint that covers them (issue 17,
//! `service::logs`): each request is acknowledged with where its answers landed in the
//! log and their inclusion proofs, so a receipt never names a leaf that is not durable.
//!
//! On PostgreSQL a whole group (records, hashes, entries, checkpoint, head) is ONE
//! statement with a fixed text (`check_record_sql::PG_WRITE_GROUP`), without BEGIN or
//! COMMIT: one round trip per group instead of eight, and no lock held across round trips.
//! The writers keep the answer log's head in memory: a writer computes its group on top
//! of the head the previous group (possibly still in flight) leaves, and the statement
//! moves the head only if it still is at the size the group was computed from. So
//! several writers (`database.check_record_writers`; one by default) overlap (the
//! second's statement waits in PostgreSQL for the first's row lock, then lands right
//! after it), and a group computed on a stale head (another instance
//! appended, a group in flight failed) writes nothing and is written again under the
//! head's lock, on top of what is committed.

use super::group_queue::{self, GroupFailure, SharedReceiver};
use super::logs::{LoggedAnswer, TransparencyLogs};
use crate::domain::decision::Decision;
use crate::domain::measures::Domain;
use crate::error::{AppError, AppResult};
use crate::store::check_record_sql;
use crate::store::tlog_store::{self, Appended, Head, LogName, PreparedAppend};
use chrono::{DateTime, Utc};
use entity::check_record;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Requests queued for the writer before senders wait for room.
const QUEUE_CAPACITY: usize = 4_096;
/// Rows per INSERT statement on SQLite: 16 columns each stays well under its 32 766
/// bind parameters.
const ROWS_PER_STATEMENT: usize = 1_000;
/// Rows per transaction: the writer stops collecting queued requests at this many.
const ROWS_PER_COMMIT: usize = 5_000;
/// Writers working at once on PostgreSQL by default. Every group moves the answer log's
/// head row, so groups commit one after another whatever the number of writers: a
/// second writer only takes a smaller group early and waits in PostgreSQL for the first's
/// row lock, so its checks wait for two commits instead of one, and each check pays a
/// larger share of a commit (on the 2-core bench machine a durable commit costs
/// PostgreSQL about 0.3–0.6 ms of CPU, far more than a group's rows). Measured there
/// (debug server, 16 connections, 5 interleaved pairs): one writer instead of two, 0.32
/// instead of 0.39 group writes per check, 6.4 instead of 9.1 ms per group write, 14 %
/// less PostgreSQL CPU per check, the same rate. While one group commits, the next
/// queues (`group_queue`) and is written as soon as the commit returns. SQLite has one
/// write lock, so one writer there too.
const POSTGRES_WRITERS: usize = 1;

struct WriteRequest {
    records: Vec<check_record::Model>,
    /// The answer-log entry of each record (its receipt payload), in the same order.
    entries: Vec<Vec<u8>>,
    /// Whether the caller needs inclusion proofs (tlog receipts; JWS receipts do not).
    with_proofs: bool,
    done: oneshot::Sender<Result<Vec<LoggedAnswer>, GroupFailure>>,
}

/// The handle requests use to record checks.
#[derive(Clone)]
pub struct CheckRecorder {
    queue: mpsc::Sender<WriteRequest>,
}

impl CheckRecorder {
    /// Starts the writers on the current Tokio runtime; `writers` 0 means the backend's
    /// default. They stop when every handle is gone.
    pub fn start(db: DatabaseConnection, writers: usize, logs: Arc<TransparencyLogs>) -> Self {
        let (queue, receiver) = group_queue::channel(QUEUE_CAPACITY);
        let writers = match (db.get_database_backend(), writers) {
            (sea_orm::DatabaseBackend::Postgres, 0) => POSTGRES_WRITERS,
            (sea_orm::DatabaseBackend::Postgres, n) => n,
            _ => 1,
        };
        let head = Arc::new(HeadCache::default());
        for _ in 0..writers {
            tokio::spawn(run_writer(
                db.clone(),
                receiver.clone(),
                logs.clone(),
                head.clone(),
            ));
        }
        Self { queue }
    }

    /// Writes `records` durably, with their answer-log `entries` (one each, in order);
    /// returns once both are committed, with where each entry landed in the answer log
    /// (and its inclusion proof if `with_proofs`; otherwise the proofs are empty).
    pub async fn record(
        &self,
        records: Vec<check_record::Model>,
        entries: Vec<Vec<u8>>,
        with_proofs: bool,
    ) -> AppResult<Vec<LoggedAnswer>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if records.len() != entries.len() {
            return Err(AppError::internal(anyhow::anyhow!(
                "every check record needs its answer-log entry"
            )));
        }
        let (done, committed) = oneshot::channel();
        let stopped = || AppError::Unavailable(anyhow::anyhow!("the check recorder has stopped"));
        self.queue
            .send(WriteRequest {
                records,
                entries,
                with_proofs,
                done,
            })
            .await
            .map_err(|_| stopped())?;
        committed
            .await
            .map_err(|_| stopped())?
            .map_err(GroupFailure::into_app_error)
    }
}

/// The answer log's head as this process's writers last left it (PostgreSQL), and a
/// signal of each group that settled (landed or not): a group that ran before the group
/// it was computed on waits for it to settle, then runs again.
struct HeadCache {
    /// `None` until read, and after a group that did not land (the next writer reads it
    /// again).
    next: tokio::sync::Mutex<Option<Head>>,
    settled: tokio::sync::watch::Sender<u64>,
}

impl Default for HeadCache {
    fn default() -> Self {
        Self {
            next: tokio::sync::Mutex::new(None),
            settled: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl HeadCache {
    fn settle(&self) {
        self.settled.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Times a group that ran before the group it was computed on runs again before it is
/// written under the head's lock instead.
const BEHIND_RETRIES: usize = 4;
/// How long such a group waits for the one before it to settle, each time.
const BEHIND_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

async fn run_writer(
    db: DatabaseConnection,
    receiver: SharedReceiver<WriteRequest>,
    logs: Arc<TransparencyLogs>,
    head: Arc<HeadCache>,
) {
    while let Some(group) =
        group_queue::next_group(&receiver, ROWS_PER_COMMIT, |r| r.records.len()).await
    {
        // A caller that went away (its request timed out, its client hung up) was never
        // answered: its checks are not recorded, and an overloaded writer spends its
        // commits on callers still waiting instead of on ones a retry has replaced.
        let group: Vec<WriteRequest> = group
            .into_iter()
            .filter(|request| !request.done.is_closed())
            .collect();
        if group.is_empty() {
            continue;
        }
        let rows = group.iter().map(|r| r.records.len()).sum();
        let mut acks = Vec::with_capacity(group.len());
        let mut records = Vec::with_capacity(rows);
        let mut entries = Vec::with_capacity(rows);
        for request in group {
            acks.push((request.done, request.records.len(), request.with_proofs));
            records.extend(request.records);
            entries.extend(request.entries);
        }
        let started = std::time::Instant::now();
        let outcome = write_group(&db, &logs, &head, records, &entries)
            .await
            .map_err(|err| GroupFailure::new("recording checks", &AppError::from(err)));
        match &outcome {
            Ok(_) => {
                crate::metrics::check_record_group(rows, started.elapsed());
                tracing::debug!(requests = acks.len(), rows, "check records committed")
            }
            Err(failure) => {
                tracing::error!(cause = %failure.cause(), requests = acks.len(), rows, "check records not written")
            }
        }
        match outcome {
            Ok(appended) => {
                let checkpoint: Arc<str> = Arc::from(appended.checkpoint.as_str());
                let mut index = appended.first_index;
                for (ack, count, with_proofs) in acks {
                    let logged = (index..index + count as u64)
                        .map(|i| {
                            let proof = if with_proofs {
                                appended.proof(i)
                            } else {
                                Ok(Vec::new())
                            };
                            proof.map(|proof| LoggedAnswer {
                                index: i,
                                proof,
                                checkpoint: checkpoint.clone(),
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| GroupFailure::new("proving answers", &AppError::internal(e)));
                    index += count as u64;
                    // A waiter that went away (timeout) no longer needs the answer.
                    let _ = ack.send(logged);
                }
            }
            Err(failure) => {
                for (ack, _, _) in acks {
                    let _ = ack.send(Err(failure.clone()));
                }
            }
        }
    }
}

/// Writes a group's records and appends its answer-log leaves atomically: the records,
/// the leaves and the checkpoint that covers them commit together.
async fn write_group(
    db: &DatabaseConnection,
    logs: &TransparencyLogs,
    head: &HeadCache,
    records: Vec<check_record::Model>,
    entries: &[Vec<u8>],
) -> Result<Appended, sea_orm::DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        write_group_postgres(db, logs, head, &records, entries).await
    } else {
        write_group_sqlite(db, logs, records, entries).await
    }
}

/// PostgreSQL: one statement on top of the head in memory; if the head was elsewhere,
/// again under the head's lock (which always lands: nothing else moves a locked head).
async fn write_group_postgres(
    db: &DatabaseConnection,
    logs: &TransparencyLogs,
    head: &HeadCache,
    records: &[check_record::Model],
    entries: &[Vec<u8>],
) -> Result<Appended, sea_orm::DbErr> {
    let outcome = write_group_postgres_once(db, logs, head, records, entries).await;
    if outcome.is_err() {
        // Whether it committed is unknown (a lost connection): read the head again.
        *head.next.lock().await = None;
    }
    head.settle();
    outcome
}

async fn write_group_postgres_once(
    db: &DatabaseConnection,
    logs: &TransparencyLogs,
    head: &HeadCache,
    records: &[check_record::Model],
    entries: &[Vec<u8>],
) -> Result<Appended, sea_orm::DbErr> {
    let records = check_record_sql::group_json(records)?;
    let mut settled = head.settled.subscribe();
    let prepared = {
        let mut cached = head.next.lock().await;
        let base = match cached.take() {
            Some(base) => base,
            None => tlog_store::head(db, LogName::Answers)
                .await?
                .ok_or_else(|| sea_orm::DbErr::Custom("the answers log has no head row".into()))?,
        };
        let prepared = logs.prepare_answers(&base, entries);
        // The next group starts from this one's head, before this one has landed: if it
        // does not land, neither does the next (its head UPDATE finds another head).
        *cached = Some(match &prepared {
            Ok(prepared) => prepared.next.clone(),
            Err(_) => base,
        });
        prepared?
    };
    let now = logs.now();
    // Its hashes and entries as the statement takes them, encoded once for every retry.
    let statement = GroupStatement::new(&prepared, &records, entries)?;
    for _ in 0..=BEHIND_RETRIES {
        match write_prepared(db, &prepared, &statement, now).await? {
            Written::Landed => return Ok(prepared.appended),
            // The group this one was computed on (this process's, in flight) had not
            // landed when this one ran: once it settles, this one may land on it.
            Written::Behind => {
                let _ = tokio::time::timeout(BEHIND_WAIT, settled.changed()).await;
            }
            Written::Elsewhere => break,
        }
    }
    *head.next.lock().await = None;
    crate::metrics::check_record_head_moved();
    tracing::debug!("the answer log's head was elsewhere; writing the group under its lock");
    let tx = db.begin().await?;
    let base = tlog_store::lock_head(&tx, LogName::Answers).await?;
    let prepared = logs.prepare_answers(&base, entries)?;
    let statement = GroupStatement::new(&prepared, &records, entries)?;
    if write_prepared(&tx, &prepared, &statement, now).await? != Written::Landed {
        return Err(sea_orm::DbErr::Custom(
            "the answer log's head moved while locked".into(),
        ));
    }
    tx.commit().await?;
    *head.next.lock().await = Some(prepared.next.clone());
    Ok(prepared.appended)
}

/// What `PG_WRITE_GROUP` did with a prepared group.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    Landed,
    /// Nothing: the committed head was still before the head the group was computed on.
    Behind,
    /// Nothing: the head was at or past the group's start, but not the head it was
    /// computed on (another writer or instance appended first, or that head never landed).
    Elsewhere,
}

/// The JSON parameters of `PG_WRITE_GROUP` for one prepared append (the entries'
/// indexes depend on where the append starts).
struct GroupStatement {
    records: String,
    hashes: String,
    entries: String,
}

impl GroupStatement {
    fn new(
        prepared: &PreparedAppend,
        records: &str,
        entries: &[Vec<u8>],
    ) -> Result<Self, sea_orm::DbErr> {
        Ok(Self {
            records: records.to_owned(),
            hashes: check_record_sql::hashes_json(&prepared.hashes)?,
            entries: check_record_sql::entries_json(prepared.base_size, entries)?,
        })
    }
}

/// Runs `PG_WRITE_GROUP` for `prepared`.
async fn write_prepared(
    db: &impl sea_orm::ConnectionTrait,
    prepared: &PreparedAppend,
    statement: &GroupStatement,
    now: DateTime<Utc>,
) -> Result<Written, sea_orm::DbErr> {
    use sea_orm::Statement;
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            check_record_sql::PG_WRITE_GROUP,
            [
                LogName::Answers.as_str().into(),
                tlog_store::as_i64(prepared.base_size)?.into(),
                tlog_store::as_i64(prepared.next.size)?.into(),
                prepared.next.root.0.to_vec().into(),
                prepared.edge_bytes().into(),
                prepared.next.checkpoint.clone().into(),
                now.into(),
                statement.records.clone().into(),
                statement.hashes.clone().into(),
                statement.entries.clone().into(),
                prepared.base_root.0.to_vec().into(),
            ],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::Custom("the group statement returned no row".into()))?;
    let moved: i64 = row.try_get("", "moved")?;
    let size: i64 = row.try_get("", "size")?;
    Ok(if moved == 1 {
        Written::Landed
    } else if size < tlog_store::as_i64(prepared.base_size)? {
        Written::Behind
    } else {
        Written::Elsewhere
    })
}

/// SQLite: one transaction holding the database's one write lock.
async fn write_group_sqlite(
    db: &DatabaseConnection,
    logs: &TransparencyLogs,
    records: Vec<check_record::Model>,
    entries: &[Vec<u8>],
) -> Result<Appended, sea_orm::DbErr> {
    use sea_orm::IntoActiveModel;
    // IMMEDIATE: wait for the write lock up front instead of failing mid-way.
    let tx = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    let mut records = records
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .peekable();
    while records.peek().is_some() {
        let chunk: Vec<check_record::ActiveModel> =
            records.by_ref().take(ROWS_PER_STATEMENT).collect();
        check_record::Entity::insert_many(chunk)
            .exec_without_returning(&tx)
            .await?;
    }
    let appended = logs.append_answers(&tx, entries).await?;
    tx.commit().await?;
    Ok(appended)
}

/// What `checkRecords` may be narrowed by.
#[derive(Clone, Debug, Default)]
pub struct RecordFilter {
    /// Set for partners (their own records only); auditors and admins may choose.
    pub subject: Option<String>,
    /// Only records made in this role (`partner` for a partner's own: subjects of
    /// different roles are different callers, as everywhere else).
    pub role: Option<String>,
    pub domain: Option<Domain>,
    pub decision: Option<Decision>,
    pub uscc: Option<String>,
    pub reference: Option<String>,
    pub checked_from: Option<DateTime<Utc>>,
    pub checked_before: Option<DateTime<Utc>>,
}

/// A position in the newest-first order of records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordCursor {
    pub checked_at: DateTime<Utc>,
    pub id: String,
}

impl RecordCursor {
    /// Opaque to clients: base64url of `<checked_at micros>:<id>`.
    pub fn encode(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            "{}:{}",
            self.checked_at.timestamp_micros(),
            self.id
        ))
    }

    /// The cursor [`encode`](Self::encode) made, or BAD_USER_INPUT.
    ///
    /// Its values are bound into the page query, and base64 hides them from the GraphQL
    /// input guard: a NUL in the id, or an instant before 4713 BC, fails the statement on
    /// PostgreSQL (SQLSTATE 22021 / 22008), which would reach the caller as INTERNAL. So
    /// the id must be what a receipt id is (a UUID in its canonical text, as
    /// `Uuid::now_v7().to_string()` makes it) and the instant must pass `rules`, the same
    /// year bounds every instant a caller sends obeys.
    pub fn decode(cursor: &str, rules: &crate::domain::input::InputRules) -> AppResult<Self> {
        use base64::Engine;
        let bad = || AppError::bad_input("`after` is not a cursor returned by checkRecords");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (micros, id) = text.split_once(':').ok_or_else(bad)?;
        let micros: i64 = micros.parse().map_err(|_| bad())?;
        let checked_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        rules.instant(checked_at).map_err(|_| bad())?;
        let is_receipt_id = uuid::Uuid::parse_str(id).is_ok_and(|u| u.to_string() == id);
        if !is_receipt_id {
            return Err(bad());
        }
        Ok(Self {
            checked_at,
            id: id.to_string(),
        })
    }
}

/// One page of records, newest first, and whether more follow.
pub async fn list(
    db: &DatabaseConnection,
    filter: &RecordFilter,
    first: u64,
    after: Option<&RecordCursor>,
) -> AppResult<(Vec<check_record::Model>, bool)> {
    use check_record::Column as C;
    let mut query = check_record::Entity::find();
    if let Some(subject) = &filter.subject {
        query = query.filter(C::Subject.eq(subject.as_str()));
    }
    if let Some(role) = &filter.role {
        query = query.filter(C::Role.eq(role.as_str()));
    }
    if let Some(domain) = filter.domain {
        query = query.filter(C::Domain.eq(entity::measure::Domain::from(domain)));
    }
    if let Some(decision) = filter.decision {
        query = query.filter(C::Decision.eq(entity::check_record::Decision::from(decision)));
    }
    if let Some(uscc) = &filter.uscc {
        query = query.filter(C::Uscc.eq(uscc.as_str()));
    }
    if let Some(reference) = &filter.reference {
        query = query.filter(C::Reference.eq(reference.as_str()));
    }
    if let Some(from) = filter.checked_from {
        query = query.filter(C::CheckedAt.gte(from));
    }
    if let Some(before) = filter.checked_before {
        query = query.filter(C::CheckedAt.lt(before));
    }
    if let Some(cursor) = after {
        query = query.filter(
            Condition::any()
                .add(C::CheckedAt.lt(cursor.checked_at))
                .add(
                    Condition::all()
                        .add(C::CheckedAt.eq(cursor.checked_at))
                        .add(C::Id.lt(cursor.id.as_str())),
                ),
        );
    }
    let ordered = query.order_by_desc(C::CheckedAt).order_by_desc(C::Id);
    super::page::fetch(db, ordered, first).await
}

pub async fn find(db: &DatabaseConnection, id: &str) -> AppResult<Option<check_record::Model>> {
    Ok(check_record::Entity::find_by_id(id.to_string())
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> crate::domain::input::InputRules {
        crate::config::Limits::default().input_rules()
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = RecordCursor {
            checked_at: DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
            id: "0192f0c4-0000-7000-8000-000000000001".into(),
        };
        assert_eq!(
            RecordCursor::decode(&cursor.encode(), &rules()).unwrap(),
            cursor
        );
    }

    #[test]
    fn foreign_cursors_are_bad_input() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let id = "0192f0c4-0000-7000-8000-000000000001";
        let forged = [
            // A NUL in the id, and a year of about -5000: PostgreSQL fails on both.
            b64("1700000000000000:a\u{0}b"),
            b64(&format!("-220000000000000000:{id}")),
            // Not a receipt id, or one not in its canonical text.
            b64("1700000000000000:x"),
            b64(&format!("1700000000000000:{}", id.to_uppercase())),
            b64(&format!("1700000000000000:{{{id}}}")),
            // Inside chrono's range, outside the configured years.
            b64(&format!("253402300800000000:{id}")),
        ];
        for junk in ["", "!!", "bm90IGEgY3Vyc29y", "MTIzOg"]
            .into_iter()
            .map(String::from)
            .chain(forged)
        {
            let e = RecordCursor::decode(&junk, &rules()).unwrap_err();
            assert!(
                e.to_string()
                    .contains("not a cursor returned by checkRecords"),
                "{junk}: {e}"
            );
        }
    }
}
