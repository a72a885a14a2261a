//! Access tokens: EdDSA (Ed25519) JWTs with `iss`, `aud`, `exp` required and the
//! algorithm pinned, so `none` and HS/RS confusion cannot be used.
//!
//! The keys come from one file (`auth.signing_key_file`, tokens without `kid`) or from a
//! directory (`auth.signing_key_dir`, one `<kid>.pem` each, as the receipt keys): then the
//! newest key signs, naming its `kid` in the header, and every key of the directory
//! verifies the tokens that name it, so a key can be rotated while the tokens it issued
//! stay valid until they expire; tokens without a `kid` (issued from the file before)
//! verify against `signing_key_file` while that file exists. A running service re-reads
//! the directory when a rotation is announced (`cluster::notify`) and periodically.

use super::{Identity, Role};
use crate::domain::measures::Domain;
use crate::service::receipts::KeyRing;
use anyhow::Context;
use chrono::{Duration, Utc};
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
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

/// The keys a token service signs and verifies with (one snapshot; replaced whole on
/// reload).
struct TokenKeys {
    /// The signing key and the `kid` its tokens name (none for a single key file).
    signer: (Option<String>, EncodingKey),
    /// A directory's keys, by kid (empty for a single key file).
    by_kid: HashMap<String, DecodingKey>,
    /// The key of tokens that name no kid: the single key file.
    unnamed: Option<DecodingKey>,
}

impl TokenKeys {
    fn single(key: &SigningKey) -> anyhow::Result<Self> {
        Ok(Self {
            signer: (None, encoding_key(key)?),
            by_kid: HashMap::new(),
            unnamed: Some(decoding_key(&key.verifying_key())?),
        })
    }

    /// The newest key of `ring` signs; all of them verify; `unnamed` verifies tokens
    /// without a kid.
    fn from_ring(ring: &KeyRing, unnamed: Option<&SigningKey>) -> anyhow::Result<Self> {
        let (kid, key) = ring
            .signer()
            .context("the token key directory holds no key")?;
        let by_kid = ring
            .public_keys()
            .iter()
            .map(|(kid, key)| Ok((kid.clone(), decoding_key(key)?)))
            .collect::<anyhow::Result<HashMap<_, _>>>()?;
        Ok(Self {
            signer: (Some(kid.to_string()), encoding_key(key)?),
            by_kid,
            unnamed: unnamed
                .map(|k| decoding_key(&k.verifying_key()))
                .transpose()?,
        })
    }

    /// The key that verifies a token naming `kid`. A single key file verifies every
    /// token (it never looked at kids); a directory only the kids it holds.
    fn verifier(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        if self.by_kid.is_empty() {
            return self.unnamed.as_ref();
        }
        match kid {
            Some(kid) => self.by_kid.get(kid),
            None => self.unnamed.as_ref(),
        }
    }
}

fn encoding_key(key: &SigningKey) -> anyhow::Result<EncodingKey> {
    Ok(EncodingKey::from_ed_pem(
        super::keys::private_pem(key)?.as_bytes(),
    )?)
}

fn decoding_key(key: &ed25519_dalek::VerifyingKey) -> anyhow::Result<DecodingKey> {
    Ok(DecodingKey::from_ed_pem(
        super::keys::verifying_pem(key)?.as_bytes(),
    )?)
}

/// Where a directory-backed service re-reads its keys from.
struct KeySource {
    dir: PathBuf,
    /// `auth.signing_key_file`, for tokens without a kid, when it exists.
    unnamed_file: Option<PathBuf>,
}

pub struct TokenService {
    verified: VerifiedTokens,
    keys: RwLock<Arc<TokenKeys>>,
    /// `Some` when the keys come from a directory (and can be reloaded).
    source: Option<KeySource>,
    validation: Validation,
    issuer: String,
    audience: String,
}

impl TokenService {
    /// A service with one key (the `auth.signing_key_file` form).
    pub fn new(
        key: &SigningKey,
        issuer: &str,
        audience: &str,
        leeway_seconds: u64,
    ) -> anyhow::Result<Self> {
        Self::with_keys(
            TokenKeys::single(key)?,
            None,
            issuer,
            audience,
            leeway_seconds,
        )
    }

    /// A service over the key directory `dir` (`auth.signing_key_dir`): when it holds no
    /// key, one is created if `may_create` (development) and the start refused otherwise.
    /// `unnamed_file` (`auth.signing_key_file`), if it exists, verifies tokens that name
    /// no kid, issued before the directory was configured.
    pub fn from_dir(
        dir: &Path,
        unnamed_file: Option<&Path>,
        may_create: bool,
        issuer: &str,
        audience: &str,
        leeway_seconds: u64,
    ) -> anyhow::Result<Self> {
        if KeyRing::read_dir(dir)?.signer().is_none() {
            if !may_create {
                anyhow::bail!(
                    "no token signing key in {}; the production profile does not generate keys: create one with `credit-registry rotate-token-key`",
                    dir.display()
                );
            }
            let kid = crate::service::receipts::add_key(dir)?;
            tracing::warn!(dir = %dir.display(), kid, "generated a development token signing key; production must create its own");
        }
        let source = KeySource {
            dir: dir.to_path_buf(),
            unnamed_file: unnamed_file.map(Path::to_path_buf),
        };
        let keys = source.read()?;
        Self::with_keys(keys, Some(source), issuer, audience, leeway_seconds)
    }

    /// Re-reads the key directory (a no-op for a single key file). A directory that
    /// cannot be read, or lost its keys, leaves the current keys in place. When the set
    /// of keys changed, tokens verified before are verified again (a removed key's
    /// tokens stop working at once).
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let keys = Arc::new(source.read()?);
        let kids = |k: &TokenKeys| {
            let mut kids: Vec<String> = k.by_kid.keys().cloned().collect();
            kids.sort();
            (kids, k.signer.0.clone(), k.unnamed.is_some())
        };
        // Worked out before the lock is taken: verifications that miss the cache wait on it.
        let new = kids(&keys);
        let mut current = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kids(&current) != new {
            tracing::info!(kids = ?new.0, "token keys reloaded");
            self.verified.clear();
        }
        *current = keys;
        Ok(())
    }

    /// The kid that signs new tokens (`None` for a single key file).
    pub fn signing_kid(&self) -> Option<String> {
        self.current().signer.0.clone()
    }

    fn current(&self) -> Arc<TokenKeys> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn with_keys(
        keys: TokenKeys,
        source: Option<KeySource>,
        issuer: &str,
        audience: &str,
        leeway_seconds: u64,
    ) -> anyhow::Result<Self> {
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
            keys: RwLock::new(Arc::new(keys)),
            source,
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
        let keys = self.current();
        let (kid, key) = &keys.signer;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = kid.clone();
        Ok(encode(&header, claims, key)?)
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
        let keys = self.current();
        let decoding = keys.verifier(header.kid.as_deref()).ok_or_else(|| {
            TokenError::Invalid(match &header.kid {
                Some(kid) => format!(
                    "the token names key '{kid}', which is not among the registry's token keys"
                ),
                None => "the token names no key (kid), and the registry's token keys all have one"
                    .into(),
            })
        })?;
        let data =
            decode::<Claims>(token, decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer".into()),
                ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience".into()),
                ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm not accepted".into()),
                ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    TokenError::Invalid(format!("missing claim {c}"))
                }
                _ => TokenError::Invalid("malformed token".into()),
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

impl KeySource {
    fn read(&self) -> anyhow::Result<TokenKeys> {
        let ring = KeyRing::read_dir(&self.dir)?;
        let unnamed = match &self.unnamed_file {
            Some(path) if path.exists() => Some(super::keys::load_or_create(path, false)?),
            _ => None,
        };
        TokenKeys::from_ring(&ring, unnamed.as_ref())
            .with_context(|| format!("reading the token keys in {}", self.dir.display()))
    }
}

/// Re-reads a directory-backed service's keys every
/// [`crate::service::receipts::RELOAD_INTERVAL`] while it is alive (the fallback for a
/// missed announcement).
pub fn spawn_reloader(service: &Arc<TokenService>) {
    if service.source.is_none() {
        return;
    }
    let weak = Arc::downgrade(service);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::service::receipts::RELOAD_INTERVAL).await;
            let Some(service) = weak.upgrade() else {
                break;
            };
            if let Err(e) = service.reload() {
                tracing::warn!(error = %format!("{e:#}"), "token keys not reloaded; keeping the current ones");
            }
        }
    });
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
            encode(&header, &claims, &svc.current().signer.1).unwrap()
        };
        assert!(svc.verify(&signed(None)).is_ok(), "the control");
        for crit in [vec!["b64".to_string()], vec![]] {
            let err = svc.verify(&signed(Some(crit.clone()))).unwrap_err();
            assert!(err.to_string().contains("crit"), "{crit:?}: {err}");
        }
    }

    fn claims_for(sub: &str) -> TokenRequest {
        TokenRequest {
            subject: sub.into(),
            ..request(Role::Admin)
        }
    }

    #[test]
    fn a_key_directory_rotates_and_every_kept_key_verifies() {
        let dir =
            std::env::temp_dir().join(format!("token-keys-{}", uuid::Uuid::new_v4().simple()));
        let file = dir.join("old-single-key.pem");
        // Tokens of the single key file used before the directory.
        let old_key = crate::auth::keys::generate(&file).unwrap();
        let old = TokenService::new(&old_key, "iss", "aud", 0).unwrap();
        let from_file = old.issue(&claims_for("before")).unwrap();
        let keys = dir.join("keys");
        assert!(TokenService::from_dir(&keys, Some(&file), false, "iss", "aud", 0).is_err());
        let svc = TokenService::from_dir(&keys, Some(&file), true, "iss", "aud", 0).unwrap();
        let first_kid = svc.signing_kid().unwrap();
        let first = svc.issue(&claims_for("first")).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&first).unwrap().kid.as_deref(),
            Some(first_kid.as_str())
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second_kid = crate::service::receipts::add_key(&keys).unwrap();
        svc.reload().unwrap();
        assert_eq!(svc.signing_kid(), Some(second_kid.clone()));
        let second = svc.issue(&claims_for("second")).unwrap();
        for (token, who) in [
            (&from_file, "before"),
            (&first, "first"),
            (&second, "second"),
        ] {
            assert_eq!(svc.verify(token).unwrap().subject, who);
        }
        // A removed key's tokens stop verifying at the reload, cached or not.
        std::fs::remove_file(keys.join(format!("{first_kid}.pem"))).unwrap();
        svc.reload().unwrap();
        let err = svc.verify(&first).unwrap_err();
        assert!(err.to_string().contains(&first_kid), "{err}");
        assert!(svc.verify(&second).is_ok());
        // Without the old file, tokens without a kid are refused.
        std::fs::remove_file(&file).unwrap();
        svc.reload().unwrap();
        assert!(svc.verify(&from_file).is_err());
        std::fs::remove_dir_all(&dir).ok();
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
