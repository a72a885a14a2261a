//! Writing a plan to the database.
//!
//! PostgreSQL: one transaction that drops the constraints and secondary indexes of the
//! loaded tables, truncates them (they must be empty), streams every table with
//! `COPY ... FREEZE` (rows are written frozen, so the first reads do not rewrite every page
//! to set hint bits), rebuilds the indexes and constraints from their saved definitions
//! and moves the id sequences on; then `ANALYZE`. Any failure rolls the whole load back,
//! indexes included. A generator thread produces the next chunk while PostgreSQL ingests
//! the previous one.
//!
//! SQLite: multi-row INSERTs in one transaction, then `ANALYZE`.

use super::plan::{CheckRow, ListingRow, OperatorRow, Plan};
use super::population::Population;
use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::sqlx::{self, PgConnection, Postgres};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Set, Statement, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// The tables `seed-bench` writes.
pub const LOADED_TABLES: [&str; 5] = [
    "operators",
    "listings",
    "listing_periods",
    "listing_measures",
    "check_records",
];
/// The measures the loaded listings use are marked used, as the registry's own writes
/// mark them (their domain and effect are then fixed).
const MARK_USED_MEASURES: &str = "UPDATE measures SET first_used_at = CURRENT_TIMESTAMP \
     WHERE first_used_at IS NULL AND id IN (SELECT measure_id FROM listing_measures)";
/// Tables that refer to the loaded ones and must be empty too (SQLite; PostgreSQL finds
/// them from the catalogue).
const REFERRING_TABLES: [&str; 4] = [
    "listing_revisions",
    "repair_applications",
    "typical_cases",
    "partner_feedback",
];

#[derive(Clone, Debug)]
pub struct SeedOptions {
    pub operators: u64,
    pub listings: u64,
    pub check_records: u64,
    pub seed: u64,
    /// Share of operators listed in force now (capped at 90 % of the listings).
    pub in_force_share: f64,
    /// Draw progress bars on the terminal.
    pub progress: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    pub rows: u64,
    pub seconds: f64,
}

/// What was loaded; written as the manifest the load generator reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedReport {
    pub backend: String,
    pub seed: u64,
    pub operators: u64,
    pub listings: u64,
    pub check_records: u64,
    pub requested_in_force_share: f64,
    pub in_force_operators: u64,
    pub in_force_share: f64,
    pub listing_periods: u64,
    pub listing_measures: u64,
    /// The instant listing states are relative to.
    pub now: DateTime<Utc>,
    pub seconds: f64,
    pub phases: Vec<PhaseReport>,
}

impl SeedReport {
    /// The population the manifest describes (for the load generator).
    pub fn population(&self) -> Result<Population, String> {
        Population::new(
            self.seed,
            self.operators,
            self.listings,
            self.requested_in_force_share,
        )
    }
}

/// Reads lists with their default measures, violation categories and the calendar.
pub async fn load_catalogue(db: &DatabaseConnection) -> anyhow::Result<super::plan::Catalogue> {
    use super::plan::{Catalogue, Category, ListInfo, MeasureInfo};
    use entity::{
        calendar_day, calendar_year, credit_list, list_default_measure, measure, violation_category,
    };
    let measures = measure::Entity::find().all(db).await?;
    let defaults = list_default_measure::Entity::find().all(db).await?;
    let mut lists: Vec<_> = credit_list::Entity::find().all(db).await?;
    lists.sort_by_key(|l| l.id);
    let lists = lists
        .into_iter()
        .filter(|l| l.active)
        .map(|l| ListInfo {
            id: l.id,
            measures: defaults
                .iter()
                .filter(|d| d.list_id == l.id)
                .filter_map(|d| measures.iter().find(|m| m.id == d.measure_id))
                .map(|m| MeasureInfo {
                    id: m.id,
                    domain: sea_orm::ActiveEnum::to_value(&m.domain),
                    effect: sea_orm::ActiveEnum::to_value(&m.effect),
                })
                .collect(),
            code: l.code,
            legal_basis: l.legal_basis,
            period_months: u32::try_from(l.default_period_months).unwrap_or(36),
            defence_working_days: u32::try_from(l.defence_working_days).unwrap_or(5),
            publicity_stop_working_days: u32::try_from(l.publicity_stop_working_days).unwrap_or(3),
            repair_min_months: u32::try_from(l.repair_min_months).unwrap_or(12),
        })
        .collect();
    let mut categories: Vec<_> = violation_category::Entity::find().all(db).await?;
    categories.sort_by_key(|c| c.id);
    let categories = categories
        .into_iter()
        .map(|c| Category {
            code: c.code,
            name: c.name,
            article: c.article,
        })
        .collect();
    let years = calendar_year::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|y| y.year);
    let days = calendar_day::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.day, d.is_working_day));
    Ok(Catalogue {
        lists,
        categories,
        calendar: api::domain::working_days::WorkingCalendar::new(years, days),
    })
}

/// Fills an empty registry with bench data; see the module documentation.
pub async fn seed(db: &DatabaseConnection, opts: &SeedOptions) -> anyhow::Result<SeedReport> {
    let population = Population::new(
        opts.seed,
        opts.operators,
        opts.listings,
        opts.in_force_share,
    )
    .map_err(anyhow::Error::msg)?;
    let catalogue = load_catalogue(db).await?;
    let plan = Arc::new(
        Plan::new(
            population,
            catalogue,
            opts.check_records,
            api::clock::Clock::system().now(),
        )
        .map_err(anyhow::Error::msg)?,
    );
    let started = Instant::now();
    let progress = Progress {
        enabled: opts.progress,
    };
    let backend = db.get_database_backend();
    let phases = match backend {
        DbBackend::Postgres => postgres::load(db, plan.clone(), &progress).await?,
        DbBackend::Sqlite => sqlite::load(db, &plan, &progress).await?,
        other => bail!("seed-bench supports PostgreSQL and SQLite, not {other:?}"),
    };
    let rows = |name: &str| phases.iter().find(|p| p.name == name).map_or(0, |p| p.rows);
    let p = &plan.population;
    Ok(SeedReport {
        backend: format!("{backend:?}").to_lowercase(),
        seed: p.seed,
        operators: p.operators,
        listings: p.listings,
        check_records: plan.check_records,
        requested_in_force_share: opts.in_force_share,
        in_force_operators: p.in_force,
        in_force_share: p.in_force_share(),
        listing_periods: rows("listing_periods"),
        listing_measures: rows("listing_measures"),
        now: plan.now,
        seconds: started.elapsed().as_secs_f64(),
        phases,
    })
}

/// Writes every generated code with whether it is listed in force now (`uscc<TAB>0|1`).
pub fn write_codes(population: &Population, path: &Path) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for i in 0..population.operators {
        writeln!(
            out,
            "{}\t{}",
            population.code(i),
            u8::from(population.is_in_force(i))
        )?;
    }
    out.flush()?;
    Ok(())
}

struct Progress {
    enabled: bool,
}

impl Progress {
    fn bar(&self, label: &str, len: u64) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let style = ProgressStyle::with_template(
            "{prefix:>17} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        ProgressBar::new(len)
            .with_style(style)
            .with_prefix(label.to_string())
    }

    fn spinner(&self, message: &str) -> ProgressBar {
        if !self.enabled {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner().with_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    }
}

fn phase(name: &str, rows: u64, started: Instant) -> PhaseReport {
    let seconds = started.elapsed().as_secs_f64();
    tracing::debug!(
        phase = name,
        rows,
        seconds,
        rows_per_second = (rows as f64 / seconds.max(1e-9)) as u64,
        "seed-bench phase done"
    );
    PhaseReport {
        name: name.to_string(),
        rows,
        seconds,
    }
}

/// PostgreSQL's `COPY` text format.
mod copy_text {
    use super::*;

    /// One line of `COPY ... FROM STDIN` text: tab-separated, `\N` for null.
    pub struct Line<'a> {
        buf: &'a mut Vec<u8>,
        first: bool,
    }

    impl<'a> Line<'a> {
        pub fn new(buf: &'a mut Vec<u8>) -> Self {
            Self { buf, first: true }
        }

        fn sep(&mut self) -> &mut Vec<u8> {
            if !self.first {
                self.buf.push(b'\t');
            }
            self.first = false;
            self.buf
        }

        pub fn text(&mut self, s: &str) -> &mut Self {
            let buf = self.sep();
            for b in s.bytes() {
                match b {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    _ => buf.push(b),
                }
            }
            self
        }

        pub fn null(&mut self) -> &mut Self {
            self.sep().extend_from_slice(b"\\N");
            self
        }

        pub fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
            match s {
                Some(s) => self.text(s),
                None => self.null(),
            }
        }

        pub fn int(&mut self, v: i64) -> &mut Self {
            let _ = write!(self.sep(), "{v}");
            self
        }

        pub fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
            match v {
                Some(v) => self.int(v),
                None => self.null(),
            }
        }

        pub fn boolean(&mut self, v: bool) -> &mut Self {
            self.sep().push(if v { b't' } else { b'f' });
            self
        }

        pub fn date(&mut self, d: NaiveDate) -> &mut Self {
            let _ = write!(
                self.sep(),
                "{:04}-{:02}-{:02}",
                d.year(),
                d.month(),
                d.day()
            );
            self
        }

        pub fn opt_date(&mut self, d: Option<NaiveDate>) -> &mut Self {
            match d {
                Some(d) => self.date(d),
                None => self.null(),
            }
        }

        pub fn instant(&mut self, t: DateTime<Utc>) -> &mut Self {
            let _ = write!(
                self.sep(),
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.timestamp_subsec_micros()
            );
            self
        }

        pub fn opt_instant(&mut self, t: Option<DateTime<Utc>>) -> &mut Self {
            match t {
                Some(t) => self.instant(t),
                None => self.null(),
            }
        }

        pub fn json<T: Serialize>(&mut self, v: &T) -> &mut Self {
            let text = serde_json::to_string(v).unwrap_or_else(|_| "null".into());
            self.text(&text)
        }

        pub fn end(&mut self) {
            self.buf.push(b'\n');
        }
    }

    pub const OPERATORS: &str = "COPY operators (id, uscc, name, name_normalized, former_names, entity_type, region_code, legal_representative, legal_rep_id_number, address, address_is_personal, check_digit_override, version, created_at, updated_at) FROM STDIN WITH (FREEZE true)";

    pub fn operator(r: &OperatorRow, buf: &mut Vec<u8>) {
        Line::new(buf)
            .int(r.id)
            .text(&r.uscc)
            .text(&r.name)
            .text(&r.name_normalized)
            .json(&r.former_names)
            .opt_text(r.entity_type.as_deref())
            .text(&r.region_code)
            .opt_text(r.legal_representative.as_deref())
            .opt_text(r.legal_rep_id_number.as_deref())
            .opt_text(r.address.as_deref())
            .boolean(r.address_is_personal)
            .null()
            .int(i64::from(r.version))
            .instant(r.created_at)
            .instant(r.updated_at)
            .end();
    }

    pub const LISTINGS: &str = "COPY listings (id, operator_id, list_id, status, authority, authority_region, penalty_doc_no, penalty_date, violation_category, reason, legal_basis, notice_date, defence_deadline, proposed_at, decision_doc_no, decision_date, period_months_override, removal_doc_no, removal_reason, publicity_stop_deadline, version, created_at, updated_at) FROM STDIN WITH (FREEZE true)";

    pub fn listing(r: &ListingRow, buf: &mut Vec<u8>) {
        Line::new(buf)
            .int(r.id)
            .int(r.operator_id)
            .int(r.list_id)
            .text(r.status)
            .text(&r.authority)
            .text(&r.authority_region)
            .text(&r.penalty_doc_no)
            .date(r.penalty_date)
            .text(&r.violation_category)
            .text(&r.reason)
            .text(&r.legal_basis)
            .date(r.notice_date)
            .date(r.defence_deadline)
            .instant(r.proposed_at)
            .opt_text(r.decision_doc_no.as_deref())
            .opt_date(r.decision_date)
            .opt_int(r.period_months_override.map(i64::from))
            .opt_text(r.removal_doc_no.as_deref())
            .opt_text(r.removal_reason.as_deref())
            .opt_date(r.publicity_stop_deadline)
            .int(i64::from(r.version))
            .instant(r.created_at)
            .instant(r.updated_at)
            .end();
    }

    pub const PERIODS: &str = "COPY listing_periods (listing_id, starts_at, ends_at, removed_at, removal_kind) FROM STDIN WITH (FREEZE true)";
    pub const MEASURES: &str =
        "COPY listing_measures (listing_id, measure_id) FROM STDIN WITH (FREEZE true)";
    pub const CHECKS: &str = "COPY check_records (id, subject, role, domain, uscc, operator_id, as_of, checked_at, reference, decision, hit_listing_ids, warnings, request_id, batch_id) FROM STDIN WITH (FREEZE true)";

    pub fn check(r: &CheckRow, buf: &mut Vec<u8>) {
        Line::new(buf)
            .text(&r.id)
            .text(&r.subject)
            .text(r.role)
            .text(r.domain)
            .text(&r.uscc)
            .opt_int(r.operator_id)
            .instant(r.as_of)
            .instant(r.checked_at)
            .opt_text(r.reference.as_deref())
            .text(r.decision)
            .json(&r.hit_listing_ids)
            .text("[]")
            .text(r.request_id)
            .null()
            .end();
    }
}

mod postgres {
    use super::*;

    /// Rows per chunk handed from the generator thread to `COPY`.
    const CHUNK: u64 = 8192;

    type Writer = fn(&Plan, u64, &mut Vec<u8>) -> u64;

    fn write_operator(plan: &Plan, i: u64, buf: &mut Vec<u8>) -> u64 {
        copy_text::operator(&plan.operator_row(i), buf);
        1
    }

    fn write_listing(plan: &Plan, j: u64, buf: &mut Vec<u8>) -> u64 {
        let (row, _, _) = plan.listing(plan.population.slot(j));
        copy_text::listing(&row, buf);
        1
    }

    fn write_periods(plan: &Plan, j: u64, buf: &mut Vec<u8>) -> u64 {
        let slot = plan.population.slot(j);
        let id = plan.population.listing_id(slot);
        let t = plan.timeline(slot);
        for p in &t.periods {
            copy_text::Line::new(buf)
                .int(id)
                .instant(p.starts_at)
                .instant(p.ends_at)
                .opt_instant(p.removed_at)
                .opt_text(p.removal_kind)
                .end();
        }
        t.periods.len() as u64
    }

    fn write_measures(plan: &Plan, j: u64, buf: &mut Vec<u8>) -> u64 {
        let slot = plan.population.slot(j);
        let id = plan.population.listing_id(slot);
        let t = plan.timeline(slot);
        if t.decision_date.is_none() {
            return 0;
        }
        let measures = &plan.catalogue.lists[t.list].measures;
        for m in measures {
            copy_text::Line::new(buf).int(id).int(m.id).end();
        }
        measures.len() as u64
    }

    fn write_check(plan: &Plan, r: u64, buf: &mut Vec<u8>) -> u64 {
        copy_text::check(&plan.check_row(r), buf);
        1
    }

    /// Streams `items` generated rows into one `COPY`, generating on a blocking thread
    /// while the previous chunk is being sent.
    async fn copy_table(
        conn: &mut PgConnection,
        name: &str,
        statement: &str,
        items: u64,
        plan: Arc<Plan>,
        write: Writer,
        progress: &Progress,
    ) -> anyhow::Result<PhaseReport> {
        let started = Instant::now();
        let bar = progress.bar(name, items);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(Vec<u8>, u64, u64)>(4);
        let producer = tokio::task::spawn_blocking(move || {
            let mut start = 0;
            while start < items {
                let end = (start + CHUNK).min(items);
                let mut buf = Vec::with_capacity(1 << 20);
                let mut rows = 0;
                for i in start..end {
                    rows += write(&plan, i, &mut buf);
                }
                if tx.blocking_send((buf, end - start, rows)).is_err() {
                    return;
                }
                start = end;
            }
        });
        let mut copy = conn
            .copy_in_raw(statement)
            .await
            .with_context(|| format!("starting COPY into {name}"))?;
        let mut rows = 0;
        while let Some((buf, n, chunk_rows)) = rx.recv().await {
            if !buf.is_empty()
                && let Err(e) = copy.send(buf).await
            {
                drop(rx);
                let _ = copy.abort("seed-bench: sending failed").await;
                return Err(anyhow::Error::new(e).context(format!("COPY into {name}")));
            }
            rows += chunk_rows;
            bar.inc(n);
        }
        producer.await.context("the row generator stopped")?;
        let copied = copy
            .finish()
            .await
            .with_context(|| format!("finishing COPY into {name}"))?;
        bar.finish();
        if copied != rows {
            bail!("COPY into {name} stored {copied} rows, {rows} were sent");
        }
        Ok(phase(name, rows, started))
    }

    fn quote_ident(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    struct Constraint {
        table_name: String,
        name: String,
        definition: String,
        kind: String,
    }

    struct IndexDef {
        name: String,
        definition: String,
    }

    /// Runs a statement built from constants and names read from PostgreSQL's own catalogue
    /// (already quoted by `regclass`/`quote_ident`), never from user input.
    async fn exec(conn: &mut PgConnection, sql: &str) -> anyhow::Result<()> {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("running: {sql}"))?;
        Ok(())
    }

    pub async fn load(
        db: &DatabaseConnection,
        plan: Arc<Plan>,
        progress: &Progress,
    ) -> anyhow::Result<Vec<PhaseReport>> {
        let pool = db.get_postgres_connection_pool();
        let mut tx: sqlx::Transaction<'static, Postgres> = pool.begin().await?;
        let conn: &mut PgConnection = &mut tx;
        // A bulk load outlives the service's statement timeout; all of these end with
        // the transaction.
        for sql in [
            "SET LOCAL statement_timeout = 0",
            "SET LOCAL lock_timeout = '30s'",
            "SET LOCAL maintenance_work_mem = '256MB'",
            "SET LOCAL synchronous_commit = off",
        ] {
            exec(conn, sql).await?;
        }
        let loaded: Vec<String> = LOADED_TABLES.iter().map(|t| t.to_string()).collect();
        let constraints: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT conrelid::regclass::text AS table_name, conname::text AS name, \
                    pg_get_constraintdef(oid) AS definition, contype::text AS kind \
             FROM pg_constraint \
             WHERE contype IN ('p', 'u', 'f') \
               AND (conrelid = ANY($1::text[]::regclass[]) OR confrelid = ANY($1::text[]::regclass[])) \
             ORDER BY oid",
        )
        .bind(&loaded)
        .fetch_all(&mut *conn)
        .await?;
        let constraints: Vec<Constraint> = constraints
            .into_iter()
            .map(|(table_name, name, definition, kind)| Constraint {
                table_name,
                name,
                definition,
                kind,
            })
            .collect();
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition \
             FROM pg_index i \
             WHERE i.indrelid = ANY($1::text[]::regclass[]) \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
                               WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid) \
             ORDER BY i.indexrelid",
        )
        .bind(&loaded)
        .fetch_all(&mut *conn)
        .await?;
        let indexes: Vec<IndexDef> = indexes
            .into_iter()
            .map(|(name, definition)| IndexDef { name, definition })
            .collect();

        // Every loaded table, and every table whose rows point into them, must be empty.
        let mut must_be_empty = loaded.clone();
        for c in constraints.iter().filter(|c| c.kind == "f") {
            if !must_be_empty.contains(&c.table_name) {
                must_be_empty.push(c.table_name.clone());
            }
        }
        for table in &must_be_empty {
            let (has_rows,): (bool,) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT EXISTS (SELECT 1 FROM {table})"
            )))
            .fetch_one(&mut *conn)
            .await?;
            if has_rows {
                bail!(
                    "seed-bench fills an empty registry, but table {table} already has rows: \
                     create a fresh database for bench data"
                );
            }
        }

        let started = Instant::now();
        let spinner = progress.spinner("dropping constraints and secondary indexes");
        for kind in ["f", "u", "p"] {
            for c in constraints.iter().filter(|c| c.kind == kind) {
                exec(
                    conn,
                    &format!(
                        "ALTER TABLE {} DROP CONSTRAINT {}",
                        c.table_name,
                        quote_ident(&c.name)
                    ),
                )
                .await?;
            }
        }
        for index in &indexes {
            exec(conn, &format!("DROP INDEX {}", index.name)).await?;
        }
        // Emptied in this transaction, so COPY may write the rows frozen.
        exec(conn, &format!("TRUNCATE {}", LOADED_TABLES.join(", "))).await?;
        spinner.finish_and_clear();
        let mut phases = vec![phase("drop_indexes", 0, started)];

        let p = &plan.population;
        let tables: [(&str, &str, u64, Writer); 5] = [
            (
                "operators",
                copy_text::OPERATORS,
                p.operators,
                write_operator,
            ),
            ("listings", copy_text::LISTINGS, p.listings, write_listing),
            (
                "listing_periods",
                copy_text::PERIODS,
                p.listings,
                write_periods,
            ),
            (
                "listing_measures",
                copy_text::MEASURES,
                p.listings,
                write_measures,
            ),
            (
                "check_records",
                copy_text::CHECKS,
                plan.check_records,
                write_check,
            ),
        ];
        for (name, statement, items, write) in tables {
            phases.push(
                copy_table(conn, name, statement, items, plan.clone(), write, progress).await?,
            );
        }

        let started = Instant::now();
        let spinner = progress.spinner("building indexes and constraints");
        for kind in ["p", "u"] {
            for c in constraints.iter().filter(|c| c.kind == kind) {
                spinner.set_message(format!("building {}", c.name));
                exec(
                    conn,
                    &format!(
                        "ALTER TABLE {} ADD CONSTRAINT {} {}",
                        c.table_name,
                        quote_ident(&c.name),
                        c.definition
                    ),
                )
                .await?;
            }
        }
        for index in &indexes {
            spinner.set_message(format!("building {}", index.name));
            exec(conn, &index.definition).await?;
        }
        for c in constraints.iter().filter(|c| c.kind == "f") {
            spinner.set_message(format!("validating {}", c.name));
            exec(
                conn,
                &format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} {}",
                    c.table_name,
                    quote_ident(&c.name),
                    c.definition
                ),
            )
            .await?;
        }
        // Ids were written explicitly: the sequences continue after them.
        for (table, last) in [("operators", p.operators), ("listings", p.listings)] {
            if last > 0 {
                sqlx::query("SELECT setval(pg_get_serial_sequence($1, 'id'), $2)")
                    .bind(table)
                    .bind(last as i64)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        exec(&mut tx, MARK_USED_MEASURES).await?;
        spinner.finish_and_clear();
        phases.push(phase("build_indexes", 0, started));

        let started = Instant::now();
        tx.commit().await.context("committing the bench data")?;
        let mut tx = pool.begin().await?;
        exec(&mut tx, "SET LOCAL statement_timeout = 0").await?;
        exec(&mut tx, &format!("ANALYZE {}", LOADED_TABLES.join(", "))).await?;
        tx.commit().await?;
        phases.push(phase("analyze", 0, started));
        Ok(phases)
    }
}

mod sqlite {
    use super::*;
    use entity::{check_record, listing, listing_measure, listing_period, operator};
    use serde_json::json;

    /// The plan spells each code as its column stores it (`plan.rs`), so reading it as
    /// the column's type cannot fail: a code it does not know is a bug in the plan.
    fn column_code<E: sea_orm::ActiveEnum<Value = String>>(code: &'static str) -> E {
        match E::try_from_value(&code.to_owned()) {
            Ok(v) => v,
            Err(e) => unreachable!("the plan spelled an unknown code: {e}"),
        }
    }

    /// SQLite allows 32,766 bound values per statement.
    const MAX_VALUES: u64 = 30_000;

    fn operator_model(r: OperatorRow) -> operator::ActiveModel {
        operator::ActiveModel {
            id: Set(r.id),
            uscc: Set(r.uscc),
            name: Set(r.name),
            name_normalized: Set(r.name_normalized),
            former_names: Set(json!(r.former_names)),
            entity_type: Set(r.entity_type),
            region_code: Set(r.region_code),
            legal_representative: Set(r.legal_representative),
            legal_rep_id_number: Set(r.legal_rep_id_number),
            address: Set(r.address),
            address_is_personal: Set(r.address_is_personal),
            check_digit_override: Set(None),
            version: Set(r.version),
            created_at: Set(r.created_at),
            updated_at: Set(r.updated_at),
        }
    }

    fn listing_model(r: ListingRow) -> listing::ActiveModel {
        listing::ActiveModel {
            id: Set(r.id),
            operator_id: Set(r.operator_id),
            list_id: Set(r.list_id),
            status: Set(column_code(r.status)),
            authority: Set(r.authority),
            authority_region: Set(r.authority_region),
            penalty_doc_no: Set(r.penalty_doc_no),
            penalty_date: Set(r.penalty_date),
            violation_category: Set(r.violation_category),
            reason: Set(r.reason),
            legal_basis: Set(r.legal_basis),
            notice_date: Set(r.notice_date),
            defence_deadline: Set(r.defence_deadline),
            proposed_at: Set(r.proposed_at),
            decision_doc_no: Set(r.decision_doc_no),
            decision_date: Set(r.decision_date),
            period_months_override: Set(r.period_months_override),
            removal_doc_no: Set(r.removal_doc_no),
            removal_reason: Set(r.removal_reason),
            publicity_stop_deadline: Set(r.publicity_stop_deadline),
            version: Set(r.version),
            created_at: Set(r.created_at),
            updated_at: Set(r.updated_at),
        }
    }

    fn check_model(r: CheckRow) -> check_record::ActiveModel {
        check_record::ActiveModel {
            id: Set(r.id),
            subject: Set(r.subject),
            role: Set(r.role.to_string()),
            domain: Set(column_code(r.domain)),
            uscc: Set(r.uscc),
            operator_id: Set(r.operator_id),
            as_of: Set(r.as_of),
            checked_at: Set(r.checked_at),
            reference: Set(r.reference),
            decision: Set(column_code(r.decision)),
            hit_listing_ids: Set(json!(r.hit_listing_ids)),
            hit_measure_codes: Set(None),
            warnings: Set(json!([])),
            request_id: Set(r.request_id.to_string()),
            batch_id: Set(None),
            known_at: Set(None),
        }
    }

    /// Inserts `items` generated models, `per_statement` rows per INSERT.
    async fn insert_all<E, A, F>(
        txn: &sea_orm::DatabaseTransaction,
        name: &str,
        items: u64,
        per_statement: u64,
        progress: &Progress,
        mut make: F,
    ) -> anyhow::Result<PhaseReport>
    where
        E: EntityTrait,
        A: sea_orm::ActiveModelTrait<Entity = E> + Send,
        F: FnMut(u64) -> Vec<A>,
    {
        let started = Instant::now();
        let bar = progress.bar(name, items);
        let mut rows = 0;
        let mut pending: Vec<A> = Vec::new();
        for i in 0..items {
            pending.extend(make(i));
            if pending.len() as u64 >= per_statement || i + 1 == items {
                let batch = std::mem::take(&mut pending);
                rows += batch.len() as u64;
                if !batch.is_empty() {
                    E::insert_many(batch)
                        .exec_without_returning(txn)
                        .await
                        .with_context(|| format!("inserting into {name}"))?;
                }
                bar.set_position(i + 1);
            }
        }
        bar.finish();
        Ok(phase(name, rows, started))
    }

    pub async fn load(
        db: &DatabaseConnection,
        plan: &Plan,
        progress: &Progress,
    ) -> anyhow::Result<Vec<PhaseReport>> {
        for table in LOADED_TABLES.iter().chain(REFERRING_TABLES.iter()) {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Sqlite,
                    format!("SELECT EXISTS (SELECT 1 FROM {table}) AS has_rows"),
                ))
                .await?;
            if row.is_some_and(|r| r.try_get::<i64>("", "has_rows").unwrap_or(1) != 0) {
                bail!(
                    "seed-bench fills an empty registry, but table {table} already has rows: \
                     create a fresh database for bench data"
                );
            }
        }
        let p = &plan.population;
        let txn = db.begin().await?;
        let mut phases = Vec::new();
        phases.push(
            insert_all(
                &txn,
                "operators",
                p.operators,
                MAX_VALUES / 15,
                progress,
                |i| vec![operator_model(plan.operator_row(i))],
            )
            .await?,
        );
        phases.push(
            insert_all(
                &txn,
                "listings",
                p.listings,
                MAX_VALUES / 23,
                progress,
                |j| vec![listing_model(plan.listing(p.slot(j)).0)],
            )
            .await?,
        );
        phases.push(
            insert_all(
                &txn,
                "listing_periods",
                p.listings,
                MAX_VALUES / 6,
                progress,
                |j| {
                    let slot = p.slot(j);
                    let id = p.listing_id(slot);
                    plan.timeline(slot)
                        .periods
                        .into_iter()
                        .map(|period| listing_period::ActiveModel {
                            listing_id: Set(id),
                            starts_at: Set(period.starts_at),
                            ends_at: Set(period.ends_at),
                            removed_at: Set(period.removed_at),
                            removal_kind: Set(period.removal_kind.map(str::to_string)),
                            ..Default::default()
                        })
                        .collect()
                },
            )
            .await?,
        );
        phases.push(
            insert_all(
                &txn,
                "listing_measures",
                p.listings,
                MAX_VALUES / 2,
                progress,
                |j| {
                    let slot = p.slot(j);
                    let id = p.listing_id(slot);
                    let t = plan.timeline(slot);
                    if t.decision_date.is_none() {
                        return Vec::new();
                    }
                    plan.catalogue.lists[t.list]
                        .measures
                        .iter()
                        .map(|m| listing_measure::ActiveModel {
                            listing_id: Set(id),
                            measure_id: Set(m.id),
                        })
                        .collect()
                },
            )
            .await?,
        );
        phases.push(
            insert_all(
                &txn,
                "check_records",
                plan.check_records,
                MAX_VALUES / 14,
                progress,
                |r| vec![check_model(plan.check_row(r))],
            )
            .await?,
        );
        let started = Instant::now();
        txn.execute_unprepared(MARK_USED_MEASURES).await?;
        txn.commit().await?;
        db.execute_unprepared("ANALYZE").await?;
        phases.push(phase("analyze", 0, started));
        Ok(phases)
    }
}

#[cfg(test)]
mod tests {
    use super::copy_text::Line;
    use chrono::TimeZone;

    #[test]
    fn copy_text_escapes_and_nulls() {
        let mut buf = Vec::new();
        Line::new(&mut buf)
            .text("a\tb\\c\nd")
            .null()
            .int(-3)
            .boolean(true)
            .json(&vec!["x\"y"])
            .end();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "a\\tb\\\\c\\nd\t\\N\t-3\tt\t[\"x\\\\\"y\"]\n"
        );
    }

    #[test]
    fn copy_text_instants_are_utc_with_microseconds() {
        let t = chrono::Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
            + chrono::Duration::microseconds(89);
        let mut buf = Vec::new();
        Line::new(&mut buf).instant(t).date(t.date_naive()).end();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "2025-03-04 05:06:07.000089+00\t2025-03-04\n"
        );
    }
}
