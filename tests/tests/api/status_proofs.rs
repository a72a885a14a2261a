//! Status proofs (issue 17, the stretch): each registry checkpoint commits the status
//! map, and a check's `statusProof` proves its answer — a RESTRICTED, a CLEAR for a
//! code whose listing has no measure for the domain, a CLEAR for a code the log never
//! named — offline, from the registry log's verifier key alone, by the registry's own
//! verifier and by an independent one (tests/verifier/verify_status_proof.py). A proof
//! that hides a listing, or is shown for another answer, code or checkpoint, fails.

use super::logs::{
    ThreeAnswers, python_verifier_available, run_python, text, three_answers, verifier,
};
use api::domain::decision::Decision;
use api::service::receipts::{ReceiptPayload, verify_any};
use api::store::tlog_store::LogName;
use api::tlog::client::{ReceiptAnswer, VerifyLogArgs, check_status_proof, verify_log};
use api::tlog::status_map::StatusProof;
use chrono::{Duration, Utc};
use serde_json::json;
use std::collections::HashMap;
use tests::{TestApp, on_both_backends};

/// A PROCUREMENT check of `code`: the receipt's payload and the status proof.
async fn checked(app: &TestApp, token: &str, code: &str) -> (ReceiptPayload, String, String) {
    let resp = app
        .gql(
            Some(token),
            "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { receipt statusProof } }",
            json!({"u": code}),
        )
        .await;
    let receipt = resp.data()["check"]["receipt"]
        .as_str()
        .unwrap()
        .to_string();
    let proof = resp.data()["check"]["statusProof"]
        .as_str()
        .unwrap_or_else(|| panic!("no status proof for {code}: {:?}", resp.data()))
        .to_string();
    let answers = verifier(app, "answers").await;
    let payload = verify_any(&receipt, &HashMap::new(), Some(&answers))
        .unwrap()
        .payload;
    (payload, receipt, proof)
}

fn answer_of(p: &ReceiptPayload) -> ReceiptAnswer {
    ReceiptAnswer::from(p)
}

/// `verify-log` on the registry log holds, and says its checkpoint's map root is the map
/// of its entries.
async fn assert_map_follows_from_the_log(app: &TestApp) {
    let report = verify_log(&VerifyLogArgs {
        url: format!("{}/logs/registry", app.address),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(report.ok(), "{}", report.text());
    assert!(
        report.text().contains("is the map of its"),
        "{}",
        report.text()
    );
}

fn check(
    proof: &str,
    vkey: &str,
    p: &ReceiptPayload,
    answer: &ReceiptAnswer,
) -> Result<String, String> {
    let head = p.registry_log.as_ref().unwrap();
    check_status_proof(proof, vkey, head.size, &head.root, answer).map(|c| {
        assert!(c.recomputed, "{}", c.report);
        c.report
    })
}

async fn a_check_s_status_proof_proves_its_answer_offline(app: TestApp) {
    let start = Utc::now() - Duration::days(2);
    let ThreeAnswers {
        token,
        listed_code,
        listed_id,
        supervised_code,
        unknown_code,
    } = three_answers(&app, 151, start).await;
    let (_, vkey, _) = text(&app, "/logs/registry/vkey").await;

    let (listed, listed_receipt, listed_proof) = checked(&app, &token, &listed_code).await;
    assert_ne!(listed.decision, Decision::Clear);
    assert_eq!(
        listed.hit_listing_ids,
        vec![listed_id.parse::<i64>().unwrap()]
    );
    let (supervised, supervised_receipt, supervised_proof) =
        checked(&app, &token, &supervised_code).await;
    assert_eq!(supervised.decision, Decision::Clear);
    let (unknown, unknown_receipt, unknown_proof) = checked(&app, &token, &unknown_code).await;
    assert_eq!(unknown.decision, Decision::Clear);

    // Each answer follows from its proof: two listings' entries, and an absence.
    for (payload, proof, entries) in [
        (&listed, &listed_proof, 1),
        (&supervised, &supervised_proof, 1),
        (&unknown, &unknown_proof, 0),
    ] {
        let said = check(proof, &vkey, payload, &answer_of(payload))
            .unwrap_or_else(|e| panic!("{}: {e}", payload.uscc));
        assert!(said.contains("the receipt's answer"), "{said}");
        assert_eq!(StatusProof::parse(proof).unwrap().entries.len(), entries);
    }

    // Refused: another answer, a hidden listing, an altered path, another code's proof,
    // another checkpoint's proof, another key.
    let forged = ReceiptAnswer {
        decision: Decision::Clear,
        hit_listing_ids: vec![],
        ..answer_of(&listed)
    };
    let e = check(&listed_proof, &vkey, &listed, &forged).unwrap_err();
    assert!(e.contains("the receipt says"), "{e}");
    let mut hidden = StatusProof::parse(&listed_proof).unwrap();
    hidden.entries.clear();
    assert!(check(&hidden.to_text(), &vkey, &listed, &forged).is_err());
    let mut path = StatusProof::parse(&unknown_proof).unwrap();
    path.siblings[3].0[0] ^= 1;
    assert!(check(&path.to_text(), &vkey, &unknown, &answer_of(&unknown)).is_err());
    let e = check(&listed_proof, &vkey, &unknown, &answer_of(&unknown)).unwrap_err();
    assert!(e.contains("is for"), "{e}");
    let (_, answers_vkey, _) = text(&app, "/logs/answers/vkey").await;
    assert!(
        check(
            &unknown_proof,
            &answers_vkey,
            &unknown,
            &answer_of(&unknown)
        )
        .is_err()
    );

    // The same over GraphQL, for a caller with no token and no key of its own.
    const VERIFY: &str = "query($r: String!, $s: String) { verifyReceipt(receipt: $r, statusProof: $s) { valid statusProven statusReason } }";
    for (proof, proven) in [(listed_proof.clone(), true), (hidden.to_text(), false)] {
        let resp = app
            .gql(None, VERIFY, json!({"r": listed_receipt, "s": proof}))
            .await;
        let v = &resp.data()["verifyReceipt"];
        assert_eq!(v["valid"], json!(true));
        assert_eq!(v["statusProven"], json!(proven), "{v}");
        assert!(v["statusReason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let resp = app.gql(None, VERIFY, json!({"r": listed_receipt})).await;
    assert_eq!(resp.data()["verifyReceipt"]["statusProven"], json!(null));
    // An answer for an instant before the code's last logged change: the proof holds
    // but says nothing about that instant, so the answer is not proven (it was `true`).
    let early = app
        .gql(
            Some(&token),
            "query($u: String!, $t: DateTime!) { check(uscc: $u, domain: PROCUREMENT, asOf: $t) { receipt statusProof } }",
            json!({"u": listed_code, "t": (start - Duration::days(1)).to_rfc3339()}),
        )
        .await;
    let (early_receipt, early_proof) = (
        early.data()["check"]["receipt"]
            .as_str()
            .unwrap()
            .to_string(),
        early.data()["check"]["statusProof"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    let resp = app
        .gql(None, VERIFY, json!({"r": early_receipt, "s": early_proof}))
        .await;
    let v = &resp.data()["verifyReceipt"];
    assert_eq!(v["valid"], json!(true), "{v}");
    assert_eq!(v["statusProven"], json!(null), "{v}");
    assert!(
        v["statusReason"]
            .as_str()
            .is_some_and(|r| r.contains("answer not recomputed")),
        "{v}"
    );

    // The list changes (another operator is listed): the old proof does not hold for
    // the new receipt (another checkpoint), the new one does.
    crate::listings::listed(&app, "441802", 154, start).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    let (later, _, later_proof) = checked(&app, &token, &unknown_code).await;
    assert!(
        later.registry_log.as_ref().unwrap().size > unknown.registry_log.as_ref().unwrap().size
    );
    let e = check(&unknown_proof, &vkey, &later, &answer_of(&later)).unwrap_err();
    assert!(e.contains("checkpoint of size"), "{e}");
    check(&later_proof, &vkey, &later, &answer_of(&later)).unwrap();

    // verify-log recomputes the map from the public entries.
    assert_map_follows_from_the_log(&app).await;

    // The same proofs, by an implementation that is not the registry's own.
    if !python_verifier_available("the independent status-proof verifier") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path
    };
    let registry_vkey = write("registry.vkey", &vkey);
    let answers = write("answers.vkey", &answers_vkey);
    let python = |proof: std::path::PathBuf, answer: Vec<std::ffi::OsString>| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--registry-vkey".into(),
            registry_vkey.clone().into(),
            "--proof".into(),
            proof.into(),
        ];
        args.extend(answer);
        run_python("verify_status_proof.py", args)
    };
    for (i, (receipt, proof, decision)) in [
        (&listed_receipt, &listed_proof, listed.decision),
        (&supervised_receipt, &supervised_proof, Decision::Clear),
        (&unknown_receipt, &unknown_proof, Decision::Clear),
    ]
    .into_iter()
    .enumerate()
    {
        let (code, out) = python(
            write(&format!("proof-{i}.json"), proof),
            vec![
                "--receipt".into(),
                write(&format!("receipt-{i}.txt"), receipt).into(),
                "--answers-vkey".into(),
                answers.clone().into(),
            ],
        )
        .await;
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("PROVEN"), "{out}");
        assert!(out.contains(api::domain::enum_name(decision)), "{out}");
    }
    let mut altered = serde_json::to_value(&listed).unwrap();
    altered["decision"] = json!("CLEAR");
    altered["hitListingIds"] = json!([]);
    let (code, out) = python(
        write("listed.json", &listed_proof),
        vec![
            "--answer-json".into(),
            write("altered.json", &altered.to_string()).into(),
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let (code, out) = python(
        write("hidden.json", &hidden.to_text()),
        vec![
            "--answer-json".into(),
            write("forged.json", &{
                let mut a = serde_json::to_value(&listed).unwrap();
                a["decision"] = json!("CLEAR");
                a["hitListingIds"] = json!([]);
                a.to_string()
            })
            .into(),
        ],
    )
    .await;
    assert_eq!(code, 1, "a listed code shown absent: {out}");
}

/// A registry log written before the map existed (its head checkpoint carries none)
/// gets the map of all its entries at its next append; checks then carry proofs.
async fn a_log_without_a_map_gets_one_at_its_next_append(app: TestApp) {
    let start = Utc::now() - Duration::days(2);
    let (first, _, _) = crate::listings::listed(&app, "441802", 161, start).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    // As an older registry left it: no map rows, a head checkpoint without the line.
    app.sql("DELETE FROM status_map_leaves").await;
    app.sql("DELETE FROM status_map_nodes").await;
    let head = api::store::tlog_store::head(&app.db, LogName::Registry)
        .await
        .unwrap()
        .unwrap();
    let bare = app
        .state
        .logs
        .key(LogName::Registry)
        .sign_checkpoint(head.size, &head.root)
        .unwrap();
    app.sql(&format!(
        "UPDATE tlog_heads SET checkpoint = '{}' WHERE log = 'registry'",
        bare.replace('\'', "''")
    ))
    .await;
    crate::listings::listed(&app, "441802", 162, start).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    assert_map_follows_from_the_log(&app).await;
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let (payload, _, proof) = checked(&app, &token, &first).await;
    let (_, vkey, _) = text(&app, "/logs/registry/vkey").await;
    check(&proof, &vkey, &payload, &answer_of(&payload)).unwrap();
}

/// Two instances on one database append in turn: each one's cache of the map's nodes
/// is for the size it last appended, so the other's appends in between must not leave
/// it building on stale nodes.
async fn appends_by_two_instances_keep_one_map(app: TestApp) {
    let start = Utc::now() - Duration::days(2);
    let peer = app.spawn_peer(|_| {}).await;
    for (i, serial) in (171..177).enumerate() {
        crate::listings::listed(&app, "441802", serial, start).await;
        let appender = if i % 2 == 0 { &app } else { &peer };
        appender
            .state
            .logs
            .append_registry(&appender.db)
            .await
            .unwrap();
    }
    assert_map_follows_from_the_log(&app).await;
}

/// The siblings of `code`'s bucket in the map of `size`, as the stored levels give them
/// and as a read of every level (the build before the stored levels) gives them.
async fn siblings_both_ways(
    app: &TestApp,
    code: &str,
    size: u64,
) -> (Vec<api::tlog::Hash>, Vec<api::tlog::Hash>) {
    use api::store::status_map_store::nodes_at;
    use api::tlog::status_map::{
        bucket_of, key, positions_to_read, proof_positions, proof_siblings,
    };
    let bucket = bucket_of(&key(code));
    let stored = nodes_at(&app.db, &positions_to_read(&[bucket].into()), size)
        .await
        .unwrap();
    let positions = proof_positions(bucket);
    let read = nodes_at(&app.db, &positions.iter().copied().collect(), size)
        .await
        .unwrap();
    (
        proof_siblings(bucket, &stored),
        positions.iter().map(|p| read[p]).collect(),
    )
}

/// Only every fourth level of the map is stored; undoing that migration writes the
/// levels between back, at every size, with the values the whole tree has there (what
/// the build before reads), and redoing it removes them; proofs hold throughout.
async fn the_levels_between_come_back_when_their_migration_is_undone(app: TestApp) {
    use migration::{Migrator, MigratorTrait};
    let between = "level NOT IN (0, 4, 8, 12, 16)";
    let start = Utc::now() - Duration::days(2);
    let mut codes = vec![tests::valid_code("441802", 9_999)];
    let mut sizes = Vec::new();
    for serial in 181..189 {
        let (code, _, _) = crate::listings::listed(&app, "441802", serial, start).await;
        codes.push(code);
        app.state.logs.append_registry(&app.db).await.unwrap();
        let head = api::store::tlog_store::head(&app.db, LogName::Registry)
            .await
            .unwrap()
            .unwrap();
        sizes.push(head.size);
    }
    assert_eq!(app.count_where("status_map_nodes", between).await, 0);
    let mut stored_view = Vec::new();
    for code in &codes {
        for &size in &sizes {
            stored_view.push(siblings_both_ways(&app, code, size).await.0);
        }
    }
    // Down to the schema before this migration (it and every later one undone), on one
    // connection (`api::db::migrate_up` says why SQLite needs that).
    let migrations = Migrator::migrations();
    let this = migrations
        .iter()
        .position(|m| m.name() == "m20261203_000001_status_map_stored_levels")
        .expect("the status map's migration");
    let steps = (migrations.len() - this) as u32;
    {
        use sea_orm::TransactionTrait;
        let txn = app.db.begin().await.unwrap();
        Migrator::down(&txn, Some(steps)).await.unwrap();
        txn.commit().await.unwrap();
    }
    assert!(app.count_where("status_map_nodes", between).await > 0);
    let mut i = 0;
    for code in &codes {
        for &size in &sizes {
            let (stored, every_level) = siblings_both_ways(&app, code, size).await;
            assert_eq!(stored, stored_view[i], "{code} at {size}");
            assert_eq!(
                every_level, stored_view[i],
                "{code} at {size}, every level read"
            );
            i += 1;
        }
    }
    api::db::migrate_up(&app.db).await.unwrap();
    assert_eq!(app.count_where("status_map_nodes", between).await, 0);
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let (_, vkey, _) = text(&app, "/logs/registry/vkey").await;
    for code in [&codes[0], &codes[3]] {
        let (payload, _, proof) = checked(&app, &token, code).await;
        check(&proof, &vkey, &payload, &answer_of(&payload)).unwrap();
    }
    assert_map_follows_from_the_log(&app).await;
}

/// A listing with a 3,000-character reason (within `reason`'s 5,000) gives a status
/// proof of more than 10,000 characters, the limit of typed input: `verifyReceipt`
/// takes it and proves the answer (it was refused `BAD_USER_INPUT` `TOO_LONG`). A
/// receipt over its own cap is still refused, naming it.
async fn verify_receipt_takes_a_status_proof_longer_than_typed_input(app: TestApp) {
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let code = tests::valid_code("441802", 171);
    app.create_operator(&code, "清远长理由测试有限公司").await;
    let start = Utc::now() - Duration::days(2);
    let date = api::domain::china_date(start).to_string();
    let reason = "收取预付款后卷款跑路".repeat(300);
    assert_eq!(reason.chars().count(), 3_000);
    let proposed = app
        .gql(
            Some(&app.admin()),
            "mutation($i: ProposeListingInput!) { proposeListing(input: $i) { id } }",
            json!({"i": {
                "uscc": code, "list": "SAMR_SERIOUS_DISHONEST", "authority": "清远市市场监督管理局",
                "penaltyDocNo": "清市监罚〔2023〕171号", "penaltyDate": "2023-01-10",
                "violationCategory": "CONSUMER_HARM", "reason": reason,
                "legalBasis": "《市场监督管理严重违法失信名单管理办法》第八条", "noticeDate": date,
            }}),
        )
        .await;
    let id = proposed.data()["proposeListing"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    crate::listings::decide(&app, &app.admin(), &id, 1, &date, Some(start))
        .await
        .data();
    app.state.logs.append_registry(&app.db).await.unwrap();

    let (payload, receipt, proof) = checked(&app, &token, &code).await;
    assert_ne!(payload.decision, Decision::Clear);
    let max = app.state.settings.limits.max_string_chars;
    assert!(
        proof.chars().count() > max,
        "{} characters",
        proof.chars().count()
    );
    const VERIFY: &str = "query($r: String!, $s: String) { verifyReceipt(receipt: $r, statusProof: $s) { valid statusProven statusReason } }";
    let resp = app
        .gql(None, VERIFY, json!({"r": receipt, "s": proof}))
        .await;
    let v = &resp.data()["verifyReceipt"];
    assert_eq!(v["valid"], json!(true), "{v}");
    assert_eq!(v["statusProven"], json!(true), "{v}");

    let too_long = "x".repeat(api::tlog::proof::MAX_PROOF_TEXT + 1);
    let resp = app
        .gql(None, VERIFY, json!({"r": too_long, "s": proof}))
        .await;
    resp.assert_error("BAD_USER_INPUT");
    assert!(
        resp.error_message().contains("verifyReceipt(receipt)"),
        "{}",
        resp.error_message()
    );
}

on_both_backends!(
    verify_receipt_takes_a_status_proof_longer_than_typed_input,
    the_levels_between_come_back_when_their_migration_is_undone,
    a_check_s_status_proof_proves_its_answer_offline,
    a_log_without_a_map_gets_one_at_its_next_append,
    appends_by_two_instances_keep_one_map,
);
