//! Layered configuration: built-in defaults, then an optional TOML file, then
//! environment variables (`DATABASE_URL`, `REGISTRY_BIND`, and `REGISTRY_<SECTION>__<KEY>`
//! for everything else, e.g. `REGISTRY_LIMITS__MAX_DEPTH=12`).
//!
//! Every settings struct denies unknown fields, so a misspelt key (`max_dpeth = 3` in the
//! file, `REGISTRY_LIMITS__MAX_DPETH=3` or `REGISTRY_LIMITS_MAX_DEPTH=3` in the
//! environment: figment lower-cases the name after the prefix and splits it at `__`)
//! stops the start with an error naming the key instead of being ignored.
//! `config/registry.example.toml` lists every key with its default.

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// GraphiQL, introspection and generated development keys allowed.
    #[default]
    Development,
    /// Keys must be configured; introspection, GraphiQL and field suggestions are off.
    Production,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub profile: Profile,
    /// `sqlite://...` or `postgres://...`. Default: an SQLite file under `data_dir`.
    pub database_url: Option<String>,
    pub bind: String,
    /// Where the SQLite default database and generated development keys live.
    pub data_dir: PathBuf,
    /// Run pending migrations when `serve` starts.
    pub run_migrations: bool,
    pub log_format: LogFormat,
    /// HTTP worker threads; 0 = one per core.
    pub workers: usize,
    /// Capture and log a backtrace with each internal error. Off by default: with
    /// `RUST_BACKTRACE` set, anyhow would otherwise capture one per error (150 KB lines).
    pub log_backtraces: bool,
    pub auth: AuthSettings,
    pub receipts: ReceiptSettings,
    pub logs: LogSettings,
    pub database: DatabaseSettings,
    pub limits: Limits,
    pub rules: RuleSettings,
    pub jobs: JobSettings,
    pub metrics: MetricsSettings,
    pub cors: CorsSettings,
}

/// Which other web origins' pages may call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsSettings {
    /// Origins (`https://host[:port]`, exactly as a browser sends them) whose pages may
    /// call `/graphql`; empty: none (the registry's own pages are same-origin anyway).
    pub allowed_origins: Vec<String>,
}

/// Who may read `GET /metrics`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// A bearer token that scrapers must send (`Authorization: Bearer <token>`), from any
    /// address. Unset: only direct loopback connections (no proxy headers) may read it.
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub issuer: String,
    pub audience: String,
    /// PKCS#8 PEM Ed25519 key that signs access tokens. Default `data_dir/token-signing-key.pem`,
    /// generated on first run outside production.
    pub signing_key_file: Option<PathBuf>,
    /// A directory of `<kid>.pem` Ed25519 keys instead (the newest signs, naming its kid;
    /// every key verifies; `signing_key_file`, if it exists, still verifies tokens without
    /// a kid). Unset: the single `signing_key_file`.
    pub signing_key_dir: Option<PathBuf>,
    /// Tolerance for clock skew when checking `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// How long a partner's registration (active, domains) is cached, in seconds.
    pub partner_cache_seconds: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptSettings {
    /// Directory of `<kid>.pem` Ed25519 keys; the newest signs, all verify.
    /// Default `data_dir/receipt-keys`.
    pub key_dir: Option<PathBuf>,
    /// What a check's `receipt` is: `tlog-proof` (a C2SP tlog proof of the answer-log
    /// entry, one checkpoint signature per group) or, during a transition, `jws` (the
    /// compact JWS of before issue 17). Both kinds keep verifying either way.
    pub format: ReceiptFormat,
}

/// The receipt a check returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReceiptFormat {
    #[default]
    #[serde(rename = "tlog-proof")]
    TlogProof,
    #[serde(rename = "jws")]
    Jws,
}

/// The transparency logs (`/logs/registry`, `/logs/answers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// The origin prefix: the logs' checkpoints name `<origin>/registry` and
    /// `<origin>/answers` (C2SP: a schema-less URL, no spaces, no '+').
    pub origin: String,
    /// Directory of the logs' Ed25519 keys, `registry.pem` and `answers.pem`.
    /// Default `data_dir/log-keys`.
    pub key_dir: Option<PathBuf>,
    /// Verifier keys of the witnesses whose cosignatures the registry accepts and serves
    /// (C2SP `tlog-cosignature` Ed25519 vkeys, `<name>+<key id>+<base64>`, as
    /// `credit-registry witness-key` prints them); empty: none is accepted.
    pub witnesses: Vec<String>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            origin: "credit-registry.local/logs".into(),
            key_dir: None,
            witnesses: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// PostgreSQL `statement_timeout`; SQLite's busy timeout uses `sqlite_busy_timeout_ms`.
    pub statement_timeout_ms: u64,
    pub sqlite_busy_timeout_ms: u64,
    /// Check-record writers working at once (0: the backend's default, 1: groups commit
    /// one after another on the answer log's head row anyway; see
    /// `check_records::POSTGRES_WRITERS`). Each writes whatever checks queued while the
    /// others were committing, so fewer writers make larger groups.
    pub check_record_writers: usize,
    /// PostgreSQL: single checks of concurrent requests share one lookup statement
    /// (`false`: each check runs its own).
    pub shared_check_lookups: bool,
    /// Anonymous callers' queries run on their own small pool, so that the public list
    /// can never take the connections partners' checks need: its size, its wait for a
    /// connection (then `SERVICE_UNAVAILABLE`) and its PostgreSQL `statement_timeout`.
    pub anonymous_max_connections: u32,
    pub anonymous_acquire_timeout_ms: u64,
    pub anonymous_statement_timeout_ms: u64,
    /// A PostgreSQL streaming standby for heavy reads (auditors' history, reports,
    /// exports, the public list); unset: every read goes to `database_url`. See `replica`.
    pub replica_url: Option<String>,
    /// The standby is used only while it lags the primary by less than this.
    pub replica_max_lag_ms: u64,
    /// How often the standby's lag is measured.
    pub replica_check_interval_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    /// The cost budget of one operation (see `graphql::cost`: rows, not fields) for
    /// partners, admins and auditors, and the smaller one of anonymous callers.
    pub max_complexity: usize,
    pub max_complexity_anonymous: usize,
    pub max_aliases: usize,
    pub max_batch_operations: usize,
    pub max_page_size: u64,
    pub max_check_batch: usize,
    pub request_timeout_ms: u64,
    /// Requests per second and burst, per token subject (or client address when anonymous).
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Public (anonymous) requests per second and burst per client address.
    pub public_rate_per_second: u32,
    pub public_rate_burst: u32,
    /// Transparency-log tile requests (`GET /logs/*/tile/*`) per second and burst per
    /// client address, a budget of their own: `verify-log` and witnesses fetch tiles one
    /// after another, thousands for a large log, and do not retry a 429.
    pub public_log_rate_per_second: u32,
    pub public_log_rate_burst: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
    /// A Redis server (`redis://host:port[/db]`) where every instance keeps the rate
    /// buckets, so that the limits hold for all instances together; unset: each process
    /// keeps its own (see `http::rate_limit::shared`).
    pub shared_store_url: Option<String>,
    /// Prefix of the bucket keys in the shared store: instances that must share limits
    /// use the same one; other services (or registries) on the same Redis another.
    pub shared_store_prefix: String,
    /// Longest wait for the shared store's answer, in milliseconds; beyond it (or on any
    /// error) the decision is taken by this process's own buckets.
    pub shared_store_timeout_ms: u64,
    /// After a failure, how long this process decides alone before trying the store
    /// again, in milliseconds (so a dead store costs one timeout per interval, not per
    /// request).
    pub shared_store_retry_ms: u64,
    /// Parsed GraphQL documents kept by their text (0: parse every request).
    pub document_cache_entries: usize,
    /// Texts of automatic persisted queries kept by their SHA-256 (0: the protocol is
    /// off; see `graphql::persisted`).
    pub persisted_queries: usize,
    /// Years an input instant (its UTC year) or date may lie in, inclusive: beyond them
    /// a value is a typo or an attack (PostgreSQL refuses years <= 0 outright).
    pub min_year: i32,
    pub max_year: i32,
    /// Characters in any one input string (names, codes, free text alike).
    pub max_string_chars: usize,
    /// Time for the whole request body to arrive once the handler starts reading it
    /// (actix-web's client request timeout covers the headers only).
    pub body_read_timeout_ms: u64,
    /// A WebSocket must send `connection_init` within this time (closed 4408 otherwise).
    pub ws_init_timeout_ms: u64,
    /// Largest WebSocket message, continuation frames included (closed 1009 beyond it).
    pub ws_max_message_bytes: usize,
    /// Operations running at once on one WebSocket (subscriptions, queries, mutations).
    pub ws_max_subscriptions: usize,
    /// Open WebSocket connections per token subject (`role:subject`).
    pub ws_max_connections_per_subject: usize,
    /// WebSockets per client address that have not yet been acknowledged.
    pub ws_max_pending_per_address: usize,
    /// After an answer sent before the client finished sending (a refusal of a large
    /// body, a WebSocket closed for a protocol violation), how long the server keeps
    /// reading and discarding what still arrives before it drops the connection
    /// (actix-web's client-disconnect timeout). The draining lets the client read the
    /// answer before a reset, but runs at full speed: a client that floods a socket it
    /// was told to close costs a core for this long, so it is kept short.
    pub close_linger_ms: u64,
    /// A `429` refusal (rate limited, too many sockets waiting) is sent after its
    /// `Retry-After` time, at most this long (`http::refusal_hold`: a client in a closed
    /// loop is slowed to one request per hold); 0 answers at once.
    pub rate_limited_hold_ms: u64,
    /// Refusals held at once, process-wide; past it they are answered at once.
    pub rate_limited_max_held: usize,
    /// Auditors' requests (history, reconstructions, reports, the audit log: bulk
    /// reads) executing at once; 0 = no bound. Beyond it a request waits at most
    /// `capacity_wait_ms`, then is refused with `SERVICE_UNAVAILABLE`.
    pub max_concurrent_audit_requests: usize,
    pub capacity_wait_ms: u64,
    /// HTTP check-records exports (`GET /exports/check-records.csv`) streaming at once per
    /// token subject (`role:subject`); 0 = no bound. An auditor's export also holds one
    /// of the auditors' permits (`max_concurrent_audit_requests`) while it streams.
    pub max_concurrent_exports_per_subject: usize,
    /// Bytes of a GraphQL multipart request (`importListings` uploads), which has its
    /// own cap: `max_body_bytes` bounds JSON requests.
    pub max_import_bytes: usize,
}

/// Legal parameters the domain notes mark unconfirmed. Per-list values live in the
/// `credit_lists` table; these are registry-wide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuleSettings {
    /// Repair may be applied for before this many months have passed since listing:
    /// the upper bound of "listed at least one year and less than three".
    pub repair_max_months: i32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            profile: Profile::Development,
            database_url: None,
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            run_migrations: true,
            log_format: LogFormat::Pretty,
            workers: 0,
            log_backtraces: false,
            auth: AuthSettings::default(),
            receipts: ReceiptSettings::default(),
            logs: LogSettings::default(),
            database: DatabaseSettings::default(),
            limits: Limits::default(),
            rules: RuleSettings::default(),
            jobs: JobSettings::default(),
            metrics: MetricsSettings::default(),
            cors: CorsSettings::default(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            issuer: "credit-registry".into(),
            audience: "credit-registry".into(),
            signing_key_file: None,
            signing_key_dir: None,
            leeway_seconds: 5,
            partner_cache_seconds: 5,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            min_connections: 1,
            acquire_timeout_ms: 3_000,
            connect_timeout_ms: 3_000,
            statement_timeout_ms: 10_000,
            sqlite_busy_timeout_ms: 5_000,
            check_record_writers: 0,
            shared_check_lookups: true,
            anonymous_max_connections: 2,
            anonymous_acquire_timeout_ms: 500,
            anonymous_statement_timeout_ms: 2_000,
            replica_url: None,
            replica_max_lag_ms: 1_000,
            replica_check_interval_ms: 500,
        }
    }
}

impl Limits {
    /// The text and date rules every input obeys (`domain::input`), from these limits:
    /// the GraphQL input guard, the import and the HTTP endpoints all read them here.
    pub fn input_rules(&self) -> crate::domain::input::InputRules {
        crate::domain::input::InputRules {
            min_year: self.min_year,
            max_year: self.max_year,
            max_string_chars: self.max_string_chars,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_depth: 12,
            max_complexity: 30_000,
            max_complexity_anonymous: 12_000,
            max_aliases: 30,
            max_batch_operations: 10,
            max_page_size: 500,
            max_check_batch: 1_000,
            request_timeout_ms: 15_000,
            rate_per_second: 2_000,
            rate_burst: 4_000,
            public_rate_per_second: 20,
            public_rate_burst: 40,
            public_log_rate_per_second: 1_000,
            public_log_rate_burst: 10_000,
            trusted_proxies: Vec::new(),
            shared_store_url: None,
            shared_store_prefix: "credit-registry:rate:".into(),
            shared_store_timeout_ms: 50,
            shared_store_retry_ms: 1_000,
            document_cache_entries: 512,
            persisted_queries: 512,
            min_year: 1900,
            max_year: 2200,
            max_string_chars: 10_000,
            body_read_timeout_ms: 10_000,
            ws_init_timeout_ms: 10_000,
            ws_max_message_bytes: 64 * 1024,
            ws_max_subscriptions: 20,
            ws_max_connections_per_subject: 10,
            ws_max_pending_per_address: 16,
            close_linger_ms: 250,
            rate_limited_hold_ms: 1_000,
            rate_limited_max_held: 1_024,
            max_concurrent_audit_requests: 4,
            capacity_wait_ms: 250,
            max_concurrent_exports_per_subject: 2,
            max_import_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Background work of the server. Nothing that decides a check depends on it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// How often the server records `listing.expired` events for the change feed, in
    /// seconds; 0 turns the job off (expiry itself is computed and never waits for it).
    pub expiry_interval_seconds: u64,
    /// How often the change feed looks for changes written by other processes, in
    /// milliseconds; changes made through this server are pushed at once.
    pub feed_poll_ms: u64,
    /// How often idempotency keys past their 24-hour retention are deleted, in seconds;
    /// 0 turns the job off (expired keys are treated as new either way).
    pub idempotency_purge_interval_seconds: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            expiry_interval_seconds: 60,
            feed_poll_ms: 1_000,
            idempotency_purge_interval_seconds: 3_600,
        }
    }
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            repair_max_months: 36,
        }
    }
}

/// Free-text keys whose environment values are taken exactly as written: figment reads
/// other values as TOML-like literals, so `REGISTRY_METRICS__TOKEN=12345` would be a
/// number (refused for a text key) and `3e5` a float (a different token).
const TEXT_KEYS: &[&str] = &[
    "auth.issuer",
    "auth.audience",
    "metrics.token",
    "limits.shared_store_url",
    "limits.shared_store_prefix",
    "database.replica_url",
];

impl Settings {
    /// Defaults, then `file` (or `REGISTRY_CONFIG`) if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("REGISTRY_CONFIG").map(PathBuf::from));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let mut ignored = vec!["CONFIG"];
        ignored.extend_from_slice(TEXT_KEYS);
        figment = figment
            .merge(Env::prefixed("REGISTRY_").split("__").ignore(&ignored))
            .merge(Env::raw().only(&["DATABASE_URL"]));
        for key in TEXT_KEYS {
            let name = format!("REGISTRY_{}", key.replace('.', "__").to_uppercase());
            if let Ok(value) = std::env::var(name) {
                figment = figment.merge(Serialized::default(key, value));
            }
        }
        let settings: Self = figment.extract().map_err(Box::new)?;
        settings
            .validate()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(settings)
    }

    /// Values that parse but cannot work: refused at the start, naming the key, rather
    /// than failing every request that reads them later.
    fn validate(&self) -> Result<(), String> {
        // The repair window ends this many months after listing: 0 or less closes it for
        // every listing (a negative value failed every repair submission as INTERNAL).
        if self.rules.repair_max_months <= 0 {
            return Err(format!(
                "rules.repair_max_months must be a positive number of months, not {}",
                self.rules.repair_max_months
            ));
        }
        Ok(())
    }

    /// The address to listen on: `bind`, where `:PORT` (`REGISTRY_BIND=:0`) means the
    /// loopback interface with that port (port 0: a free one).
    pub fn listen_address(&self) -> String {
        match self.bind.strip_prefix(':') {
            Some(port) => format!("127.0.0.1:{port}"),
            None => self.bind.clone(),
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("registry.db").display()
            ),
        }
    }

    pub fn signing_key_file(&self) -> PathBuf {
        self.auth
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("token-signing-key.pem"))
    }

    pub fn log_key_dir(&self) -> PathBuf {
        self.logs
            .key_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("log-keys"))
    }

    pub fn receipt_key_dir(&self) -> PathBuf {
        self.receipts
            .key_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("receipt-keys"))
    }

    pub fn is_production(&self) -> bool {
        self.profile == Profile::Production
    }
}

#[cfg(test)]
// figment's Jail takes closures that return its (large) error by value.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_error(jail: &mut Jail, file: Option<&str>) -> String {
        let file = file.map(|text| {
            jail.create_file("registry.toml", text)
                .expect("write the test file");
            Path::new("registry.toml")
        });
        match Settings::load(file) {
            Ok(settings) => panic!("loaded despite the error: {settings:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn a_misspelt_key_in_the_file_is_refused_naming_it() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            let err = load_error(jail, Some("[limits]\nmax_dpeth = 3\n"));
            assert!(err.contains("max_dpeth"), "{err}");
            let err = load_error(jail, Some("databse_url = \"sqlite::memory:\"\n"));
            assert!(err.contains("databse_url"), "{err}");
            let err = load_error(jail, Some("[limit]\nmax_depth = 3\n"));
            assert!(err.contains("limit"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_misspelt_environment_key_is_refused_naming_it() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("REGISTRY_LIMITS__MAX_DPETH", "3");
            let err = load_error(jail, None);
            assert!(err.contains("max_dpeth"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.clear_env();
            // One underscore instead of two: a top-level key that does not exist.
            jail.set_env("REGISTRY_LIMITS_MAX_DEPTH", "3");
            let err = load_error(jail, None);
            assert!(err.contains("limits_max_depth"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn the_direct_environment_keys_still_work() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("other.toml", "[limits]\nmax_depth = 7\n")?;
            jail.set_env("REGISTRY_CONFIG", "other.toml");
            jail.set_env("DATABASE_URL", "postgres://u@h/db");
            jail.set_env("REGISTRY_BIND", ":0");
            jail.set_env("REGISTRY_LIMITS__MAX_COMPLEXITY", "99");
            jail.set_env("REGISTRY_AUTH__ISSUER", "qy");
            let settings = Settings::load(None).expect("loads");
            assert_eq!(settings.limits.max_depth, 7);
            assert_eq!(settings.limits.max_complexity, 99);
            assert_eq!(settings.database_url.as_deref(), Some("postgres://u@h/db"));
            assert_eq!(settings.auth.issuer, "qy");
            assert_eq!(settings.listen_address(), "127.0.0.1:0");
            Ok(())
        });
    }

    #[test]
    fn text_keys_from_the_environment_are_taken_as_written() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("REGISTRY_METRICS__TOKEN", "12345");
            jail.set_env("REGISTRY_AUTH__ISSUER", "3e5");
            jail.set_env("REGISTRY_AUTH__AUDIENCE", "true");
            let settings = Settings::load(None).expect("loads");
            assert_eq!(settings.metrics.token.as_deref(), Some("12345"));
            assert_eq!(settings.auth.issuer, "3e5");
            assert_eq!(settings.auth.audience, "true");
            Ok(())
        });
    }

    #[test]
    fn a_repair_window_that_cannot_open_is_refused_naming_the_key() {
        for value in ["-36", "0"] {
            Jail::expect_with(|jail| {
                jail.clear_env();
                jail.set_env("REGISTRY_RULES__REPAIR_MAX_MONTHS", value);
                let err = load_error(jail, None);
                assert!(err.contains("rules.repair_max_months"), "{err}");
                Ok(())
            });
        }
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("REGISTRY_RULES__REPAIR_MAX_MONTHS", "48");
            let settings = Settings::load(None).expect("loads");
            assert_eq!(settings.rules.repair_max_months, 48);
            Ok(())
        });
    }

    #[test]
    fn a_bind_of_only_a_port_listens_on_loopback() {
        let with = |bind: &str| Settings {
            bind: bind.into(),
            ..Settings::default()
        };
        assert_eq!(with(":0").listen_address(), "127.0.0.1:0");
        assert_eq!(with(":9090").listen_address(), "127.0.0.1:9090");
        assert_eq!(with("0.0.0.0:8080").listen_address(), "0.0.0.0:8080");
        assert_eq!(with("[::1]:8080").listen_address(), "[::1]:8080");
        let listener = std::net::TcpListener::bind(with(":0").listen_address())
            .expect("binds a free loopback port");
        let address = listener.local_addr().expect("address");
        assert!(address.ip().is_loopback() && address.port() != 0);
    }
}
