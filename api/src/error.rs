//! One error type for the whole service, mapped to GraphQL errors with a stable
//! `extensions.code`. Internal causes are logged with the request id and replaced by a
//! generic message: no SQL text or stack detail ever reaches a client.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stable codes that partner systems can program against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::Conflict => "CONFLICT",
            Self::RateLimited => "RATE_LIMITED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Timeout => "TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadInput {
        message: String,
        /// Extra machine-readable detail (e.g. each bad position of a batch).
        details: Option<serde_json::Value>,
    },
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the database is unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    #[error("the request took too long and was stopped")]
    Timeout,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput {
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_input_with(message: impl Into<String>, details: serde_json::Value) -> Self {
        Self::BadInput {
            message: message.into(),
            details: Some(details),
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadInput { .. } => ErrorCode::BadUserInput,
            Self::Unauthenticated(_) => ErrorCode::Unauthenticated,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Timeout => ErrorCode::Timeout,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Converts to the client-facing error, logging what the client must not see.
    pub fn into_graphql(self) -> async_graphql::Error {
        let code = self.code();
        match &self {
            Self::Internal(cause) => log_internal(cause),
            Self::Unavailable(cause) => {
                tracing::warn!(error = %one_line(cause.as_ref()), "database unavailable")
            }
            _ => {}
        }
        let details = match &self {
            Self::BadInput { details, .. } => details.clone(),
            _ => None,
        };
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(details) = &details
                && let Ok(value) = async_graphql::Value::from_json(details.clone())
            {
                ext.set("details", value);
            }
        })
    }
}

/// Whether internal errors are logged with their backtrace (`log_backtraces`).
static LOG_BACKTRACES: AtomicBool = AtomicBool::new(false);

/// Applies `log_backtraces` for the whole process, through `RUST_LIB_BACKTRACE` (which
/// decides whether anyhow captures; panics keep following `RUST_BACKTRACE`). Off, errors
/// capture nothing: with `RUST_BACKTRACE=1` set, anyhow would otherwise walk the stack
/// for every error, and a burst of failing requests would cost a stack walk and a 150 KB
/// log line each. On, each internal error is captured and logged with its backtrace.
///
/// Call it at start-up, before any other thread runs: it sets an environment variable.
pub fn configure_backtraces(log_backtraces: bool) {
    LOG_BACKTRACES.store(log_backtraces, Ordering::Relaxed);
    let capture = if log_backtraces { "1" } else { "0" };
    // SAFETY: called from `main` before the runtime and its threads start, so no other
    // thread reads the environment at the same time.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", capture) };
}

/// An error and its causes on one line (`outer: inner`), never with a backtrace: what
/// `{:#}` prints for an anyhow error, with line breaks folded.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    if line.contains(['\n', '\r']) {
        line = line.replace(['\n', '\r'], " ");
    }
    line
}

/// One log line per internal error; the backtrace only when `log_backtraces` asks.
fn log_internal(cause: &anyhow::Error) {
    let line = one_line(cause.as_ref());
    if LOG_BACKTRACES.load(Ordering::Relaxed) {
        tracing::error!(error = %line, backtrace = %cause.backtrace(), "internal error");
    } else {
        tracing::error!(error = %line, "internal error");
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.into_graphql()
    }
}

/// Connection-level failures become `SERVICE_UNAVAILABLE` (retryable), a statement
/// cancelled by the database's statement timeout becomes `TIMEOUT`; anything else from
/// the database is an internal error.
impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        match classify_db_error(&err) {
            DbFailure::Unavailable => Self::Unavailable(err.into()),
            DbFailure::StatementTimeout => {
                tracing::warn!(error = %err, "statement cancelled by the statement timeout");
                Self::Timeout
            }
            DbFailure::Other => Self::Internal(err.into()),
        }
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

/// What a database error means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbFailure {
    /// The database cannot be reached or is refusing work: retry later.
    Unavailable,
    /// The statement ran past the statement timeout and was cancelled.
    StatementTimeout,
    /// Anything else: a bug or a broken invariant.
    Other,
}

pub fn is_unavailable(err: &DbErr) -> bool {
    classify_db_error(err) == DbFailure::Unavailable
}

pub fn classify_db_error(err: &DbErr) -> DbFailure {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => DbFailure::Unavailable,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            classify_sqlx(e)
        }
        other => classify_text(&other.to_string()),
    }
}

fn classify_sqlx(err: &sea_orm::sqlx::Error) -> DbFailure {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed
        | Error::BeginFailed => DbFailure::Unavailable,
        Error::Database(db) => db
            .code()
            .map(|code| classify_sqlstate(&code))
            .unwrap_or(DbFailure::Other),
        other => classify_text(&other.to_string()),
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "not now" rather than "wrong".
pub fn classify_sqlstate(code: &str) -> DbFailure {
    match code {
        // query_canceled: PostgreSQL's statement_timeout.
        "57014" => DbFailure::StatementTimeout,
        // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections,
        // and every connection_exception (class 08).
        "57P01" | "57P02" | "57P03" | "53300" => DbFailure::Unavailable,
        c if c.starts_with("08") => DbFailure::Unavailable,
        // SQLite: SQLITE_BUSY (and its extended codes) and SQLITE_LOCKED after the busy
        // timeout: another writer holds the database.
        "5" | "6" | "261" | "517" | "262" => DbFailure::Unavailable,
        _ => DbFailure::Other,
    }
}

/// sea-orm sometimes flattens driver errors into strings.
fn classify_text(text: &str) -> DbFailure {
    const UNAVAILABLE: [&str; 10] = [
        "PoolTimedOut",
        "pool timed out",
        "Connection refused",
        "connection closed",
        "error communicating with database",
        "terminating connection",
        "the database system is shutting down",
        "the database system is starting up",
        "broken pipe",
        "Connection reset",
    ];
    if text.contains("canceling statement due to statement timeout") {
        DbFailure::StatementTimeout
    } else if UNAVAILABLE.iter().any(|needle| text.contains(needle)) {
        DbFailure::Unavailable
    } else {
        DbFailure::Other
    }
}

impl From<crate::domain::refusal::Refusal> for AppError {
    fn from(refusal: crate::domain::refusal::Refusal) -> Self {
        Self::BadInput {
            details: Some(refusal.details()),
            message: refusal.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err: AppError = DbErr::Custom("SELECT secret FROM t".into()).into();
        let gql = err.into_graphql();
        assert_eq!(gql.message, "internal error");
        assert!(!format!("{:?}", gql.extensions).contains("SELECT"));
    }

    #[test]
    fn an_internal_error_is_one_line_with_its_causes() {
        let err = anyhow::anyhow!("disk\nfull").context("writing check records");
        assert_eq!(
            one_line(err.as_ref()),
            "writing check records: disk full",
            "causes joined, line breaks folded"
        );
        let app = AppError::internal(err);
        assert_eq!(
            one_line(&app),
            "internal error: writing check records: disk full"
        );
    }

    /// What the service's log subscriber would print while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        use std::sync::{Arc, Mutex};
        #[derive(Clone)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer(Arc::new(Mutex::new(Vec::new())));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn an_internal_error_logs_exactly_one_line() {
        let err = AppError::internal(
            anyhow::anyhow!("relation \"x\"\ndoes not exist").context("listing"),
        );
        let text = logged(|| drop(err.into_graphql()));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("internal error"), "{text}");
        assert!(
            text.contains("listing: relation \"x\" does not exist"),
            "{text}"
        );
        assert!(!text.contains("backtrace"), "{text}");
    }

    #[test]
    fn codes_are_stable_strings() {
        assert_eq!(AppError::bad_input("x").code().as_str(), "BAD_USER_INPUT");
        assert_eq!(AppError::Conflict("x".into()).code().as_str(), "CONFLICT");
        let unavailable: AppError =
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout).into();
        assert_eq!(unavailable.code().as_str(), "SERVICE_UNAVAILABLE");
    }

    #[test]
    fn database_failures_are_classified_by_kind() {
        use sea_orm::RuntimeErr;
        use std::sync::Arc;
        let io = DbErr::Query(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        ))));
        assert_eq!(classify_db_error(&io), DbFailure::Unavailable);
        let closed = DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
            sea_orm::sqlx::Error::PoolClosed,
        )));
        assert_eq!(classify_db_error(&closed), DbFailure::Unavailable);
        assert_eq!(classify_sqlstate("57014"), DbFailure::StatementTimeout);
        assert_eq!(classify_sqlstate("57P01"), DbFailure::Unavailable);
        assert_eq!(classify_sqlstate("08006"), DbFailure::Unavailable);
        assert_eq!(classify_sqlstate("23505"), DbFailure::Other);
        let text = DbErr::Custom("canceling statement due to statement timeout".into());
        assert_eq!(
            AppError::from(text).code().as_str(),
            "TIMEOUT",
            "a statement timeout is a timeout"
        );
        let other = DbErr::Custom("syntax error".into());
        assert_eq!(classify_db_error(&other), DbFailure::Other);
    }
}
