//! Single checks of concurrent requests share one lookup statement (PostgreSQL).
//!
//! A single check's lookup is one indexed probe, and most of what it costs PostgreSQL is
//! the round trip around it: the message, the wake-up of a backend, the executor start.
//! Requests hand their question (code, `asOf`, domain) to background readers; a reader
//! takes everything queued since its last statement and answers all of it with one
//! statement (`checks::PG_SINGLES`), each code at its own `asOf` (the same queue as the
//! check records' group commit: `group_queue`).
//!
//! Consistency: a reader's statement starts after every question in its group was asked,
//! so under READ COMMITTED it sees every listing decision committed before any of those
//! checks began — a check never misses a listing decided before it began.

use super::checks::{Findings, SingleAsk, lookup_singles};
use super::group_queue::{self, SharedReceiver};
use crate::domain::measures::Domain;
use crate::error::{AppError, AppResult, ErrorCode};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, oneshot};

/// Questions queued before askers wait for room.
const QUEUE_CAPACITY: usize = 4_096;
/// Questions per statement at most.
const MAX_GROUP: usize = 512;
/// Readers working at once: one statement runs while the next group gathers.
const READERS: usize = 2;

/// Why a group's statement failed, copied to each of its askers.
#[derive(Clone, Debug)]
struct LookupFailure {
    code: ErrorCode,
    cause: String,
}

impl LookupFailure {
    fn from_app_error(err: AppError) -> Self {
        Self {
            code: err.code(),
            cause: format!("{:?}", anyhow::Error::from(err)),
        }
    }

    fn into_app_error(self) -> AppError {
        let cause = anyhow::anyhow!("looking up checks failed: {}", self.cause);
        match self.code {
            ErrorCode::ServiceUnavailable => AppError::Unavailable(cause),
            ErrorCode::Timeout => AppError::Timeout,
            _ => AppError::Internal(cause),
        }
    }
}

type Answer = Result<Option<Findings>, LookupFailure>;

struct Question {
    uscc: String,
    as_of: DateTime<Utc>,
    domain: Domain,
    answer: oneshot::Sender<Answer>,
}

/// The handle requests use to look up a single check.
#[derive(Clone)]
pub struct CheckLookups {
    queue: mpsc::Sender<Question>,
}

impl CheckLookups {
    /// Starts the readers on the current Tokio runtime; they stop when every handle is
    /// gone. PostgreSQL only (the statement uses `unnest … WITH ORDINALITY`).
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, receiver) = group_queue::channel(QUEUE_CAPACITY);
        for _ in 0..READERS {
            tokio::spawn(run_reader(db.clone(), receiver.clone()));
        }
        Self { queue }
    }

    /// What the registry knows of `uscc` at `as_of` for `domain` (`None`: no operator).
    pub(crate) async fn lookup(
        &self,
        uscc: &str,
        as_of: DateTime<Utc>,
        domain: Domain,
    ) -> AppResult<Option<Findings>> {
        let (answer, answered) = oneshot::channel();
        let stopped = || AppError::Unavailable(anyhow::anyhow!("the check lookups have stopped"));
        self.queue
            .send(Question {
                uscc: uscc.to_string(),
                as_of,
                domain,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered
            .await
            .map_err(|_| stopped())?
            .map_err(LookupFailure::into_app_error)
    }
}

async fn run_reader(db: DatabaseConnection, receiver: SharedReceiver<Question>) {
    while let Some(group) = group_queue::next_group(&receiver, MAX_GROUP, |_| 1).await {
        let asks: Vec<SingleAsk> = group
            .iter()
            .map(|q| SingleAsk {
                uscc: q.uscc.clone(),
                as_of: q.as_of,
                domain: q.domain,
            })
            .collect();
        match lookup_singles(&db, &asks).await {
            Ok(found) => {
                for (question, findings) in group.into_iter().zip(found) {
                    // An asker that went away (timeout) no longer needs the answer.
                    let _ = question.answer.send(Ok(findings));
                }
            }
            Err(err) => {
                let failure = LookupFailure::from_app_error(err);
                tracing::error!(cause = %failure.cause, questions = group.len(), "check lookups failed");
                for question in group {
                    let _ = question.answer.send(Err(failure.clone()));
                }
            }
        }
    }
}
