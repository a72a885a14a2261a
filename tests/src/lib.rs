//! Black-box test harness: starts the real server on port 0 against a fresh database
//! (an SQLite file in a temporary folder, or a new PostgreSQL database created on the
//! server `pg` finds or starts) and speaks GraphQL over HTTP like a partner.

// A test harness: a failed set-up step should panic and fail the test that hit it.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::field_reassign_with_default
)]
use api::auth::Role;
use api::auth::tokens::{TokenRequest, TokenService};
use api::config::Settings;
use api::domain::measures::Domain;
use api::startup::{AppState, Application};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::sync::Arc;

pub mod pg;

pub const DEFAULT_PG_URL: &str = pg::DEFAULT_URL;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL admin URL of this test process: `TEST_DATABASE_URL`, the local
/// default, or a throwaway cluster started for the process (see [`pg`]).
pub fn pg_admin_url() -> String {
    pg::admin_url()
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    pub client: reqwest::Client,
    pub tokens: Arc<TokenService>,
    /// A direct connection to the same database, for assertions and tampering.
    pub db: DatabaseConnection,
    pub state: Arc<AppState>,
    pg_database: Option<String>,
    /// The data directory (keys, SQLite file); a peer shares its first server's.
    _dir: Option<tempfile::TempDir>,
}

/// A fresh PostgreSQL database on the test server; returns its URL and name.
pub async fn create_pg_database() -> (String, String) {
    let name = format!("registry_test_{}", uuid::Uuid::new_v4().simple());
    let url = pg::create_database(&pg_admin_url(), &name).await;
    (url, name)
}

pub fn test_settings(dir: &std::path::Path, database_url: String) -> Settings {
    let mut settings = Settings::default();
    settings.bind = "127.0.0.1:0".into();
    settings.data_dir = dir.to_path_buf();
    settings.database_url = Some(database_url);
    settings.workers = 2;
    settings.database.max_connections = 8;
    // The expiry recorder bumps listing versions in the background: tests run it
    // explicitly (`api::service::feed::record_expiries`) so nothing changes under them.
    settings.jobs.expiry_interval_seconds = 0;
    // Likewise the purge of expired idempotency keys (`service::idempotency::purge_expired`).
    settings.jobs.idempotency_purge_interval_seconds = 0;
    // 429s are answered at once here: held for their Retry-After (the default), every
    // test that meets a rate limit would wait a second per refusal.
    // `rate_limits::a_refusal_is_held_for_its_retry_after` tests the hold.
    settings.limits.rate_limited_hold_ms = 0;
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts a server after letting the test adjust its settings.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let (url, pg_database) = match backend {
        Backend::Sqlite => (
            format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("registry.db").display()
            ),
            None,
        ),
        Backend::Postgres => {
            let (url, name) = create_pg_database().await;
            (url, Some(name))
        }
    };
    let mut settings = test_settings(dir.path(), url);
    adjust(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("application starts");
    let port = app.port();
    let state = app.state();
    load_fixture_calendar_years(&state.db).await;
    tokio::spawn(app.run_until_stopped());
    TestApp {
        backend,
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        tokens: state.tokens.clone(),
        db: state.db.clone(),
        state,
        pg_database,
        _dir: Some(dir),
    }
}

impl TestApp {
    /// A second server on the same database, with the same settings (so the same key
    /// files) but its own port, pool, caches and background jobs: another instance of
    /// the service, as a cluster runs it. `adjust` may change its settings. The first
    /// server owns the database and the data directory: keep it alive while the peer is used.
    pub async fn spawn_peer(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = (*self.state.settings).clone();
        adjust(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the peer application starts");
        let port = app.port();
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            backend: self.backend,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            tokens: state.tokens.clone(),
            db: state.db.clone(),
            state,
            pg_database: None,
            _dir: None,
        }
    }
}

/// How fixture years are marked in `calendar_years.source`.
pub const FIXTURE_CALENDAR_SOURCE: &str =
    "test fixture: weekdays work, weekends rest, no holidays (not a State Council notice)";

/// Many tests date listings and repair applications relative to today, and their
/// working-day deadlines (5, 3, 15 working days) run into next year from December on.
/// Whether they pass must not depend on whether next year's State Council notice has
/// been published and shipped yet, so every year after the shipped calendar up to next
/// year is loaded as a plain calendar, marked as a fixture. Tests of real holiday
/// arithmetic use fixed dates in shipped years; the missing-year refusal is tested with
/// far-future years.
async fn load_fixture_calendar_years(db: &DatabaseConnection) {
    use chrono::Datelike;
    use entity::calendar_year;
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let shipped = calendar_year::Entity::find()
        .all(db)
        .await
        .expect("calendar years")
        .into_iter()
        .map(|y| y.year)
        .max()
        .expect("the migrations ship calendar years");
    let next_year = chrono::Utc::now().year() + 1;
    for year in shipped + 1..=next_year {
        calendar_year::ActiveModel {
            year: Set(year),
            source: Set(FIXTURE_CALENDAR_SOURCE.into()),
            loaded_at: Set(chrono::Utc::now()),
        }
        .insert(db)
        .await
        .expect("fixture calendar year");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Best effort: drop the PostgreSQL database on a thread of its own (Drop is sync).
        if let Some(name) = self.pg_database.take() {
            let handle = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(pg::drop_database(&pg_admin_url(), &name));
            });
            let _ = handle.join();
        }
    }
}

/// A GraphQL response, with helpers for the common assertions.
#[derive(Debug, Clone)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    pub fn data(&self) -> &Value {
        assert!(
            self.body
                .get("errors")
                .is_none_or(|e| e.as_array().is_none_or(|a| a.is_empty())),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The first error's `extensions.code`.
    pub fn error_code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn error_message(&self) -> &str {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
    }

    pub fn assert_error(&self, code: &str) -> &Self {
        assert_eq!(
            self.error_code(),
            Some(code),
            "expected {code}, got {}",
            self.body
        );
        self
    }
}

impl TestApp {
    /// A distinct instant between two changes (instants are kept to the microsecond): the
    /// registry's clock is moved on either side of it instead of sleeping.
    pub fn instant_between(&self) -> chrono::DateTime<chrono::Utc> {
        self.state.clock.advance(chrono::Duration::milliseconds(5));
        let t = self.state.clock.now();
        self.state.clock.advance(chrono::Duration::milliseconds(5));
        t
    }

    pub fn token(&self, role: Role, subject: &str) -> String {
        self.token_for(TokenRequest {
            subject: subject.into(),
            role,
            domains: Vec::new(),
            region: None,
            ttl: chrono::Duration::hours(1),
        })
    }

    pub fn admin(&self) -> String {
        self.token(Role::Admin, "admin-city")
    }

    pub fn auditor(&self) -> String {
        self.token(Role::Auditor, "auditor-1")
    }

    pub fn region_admin(&self, region: &str) -> String {
        self.token_for(TokenRequest {
            subject: format!("admin-{region}"),
            role: Role::Admin,
            domains: Vec::new(),
            region: Some(region.into()),
            ttl: chrono::Duration::hours(1),
        })
    }

    pub fn partner_token(&self, subject: &str, domains: &[Domain]) -> String {
        self.token_for(TokenRequest {
            subject: subject.into(),
            role: Role::Partner,
            domains: domains.to_vec(),
            region: None,
            ttl: chrono::Duration::hours(1),
        })
    }

    pub fn token_for(&self, req: TokenRequest) -> String {
        self.tokens.issue(&req).expect("issue token")
    }

    /// POSTs a GraphQL operation with an optional bearer token.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.post_json(token, &json!({ "query": query, "variables": variables }))
            .await
    }

    pub async fn post_json(&self, token: Option<&str>, body: &Value) -> Gql {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        Gql { status, body }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request sent")
    }

    /// Runs raw SQL on the test database (assertions and deliberate tampering).
    pub async fn sql(&self, sql: &str) {
        self.db
            .execute_raw(Statement::from_string(
                self.db.get_database_backend(),
                sql.to_string(),
            ))
            .await
            .expect("raw SQL");
    }

    pub async fn count(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("n")
    }

    /// Registers an operator as the city admin; returns its id.
    pub async fn create_operator(&self, uscc: &str, name: &str) -> String {
        let resp = self
            .gql(
                Some(&self.admin()),
                "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id } }",
                json!({ "i": { "uscc": uscc, "name": name } }),
            )
            .await;
        resp.data()["upsertOperator"]["id"]
            .as_str()
            .expect("id")
            .to_string()
    }
}

/// Runs one async test body against SQLite and against PostgreSQL, as two tests
/// named `<name>::sqlite` and `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::spawn_app($crate::Backend::Sqlite).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::spawn_app($crate::Backend::Postgres).await).await
                }
            }
        )+
    };
}

/// What a receipt says, of either kind: the JSON payload of a tlog-proof receipt (its
/// `extra` line) or of a compact JWS (its middle part). Unverified: for assertions only.
pub fn receipt_payload(receipt: &str) -> Value {
    use base64::Engine;
    let bytes = if let Some(line) = receipt.lines().find_map(|l| l.strip_prefix("extra ")) {
        base64::engine::general_purpose::STANDARD
            .decode(line)
            .expect("base64 extra line")
    } else {
        let part = receipt.split('.').nth(1).expect("a JWS payload");
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url")
    };
    serde_json::from_slice(&bytes).expect("a JSON payload")
}

/// Valid codes for tests (both check digits hold), with their Qingyuan divisions.
pub fn valid_code(division: &str, serial: u32) -> String {
    let prefix = format!("91{division}{serial:08}");
    api::domain::uscc::complete_code(&prefix)
        .expect("valid prefix")
        .into_string()
}

// --- Listing fixtures and partners (checks) ----------------------------------------

/// An instant in UTC, for fixtures: `at("2026-03-01T09:00:00Z")`.
pub fn at(rfc3339: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("RFC 3339 instant")
        .with_timezone(&chrono::Utc)
}

impl TestApp {
    /// Inserts a listing of the operator with code `operator_uscc` (which must exist) on
    /// the list `list_code`, in force from `starts_at` to `ends_at` unless removed at
    /// `removed_at`, with the given measures. Rows go straight into the database (the
    /// listing mutations are tested on their own); returns the listing id.
    pub async fn insert_listing(
        &self,
        operator_uscc: &str,
        list_code: &str,
        starts_at: chrono::DateTime<chrono::Utc>,
        ends_at: chrono::DateTime<chrono::Utc>,
        removed_at: Option<chrono::DateTime<chrono::Utc>>,
        measure_codes: &[&str],
    ) -> i64 {
        use entity::{credit_list, listing, listing_measure, operator};
        use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
        let operator = operator::Entity::find()
            .filter(operator::Column::Uscc.eq(operator_uscc))
            .one(&self.db)
            .await
            .expect("find operator")
            .unwrap_or_else(|| panic!("operator {operator_uscc} does not exist"));
        let list = credit_list::Entity::find()
            .filter(credit_list::Column::Code.eq(list_code))
            .one(&self.db)
            .await
            .expect("find list")
            .unwrap_or_else(|| panic!("list {list_code} does not exist"));
        let day = starts_at.date_naive();
        let listing = listing::ActiveModel {
            operator_id: Set(operator.id),
            list_id: Set(list.id),
            status: Set(if removed_at.is_some() {
                listing::StoredStatus::Revoked
            } else {
                listing::StoredStatus::Listed
            }),
            authority: Set("清远市市场监督管理局".into()),
            authority_region: Set("441800".into()),
            penalty_doc_no: Set(format!("清市监罚〔{}〕{}号", day.format("%Y"), operator.id)),
            penalty_date: Set(day - chrono::Duration::days(30)),
            violation_category: Set("CONSUMER_HARM".into()),
            reason: Set("收取预付款后卷款跑路".into()),
            legal_basis: Set("市场监管总局令第44号 第八条".into()),
            notice_date: Set(day - chrono::Duration::days(20)),
            defence_deadline: Set(day - chrono::Duration::days(13)),
            proposed_at: Set(starts_at - chrono::Duration::days(20)),
            decision_doc_no: Set(Some(format!(
                "清市监信列〔{}〕{}号",
                day.format("%Y"),
                operator.id
            ))),
            decision_date: Set(Some(day)),
            version: Set(1),
            created_at: Set(starts_at),
            updated_at: Set(starts_at),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .expect("insert listing");
        self.add_listing_period(listing.id, starts_at, ends_at, removed_at)
            .await;
        for code in measure_codes {
            let measure = self.measure_id(code).await;
            listing_measure::ActiveModel {
                listing_id: Set(listing.id),
                measure_id: Set(measure),
            }
            .insert(&self.db)
            .await
            .expect("insert listing measure");
            // As the registry's own writes do.
            api::service::catalogue::mark_used(&self.db, &[measure], chrono::Utc::now())
                .await
                .expect("mark the measure used");
        }
        listing.id
    }

    /// A listing on the SAMR list in force now (from ten days ago, for about three more
    /// years) with the given measures: the fixture most check, receipt and page tests need.
    pub async fn insert_listing_in_force(
        &self,
        operator_uscc: &str,
        measure_codes: &[&str],
    ) -> i64 {
        let now = chrono::Utc::now();
        self.insert_listing(
            operator_uscc,
            "SAMR_SERIOUS_DISHONEST",
            now - chrono::Duration::days(10),
            now + chrono::Duration::days(900),
            None,
            measure_codes,
        )
        .await
    }

    /// Adds a period to a listing (e.g. a repair revoked for fraud restores the listing).
    pub async fn add_listing_period(
        &self,
        listing_id: i64,
        starts_at: chrono::DateTime<chrono::Utc>,
        ends_at: chrono::DateTime<chrono::Utc>,
        removed_at: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        use sea_orm::{ActiveModelTrait, Set};
        entity::listing_period::ActiveModel {
            listing_id: Set(listing_id),
            starts_at: Set(starts_at),
            ends_at: Set(ends_at),
            removed_at: Set(removed_at),
            removal_kind: Set(removed_at.map(|_| "REVOKED".to_string())),
            ..Default::default()
        }
        .insert(&self.db)
        .await
        .expect("insert listing period");
    }

    pub async fn measure_id(&self, code: &str) -> i64 {
        use entity::measure;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        measure::Entity::find()
            .filter(measure::Column::Code.eq(code))
            .one(&self.db)
            .await
            .expect("find measure")
            .unwrap_or_else(|| panic!("measure {code} does not exist"))
            .id
    }

    /// The catalogue's measure `code` (of `domain`), with `fields`, as an auditor reads it.
    pub async fn measure_as_read(&self, domain: &str, code: &str, fields: &str) -> Value {
        let read = self
            .gql(
                Some(&self.auditor()),
                &format!("{{ measures(domain: {domain}) {{ code {fields} }} }}"),
                json!({}),
            )
            .await;
        read.data()["measures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["code"] == code)
            .unwrap_or_else(|| panic!("no measure {code} in {domain}: {}", read.body))
            .clone()
    }

    /// Registers a partner as the city admin.
    pub async fn register_partner(&self, subject: &str, domains: &[Domain]) {
        let domains: Vec<String> = domains.iter().map(|d| d.code()).collect();
        // A registrar of its own, so registering spends no rate budget of the admin a
        // test is measuring.
        let registrar = self.token(Role::Admin, "partner-registrar");
        self.gql(
            Some(&registrar),
            "mutation($i: RegisterPartnerInput!) { registerPartner(input: $i) { id } }",
            json!({ "i": { "subject": subject, "name": format!("{subject} system"), "domains": domains } }),
        )
        .await
        .data();
    }

    /// Registers a partner and returns a token for it (no narrowing).
    pub async fn partner(&self, subject: &str, domains: &[Domain]) -> String {
        self.register_partner(subject, domains).await;
        self.partner_token(subject, &[])
    }
}

/// Like [`on_both_backends!`] for tests that start their own servers: each test
/// function takes the [`Backend`] and builds what it needs (several instances on one
/// database, a store of their own).
#[macro_export]
macro_rules! on_both_backends_by_backend {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )+
    };
}

/// Like [`on_both_backends!`], for a server started with adjusted settings: each
/// `name => adjust` pair runs `name(app)` on both backends, where `adjust` is a
/// `fn(&mut Settings)` in the same module.
#[macro_export]
macro_rules! on_both_backends_with {
    ($($name:ident => $adjust:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(
                        $crate::spawn_app_with($crate::Backend::Sqlite, super::$adjust).await,
                    )
                    .await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(
                        $crate::spawn_app_with($crate::Backend::Postgres, super::$adjust).await,
                    )
                    .await
                }
            }
        )+
    };
}

/// An HTTP answer with its headers.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl HttpAnswer {
    pub fn gql(&self) -> Gql {
        Gql {
            status: self.status,
            body: self.body.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl TestApp {
    /// POSTs a JSON body to `/graphql` with extra headers; keeps the answer's headers.
    pub async fn post_graphql(
        &self,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> HttpAnswer {
        self.post_graphql_raw(token, serde_json::to_vec(body).unwrap(), headers)
            .await
    }

    /// POSTs raw bytes to `/graphql` as JSON, with extra headers.
    pub async fn post_graphql_raw(
        &self,
        token: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> HttpAnswer {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        HttpAnswer {
            status,
            headers,
            body,
        }
    }

    /// POSTs a GraphQL multipart request (the multipart request spec) with one file
    /// mapped to the variable `file`.
    pub async fn post_graphql_upload(
        &self,
        token: Option<&str>,
        operations: &Value,
        file_name: &str,
        file: &[u8],
    ) -> HttpAnswer {
        let boundary = "----credit-registry-test-boundary";
        let mut body = Vec::new();
        let mut part = |name: &str, extra: &str, content: &[u8]| {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{extra}\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        };
        part("operations", "", operations.to_string().as_bytes());
        part("map", "", br#"{"0": ["variables.file"]}"#);
        part(
            "0",
            &format!("; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream"),
            file,
        );
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let mut req = self
            .client
            .post(format!("{}/graphql", self.address))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        HttpAnswer {
            status,
            headers,
            body,
        }
    }

    /// Counts rows of `table` matching a raw SQL condition.
    pub async fn count_where(&self, table: &str, condition: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table} WHERE {condition}"),
            ))
            .await
            .expect("count")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("n")
    }
}

/// The introspection query GraphiQL sends (graphql-js `getIntrospectionQuery` with
/// descriptions, deprecated input values and nine levels of `ofType`).
pub const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      locations
      isRepeatable
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) {
    name
    description
    isDeprecated
    deprecationReason
  }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
"#;
impl TestApp {
    /// The WebSocket URL of a path on the test server, e.g. `/graphql/ws`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.address.replacen("http://", "ws://", 1))
    }
}
