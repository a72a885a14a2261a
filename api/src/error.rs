//! One error type for the whole service, mapped to GraphQL errors with a stable
//! `extensions.code`. Internal causes are logged with the request id and replaced by a
//! generic message: no SQL text or stack detail ever reaches a client.

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;

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
            Self::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            Self::Unavailable(cause) => tracing::warn!(error = %cause, "database unavailable"),
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

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.into_graphql()
    }
}

/// Connection-level failures become `SERVICE_UNAVAILABLE` (retryable); anything else
/// from the database is an internal error.
impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            Self::Unavailable(err.into())
        } else {
            Self::Internal(err.into())
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

fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        other => {
            // sqlx reports a dropped server as an I/O or protocol error inside Exec/Query.
            let text = other.to_string();
            text.contains("PoolTimedOut")
                || text.contains("pool timed out")
                || text.contains("Connection refused")
                || text.contains("connection closed")
                || text.contains("error communicating with database")
                || text.contains("terminating connection")
                || text.contains("the database system is shutting down")
                || text.contains("the database system is starting up")
                || text.contains("broken pipe")
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
    fn codes_are_stable_strings() {
        assert_eq!(AppError::bad_input("x").code().as_str(), "BAD_USER_INPUT");
        assert_eq!(AppError::Conflict("x".into()).code().as_str(), "CONFLICT");
        let unavailable: AppError =
            DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout).into();
        assert_eq!(unavailable.code().as_str(), "SERVICE_UNAVAILABLE");
    }
}
