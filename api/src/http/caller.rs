//! Who is calling, at this moment: the one authorisation every GraphQL operation goes
//! through, over HTTP (each request) and over WebSocket (each `subscribe`), so that an
//! open socket is never trusted longer, or charged less, than a request would be.

use super::rate_limit::{RateKey, RateLimiter};
use crate::auth::Identity;
use crate::error::AppError;
use crate::state::AppState;
use std::net::IpAddr;
use std::time::Duration;

/// Why an operation may not run now.
#[derive(Debug)]
pub enum Refusal {
    /// The token is not (or no longer) valid: malformed, badly signed, expired.
    Unauthenticated(String),
    /// The caller's bucket is empty: it may call again after this long.
    RateLimited(Duration),
    /// A valid token whose holder may not call (a partner that is not registered or was
    /// deactivated), or its registration could not be read.
    Refused(AppError),
}

/// The token of an `Authorization` value `Bearer <token>` (either spelling of the scheme).
pub fn bearer_token(value: &str) -> Result<&str, String> {
    let value = value.trim();
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| "the Authorization header must be 'Bearer <token>'".to_string())
}

/// `role:subject`: subjects of different roles never share a bucket or a key space.
pub fn caller_key(identity: &Identity) -> String {
    format!("{}:{}", identity.role.as_str(), identity.subject)
}

/// Whom a call is charged to: an authenticated caller by its token subject, anyone
/// else (the public, and tokens that were refused) by client address.
pub fn rate_key(identity: Option<&Identity>, address: IpAddr) -> RateKey {
    match identity {
        Some(identity) if !identity.is_anonymous() => RateKey::Subject(caller_key(identity)),
        _ => RateKey::of_address(address),
    }
}

/// Authorises one operation now: verifies the token (`Ok(None)`: no token, the public;
/// `Err`: credentials that could not even be read), charges the call to the caller's
/// bucket, and accepts a partner token only while its partner is registered and active
/// (narrowing its domains to the registration). A refused token is charged to the
/// address like an anonymous call: verifying it cost a signature check.
pub async fn authorise(
    state: &AppState,
    limiter: &RateLimiter,
    token: Result<Option<&str>, String>,
    address: IpAddr,
) -> Result<Identity, Refusal> {
    let identity = token.and_then(|token| match token {
        None => Ok(Identity::anonymous()),
        Some(token) => state.tokens.verify(token.trim()).map_err(|e| e.to_string()),
    });
    limiter
        .check(&rate_key(identity.as_ref().ok(), address), 1)
        .await
        .map_err(Refusal::RateLimited)?;
    let identity = identity.map_err(Refusal::Unauthenticated)?;
    state
        .partners
        .resolve(&state.db, identity)
        .await
        .map_err(Refusal::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    #[test]
    fn the_bearer_token_is_read_from_either_spelling() {
        assert_eq!(bearer_token("Bearer abc"), Ok("abc"));
        assert_eq!(bearer_token(" bearer  abc "), Ok("abc"));
        assert!(bearer_token("Basic abc").is_err());
        assert!(bearer_token("abc").is_err());
    }

    #[test]
    fn the_public_is_charged_by_address_and_callers_by_subject() {
        let address: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            rate_key(Some(&Identity::anonymous()), address),
            RateKey::Address(address)
        );
        assert_eq!(rate_key(None, address), RateKey::Address(address));
        let admin = Identity {
            role: Role::Admin,
            subject: "alice".into(),
            ..Identity::anonymous()
        };
        assert_eq!(
            rate_key(Some(&admin), address),
            RateKey::Subject("admin:alice".into())
        );
    }

    /// Every address of one IPv6 /64 is one caller; the next /64 is another.
    #[test]
    fn ipv6_callers_are_charged_by_their_slash_64() {
        let key = |a: &str| rate_key(None, a.parse::<IpAddr>().expect("an address"));
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:fffe")
        );
        assert_eq!(
            key("2001:db8:1:2:abcd::9"),
            RateKey::Address("2001:db8:1:2::".parse().expect("an address"))
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
    }
}
