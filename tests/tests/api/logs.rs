//! Transparency logs (issue 17): receipts are C2SP tlog proofs that verify offline with
//! the answer log's public key alone; a group of answers shares one checkpoint; the
//! logs serve checkpoints, verifier keys and tiles as C2SP tlog-tiles lays them out; the
//! registry log follows the change feed; consistency proofs hold between checkpoints
//! and fail against a forged history.

use super::receipts::restricted_receipt;
use api::service::receipts::{ReceiptError, verify_any};
use api::store::tlog_store::{self, LogName};
use api::tlog::note::LogVerifier;
use api::tlog::{self as tl, TilePath};
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use tests::{TestApp, on_both_backends, valid_code};

pub(crate) async fn text(app: &TestApp, path: &str) -> (u16, String, Option<String>) {
    let resp = app.get(path).await;
    let status = resp.status().as_u16();
    let cache = resp
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, resp.text().await.unwrap(), cache)
}

pub(crate) async fn verifier(app: &TestApp, log: &str) -> LogVerifier {
    let (status, vkey, _) = text(app, &format!("/logs/{log}/vkey")).await;
    assert_eq!(status, 200);
    LogVerifier::parse(&vkey).unwrap()
}

async fn a_receipt_verifies_offline_from_the_public_key_alone(app: TestApp) {
    let (result, receipt) = restricted_receipt(&app).await;
    assert!(
        receipt.starts_with("c2sp.org/tlog-proof@v1\nextra "),
        "{receipt}"
    );
    let answers = verifier(&app, "answers").await;
    // Offline: no JWS keys, only the answer log's verifier key.
    let verified = verify_any(&receipt, &HashMap::new(), Some(&answers)).unwrap();
    assert_eq!(
        verified.payload.receipt_id,
        result["receiptId"].as_str().unwrap()
    );
    assert_eq!(
        verified.payload.decision,
        api::domain::decision::Decision::Restricted
    );
    assert_eq!(verified.payload.sub, "gov-procurement");
    // The payload names the registry log's head the answer was computed against.
    let registry_log = verified.payload.registry_log.clone().unwrap();
    tl::parse_hash_b64(&registry_log.root).unwrap();
    // Without the log key nothing can be said; with another log's key it is refused.
    assert_eq!(
        verify_any(&receipt, &HashMap::new(), None),
        Err(ReceiptError::NoLogKey)
    );
    let registry = verifier(&app, "registry").await;
    assert!(verify_any(&receipt, &HashMap::new(), Some(&registry)).is_err());

    // What a receipt weighs and what verifying one offline costs (figures for the
    // benchmark notes; this is an unoptimised test build).
    let started = std::time::Instant::now();
    for _ in 0..100 {
        verify_any(&receipt, &HashMap::new(), Some(&answers)).unwrap();
    }
    eprintln!(
        "receipt: {} bytes, {} proof hashes; offline verification {:?} each (test build)",
        receipt.len(),
        tl::proof::TlogProof::parse(&receipt).unwrap().proof.len(),
        started.elapsed() / 100
    );

    // Changing any byte of payload, proof or checkpoint fails it.
    for i in 0..receipt.len() {
        let mut bytes = receipt.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let Ok(changed) = String::from_utf8(bytes) else {
            continue;
        };
        assert!(
            verify_any(&changed, &HashMap::new(), Some(&answers)).is_err(),
            "changing byte {i} ({:?}) still verified",
            receipt.as_bytes()[i] as char
        );
    }

    // Online: verifyReceipt says the same.
    let resp = app
        .gql(
            None,
            "query($r: String!) { verifyReceipt(receipt: $r) { valid reason kid decision recorded } }",
            json!({ "r": receipt }),
        )
        .await;
    let v = &resp.data()["verifyReceipt"];
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["decision"], "RESTRICTED");
    assert_eq!(v["recorded"], true);
    assert_eq!(v["kid"], answers.key_label());
}

const BATCH: &str = "query($u: [String!]!, $d: Domain!) { checkBatch(usccs: $u, domain: $d) { receiptId receipt decision } }";

async fn two_checks_of_one_group_share_one_checkpoint_signature(app: TestApp) {
    let codes = [valid_code("441802", 61), valid_code("441802", 62)];
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let resp = app
        .gql(Some(&token), BATCH, json!({"u": codes, "d": "PROCUREMENT"}))
        .await;
    let results = resp.data()["checkBatch"].as_array().unwrap().clone();
    let proofs: Vec<tl::proof::TlogProof> = results
        .iter()
        .map(|r| tl::proof::TlogProof::parse(r["receipt"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(proofs[0].checkpoint, proofs[1].checkpoint);
    assert_eq!(proofs[1].index, proofs[0].index + 1);
    let answers = verifier(&app, "answers").await;
    for p in &proofs {
        p.verify(p.extra.as_deref().unwrap(), &answers).unwrap();
    }
    // One checkpoint was signed for the group: the log has one row for its size.
    let size = answers
        .verify_checkpoint(&proofs[0].checkpoint)
        .unwrap()
        .size;
    assert_eq!(size, proofs[1].index + 1);
    assert_eq!(app.count("tlog_checkpoints").await, 1);
}

async fn checkpoints_vkeys_and_tiles_are_served_as_tlog_tiles(app: TestApp) {
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let codes: Vec<String> = (0..5).map(|i| valid_code("441802", 70 + i)).collect();
    app.gql(Some(&token), BATCH, json!({"u": codes, "d": "PROCUREMENT"}))
        .await
        .data();
    let answers = verifier(&app, "answers").await;
    let (status, note, cache) = text(&app, "/logs/answers/checkpoint").await;
    assert_eq!(status, 200);
    assert_eq!(cache.as_deref(), Some("public, max-age=2"));
    let checkpoint = answers.verify_checkpoint(&note).unwrap();
    assert_eq!(checkpoint.size, 5);
    assert!(checkpoint.origin.ends_with("/answers"));

    // The partial level-0 tile: the five leaf hashes, whose root is the checkpoint's.
    let resp = app.get("/logs/answers/tile/0/000.p/5").await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let leaves = tl::parse_tile(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(leaves.len(), 5);
    let mut memo = tl::HashMemo::default();
    let (_, root) = tl::stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
    assert_eq!(root, checkpoint.root);

    // Tiles the tree does not have, bad paths, the private entries: 404.
    for path in [
        "/logs/answers/tile/0/000.p/6",
        "/logs/answers/tile/0/000",
        "/logs/answers/tile/1/000.p/1",
        "/logs/answers/tile/0/0",
        "/logs/answers/tile/entries/000.p/5",
        "/logs/nothing/checkpoint",
    ] {
        assert_eq!(app.get(path).await.status().as_u16(), 404, "{path}");
    }
}

async fn the_registry_log_follows_the_feed_and_replays_to_the_list(app: TestApp) {
    let start = Utc::now() - Duration::days(2);
    let (_, first, _) = crate::listings::listed(&app, "441802", 81, start).await;
    let (_, second, _) = crate::listings::listed(&app, "441802", 82, start).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    let registry = verifier(&app, "registry").await;
    let (_, note, _) = text(&app, "/logs/registry/checkpoint").await;
    let checkpoint = registry.verify_checkpoint(&note).unwrap();

    // The feed's events, in order: the same as `changes`.
    let changes = app
        .gql(
            Some(&app.admin()),
            "{ changes(first: 100) { edges { node { kind listingId } } } }",
            json!({}),
        )
        .await;
    let feed: Vec<(String, String)> = changes.data()["changes"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["kind"].as_str().unwrap().to_string(),
                e["node"]["listingId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(checkpoint.size as usize, feed.len());
    assert!(feed.len() >= 2);

    // The public entry bundle, checked against the level-0 tile and the checkpoint.
    let width = checkpoint.size;
    let bundle = app
        .get(&format!("/logs/registry/tile/entries/000.p/{width}"))
        .await;
    assert_eq!(bundle.status().as_u16(), 200);
    let entries = tl::parse_entry_bundle(&bundle.bytes().await.unwrap()).unwrap();
    let tile = app
        .get(&format!("/logs/registry/tile/0/000.p/{width}"))
        .await;
    let leaves = tl::parse_tile(&tile.bytes().await.unwrap()).unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| tl::record_hash(e))
            .collect::<Vec<_>>(),
        leaves
    );
    let mut memo = tl::HashMemo::default();
    let (_, root) = tl::stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
    assert_eq!(root, checkpoint.root);

    // Replayed: the latest event of each listing says whether it is on the list.
    let mut replayed: HashMap<String, bool> = HashMap::new();
    for (entry, (kind, listing)) in entries.iter().zip(&feed) {
        let e: Value = serde_json::from_slice(entry).unwrap();
        assert_eq!(&e["listing"]["id"].as_str().unwrap(), listing);
        assert_eq!(
            e["kind"].as_str().unwrap().trim_start_matches("listing."),
            kind.to_lowercase()
        );
        replayed.insert(listing.clone(), e["inForce"].as_bool().unwrap());
    }
    let public = app
        .gql(
            None,
            "{ publicListings(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let mut on_list: Vec<String> = public.data()["publicListings"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect();
    on_list.sort();
    let mut in_force: Vec<String> = replayed
        .into_iter()
        .filter(|(_, f)| *f)
        .map(|(id, _)| id)
        .collect();
    in_force.sort();
    assert_eq!(in_force, on_list);
    assert!(on_list.contains(&first) && on_list.contains(&second));

    // Appending again logs nothing new.
    assert_eq!(app.state.logs.append_registry(&app.db).await.unwrap(), 0);
}

/// The newest listing revision the registry holds.
async fn newest_revision(app: &TestApp) -> i64 {
    use sea_orm::ConnectionTrait;
    let row = app
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.db.get_database_backend(),
            "SELECT COALESCE(MAX(id), 0) AS id FROM listing_revisions",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "id").unwrap()
}

/// The registry log's head (size and root) a check's receipt names.
async fn named_head(app: &TestApp, token: &str, code: &str) -> (u64, tl::Hash) {
    named_head_known_at(app, token, code, None).await
}

/// [`named_head`] of a reconstruction (`knownAt`; an admin's or auditor's token).
async fn named_head_known_at(
    app: &TestApp,
    token: &str,
    code: &str,
    known_at: Option<chrono::DateTime<Utc>>,
) -> (u64, tl::Hash) {
    let resp = app
        .gql(
            Some(token),
            "query($u: String!, $d: Domain!, $k: DateTime) { check(uscc: $u, domain: $d, knownAt: $k) { receipt } }",
            json!({"u": code, "d": "PROCUREMENT", "k": known_at}),
        )
        .await;
    let receipt = resp.data()["check"]["receipt"]
        .as_str()
        .unwrap()
        .to_string();
    let answers = verifier(app, "answers").await;
    let payload = verify_any(&receipt, &HashMap::new(), Some(&answers))
        .unwrap()
        .payload;
    let named = payload.registry_log.unwrap();
    (named.size, tl::parse_hash_b64(&named.root).unwrap())
}

/// A receipt names the registry log's tree head of exactly the list its answer was read
/// from: right after a change (logged by the check itself if the appender has not yet),
/// after a revision that is no change event (a proposal), and for a code the registry
/// does not know; and the head of an earlier state stays what it was once the log has
/// grown past it. A reconstruction (`knownAt`) names the head of the list as known then.
async fn a_receipt_names_the_registry_head_of_the_list_it_was_answered_from(app: TestApp) {
    use api::service::logs::TreeHead;
    let logs = &app.state.logs;
    let before_anything = app.instant_between();
    let start = Utc::now() - Duration::days(2);
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let (first_code, _, _) = crate::listings::listed(&app, "441802", 91, start).await;
    // Asked at once: whether or not the appender has logged the decision yet.
    let named = named_head(&app, &token, &first_code).await;
    let at_first = newest_revision(&app).await;
    logs.append_registry(&app.db).await.unwrap();
    let registry = verifier(&app, "registry").await;
    let (_, note, _) = text(&app, "/logs/registry/checkpoint").await;
    let first = registry.verify_checkpoint(&note).unwrap();
    assert_eq!(named, (first.size, first.root));
    let first = TreeHead {
        size: first.size,
        root: first.root,
    };
    assert!(first.size >= 1);

    // A proposal is a revision but no change event: the list, and its head, are the same.
    let pending = valid_code("441802", 92);
    app.create_operator(&pending, "清远待定有限公司").await;
    let date = api::domain::china_date(start).to_string();
    crate::listings::propose(&app, &app.admin(), &pending, &date).await;
    let after_proposal = newest_revision(&app).await;
    assert!(after_proposal > at_first);
    assert_eq!(
        named_head(&app, &token, &pending).await,
        (first.size, first.root)
    );
    assert_eq!(
        logs.registry_head_for(&app.db, after_proposal)
            .await
            .unwrap(),
        first
    );
    let known_first = app.instant_between();

    // A second decision: its receipts name the larger head, which the log then signs.
    let (second_code, _, _) = crate::listings::listed(&app, "441802", 93, start).await;
    let at_second = newest_revision(&app).await;
    let second = logs.registry_head_for(&app.db, at_second).await.unwrap();
    assert!(second.size > first.size);
    let second_pair = (second.size, second.root);
    assert_eq!(named_head(&app, &token, &second_code).await, second_pair);
    // A code nobody registered: the same head.
    let unknown = valid_code("441802", 94);
    assert_eq!(named_head(&app, &token, &unknown).await, second_pair);
    logs.append_registry(&app.db).await.unwrap();
    let (_, note, _) = text(&app, "/logs/registry/checkpoint").await;
    let signed = registry.verify_checkpoint(&note).unwrap();
    assert_eq!((signed.size, signed.root), (second.size, second.root));

    // The earlier states, asked about once the log has grown past them.
    for revision in [at_first, after_proposal] {
        assert_eq!(
            logs.registry_head_for(&app.db, revision).await.unwrap(),
            first
        );
    }
    // Reconstructions name the head of the list as known at their instant: before the
    // second decision the first head, before anything the empty log, now the second.
    let auditor = app.auditor();
    let empty = logs.registry_head_for(&app.db, 0).await.unwrap();
    assert_eq!(empty.size, 0);
    for (k, expected) in [
        (known_first, (first.size, first.root)),
        (before_anything, (empty.size, empty.root)),
        (app.state.clock.now(), second_pair),
    ] {
        assert_eq!(
            named_head_known_at(&app, &auditor, &second_code, Some(k)).await,
            expected,
            "known at {k}"
        );
    }

    // `verify-log --at-size` rebuilds the list a receipt's head names from the public
    // log alone: at the first head only the first decision is on it, at the whole log
    // both; a size beyond the log, or an instant before the entries replayed, is refused.
    use api::tlog::client::{VerifyLogArgs, verify_log};
    let dir = tempfile::tempdir().unwrap();
    let replay = |at_size: Option<u64>, as_of: Option<chrono::DateTime<Utc>>| VerifyLogArgs {
        url: format!("{}/logs/registry", app.address),
        at_size,
        as_of,
        list_out: Some(dir.path().join("list.jsonl")),
        ..Default::default()
    };
    let codes_in = |report: &api::tlog::client::Report| -> Vec<String> {
        let written = std::fs::read_to_string(dir.path().join("list.jsonl")).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        assert_eq!(lines.len(), report.replayed.len());
        let mut codes: Vec<String> = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                assert!(
                    v["measureCodes"].as_array().is_some_and(|m| !m.is_empty()),
                    "{v}"
                );
                // Each measure with the domain and effect that decide a check.
                let measures = v["measures"].as_array().unwrap();
                assert_eq!(measures.len(), v["measureCodes"].as_array().unwrap().len());
                for (m, code) in measures.iter().zip(v["measureCodes"].as_array().unwrap()) {
                    assert_eq!(&m["code"], code, "{v}");
                    assert!(m["domain"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
                    assert!(m["effect"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
                }
                v["uscc"].as_str().unwrap().to_string()
            })
            .collect();
        codes.sort();
        codes
    };
    let at_first = verify_log(&replay(Some(first.size), None)).await.unwrap();
    assert!(at_first.ok(), "{}", at_first.text());
    assert!(
        at_first.text().contains(&tl::hash_b64(&first.root)),
        "the first head's root is printed: {}",
        at_first.text()
    );
    assert_eq!(codes_in(&at_first), vec![first_code.clone()]);
    let whole = verify_log(&replay(None, None)).await.unwrap();
    assert!(whole.ok(), "{}", whole.text());
    assert!(
        whole.text().contains("gives the public list"),
        "{}",
        whole.text()
    );
    let mut both = vec![first_code.clone(), second_code.clone()];
    both.sort();
    assert_eq!(codes_in(&whole), both);
    let beyond = verify_log(&replay(Some(second.size + 1), None))
        .await
        .unwrap();
    assert!(!beyond.ok(), "{}", beyond.text());
    let too_early = verify_log(&replay(Some(first.size), Some(before_anything)))
        .await
        .unwrap();
    assert!(!too_early.ok(), "{}", too_early.text());

    // What `verify-receipt --registry-url` checks, from public data only: the head a
    // receipt names is the public log's first entries under its checkpoint; a forged
    // root for them, or a size the log never had, is not.
    use api::tlog::client::check_registry_head;
    let url = format!("{}/logs/registry", app.address);
    let b64 = tl::hash_b64;
    let held = check_registry_head(&url, None, first.size, &b64(&first.root), None)
        .await
        .unwrap();
    assert!(held.ok(), "{}", held.text());
    let forged = check_registry_head(&url, None, first.size, &b64(&second.root), None)
        .await
        .unwrap();
    assert!(!forged.ok(), "{}", forged.text());
    let beyond = check_registry_head(&url, None, second.size + 1, &b64(&second.root), None)
        .await
        .unwrap();
    assert!(!beyond.ok(), "{}", beyond.text());
}

async fn consistency_proofs_hold_and_a_forged_history_fails(app: TestApp) {
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let answers = verifier(&app, "answers").await;
    let mut checkpoints = Vec::new();
    for round in 0..3u32 {
        let codes: Vec<String> = (0..3)
            .map(|i| valid_code("441802", 90 + round * 3 + i))
            .collect();
        app.gql(Some(&token), BATCH, json!({"u": codes, "d": "PROCUREMENT"}))
            .await
            .data();
        let (_, note, _) = text(&app, "/logs/answers/checkpoint").await;
        checkpoints.push(answers.verify_checkpoint(&note).unwrap());
    }
    let (old, new) = (&checkpoints[0], &checkpoints[2]);
    assert_eq!((old.size, new.size), (3, 9));
    // The hashes a consistency proof needs, from the log's public level-0 tile.
    let tile = TilePath {
        level: Some(0),
        index: 0,
        width: new.size,
    };
    let db_tile = tlog_store::read_tile(&app.db, LogName::Answers, &tile, new.size)
        .await
        .unwrap()
        .unwrap();
    let served = app
        .get("/logs/answers/tile/0/000.p/9")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(served.to_vec(), db_tile);
    let leaves = tl::parse_tile(&served).unwrap();
    let mut memo = tl::HashMemo::default();
    tl::stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
    let proof = tl::prove_consistency(new.size, old.size, &memo).unwrap();
    tl::verify_consistency(&proof, new.size, new.root, old.size, old.root).unwrap();
    // A forged history: the old checkpoint of a log whose first leaves were different.
    let mut forged_leaves = leaves.clone();
    forged_leaves[1] = tl::record_hash(b"a CLEAR that was never given");
    let mut forged = tl::HashMemo::default();
    let (_, _) = tl::stored_hashes_for_leaves(0, &forged_leaves[..3], &mut forged).unwrap();
    let forged_root = tl::tree_hash(3, &forged).unwrap();
    assert!(tl::verify_consistency(&proof, new.size, new.root, old.size, forged_root).is_err());
    // Every receipt issued so far still verifies against the newest checkpoint's tree.
    for index in 0..new.size {
        let p = tl::prove_inclusion(new.size, index, &memo).unwrap();
        tl::verify_inclusion(&p, new.size, new.root, index, leaves[index as usize]).unwrap();
    }
}

/// A PROCUREMENT check of `code` now, as its verified receipt's payload.
async fn checked_payload(
    app: &TestApp,
    token: &str,
    code: &str,
) -> (String, api::service::receipts::ReceiptPayload) {
    let resp = app
        .gql(
            Some(token),
            "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { decision receipt } }",
            json!({"u": code}),
        )
        .await;
    let receipt = resp.data()["check"]["receipt"]
        .as_str()
        .unwrap()
        .to_string();
    let answers = verifier(app, "answers").await;
    let payload = verify_any(&receipt, &HashMap::new(), Some(&answers))
        .unwrap()
        .payload;
    (receipt, payload)
}

/// Three codes whose answers differ for a PROCUREMENT partner, all logged: one on the
/// list with its default measures (answered by its procurement measures), one on it
/// with a supervision measure only (CLEAR, no hit), one the registry never listed.
pub(crate) struct ThreeAnswers {
    pub token: String,
    pub listed_code: String,
    pub listed_id: String,
    pub supervised_code: String,
    pub unknown_code: String,
}

/// [`ThreeAnswers`] with codes from `first_serial` on, listed from `start`.
pub(crate) async fn three_answers(
    app: &TestApp,
    first_serial: u32,
    start: chrono::DateTime<Utc>,
) -> ThreeAnswers {
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let (listed_code, listed_id, _) =
        crate::listings::listed(app, "441802", first_serial, start).await;
    let (supervised_code, supervised_id, v) =
        crate::listings::listed(app, "441802", first_serial + 1, start).await;
    app.gql(
        Some(&app.admin()),
        "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
        json!({"i": {"id": supervised_id, "expectedVersion": v, "reason": "措施更正", "measureCodes": ["SAMR44_KEY_SUPERVISION"]}}),
    )
    .await
    .data();
    let unknown_code = valid_code("441802", first_serial + 2);
    app.state.logs.append_registry(&app.db).await.unwrap();
    ThreeAnswers {
        token,
        listed_code,
        listed_id,
        supervised_code,
        unknown_code,
    }
}

/// `verify-receipt --registry-url … --recompute`: the public registry log, replayed up
/// to the head a receipt names, gives that receipt's decision and hits for its code and
/// domain; an answer the list at that head does not give is refused.
async fn a_receipt_s_answer_is_recomputed_from_the_public_registry_log(app: TestApp) {
    use api::domain::decision::Decision;
    use api::tlog::client::{ReceiptAnswer, check_registry_head};
    let start = Utc::now() - Duration::days(2);
    let ThreeAnswers {
        token,
        listed_code,
        listed_id,
        supervised_code,
        unknown_code,
    } = three_answers(&app, 131, start).await;

    let url = format!("{}/logs/registry", app.address);
    let answer_of = |p: &api::service::receipts::ReceiptPayload| ReceiptAnswer::from(p);
    let recompute = |head: &api::service::receipts::RegistryLogHead, answer: ReceiptAnswer| {
        let url = url.clone();
        let head = head.clone();
        async move {
            check_registry_head(&url, None, head.size, &head.root, Some(&answer))
                .await
                .unwrap()
        }
    };
    let (_, listed) = checked_payload(&app, &token, &listed_code).await;
    assert_ne!(listed.decision, Decision::Clear);
    assert_eq!(
        listed.hit_listing_ids,
        vec![listed_id.parse::<i64>().unwrap()]
    );
    let mut heads = Vec::new();
    for code in [&listed_code, &supervised_code, &unknown_code] {
        let (receipt, payload) = checked_payload(&app, &token, code).await;
        let head = payload.registry_log.clone().unwrap();
        let report = recompute(&head, answer_of(&payload)).await;
        assert!(report.ok(), "{code}: {}", report.text());
        assert!(
            report.text().contains("the receipt's answer"),
            "{}",
            report.text()
        );
        heads.push((head, payload, receipt));
    }
    assert_eq!(heads[1].1.decision, Decision::Clear);
    assert!(heads[1].1.hit_listing_ids.is_empty());

    // An answer the list at that head does not give: the decision or the hits altered.
    let (head, _, _) = &heads[0];
    for (decision, hits) in [
        (Decision::Clear, vec![]),
        (listed.decision, vec![listed.hit_listing_ids[0] + 1]),
    ] {
        let forged = ReceiptAnswer {
            decision,
            hit_listing_ids: hits,
            ..answer_of(&listed)
        };
        let report = recompute(head, forged).await;
        assert!(!report.ok(), "{}", report.text());
        assert!(
            report.text().contains("the receipt says"),
            "{}",
            report.text()
        );
    }
    // The listed operator's answer against the empty log's head: that list has nobody.
    let empty = app.state.logs.registry_head_for(&app.db, 0).await.unwrap();
    let empty = api::service::receipts::RegistryLogHead {
        size: empty.size,
        root: tl::hash_b64(&empty.root),
    };
    let report = recompute(&empty, answer_of(&listed)).await;
    assert!(!report.ok(), "{}", report.text());
    // An asOf before the entries replayed: the head holds, the answer is not recomputed
    // (an entry says whether its listing was in force when logged, not before).
    let early = ReceiptAnswer {
        as_of: start - Duration::days(1),
        ..answer_of(&listed)
    };
    let report = recompute(head, early).await;
    assert!(report.ok(), "{}", report.text());
    assert!(
        report.text().contains("answer not recomputed"),
        "{}",
        report.text()
    );

    // The same, by an implementation that is not the registry's own
    // (tests/verifier/recompute_answer.py: standard library and `cryptography`).
    if !python_verifier_available("the independent recomputation") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let registry_vkey = dir.path().join("registry.vkey");
    std::fs::write(&registry_vkey, text(&app, "/logs/registry/vkey").await.1).unwrap();
    let answers_vkey = dir.path().join("answers.vkey");
    std::fs::write(&answers_vkey, text(&app, "/logs/answers/vkey").await.1).unwrap();
    let python = |input: Vec<std::ffi::OsString>| {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--registry-url".into(),
            url.clone().into(),
            "--registry-vkey".into(),
            registry_vkey.clone().into(),
        ];
        args.extend(input);
        run_python("recompute_answer.py", args)
    };
    for (i, (_, payload, receipt)) in heads.iter().enumerate() {
        let file = dir.path().join(format!("receipt-{i}.txt"));
        std::fs::write(&file, receipt).unwrap();
        let (code, out) = python(vec![
            "--vkey".into(),
            answers_vkey.clone().into(),
            file.into(),
        ])
        .await;
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("RECOMPUTED"), "{out}");
        let decision = format!("answers {}", api::domain::enum_name(payload.decision));
        assert!(out.contains(&decision), "{out}");
    }
    // Altered answers (as payload JSON, which the script does not hold to a signature).
    let early = (start - Duration::days(1)).to_rfc3339();
    let edits: Vec<(&str, Value, i32)> = vec![
        ("decision", json!("CLEAR"), 1),
        ("hitListingIds", json!([listed.hit_listing_ids[0] + 1]), 1),
        (
            "registryLog",
            json!({"size": empty.size, "root": empty.root}),
            1,
        ),
        ("asOf", json!(early), 3),
    ];
    let unaltered = serde_json::to_value(&listed).unwrap();
    for (field, value, expected) in
        edits
            .into_iter()
            .chain([("uscc", unaltered["uscc"].clone(), 0)])
    {
        let mut answer = unaltered.clone();
        answer[field] = value;
        let file = dir.path().join("answer.json");
        std::fs::write(&file, answer.to_string()).unwrap();
        let (code, out) = python(vec!["--answer-json".into(), file.into()]).await;
        assert_eq!(code, expected, "{field}: {out}");
    }
}

on_both_backends!(
    a_receipt_verifies_offline_from_the_public_key_alone,
    two_checks_of_one_group_share_one_checkpoint_signature,
    checkpoints_vkeys_and_tiles_are_served_as_tlog_tiles,
    the_registry_log_follows_the_feed_and_replays_to_the_list,
    consistency_proofs_hold_and_a_forged_history_fails,
    a_receipt_names_the_registry_head_of_the_list_it_was_answered_from,
    a_receipt_s_answer_is_recomputed_from_the_public_registry_log,
);

async fn verify_log_audits_both_logs_and_catches_a_rewritten_history(app: TestApp) {
    use api::tlog::client::{VerifyLogArgs, verify_log};
    let start = Utc::now() - Duration::days(2);
    crate::listings::listed(&app, "441802", 120, start).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    let token = app
        .partner(
            "gov-procurement",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let codes: Vec<String> = (0..3).map(|i| valid_code("441802", 121 + i)).collect();
    app.gql(Some(&token), BATCH, json!({"u": codes, "d": "PROCUREMENT"}))
        .await
        .data();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("answers.checkpoint");
    let args = |log: &str, from: Option<std::path::PathBuf>, save: Option<std::path::PathBuf>| {
        VerifyLogArgs {
            url: format!("{}/logs/{log}", app.address),
            from_checkpoint: from,
            vkey: None,
            save_checkpoint: save,
            ..Default::default()
        }
    };
    // The registry log: tiles, entries, and the list replayed equals the public list.
    let registry = verify_log(&args("registry", None, None)).await.unwrap();
    assert!(registry.ok(), "{}", registry.text());
    assert!(
        registry
            .text()
            .contains("the log replayed gives the public list: 1 listings"),
        "{}",
        registry.text()
    );

    // The answer log, saved, then grown, then checked against the saved checkpoint.
    let first = verify_log(&args("answers", None, Some(saved.clone())))
        .await
        .unwrap();
    assert!(first.ok(), "{}", first.text());
    let codes: Vec<String> = (0..2).map(|i| valid_code("441802", 125 + i)).collect();
    app.gql(Some(&token), BATCH, json!({"u": codes, "d": "PROCUREMENT"}))
        .await
        .data();
    let grown = verify_log(&args("answers", Some(saved.clone()), None))
        .await
        .unwrap();
    assert!(grown.ok(), "{}", grown.text());
    assert!(
        grown
            .text()
            .contains("extends the earlier checkpoint of size 3"),
        "{}",
        grown.text()
    );

    // A checkpoint of another history, signed with the log's own key (what a registry
    // that rewrote its log would have handed out before): caught.
    let key_pem =
        std::fs::read_to_string(app.state.settings.log_key_dir().join("answers.pem")).unwrap();
    let signing =
        <ed25519_dalek::SigningKey as ed25519_dalek::pkcs8::DecodePrivateKey>::from_pkcs8_pem(
            &key_pem,
        )
        .unwrap();
    let origin = verifier(&app, "answers").await.name().to_string();
    let key = api::tlog::note::LogKey::new(&origin, &signing).unwrap();
    let forged_leaves: Vec<tl::Hash> = (0..3u8).map(|i| tl::record_hash(&[i])).collect();
    let mut memo = tl::HashMemo::default();
    let (_, forged_root) = tl::stored_hashes_for_leaves(0, &forged_leaves, &mut memo).unwrap();
    let forged = dir.path().join("forged.checkpoint");
    std::fs::write(&forged, key.sign_checkpoint(3, &forged_root).unwrap()).unwrap();
    let caught = verify_log(&args("answers", Some(forged), None))
        .await
        .unwrap();
    assert!(!caught.ok(), "{}", caught.text());
    assert!(
        caught.text().contains("rewrote history"),
        "{}",
        caught.text()
    );
}

on_both_backends!(verify_log_audits_both_logs_and_catches_a_rewritten_history);

/// Whether the independent verifiers can run here (python3 with `cryptography`); when
/// not, says which part of a test (`what`) is skipped.
pub(crate) fn python_verifier_available(what: &str) -> bool {
    let available = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!(
            "SKIPPED: python3 with the `cryptography` package is needed for {what} (apt-get install python3-cryptography, or pip install cryptography)"
        );
    }
    available
}

/// Runs one of the independent verifiers (`tests/verifier/<script>`) off the runtime's
/// threads, since a script may fetch from this test's server: its exit status, and its
/// standard output followed by its standard error.
pub(crate) async fn run_python(script: &str, args: Vec<std::ffi::OsString>) -> (i32, String) {
    let script = format!("{}/verifier/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn an_independent_python_verifier_accepts_receipts_and_refuses_altered_ones(app: TestApp) {
    if !python_verifier_available("the independent receipt verifier") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let vkey = dir.path().join("answers.vkey");
    std::fs::write(&vkey, text(&app, "/logs/answers/vkey").await.1).unwrap();
    let run = |receipt: &str| {
        let file = dir.path().join("receipt.txt");
        std::fs::write(&file, receipt).unwrap();
        run_python(
            "verify_receipt.py",
            vec!["--vkey".into(), vkey.clone().into(), file.into()],
        )
    };
    // Several receipts of several groups and tree sizes, each verified by Python.
    let (_, restricted) = restricted_receipt(&app).await;
    let token = app
        .partner(
            "gov-procurement-batch",
            &[api::domain::measures::Domain::Procurement],
        )
        .await;
    let codes: Vec<String> = (0..6).map(|i| valid_code("441802", 140 + i)).collect();
    let batch = app
        .gql(Some(&token), BATCH, json!({"u": codes, "d": "PROCUREMENT"}))
        .await;
    let mut receipts = vec![restricted.clone()];
    receipts.extend(
        batch.data()["checkBatch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["receipt"].as_str().unwrap().to_string()),
    );
    for receipt in &receipts {
        let (code, out) = run(receipt).await;
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("VALID"), "{out}");
    }
    let (_, out) = run(&restricted).await;
    assert!(out.contains("\"decision\": \"RESTRICTED\""), "{out}");

    // Altered payload, proof hash, checkpoint size, signature: all refused.
    let proof = tl::proof::TlogProof::parse(&receipts[3]).unwrap();
    let mut altered_payload = proof.clone();
    altered_payload.extra = Some(
        String::from_utf8(proof.extra.clone().unwrap())
            .unwrap()
            .replace("CLEAR", "RESTRICTED")
            .into_bytes(),
    );
    let mut altered_proof = proof.clone();
    altered_proof.proof[0] = tl::record_hash(b"x");
    let mut altered_index = proof.clone();
    altered_index.index ^= 1;
    let size_line = format!("\n{}\n", answers_size(&app).await);
    let altered_size = receipts[3].replacen(&size_line, "\n1000\n", 1);
    let sig_at = receipts[3].rfind(' ').unwrap() + 5;
    let mut altered_sig = receipts[3].clone().into_bytes();
    altered_sig[sig_at] = if altered_sig[sig_at] == b'A' {
        b'B'
    } else {
        b'A'
    };
    for bad in [
        altered_payload.to_text(),
        altered_proof.to_text(),
        altered_index.to_text(),
        altered_size,
        String::from_utf8(altered_sig).unwrap(),
    ] {
        let (code, out) = run(&bad).await;
        assert_eq!(code, 1, "{out}");
        assert!(out.starts_with("INVALID"), "{out}");
    }
}

async fn answers_size(app: &TestApp) -> u64 {
    let (_, note, _) = text(app, "/logs/answers/checkpoint").await;
    verifier(app, "answers")
        .await
        .verify_checkpoint(&note)
        .unwrap()
        .size
}

on_both_backends!(an_independent_python_verifier_accepts_receipts_and_refuses_altered_ones);

fn strict_log_limits(settings: &mut api::config::Settings) {
    settings.limits.public_rate_per_second = 1;
    settings.limits.public_rate_burst = 2;
    settings.limits.public_log_rate_per_second = 1;
    settings.limits.public_log_rate_burst = 3;
}

/// Checkpoints are anonymous reads, counted per client address like any (the third of a
/// burst of two is refused with the same 429 as anonymous GraphQL); tiles have a budget
/// of their own, so a verifier replaying a log is not refused for the checkpoints it
/// read, and is refused in turn past its own burst.
async fn checkpoints_and_tiles_are_rate_limited_per_address(app: TestApp) {
    let start = Utc::now() - Duration::days(2);
    crate::listings::listed(&app, "441802", 121, start).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    for _ in 0..2 {
        let (status, body, _) = text(&app, "/logs/registry/checkpoint").await;
        assert_eq!(status, 200, "{body}");
    }
    let refused = app.get("/logs/registry/checkpoint").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    // Another log's checkpoint is the same address's bucket.
    assert_eq!(app.get("/logs/answers/checkpoint").await.status(), 429);
    for _ in 0..3 {
        let status = app.get("/logs/registry/tile/0/000.p/1").await.status();
        assert_ne!(status, 429);
    }
    let refused = app.get("/logs/registry/tile/0/000.p/1").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().get("retry-after").is_some());
}

tests::on_both_backends_with!(
    checkpoints_and_tiles_are_rate_limited_per_address => strict_log_limits,
);
