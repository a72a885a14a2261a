//! The real `credit-registry` binary imports and exports (issue 14): template, dry run,
//! import, re-import (no change), export → import (no change), a refused file with
//! `--errors-out` (SQLite in a temporary folder); and an import killed with SIGKILL in
//! the middle of a file, then run again, on PostgreSQL and on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BINARY, Server, admin_token, pg};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary with a clean environment, on `database_url`, in `dir`.
fn command(dir: &Path, database_url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BINARY);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("REGISTRY_DATA_DIR", dir)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .args(args);
    cmd
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("registry.db").display())
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir, &sqlite_url(dir), args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_cli_imports_and_exports_listings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(d, &["migrate"]).status.success());
    let t = run(d, &["import", "--template", "listings", "--out", "t.csv"]);
    assert!(t.status.success(), "{t:?}");

    let dry = run(d, &["import", "listings", "t.csv", "--dry-run"]);
    assert!(dry.status.success(), "{dry:?}");
    assert!(
        stdout(&dry).contains("created 1") && stdout(&dry).contains("dry run"),
        "{}",
        stdout(&dry)
    );

    let first = run(d, &["import", "listings", "t.csv", "--actor", "alice"]);
    assert!(first.status.success(), "{first:?}");
    assert!(
        stdout(&first).contains("created 1, updated 0, unchanged 0, rejected 0 (committed"),
        "{}",
        stdout(&first)
    );
    let again = run(d, &["import", "listings", "t.csv"]);
    assert!(
        stdout(&again).contains("created 0, updated 0, unchanged 1"),
        "{}",
        stdout(&again)
    );

    let e = run(d, &["export", "listings", "--out", "e.csv"]);
    assert!(e.status.success(), "{e:?}");
    let back = run(d, &["import", "listings", "e.csv"]);
    assert!(
        stdout(&back).contains("created 0, updated 0, unchanged 1"),
        "{}",
        stdout(&back)
    );

    let x = run(d, &["export", "public-list", "--format", "jsonl"]);
    assert!(stdout(&x).contains("91441802MA4W7K3Q8P"), "{}", stdout(&x));
    // A filter the kind does not use is refused, not ignored, and --out is not created.
    let by_region = run(
        d,
        &[
            "export",
            "check-records",
            "--region",
            "441802",
            "--out",
            "r.csv",
        ],
    );
    assert!(!by_region.status.success(), "{by_region:?}");
    assert!(
        String::from_utf8_lossy(&by_region.stderr).contains("--region applies to"),
        "{by_region:?}"
    );
    assert!(!d.join("r.csv").exists());

    // A refused file: exit status 1, every refusal in --errors-out.
    let text = std::fs::read_to_string(d.join("t.csv")).unwrap();
    std::fs::write(
        d.join("bad.csv"),
        text.replace("2026-02-12", "2026-01-12")
            .replace("清市监列〔2026〕3号", "清市监列〔2026〕4号"),
    )
    .unwrap();
    let bad = run(
        d,
        &[
            "import",
            "listings",
            "bad.csv",
            "--errors-out",
            "errors.csv",
        ],
    );
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    // Each refusal, then the refused row itself under the file's own headers: fixed
    // where the message says, it can be imported again.
    let errors = std::fs::read_to_string(d.join("errors.csv")).unwrap();
    assert!(
        errors.starts_with("row,column,message,统一社会信用代码,市场主体名称,"),
        "{errors}"
    );
    let refused: Vec<&str> = errors
        .lines()
        .filter(|l| l.starts_with("2,告知日期,"))
        .collect();
    assert_eq!(refused.len(), 1, "{errors}");
    assert!(
        refused[0].contains(",91441802MA4W7K3Q8P,") && refused[0].contains("2026-01-12"),
        "{errors}"
    );
}

/// An `.xlsx` whose sheet cannot be read past a row (a value beyond the columns an
/// import reads) is refused whole, with `--partial` too: the rows before it are not
/// written and the report does not say committed, since the rows after it were never
/// read.
#[test]
fn an_xlsx_unreadable_mid_sheet_is_refused_whole_even_with_partial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(run(d, &["migrate"]).status.success());
    let t = run(d, &["import", "--template", "listings", "--out", "t.csv"]);
    assert!(t.status.success(), "{t:?}");
    let mut reader = csv::Reader::from_path(d.join("t.csv")).unwrap();
    let headers: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let example: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in headers.iter().enumerate() {
        sheet
            .write_string(0, c as u16, h.trim_start_matches('\u{feff}'))
            .unwrap();
    }
    for (c, v) in example.iter().enumerate() {
        sheet.write_string(1, c as u16, v).unwrap();
    }
    // Row 3 has a value in column 301; rows 4..11 follow it.
    sheet.write_string(2, 0, "x").unwrap();
    sheet.write_string(2, 300, "far").unwrap();
    for r in 3..11 {
        sheet.write_string(r, 0, "y").unwrap();
    }
    book.save(d.join("book.xlsx")).unwrap();
    let partial = run(d, &["import", "listings", "book.xlsx", "--partial"]);
    assert_eq!(partial.status.code(), Some(1), "{partial:?}");
    let out = stdout(&partial);
    assert!(out.contains("refused, nothing written"), "{out}");
    let err = String::from_utf8_lossy(&partial.stderr);
    assert!(
        err.contains("row 3") && err.contains("cannot be read from row 3 on"),
        "{err}"
    );
    // Nothing was written: the template's row is still new.
    let dry = run(d, &["import", "listings", "t.csv", "--dry-run"]);
    assert!(stdout(&dry).contains("created 1"), "{}", stdout(&dry));
}

/// Rows of the interrupted file, and rows per chunk: a hundred chunks, so that a kill
/// after the first commit lands well before the last.
const INTERRUPTED_ROWS: u32 = 10_000;
const INTERRUPTED_CHUNK: &str = "100";
/// The interrupted file's listings are decided on this Beijing date (in force from its
/// start, 2026-03-01T16:00:00Z).
const DECISION_DATE: &str = "2026-03-02";

fn decision_doc(n: u32) -> String {
    format!("清市监列〔2026〕{n}号")
}

/// A listings file of `rows` listings of distinct new operators, all in force now.
fn listings_file(rows: u32) -> (String, BTreeSet<(String, String)>) {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "统一社会信用代码",
        "市场主体名称",
        "名单",
        "作出决定机关",
        "处罚决定书文号",
        "处罚日期",
        "违法行为类别",
        "列入事由",
        "法律依据",
        "告知日期",
        "列入决定书文号",
        "列入日期",
        "惩戒措施",
    ])
    .unwrap();
    let mut keys = BTreeSet::new();
    for n in 1..=rows {
        let code = common::code(n);
        let doc = decision_doc(n);
        w.write_record([
            code.as_str(),
            &format!("清远市中断测试{n}有限公司"),
            "SAMR_SERIOUS_DISHONEST",
            "清远市市场监督管理局",
            &format!("清市监罚〔2026〕{n}号"),
            "2026-02-02",
            "CONSUMER_HARM",
            "收取预付款后卷款跑路",
            "《市场监督管理严重违法失信名单管理办法》第八条",
            "2026-02-12",
            &doc,
            DECISION_DATE,
            "",
        ])
        .unwrap();
        keys.insert((code, doc));
    }
    (String::from_utf8(w.into_inner().unwrap()).unwrap(), keys)
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// The import batch's last committed row and status, once the batch exists.
async fn batch_progress(db: &DatabaseConnection) -> Option<(i64, String)> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT last_committed_row, status FROM import_batches",
        ))
        .await
        // SQLite may be busy for a moment while the importer commits: not yet.
        .ok()??;
    Some((
        row.try_get::<i64>("", "last_committed_row").ok()?,
        row.try_get::<String>("", "status").ok()?,
    ))
}

/// Waits (up to three minutes) until the registry log's checkpoint holds `size` entries.
async fn registry_log_reaches(server: &Server, size: i64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let checkpoint = reqwest::get(server.url("/logs/registry/checkpoint"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let logged: i64 = checkpoint
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if logged >= size {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the registry log holds {logged} of {size} entries after three minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn gql(server: &Server, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

const CHECK: &str = "query($u: String!, $t: DateTime) { check(uscc: $u, domain: PROCUREMENT, asOf: $t) { decision hits { listCode decisionDocNo listedAt expiresAt measures { code effect } } } }";

/// Kills `credit-registry import listings FILE` with SIGKILL once at least one chunk is
/// committed and before the last, runs it again, and checks that the second run resumed
/// after the last committed chunk, that the listings are exactly the file's rows, that
/// the audit chain holds, and that checks answer for them as for a listing decided here.
async fn an_import_killed_mid_file_resumes_after_its_last_committed_chunk(
    dir: &Path,
    database_url: &str,
) {
    let migrate = command(dir, database_url, &["migrate"]).output().unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let (text, keys) = listings_file(INTERRUPTED_ROWS);
    std::fs::write(dir.join("big.csv"), text).unwrap();
    let args = [
        "import",
        "listings",
        "big.csv",
        "--chunk-rows",
        INTERRUPTED_CHUNK,
    ];
    let db = if database_url.starts_with("postgres") {
        pg::connect(database_url).await
    } else {
        sea_orm::Database::connect(database_url).await.unwrap()
    };

    // First run: killed as soon as the database shows a committed chunk.
    let mut child = command(dir, database_url, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended ({status}) before a committed chunk was seen");
        }
        if let Some((last, _)) = batch_progress(&db).await
            && last > 1
        {
            child.kill().unwrap(); // SIGKILL
            break;
        }
        assert!(Instant::now() < deadline, "no chunk committed in 120 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.wait().unwrap();
    let (last, status) = batch_progress(&db).await.unwrap();
    let total = i64::from(INTERRUPTED_ROWS) + 1; // the last data row
    assert_eq!(status, "RUNNING", "the kill came after the import finished");
    assert!(
        last > 1 && last < total,
        "killed after row {last} of {total}: not mid-file"
    );
    // Each chunk is its own transaction, recorded with the batch's progress: exactly the
    // committed rows are there, nothing of the chunk in flight.
    let committed = last - 1;
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM listings").await,
        committed
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM operators").await,
        committed
    );

    // Second run: resumes after the last committed chunk and finishes the file.
    let again = command(dir, database_url, &args).output().unwrap();
    let summary = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{again:?}");
    let rest = i64::from(INTERRUPTED_ROWS) - committed;
    assert!(
        summary.contains(&format!(
            "created {rest}, updated 0, unchanged {committed}, rejected 0 (committed"
        )) && summary.contains(&format!("resumed after row {last}")),
        "{summary}"
    );
    assert_eq!(
        batch_progress(&db).await.unwrap(),
        (total, "DONE".to_string())
    );

    // Exactly the file's rows, none twice: operators, listings, revisions, audit events.
    let n = i64::from(INTERRUPTED_ROWS);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM listings").await, n);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM operators").await, n);
    assert_eq!(scalar(&db, "SELECT COUNT(*) FROM listing_periods").await, n);
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM listing_revisions").await,
        n
    );
    assert_eq!(
        scalar(&db, "SELECT COUNT(*) FROM audit_events").await,
        2 * n
    );
    let stored: BTreeSet<(String, String)> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT o.uscc, l.decision_doc_no FROM listings l JOIN operators o ON o.id = l.operator_id",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get::<String>("", "uscc").unwrap(),
                r.try_get::<String>("", "decision_doc_no").unwrap(),
            )
        })
        .collect();
    assert_eq!(stored, keys);
    let verify = command(dir, database_url, &["verify-audit"])
        .output()
        .unwrap();
    let verdict = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{verify:?}");
    assert!(
        verdict.contains(&format!("audit chain ok: {} events checked", 2 * n)),
        "{verdict}"
    );
    db.close().await.ok();

    // Checks: the first row (committed before the kill), the first row after it and the
    // last row answer like a listing proposed and decided here with the same dates.
    let token = admin_token(dir);
    let server = Server::start(dir, database_url, &[], "server.log").await;
    // A check names the registry log's head of the list it read, so it waits until the
    // log holds every imported change (at most the request timeout). On a loaded machine
    // a debug build's appender can take longer than that for 10,000 listings; what this
    // test checks is the resumed import, so it lets the log catch up first (one entry per
    // revision: the n asserted above).
    registry_log_reaches(&server, n).await;
    let decided = common::code(INTERRUPTED_ROWS + 1);
    gql(
        &server,
        &token,
        common::UPSERT,
        json!({"i": {"uscc": decided, "name": "对照公司"}}),
    )
    .await;
    let proposed = gql(&server, &token,
        "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id } }",
        json!({"i": {"uscc": decided, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
            "penaltyDocNo": "清市监罚〔2026〕对照号", "penaltyDate": "2026-02-02", "violationCategory": "CONSUMER_HARM",
            "reason": "收取预付款后卷款跑路", "legalBasis": "第八条", "noticeDate": "2026-02-12"}})).await;
    let id = proposed["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    gql(&server, &token,
        "mutation($i: DecideListingInput!) { decideListing(input: $i) { id } }",
        json!({"i": {"id": id, "expectedVersion": 1, "decisionDocNo": "清市监列〔2026〕对照号", "decisionDate": DECISION_DATE}})).await;
    let resumed_first = u32::try_from(committed).unwrap() + 1;
    for instant in [
        None,
        Some("2026-03-01T15:59:59Z"),
        Some("2026-03-01T16:00:00Z"),
    ] {
        let expected = gql(&server, &token, CHECK, json!({"u": decided, "t": instant})).await;
        let mut expected = expected["check"].clone();
        let decision = expected["decision"].as_str().unwrap().to_string();
        assert_eq!(
            decision,
            if instant == Some("2026-03-01T15:59:59Z") {
                "CLEAR"
            } else {
                "RESTRICTED"
            },
            "{expected}"
        );
        for n in [1, resumed_first, INTERRUPTED_ROWS] {
            let got = gql(
                &server,
                &token,
                CHECK,
                json!({"u": common::code(n), "t": instant}),
            )
            .await;
            if let Some(hit) = expected["hits"].get_mut(0) {
                hit["decisionDocNo"] = json!(decision_doc(n));
            }
            assert_eq!(got["check"], expected, "row {n} at {instant:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_file_resumes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(dir.path());
    an_import_killed_mid_file_resumes_after_its_last_committed_chunk(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_file_resumes_on_postgres() {
    let admin_url = pg::admin_url();
    let name = format!("bulk_kill_{}", uuid::Uuid::new_v4().simple());
    let url = pg::create_database(&admin_url, &name).await;
    let dir = tempfile::tempdir().unwrap();
    an_import_killed_mid_file_resumes_after_its_last_committed_chunk(dir.path(), &url).await;
    pg::drop_database(&admin_url, &name).await;
}
