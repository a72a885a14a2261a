//! The queue behind group commit and shared lookups: requests send single items,
//! a few consumer tasks share one receiver and each takes, when it is free, everything
//! queued since (up to a limit). While one consumer's statement runs, the next gathers,
//! so groups grow with the load and nobody waits for a timer.

use crate::error::{AppError, ErrorCode};
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};

/// Why a group's statement failed, copied to each member of the group: cheap to clone,
/// and turned back into the error each member answers with.
#[derive(Clone, Debug)]
pub struct GroupFailure {
    /// What the group did, for the log ("looking up checks", "recording checks").
    what: &'static str,
    code: ErrorCode,
    cause: String,
}

impl GroupFailure {
    pub fn new(what: &'static str, err: &AppError) -> Self {
        Self {
            what,
            code: err.code(),
            // The cause chain on one line; `{:?}` of an anyhow error would print a
            // captured backtrace with it.
            cause: crate::error::one_line(err),
        }
    }

    pub fn cause(&self) -> &str {
        &self.cause
    }

    pub fn into_app_error(self) -> AppError {
        let cause = anyhow::anyhow!("{} failed: {}", self.what, self.cause);
        match self.code {
            ErrorCode::ServiceUnavailable => AppError::Unavailable(cause),
            ErrorCode::Timeout => AppError::Timeout,
            _ => AppError::Internal(cause),
        }
    }
}

/// One receiver shared by the consumers of a queue.
pub type SharedReceiver<T> = Arc<Mutex<mpsc::Receiver<T>>>;

/// A bounded queue and the receiver its consumers share.
pub fn channel<T>(capacity: usize) -> (mpsc::Sender<T>, SharedReceiver<T>) {
    let (sender, receiver) = mpsc::channel(capacity);
    (sender, Arc::new(Mutex::new(receiver)))
}

/// The next group: the first queued item (waiting for one), then whatever else is
/// queued while the group's total `weight` stays below `limit`. `None` once every
/// sender is gone and the queue is empty.
pub async fn next_group<T>(
    receiver: &Mutex<mpsc::Receiver<T>>,
    limit: usize,
    weight: impl Fn(&T) -> usize,
) -> Option<Vec<T>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut total = weight(&first);
    let mut group = vec![first];
    while total < limit {
        match receiver.try_recv() {
            Ok(next) => {
                total += weight(&next);
                group.push(next);
            }
            Err(_) => break,
        }
    }
    Some(group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_group_takes_what_is_queued_up_to_the_limit() {
        let (tx, rx) = channel::<usize>(16);
        for n in [2, 3, 4, 1] {
            tx.send(n).await.unwrap();
        }
        // 2 + 3 = 5 < 6, + 4 = 9: the item that crosses the limit is still taken.
        assert_eq!(next_group(&rx, 6, |n| *n).await, Some(vec![2, 3, 4]));
        assert_eq!(next_group(&rx, 6, |n| *n).await, Some(vec![1]));
        drop(tx);
        assert_eq!(next_group(&rx, 6, |n| *n).await, None);
    }
}
