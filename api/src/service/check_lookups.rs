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
//!
//! Isolation: one caller's question must never fail another's check. Values PostgreSQL
//! would refuse (a year ≤ 0) are refused before they are queued (`graphql::input_guard`);
//! should a group's statement fail anyway, for any reason but an unavailable database or
//! a statement timeout, its questions are answered one by one, each with its own result.

use super::checks::{Findings, SingleAsk, SnapshotRevision, lookup_singles};
use super::group_queue::{self, GroupFailure, SharedReceiver};
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

/// What the log says a failed group was doing.
const LOOKING_UP: &str = "looking up checks";

/// What is known of the code (`None`: no operator), and the state of the list it was
/// read from.
type Answer = Result<(Option<Findings>, SnapshotRevision), GroupFailure>;

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

    /// What the registry knows of `uscc` at `as_of` for `domain` (`None`: no operator),
    /// and the newest revision of the snapshot it was read from.
    pub(crate) async fn lookup(
        &self,
        uscc: &str,
        as_of: DateTime<Utc>,
        domain: Domain,
    ) -> AppResult<(Option<Findings>, SnapshotRevision)> {
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
            .map_err(GroupFailure::into_app_error)
    }

    /// Whether the registry knows an operator with `uscc` — [`Self::lookup`] without the
    /// findings, for black-box tests of the shared statement (its grouping is not
    /// observable through GraphQL once bad inputs are refused at the edge).
    #[doc(hidden)]
    pub async fn knows(&self, uscc: &str, as_of: DateTime<Utc>, domain: Domain) -> AppResult<bool> {
        self.lookup(uscc, as_of, domain)
            .await
            .map(|(f, _)| f.is_some())
    }
}

async fn run_reader(db: DatabaseConnection, receiver: SharedReceiver<Question>) {
    while let Some(group) = group_queue::next_group(&receiver, MAX_GROUP, |_| 1).await {
        let asks: Vec<SingleAsk> = group.iter().map(Question::ask).collect();
        crate::metrics::lookup_group(asks.len());
        match lookup_singles(&db, &asks).await {
            Ok((found, revision)) => {
                for (question, findings) in group.into_iter().zip(found) {
                    // An asker that went away (timeout) no longer needs the answer.
                    let _ = question.answer.send(Ok((findings, revision)));
                }
            }
            Err(err) if group.len() > 1 && answer_one_by_one(&err) => {
                // Inputs are checked before they are queued (graphql::input_guard), so
                // this should not happen; if some value still breaks the statement, it
                // must fail only its own check, not everyone's in the group.
                tracing::warn!(
                    error = %crate::error::one_line(&err),
                    questions = group.len(),
                    "a shared check lookup failed; answering its questions one by one"
                );
                for question in group {
                    if question.answer.is_closed() {
                        continue; // the asker went away (timeout)
                    }
                    let answer = lookup_singles(&db, std::slice::from_ref(&question.ask()))
                        .await
                        .map(|(mut found, revision)| (found.pop().flatten(), revision))
                        .map_err(|err| GroupFailure::new(LOOKING_UP, &err));
                    let _ = question.answer.send(answer);
                }
            }
            Err(err) => {
                // The database is unavailable or the statement timed out: the same for
                // each question alone, so retrying them one by one would only add load.
                let failure = GroupFailure::new(LOOKING_UP, &err);
                for question in group {
                    let _ = question.answer.send(Err(failure.clone()));
                }
            }
        }
    }
}

/// A group's failure that one of its questions may have caused (anything but an
/// unavailable database or a statement timeout, which would fail each question alone
/// just the same).
fn answer_one_by_one(err: &AppError) -> bool {
    !matches!(
        err.code(),
        ErrorCode::ServiceUnavailable | ErrorCode::Timeout
    )
}

impl Question {
    fn ask(&self) -> SingleAsk {
        SingleAsk {
            uscc: self.uscc.clone(),
            as_of: self.as_of,
            domain: self.domain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_a_question_can_cause_are_retried_alone() {
        assert!(answer_one_by_one(&AppError::internal(anyhow::anyhow!(
            "date/time field value out of range"
        ))));
        assert!(!answer_one_by_one(&AppError::Timeout));
        assert!(!answer_one_by_one(&AppError::Unavailable(anyhow::anyhow!(
            "pool timed out"
        ))));
    }

    #[test]
    fn a_failure_keeps_its_kind_and_a_one_line_cause() {
        let failure = GroupFailure::new(
            LOOKING_UP,
            &AppError::internal(anyhow::anyhow!("inner").context("outer")),
        );
        assert_eq!(failure.cause(), "internal error: outer: inner");
        assert_eq!(failure.into_app_error().code(), ErrorCode::Internal);
        let failure = GroupFailure::new(LOOKING_UP, &AppError::Timeout);
        assert_eq!(failure.into_app_error().code(), ErrorCode::Timeout);
    }
}
