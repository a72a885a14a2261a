//! The example partner client, built by cargo and run as a partner would run it, against
//! a real registry on port 0 (SQLite and PostgreSQL): a tender with a listed bidder, a
//! clear one and an unknown one; the receipts are filed under names a clerk finds, every
//! one verifies offline, and a tampered one does not.

// Test code: a failed step should panic and fail the test that hit it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api::domain::measures::Domain;
use std::path::Path;
use std::process::{Command, Output};
use tests::{TestApp, on_both_backends, valid_code};

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
        .filter(|n| n.ends_with(".jws"))
        .collect();
    names.sort();
    names
}

async fn a_tender_is_checked_filed_and_verified_offline(app: TestApp) {
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
    let output = run(
        vec![
            "check".into(),
            "--url".into(),
            app.address.clone(),
            "--reference".into(),
            reference.into(),
            "--bidders".into(),
            bidders.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ],
        Some(token),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // The table, as a clerk sees it (shown with --nocapture).
    eprintln!("{stdout}");

    // The table: one row per bidder with its decision, each receipt genuine.
    let row = |code: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(code))
            .unwrap_or_else(|| panic!("no row for {code} in\n{stdout}"))
            .to_string()
    };
    assert!(row(&listed).contains("RESTRICTED"), "{stdout}");
    assert!(row(&clear).contains("CLEAR"), "{stdout}");
    assert!(row(&unknown).contains("UNKNOWN_OPERATOR"), "{stdout}");
    for code in [&listed, &clear, &unknown] {
        assert!(row(code).contains("VALID ("), "{stdout}");
        assert!(!row(code).contains("INVALID"), "{stdout}");
    }

    // Filed as <reference>_<uscc>_<receiptId>.jws, each receipt id the registry recorded.
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
            .and_then(|r| r.strip_suffix(".jws"))
            .unwrap();
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
    assert!(out.join("jwks.json").is_file());

    // Later, offline: the filed receipts verify with the saved keys alone.
    let verify = |paths: Vec<String>| {
        let mut args = vec![
            "verify".to_string(),
            "--jwks".into(),
            out.join("jwks.json").display().to_string(),
        ];
        args.extend(paths);
        run(args, None)
    };
    let genuine = verify(vec![out.display().to_string()]).await;
    let text = String::from_utf8_lossy(&genuine.stdout).into_owned();
    assert!(genuine.status.success(), "{text}");
    assert_eq!(text.matches("VALID (").count(), 3, "{text}");

    // A tampered receipt (its decision changed from RESTRICTED to CLEAR) does not.
    let listed_file = out.join(files.iter().find(|f| f.contains(listed.as_str())).unwrap());
    let receipt = std::fs::read_to_string(&listed_file).unwrap();
    let parts: Vec<&str> = receipt.trim().split('.').collect();
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert!(payload.contains("\"RESTRICTED\""), "{payload}");
    let forged = URL_SAFE_NO_PAD.encode(payload.replace("\"RESTRICTED\"", "\"CLEAR\""));
    std::fs::write(
        &listed_file,
        format!("{}.{forged}.{}\n", parts[0], parts[2]),
    )
    .unwrap();
    let tampered = verify(vec![out.display().to_string()]).await;
    let text = String::from_utf8_lossy(&tampered.stdout).into_owned();
    assert_eq!(tampered.status.code(), Some(1), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(listed.as_str()))
        .unwrap_or_else(|| panic!("no line for the tampered receipt in\n{text}"));
    assert!(
        line.contains("INVALID: the signature does not match"),
        "{text}"
    );
    assert_eq!(
        text.matches("VALID (").count(),
        2,
        "the others still verify: {text}"
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

on_both_backends!(
    a_tender_is_checked_filed_and_verified_offline,
    a_refused_check_files_nothing,
);
