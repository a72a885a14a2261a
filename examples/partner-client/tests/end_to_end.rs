//! The example partner client, built by cargo and run as a partner would run it, against
//! a real registry on port 0 (SQLite and PostgreSQL): a tender with a listed bidder, a
//! clear one and an unknown one; the receipts are filed under names a clerk finds, every
//! one verifies offline, and a tampered one does not. Both receipt formats: the default
//! tlog proof (filed as `.tlog`, verified with the answer log's key) and the JWS of
//! `receipts.format = "jws"` (filed as `.jws`, verified with the JWK set).
//! With `--status-proofs`, each answer's status proof filed beside its receipt and
//! checked with the registry log's key, and one stripped of its listing's entry refused.

// Test code: a failed step should panic and fail the test that hit it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api::config::{ReceiptFormat, Settings};
use api::domain::measures::Domain;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tests::{TestApp, on_both_backends, on_both_backends_with, valid_code};

const CLIENT: &str = env!("CARGO_BIN_EXE_partner-client");

async fn run(args: Vec<String>, token: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(CLIENT);
        command.args(&args).env_remove("PARTNER_TOKEN");
        if let Some(token) = token {
            command.env("PARTNER_TOKEN", token);
        }
        command.output().expect("the partner client runs")
    })
    .await
    .unwrap()
}

fn receipts_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jws") || n.ends_with(".tlog"))
        .collect();
    names.sort();
    names
}

/// The file extension of each format's receipts.
fn extension(format: ReceiptFormat) -> &'static str {
    match format {
        ReceiptFormat::TlogProof => ".tlog",
        ReceiptFormat::Jws => ".jws",
    }
}

/// What a tender check left behind: the receipts' folder, the listed bidder's receipt file.
struct Filed {
    _work: tempfile::TempDir,
    out: PathBuf,
    listed_file: PathBuf,
    listed: String,
}

impl Filed {
    /// `partner-client verify` with both saved keys over the whole folder.
    async fn verify(&self) -> (Option<i32>, String) {
        let output = run(
            vec![
                "verify".into(),
                "--jwks".into(),
                self.out.join("jwks.json").display().to_string(),
                "--vkey".into(),
                self.out.join("answers.vkey").display().to_string(),
                self.out.display().to_string(),
            ],
            None,
        )
        .await;
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    }

    /// The verify line of the listed bidder's receipt, after it was tampered with: exit 1,
    /// that receipt INVALID, the two others still VALID.
    async fn tampered_line(&self) -> String {
        let (code, text) = self.verify().await;
        assert_eq!(code, Some(1), "{text}");
        assert_eq!(
            text.matches("VALID (").count(),
            2,
            "the others still verify: {text}"
        );
        text.lines()
            .find(|l| l.contains(self.listed.as_str()))
            .unwrap_or_else(|| panic!("no line for the tampered receipt in\n{text}"))
            .to_string()
    }
}

/// `partner-client check` of a tender, asserted to succeed: its table, as a clerk sees it
/// (shown with --nocapture).
async fn checked_tender(
    app: &TestApp,
    token: String,
    reference: &str,
    bidders: &Path,
    out: &Path,
    flags: &[&str],
) -> String {
    let mut args: Vec<String> = vec![
        "check".into(),
        "--url".into(),
        app.address.clone(),
        "--reference".into(),
        reference.into(),
        "--bidders".into(),
        bidders.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    args.extend(flags.iter().map(|f| f.to_string()));
    let output = run(args, Some(token)).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    eprintln!("{stdout}");
    stdout
}

/// Each `(file, path)`: the file `check` kept in `out` holds what the registry serves at
/// `path`.
async fn keys_are_kept_as_served(app: &TestApp, out: &Path, keys: &[(&str, &str)]) {
    for (file, path) in keys {
        let served = app.get(path).await.text().await.unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(file)).unwrap(),
            served,
            "{file}"
        );
    }
}

/// The table's row of a bidder.
fn row_of(table: &str, code: &str) -> String {
    table
        .lines()
        .find(|l| l.starts_with(code))
        .unwrap_or_else(|| panic!("no row for {code} in\n{table}"))
        .to_string()
}

/// Checks a tender of three bidders, asserts the table, the files and their offline
/// verification; returns where they were filed.
async fn check_a_tender(app: &TestApp, format: ReceiptFormat) -> Filed {
    let listed = valid_code("441802", 71);
    let clear = valid_code("441802", 72);
    let unknown = valid_code("441802", 73);
    app.create_operator(&listed, "清远市失信投标有限公司").await;
    app.create_operator(&clear, "清远市守信投标有限公司").await;
    app.insert_listing_in_force(&listed, &["BIDDING_RESTRICT"])
        .await;
    let token = app.partner("tender-platform", &[Domain::Bidding]).await;

    let work = tempfile::tempdir().unwrap();
    let bidders = work.path().join("bidders.txt");
    std::fs::write(
        &bidders,
        format!("# 投标人\n{listed}\n{clear}\n\n{unknown}\n"),
    )
    .unwrap();
    let out = work.path().join("receipts");
    let reference = "QY-ZB-2026-031";
    let stdout = checked_tender(app, token, reference, &bidders, &out, &[]).await;

    // The table: one row per bidder with its decision, each receipt genuine.
    let row = |code: &str| row_of(&stdout, code);
    assert!(row(&listed).contains("RESTRICTED"), "{stdout}");
    assert!(row(&clear).contains("CLEAR"), "{stdout}");
    assert!(row(&unknown).contains("UNKNOWN_OPERATOR"), "{stdout}");
    let vouched_by = match format {
        ReceiptFormat::TlogProof => "VALID (answer log entry ",
        ReceiptFormat::Jws => "VALID (2",
    };
    for code in [&listed, &clear, &unknown] {
        assert!(row(code).contains(vouched_by), "{stdout}");
        assert!(!row(code).contains("INVALID"), "{stdout}");
    }

    // Filed as <reference>_<uscc>_<receiptId>.<tlog|jws>, each receipt id the registry
    // recorded, each file of the format the server issues.
    let files = receipts_in(&out);
    assert_eq!(files.len(), 3, "{files:?}");
    for code in [&listed, &clear, &unknown] {
        let prefix = format!("{reference}_{code}_");
        let name = files
            .iter()
            .find(|f| f.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no receipt file for {code}: {files:?}"));
        let receipt_id = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(extension(format)))
            .unwrap_or_else(|| panic!("{name} is not a {} file", extension(format)));
        assert!(row(code).contains(receipt_id), "{stdout}");
        assert_eq!(
            app.count_where(
                "check_records",
                &format!("id = '{receipt_id}' AND uscc = '{code}' AND reference = '{reference}'")
            )
            .await,
            1,
            "{name} names a recorded check"
        );
    }
    // The keys, as the registry serves them.
    keys_are_kept_as_served(
        app,
        &out,
        &[
            ("jwks.json", "/.well-known/jwks.json"),
            ("answers.vkey", "/logs/answers/vkey"),
        ],
    )
    .await;

    let filed = Filed {
        _work: work,
        listed_file: out.join(files.iter().find(|f| f.contains(listed.as_str())).unwrap()),
        out,
        listed,
    };
    // Later, offline: the filed receipts verify with the saved keys alone.
    let (code, text) = filed.verify().await;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches(vouched_by).count(), 3, "{text}");
    filed
}

/// The default: tlog-proof receipts. Changing a byte of the payload, of the inclusion
/// proof or of the checkpoint's signature makes the receipt fail.
async fn tlog_receipts_are_checked_filed_and_verified_offline(app: TestApp) {
    let filed = check_a_tender(&app, ReceiptFormat::TlogProof).await;
    let genuine = std::fs::read_to_string(&filed.listed_file).unwrap();
    assert!(
        genuine.starts_with("c2sp.org/tlog-proof@v1\nextra "),
        "{genuine}"
    );
    let lines: Vec<&str> = genuine.split('\n').collect();
    let (blank, _) = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.is_empty())
        .unwrap();
    assert!(
        blank > 3,
        "the receipt carries a non-empty proof: {genuine}"
    );
    let with_line = |at: usize, line: String| {
        let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        changed[at] = line;
        changed.join("\n")
    };
    // One base64 character changed in the middle of a line: a different byte.
    let flip_char = |text: &str, at: usize| {
        let mut bytes = text.as_bytes().to_vec();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    };

    // The payload: its decision changed from RESTRICTED to CLEAR.
    let payload = String::from_utf8(STANDARD.decode(&lines[1]["extra ".len()..]).unwrap()).unwrap();
    assert!(payload.contains("\"RESTRICTED\""), "{payload}");
    let forged = STANDARD.encode(payload.replace("\"RESTRICTED\"", "\"CLEAR\""));
    // The first proof hash, one byte changed.
    let proof = flip_char(lines[3], 10);
    // The checkpoint's signature line (`— <name> <base64 key id and signature>`), one
    // byte of the signature changed (past the key id's first 4 bytes).
    let (signature_at, signature) = lines
        .iter()
        .enumerate()
        .rfind(|(_, l)| l.starts_with('\u{2014}'))
        .unwrap();
    let at = signature.rfind(' ').unwrap() + 40;
    let tampered = [
        (
            "payload",
            with_line(1, format!("extra {forged}")),
            "the inclusion proof does not lead to the checkpoint's root",
        ),
        (
            "proof",
            with_line(3, proof),
            "the inclusion proof does not lead to the checkpoint's root",
        ),
        (
            "checkpoint signature",
            with_line(signature_at, flip_char(signature, at)),
            "the checkpoint carries no valid signature of the log key",
        ),
    ];
    for (what, receipt, reason) in tampered {
        assert_ne!(receipt, genuine);
        std::fs::write(&filed.listed_file, &receipt).unwrap();
        let line = filed.tampered_line().await;
        assert!(
            line.contains(&format!("INVALID: {reason}")),
            "{what}: {line}"
        );
    }

    // The genuine receipt back: all verify again.
    std::fs::write(&filed.listed_file, &genuine).unwrap();
    assert_eq!(filed.verify().await.0, Some(0));

    // Without the answer log's key a tlog receipt cannot be checked: exit 2, not "valid".
    let output = run(
        vec![
            "verify".into(),
            "--jwks".into(),
            filed.out.join("jwks.json").display().to_string(),
            filed.listed_file.display().to_string(),
        ],
        None,
    )
    .await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("NOT CHECKED: a tlog-proof receipt, and no --vkey was given"),
        "{text}"
    );
}

fn jws_receipts(settings: &mut Settings) {
    settings.receipts.format = ReceiptFormat::Jws;
}

/// `receipts.format = "jws"`: JWS receipts, and a tampered one fails its signature.
async fn jws_receipts_are_checked_filed_and_verified_offline(app: TestApp) {
    let filed = check_a_tender(&app, ReceiptFormat::Jws).await;

    // A tampered receipt (its decision changed from RESTRICTED to CLEAR) does not verify.
    let receipt = std::fs::read_to_string(&filed.listed_file).unwrap();
    let parts: Vec<&str> = receipt.trim().split('.').collect();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert!(payload.contains("\"RESTRICTED\""), "{payload}");
    let forged = URL_SAFE_NO_PAD.encode(payload.replace("\"RESTRICTED\"", "\"CLEAR\""));
    std::fs::write(
        &filed.listed_file,
        format!("{}.{forged}.{}\n", parts[0], parts[2]),
    )
    .unwrap();
    let line = filed.tampered_line().await;
    assert!(
        line.contains("INVALID: the signature does not match"),
        "{line}"
    );
}

/// A token the registry refuses: the client says why and files nothing.
async fn a_refused_check_files_nothing(app: TestApp) {
    let work = tempfile::tempdir().unwrap();
    let bidders = work.path().join("bidders.txt");
    std::fs::write(&bidders, format!("{}\n", valid_code("441802", 74))).unwrap();
    let out = work.path().join("receipts");
    // An admin-signed token for a partner that was never registered.
    let token = app.partner_token("unregistered-platform", &[Domain::Bidding]);
    let output = run(
        vec![
            "check".into(),
            "--url".into(),
            app.address.clone(),
            "--reference".into(),
            "QY-ZB-2026-032".into(),
            "--bidders".into(),
            bidders.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        Some(token),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FORBIDDEN"), "{stderr}");
    assert!(receipts_in(&out).is_empty());
}

const PROPOSE: &str = "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id } }";
const DECIDE: &str = "mutation($i: DecideListingInput!) { decideListing(input: $i) { status } }";

/// `check --status-proofs`: each bidder's answer comes with its status proof, filed beside
/// its receipt and checked with the registry log's key: the listed bidder's (its listing
/// proposed and decided through the API, so that the registry log names it), the clear
/// one's and the unknown one's (their codes' absence from their buckets). `verify
/// --registry-vkey` checks them again later, offline; a proof that leaves out the
/// listing's entry does not prove the RESTRICTED answer; without the registry log's key
/// the proofs are not checked.
async fn status_proofs_are_filed_and_prove_the_answers(app: TestApp) {
    let listed = valid_code("441802", 81);
    let clear = valid_code("441802", 82);
    let unknown = valid_code("441802", 83);
    app.create_operator(&listed, "清远市失信证明有限公司").await;
    app.create_operator(&clear, "清远市守信证明有限公司").await;
    let admin = app.admin();
    let effective = chrono::Utc::now() - chrono::Duration::days(1);
    let date = api::domain::china_date(effective).to_string();
    let proposed = app
        .gql(
            Some(&admin),
            PROPOSE,
            json!({"i": {
                "uscc": listed, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
                "penaltyDocNo": "清市监罚〔2026〕81号", "penaltyDate": "2026-01-10",
                "violationCategory": "CONSUMER_HARM", "reason": "收取预付款后卷款跑路",
                "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": date,
            }}),
        )
        .await;
    let id = proposed.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decided = app
        .gql(
            Some(&admin),
            DECIDE,
            json!({"i": {"id": id, "expectedVersion": 1, "decisionDocNo": "清市监列〔2026〕81号",
                          "decisionDate": date, "effectiveAt": effective, "defenceWaived": true}}),
        )
        .await;
    assert_eq!(
        decided.data()["decideListing"]["status"],
        "LISTED",
        "{}",
        decided.body
    );
    app.state.logs.append_registry(&app.db).await.unwrap();

    let token = app.partner("tender-platform", &[Domain::Bidding]).await;
    let work = tempfile::tempdir().unwrap();
    let bidders = work.path().join("bidders.txt");
    std::fs::write(&bidders, format!("{listed}\n{clear}\n{unknown}\n")).unwrap();
    let out = work.path().join("receipts");
    let flags = ["--status-proofs"];
    let stdout = checked_tender(&app, token, "QY-ZB-2026-081", &bidders, &out, &flags).await;
    let row = |code: &str| row_of(&stdout, code);
    assert!(
        row(&listed).contains("PROVEN (RESTRICTED in the map"),
        "{stdout}"
    );
    assert!(row(&clear).contains("PROVEN (CLEAR in the map"), "{stdout}");
    assert!(
        row(&unknown).contains("PROVEN (CLEAR in the map"),
        "{stdout}"
    );

    // Each proof filed beside its receipt, and the registry log's key as served.
    let proofs: Vec<PathBuf> = receipts_in(&out)
        .iter()
        .map(|r| out.join(r).with_extension("status.json"))
        .collect();
    assert_eq!(proofs.len(), 3);
    assert!(proofs.iter().all(|p| p.is_file()), "{proofs:?}");
    keys_are_kept_as_served(&app, &out, &[("registry.vkey", "/logs/registry/vkey")]).await;

    // Later, offline, with the saved keys.
    let verify = |registry_key: bool| {
        let mut args = vec![
            "verify".to_string(),
            "--vkey".into(),
            out.join("answers.vkey").display().to_string(),
        ];
        if registry_key {
            args.push("--registry-vkey".into());
            args.push(out.join("registry.vkey").display().to_string());
        }
        args.push(out.display().to_string());
        async move {
            let output = run(args, None).await;
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        }
    };
    let (code, text) = verify(true).await;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("PROVEN (").count(), 3, "{text}");

    // The listed bidder's proof without its listing's entry: its code is still in its
    // bucket, so the proof no longer holds (and with the leaf gone too, the path would no
    // longer lead to the signed root).
    let listed_proof = proofs
        .iter()
        .find(|p| p.display().to_string().contains(listed.as_str()))
        .unwrap();
    let genuine = std::fs::read_to_string(listed_proof).unwrap();
    let mut proof: serde_json::Value = serde_json::from_str(&genuine).unwrap();
    assert_eq!(proof["entries"].as_array().unwrap().len(), 1, "{genuine}");
    proof["entries"] = json!([]);
    std::fs::write(listed_proof, proof.to_string()).unwrap();
    let (code, text) = verify(true).await;
    assert_eq!(code, Some(1), "{text}");
    let line = text.lines().find(|l| l.contains(listed.as_str())).unwrap();
    assert!(
        line.contains("INVALID: ")
            && line.contains("is in its bucket, but its entries are not given"),
        "{text}"
    );
    assert_eq!(text.matches("PROVEN (").count(), 2, "{text}");
    std::fs::write(listed_proof, &genuine).unwrap();

    // Without the registry log's key the receipts verify, the proofs are not checked.
    let (code, text) = verify(false).await;
    assert_eq!(code, Some(2), "{text}");
    assert_eq!(
        text.matches("NOT CHECKED: no --registry-vkey").count(),
        3,
        "{text}"
    );
}

on_both_backends!(
    tlog_receipts_are_checked_filed_and_verified_offline,
    a_refused_check_files_nothing,
    status_proofs_are_filed_and_prove_the_answers,
);
on_both_backends_with!(jws_receipts_are_checked_filed_and_verified_offline => jws_receipts);
