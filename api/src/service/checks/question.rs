//! The question a check asks, checked before anything is looked up: who may ask for
//! which domain, the instants (`asOf`, `knownAt`), the reference, the codes.

use super::{AS_OF_SKEW_SECONDS, CheckWarning, MAX_REFERENCE, WarningCode};
use crate::auth::{Identity, Role};
use crate::domain::measures::Domain;
use crate::domain::uscc::Uscc;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

/// May `identity` check `domain`? Partners only their own domains; admins and auditors any.
pub fn authorize_domain(identity: &Identity, domain: Domain) -> AppResult<()> {
    match identity.role {
        Role::Admin | Role::Auditor => Ok(()),
        Role::Partner if identity.domains.contains(&domain) => Ok(()),
        Role::Partner => Err(AppError::Forbidden(format!(
            "partner '{}' may check {} only, not {}",
            identity.subject,
            if identity.domains.is_empty() {
                "no domain".to_string()
            } else {
                identity
                    .domains
                    .iter()
                    .map(|d| crate::domain::enum_name(*d))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            crate::domain::enum_name(domain)
        ))),
        Role::Anonymous => Err(AppError::Unauthenticated(
            "a check needs a bearer token".into(),
        )),
    }
}

/// The instant to answer for: `asOf` at storage precision, or now.
pub fn resolve_as_of(as_of: Option<DateTime<Utc>>, now: DateTime<Utc>) -> AppResult<DateTime<Utc>> {
    let Some(as_of) = as_of else {
        return Ok(now);
    };
    let as_of = crate::domain::truncate_instant(as_of);
    if as_of > now + Duration::seconds(AS_OF_SKEW_SECONDS) {
        return Err(AppError::bad_input(format!(
            "asOf {} is in the future; a check answers for now or a past instant",
            as_of.to_rfc3339()
        )));
    }
    Ok(as_of)
}

/// A reference is trimmed; blank means none.
pub fn clean_reference(reference: Option<String>) -> AppResult<Option<String>> {
    let Some(reference) = reference
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
    else {
        return Ok(None);
    };
    if reference.chars().count() > MAX_REFERENCE {
        return Err(AppError::bad_input(format!(
            "reference is longer than {MAX_REFERENCE} characters"
        )));
    }
    if reference.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            "reference must not contain control characters",
        ));
    }
    Ok(Some(reference))
}

/// Parses every code of a batch; any malformed code refuses the whole batch, naming
/// each bad position (0-based, as in the request's list) in the message and details.
pub fn parse_batch(codes: &[String], max: usize) -> AppResult<Vec<Uscc>> {
    if codes.is_empty() {
        return Err(AppError::bad_input("usccs must name at least one code"));
    }
    if codes.len() > max {
        return Err(AppError::bad_input_with(
            format!(
                "a batch may hold at most {max} codes, this one has {}",
                codes.len()
            ),
            json!({ "field": "usccs", "max": max, "count": codes.len() }),
        ));
    }
    let mut parsed = Vec::with_capacity(codes.len());
    let mut bad = Vec::new();
    for (index, raw) in codes.iter().enumerate() {
        match Uscc::parse_format(raw) {
            Ok(code) => parsed.push(code),
            Err(err) => bad.push((index, raw, err)),
        }
    }
    if bad.is_empty() {
        return Ok(parsed);
    }
    let message = format!(
        "{} malformed code{} in usccs, nothing was checked: {}",
        bad.len(),
        if bad.len() == 1 { "" } else { "s" },
        bad.iter()
            .map(|(i, _, err)| format!("usccs[{i}]: {err}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let details = json!({
        "field": "usccs",
        "errors": bad.iter().map(|(i, raw, err)| json!({
            "index": i,
            "value": raw,
            "message": err.to_string(),
        })).collect::<Vec<_>>(),
    });
    Err(AppError::bad_input_with(message, details))
}

/// Parses the code of a single check.
pub fn parse_single(code: &str) -> AppResult<Uscc> {
    Uscc::parse_format(code).map_err(crate::service::operators::uscc_error)
}

pub(super) fn warnings_for(code: &Uscc, known: bool) -> Vec<CheckWarning> {
    let mut warnings = Vec::new();
    if let Some(problem) = code.check_digit_problem() {
        warnings.push(CheckWarning {
            code: WarningCode::CheckDigit,
            message: format!(
                "{problem}; the code is answered as given: confirm it with the operator's licence"
            ),
        });
    }
    if !known {
        warnings.push(CheckWarning {
            code: WarningCode::UnknownOperator,
            message: "the registry has no operator with this code; CLEAR means only that nothing is recorded against it".into(),
        });
    }
    warnings
}

/// `knownAt` re-runs a check as the registry's records stood at an earlier instant: an
/// audit function (admins and auditors), never a partner's evidence for a procedure,
/// which must rest on what the registry knows now.
pub fn resolve_known_at(
    identity: &Identity,
    known_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AppResult<Option<DateTime<Utc>>> {
    let Some(k) = known_at else {
        return Ok(None);
    };
    if !matches!(identity.role, Role::Admin | Role::Auditor) {
        return Err(AppError::Forbidden(
            "knownAt reconstructs past answers for audit: only admins and auditors may use it"
                .into(),
        ));
    }
    if k > now {
        return Err(AppError::bad_input("knownAt is in the future"));
    }
    Ok(Some(crate::domain::truncate_instant(k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn partner(domains: &[Domain]) -> Identity {
        Identity {
            subject: "p".into(),
            role: Role::Partner,
            domains: domains.to_vec(),
            region: None,
            token_id: None,
        }
    }

    #[test]
    fn partners_check_only_their_domains() {
        assert!(authorize_domain(&partner(&[Domain::Procurement]), Domain::Procurement).is_ok());
        let err = authorize_domain(&partner(&[Domain::Procurement]), Domain::Bidding).unwrap_err();
        assert!(matches!(err, AppError::Forbidden(_)));
        assert!(err.to_string().contains("PROCUREMENT"), "{err}");
        let mut auditor = partner(&[]);
        auditor.role = Role::Auditor;
        assert!(authorize_domain(&auditor, Domain::Honors).is_ok());
        assert!(matches!(
            authorize_domain(&Identity::anonymous(), Domain::Honors),
            Err(AppError::Unauthenticated(_))
        ));
    }

    #[test]
    fn as_of_defaults_to_now_and_refuses_the_future() {
        let now = Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap();
        assert_eq!(resolve_as_of(None, now).unwrap(), now);
        let past = now - Duration::days(400);
        assert_eq!(resolve_as_of(Some(past), now).unwrap(), past);
        assert!(resolve_as_of(Some(now + Duration::seconds(30)), now).is_ok());
        assert!(resolve_as_of(Some(now + Duration::hours(1)), now).is_err());
        let precise = now - Duration::nanoseconds(1_500);
        assert_eq!(
            resolve_as_of(Some(precise), now).unwrap(),
            now - Duration::microseconds(2)
        );
    }

    #[test]
    fn references_are_trimmed_and_bounded() {
        assert_eq!(clean_reference(None).unwrap(), None);
        assert_eq!(clean_reference(Some("  ".into())).unwrap(), None);
        assert_eq!(
            clean_reference(Some(" QY-1 ".into())).unwrap().as_deref(),
            Some("QY-1")
        );
        assert!(clean_reference(Some("x".repeat(201))).is_err());
        assert!(clean_reference(Some("a\u{0}b".into())).is_err());
    }

    #[test]
    fn a_batch_names_every_bad_position() {
        let codes: Vec<String> = [
            "91110000101623741K",
            "short",
            "91310115MA1H8R7C6D",
            "9111000010162374IK",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let err = parse_batch(&codes, 10).unwrap_err();
        let AppError::BadInput { message, details } = err else {
            panic!("not bad input");
        };
        assert!(
            message.contains("usccs[1]") && message.contains("usccs[3]"),
            "{message}"
        );
        assert!(
            !message.contains("usccs[2]"),
            "a check-digit failure is not malformed"
        );
        let indexes: Vec<u64> = details.unwrap()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indexes, vec![1, 3]);
    }

    #[test]
    fn a_batch_has_bounds() {
        assert!(parse_batch(&[], 10).is_err());
        let codes = vec!["91110000101623741K".to_string(); 11];
        assert!(parse_batch(&codes, 10).is_err());
        assert_eq!(parse_batch(&codes[..10], 10).unwrap().len(), 10);
    }

    #[test]
    fn warnings_name_check_digits_and_unknown_codes() {
        let good = Uscc::parse_format("91110000101623741K").unwrap();
        assert!(warnings_for(&good, true).is_empty());
        let bad = Uscc::parse_format("91310115MA1H8R7C6D").unwrap();
        let codes: Vec<WarningCode> = warnings_for(&bad, false).iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            vec![WarningCode::CheckDigit, WarningCode::UnknownOperator]
        );
    }
}
