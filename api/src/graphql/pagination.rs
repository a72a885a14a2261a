//! Page sizes for list fields: every `first` argument goes through [`page_size`], so no
//! caller can ask for more than `limits.max_page_size` rows at once.

use crate::config::Settings;
use crate::error::{AppError, AppResult};
use serde_json::json;

/// Rows returned when a list field is queried without `first`.
pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// The number of rows to fetch for `first`: the default when absent (never more than the
/// maximum), `first` itself when 0 ≤ first ≤ `limits.max_page_size`, otherwise
/// `BAD_USER_INPUT` naming the maximum.
pub fn page_size(first: Option<i32>, settings: &Settings) -> AppResult<u64> {
    page_size_within(first, settings.limits.max_page_size)
}

/// [`page_size`] against an explicit maximum.
pub fn page_size_within(first: Option<i32>, max: u64) -> AppResult<u64> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE.min(max)),
        Some(n) if n < 0 => Err(AppError::bad_input_with(
            format!("first must not be negative (got {n})"),
            json!({ "field": "first", "reason": "NEGATIVE", "max": max }),
        )),
        Some(n) if u64::from(n.unsigned_abs()) > max => Err(AppError::bad_input_with(
            format!("first may be at most {max} (got {n}); page with the cursor instead"),
            json!({ "field": "first", "reason": "TOO_LARGE", "max": max }),
        )),
        Some(n) => Ok(u64::from(n.unsigned_abs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn absent_first_is_the_default_within_the_maximum() {
        assert_eq!(page_size_within(None, 500).ok(), Some(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size_within(None, 10).ok(), Some(10));
    }

    #[test]
    fn first_up_to_the_maximum_is_accepted() {
        assert_eq!(page_size_within(Some(0), 500).ok(), Some(0));
        assert_eq!(page_size_within(Some(500), 500).ok(), Some(500));
    }

    #[test]
    fn first_beyond_the_maximum_or_negative_is_bad_input() {
        for first in [501, i32::MAX, -1, i32::MIN] {
            let err = page_size_within(Some(first), 500).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadUserInput, "{first}");
        }
        let err = page_size_within(Some(501), 500).unwrap_err();
        assert!(err.to_string().contains("at most 500"), "{err}");
    }

    #[test]
    fn the_configured_maximum_applies() {
        let mut settings = Settings::default();
        settings.limits.max_page_size = 20;
        assert!(page_size(Some(21), &settings).is_err());
        assert_eq!(page_size(Some(20), &settings).ok(), Some(20));
    }
}
