//! Access tokens: EdDSA (Ed25519) JWTs with `iss`, `aud`, `exp` required and the
//! algorithm pinned, so `none` and HS/RS confusion cannot be used.

use super::{Identity, Role};
use crate::domain::measures::Domain;
use chrono::{Duration, Utc};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub jti: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub exp: i64,
}

/// What an issued token should say.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub subject: String,
    pub role: Role,
    pub domains: Vec<Domain>,
    pub region: Option<String>,
    pub ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
    #[error("the bearer token has expired")]
    Expired,
    #[error("the bearer token is not valid yet")]
    NotYetValid,
}

/// Tokens already verified, so a partner system that sends the same token with every
/// check pays for one Ed25519 verification, not thousands. Keyed by the exact token
/// text (a forged or altered token never matches) and kept only until the token's
/// `exp`; bounded, and simply emptied when full.
struct VerifiedTokens {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Identity, i64)>>,
    capacity: usize,
}

impl VerifiedTokens {
    fn get(&self, token: &str, now: i64) -> Option<Identity> {
        let entries = self.entries.lock().ok()?;
        match entries.get(token) {
            Some((identity, exp)) if now < *exp => Some(identity.clone()),
            _ => None,
        }
    }

    fn put(&self, token: &str, identity: &Identity, exp: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(token.to_string(), (identity.clone(), exp));
        }
    }
}

pub struct TokenService {
    verified: VerifiedTokens,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenService {
    pub fn new(
        key: &SigningKey,
        issuer: &str,
        audience: &str,
        leeway_seconds: u64,
    ) -> anyhow::Result<Self> {
        let encoding = EncodingKey::from_ed_pem(super::keys::private_pem(key)?.as_bytes())?;
        let decoding = DecodingKey::from_ed_pem(super::keys::public_pem(key)?.as_bytes())?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = leeway_seconds;
        Ok(Self {
            verified: VerifiedTokens {
                entries: std::sync::Mutex::new(std::collections::HashMap::new()),
                capacity: 10_000,
            },
            encoding,
            decoding,
            validation,
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    pub fn issue(&self, req: &TokenRequest) -> anyhow::Result<String> {
        // Wall time, not the registry's clock: `iat`/`exp` are checked by jsonwebtoken
        // (here and in every other verifier) against the system clock.
        let now = Utc::now();
        let claims = Claims {
            sub: req.subject.clone(),
            role: req.role.as_str().into(),
            domains: req.domains.iter().map(|d| d.code()).collect(),
            region: req.region.clone(),
            jti: uuid::Uuid::now_v7().to_string(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            nbf: Some(now.timestamp()),
            exp: (now + req.ttl).timestamp(),
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use it to build expired or odd tokens).
    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        Ok(encode(
            &Header::new(Algorithm::EdDSA),
            claims,
            &self.encoding,
        )?)
    }

    /// Verifies a token, from the cache of verified tokens when it was seen before and
    /// has not expired.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        // Wall time, as jsonwebtoken's own `exp` check uses: a cached token ends when
        // the verifier would refuse it.
        let now = Utc::now().timestamp();
        if let Some(identity) = self.verified.get(token, now) {
            return Ok(identity);
        }
        let (identity, exp) = self.verify_uncached(token)?;
        self.verified.put(token, &identity, exp);
        Ok(identity)
    }

    fn verify_uncached(&self, token: &str) -> Result<(Identity, i64), TokenError> {
        use jsonwebtoken::errors::ErrorKind;
        // RFC 7515 4.1.11: a recipient must refuse a token whose `crit` header names
        // extensions it does not understand, and this service understands none (an empty
        // list is forbidden outright). jsonwebtoken parses `crit` but never checks it.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("malformed token".into()))?;
        if header.crit.is_some() {
            return Err(TokenError::Invalid(
                "critical header extensions (crit) are not supported".into(),
            ));
        }
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
                match e.kind() {
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                    ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
                    ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
                    ErrorKind::InvalidAlgorithm => {
                        TokenError::Invalid("algorithm not accepted".into())
                    }
                    ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
                    ErrorKind::MissingRequiredClaim(c) => {
                        TokenError::Invalid(format!("missing claim {c}"))
                    }
                    _ => TokenError::Invalid("malformed token".into()),
                }
            })?;
        let claims = data.claims;
        let role = Role::parse(&claims.role)
            .ok_or_else(|| TokenError::Invalid(format!("unknown role '{}'", claims.role)))?;
        let mut domains = Vec::with_capacity(claims.domains.len());
        for d in &claims.domains {
            domains.push(
                Domain::parse(d)
                    .ok_or_else(|| TokenError::Invalid(format!("unknown domain '{d}'")))?,
            );
        }
        if let Some(region) = &claims.region
            && !crate::domain::region::is_division_code(region)
        {
            return Err(TokenError::Invalid(format!(
                "region '{region}' is not a division code"
            )));
        }
        if claims.sub.trim().is_empty() {
            return Err(TokenError::Invalid("empty subject".into()));
        }
        let exp = claims.exp;
        let identity = Identity {
            subject: claims.sub,
            role,
            domains,
            region: claims.region,
            token_id: Some(claims.jti),
        };
        Ok((identity, exp))
    }
}

/// Parses a TTL such as `90s`, `15m`, `1h`, `7d`.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90s, 15m, 1h or 7d"))?;
    let d = match unit {
        "s" | "" => Duration::seconds(n),
        "m" => Duration::minutes(n),
        "h" => Duration::hours(n),
        "d" => Duration::days(n),
        _ => return Err(format!("unknown unit in '{s}': use s, m, h or d")),
    };
    if n <= 0 {
        return Err("a token's lifetime must be positive".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TokenService {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        TokenService::new(&key, "iss", "aud", 0).unwrap()
    }

    fn request(role: Role) -> TokenRequest {
        TokenRequest {
            subject: "someone".into(),
            role,
            domains: vec![Domain::Procurement],
            region: Some("441802".into()),
            ttl: Duration::hours(1),
        }
    }

    #[test]
    fn issued_tokens_verify_into_identities() {
        let svc = service();
        let token = svc.issue(&request(Role::Partner)).unwrap();
        let id = svc.verify(&token).unwrap();
        assert_eq!(id.role, Role::Partner);
        assert_eq!(id.domains, vec![Domain::Procurement]);
        assert_eq!(id.region.as_deref(), Some("441802"));
    }

    #[test]
    fn a_token_from_another_key_is_refused() {
        let other =
            TokenService::new(&SigningKey::from_bytes(&[9u8; 32]), "iss", "aud", 0).unwrap();
        let token = other.issue(&request(Role::Admin)).unwrap();
        assert!(matches!(
            service().verify(&token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn a_cached_token_still_expires() {
        let svc = service();
        let token = svc
            .sign(&Claims {
                sub: "p".into(),
                role: "partner".into(),
                domains: vec![],
                region: None,
                jti: "j".into(),
                iss: "iss".into(),
                aud: "aud".into(),
                iat: Utc::now().timestamp(),
                nbf: None,
                exp: Utc::now().timestamp() + 1,
            })
            .unwrap();
        assert!(svc.verify(&token).is_ok());
        assert!(svc.verify(&token).is_ok(), "answered from the cache");
        std::thread::sleep(std::time::Duration::from_millis(2200));
        assert!(matches!(svc.verify(&token), Err(TokenError::Expired)));
        // An altered token never matches a cached one.
        let mut altered = token.clone();
        altered.pop();
        assert!(svc.verify(&altered).is_err());
    }

    #[test]
    fn a_token_with_critical_extensions_is_refused() {
        let svc = service();
        let claims = Claims {
            sub: "p".into(),
            role: "admin".into(),
            domains: vec![],
            region: None,
            jti: "j".into(),
            iss: "iss".into(),
            aud: "aud".into(),
            iat: Utc::now().timestamp(),
            nbf: None,
            exp: Utc::now().timestamp() + 60,
        };
        let signed = |crit: Option<Vec<String>>| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.crit = crit;
            encode(&header, &claims, &svc.encoding).unwrap()
        };
        assert!(svc.verify(&signed(None)).is_ok(), "the control");
        for crit in [vec!["b64".to_string()], vec![]] {
            let err = svc.verify(&signed(Some(crit.clone()))).unwrap_err();
            assert!(err.to_string().contains("crit"), "{crit:?}: {err}");
        }
    }

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("1h"), Ok(Duration::hours(1)));
        assert_eq!(parse_ttl("90s"), Ok(Duration::seconds(90)));
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("0m").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
