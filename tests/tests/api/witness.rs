//! Witnessing (C2SP `tlog-cosignature`): `credit-registry witness` against a live server
//! cosigns and the served checkpoint carries the cosignature; a forged history under the
//! same log key is refused by the witness; the registry refuses cosignatures of unknown
//! witnesses, bad cosignatures and checkpoints it does not hold, each with its code.

use api::tlog::client::{VerifyLogArgs, verify_log};
use api::tlog::cosignature::{WitnessKey, WitnessVerifier, verify_cosignatures};
use api::tlog::note::LogVerifier;
use api::tlog::witness::{Outcome, WitnessArgs, witness_once};
use chrono::{Duration, Utc};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use tests::{Backend, TestApp, spawn_app_with};

fn witness_key(seed: u8) -> WitnessKey {
    WitnessKey::new("witness.test/w1", SigningKey::from_bytes(&[seed; 32])).unwrap()
}

/// A server whose `logs.witnesses` names `witness`, with `listings` logged listings.
async fn witnessed_app(
    backend: Backend,
    witness: &WitnessKey,
    key_dir: Option<std::path::PathBuf>,
    first_serial: u32,
    listings: u32,
) -> TestApp {
    let vkey = witness.vkey();
    let app = spawn_app_with(backend, |s| {
        s.logs.witnesses = vec![vkey];
        s.logs.key_dir = key_dir;
    })
    .await;
    let start = Utc::now() - Duration::days(2);
    for serial in first_serial..first_serial + listings {
        crate::listings::listed(&app, "441802", serial, start).await;
    }
    app.state.logs.append_registry(&app.db).await.unwrap();
    app
}

fn args(app: &TestApp, state: &std::path::Path) -> WitnessArgs {
    WitnessArgs {
        url: app.address.clone(),
        log: "registry".into(),
        state: state.to_path_buf(),
        vkey: None,
        interval: std::time::Duration::from_secs(1),
        once: true,
    }
}

async fn checkpoint(app: &TestApp, log: &str) -> String {
    app.get(&format!("/logs/{log}/checkpoint"))
        .await
        .text()
        .await
        .unwrap()
}

async fn post_cosignature(app: &TestApp, log: &str, note: &str) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}/logs/{log}/cosignature", app.address))
        .body(note.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn a_witness_cosigns_and_the_served_checkpoint_carries_it(backend: Backend) {
    let witness = witness_key(21);
    let app = witnessed_app(backend, &witness, None, 200, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("witness.json");
    let outcome = witness_once(&args(&app, &state), &witness).await.unwrap();
    let Outcome::Cosigned { size } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(size >= 2, "{size}");

    // The served checkpoint: the log's signature and the witness's cosignature.
    let served = checkpoint(&app, "registry").await;
    let log_vkey = app.get("/logs/registry/vkey").await.text().await.unwrap();
    let log = LogVerifier::parse(&log_vkey).unwrap();
    assert_eq!(log.verify_checkpoint(&served).unwrap().size, size);
    let verifier = WitnessVerifier::parse(&witness.vkey()).unwrap();
    let cosignatures = verify_cosignatures(&served, std::slice::from_ref(&verifier)).unwrap();
    assert_eq!(cosignatures.len(), 1, "{served}");
    assert!(served.contains("\u{2014} witness.test/w1 "), "{served}");

    // verify-log --witness-vkey … --min-cosignatures: one is there, two are not.
    let witness_file = dir.path().join("w1.vkey");
    std::fs::write(&witness_file, witness.vkey()).unwrap();
    independent_verifier(&served, &witness_file, dir.path());
    let check = |min: usize| VerifyLogArgs {
        url: format!("{}/logs/registry", app.address),
        witness_vkeys: vec![witness_file.clone()],
        min_cosignatures: min,
        ..Default::default()
    };
    let one = verify_log(&check(1)).await.unwrap();
    assert!(one.ok(), "{}", one.text());
    let two = verify_log(&check(2)).await.unwrap();
    assert!(!two.ok(), "{}", two.text());
    assert!(
        two.text().contains("fewer than the 2 required"),
        "{}",
        two.text()
    );

    // The log grows; the next round proves it extends what was cosigned and cosigns it.
    crate::listings::listed(&app, "441802", 210, Utc::now() - Duration::days(1)).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    let outcome = witness_once(&args(&app, &state), &witness).await.unwrap();
    let Outcome::Cosigned { size: grown } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(grown > size, "{grown} after {size}");
    let served = checkpoint(&app, "registry").await;
    assert_eq!(
        verify_cosignatures(&served, std::slice::from_ref(&verifier))
            .unwrap()
            .len(),
        1
    );
}

/// The cosignature checked by an implementation that is not the project's:
/// `tests/verifier/verify_cosignature.py` (standard library and `cryptography`), written
/// from C2SP tlog-cosignature. The served checkpoint verifies; altered, it does not.
fn independent_verifier(served: &str, witness_vkey: &std::path::Path, dir: &std::path::Path) {
    let available = std::process::Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !available {
        eprintln!(
            "SKIPPED: python3 with the `cryptography` package is needed for the independent cosignature verifier"
        );
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/verifier/verify_cosignature.py"
    );
    let run = |note: &str| -> (i32, String) {
        let file = dir.join("checkpoint.txt");
        std::fs::write(&file, note).unwrap();
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg("--witness-vkey")
            .arg(witness_vkey)
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (status, out) = run(served);
    assert_eq!(status, 0, "{out}");
    assert!(
        out.starts_with("VALID: cosigned by witness.test/w1"),
        "{out}"
    );
    // Another size under the same signature lines.
    let mut lines = served.splitn(3, '\n');
    let (origin, _size, rest) = (lines.next().unwrap(), lines.next(), lines.next().unwrap());
    let altered = format!("{origin}\n999999\n{rest}");
    let (status, out) = run(&altered);
    assert_eq!(status, 1, "{out}");
    assert!(out.contains("does not verify"), "{out}");
}

/// A second server with another database but the same log key (what a registry that
/// rewrote its log would serve): the witness refuses it and keeps its state; and the
/// first registry refuses a cosignature of the other history.
async fn a_forged_history_is_refused_by_the_witness(backend: Backend) {
    let witness = witness_key(22);
    let genuine = witnessed_app(backend, &witness, None, 300, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("witness.json");
    let outcome = witness_once(&args(&genuine, &state), &witness)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Cosigned { .. }), "{outcome:?}");
    let saved = std::fs::read(&state).unwrap();

    let key_dir = genuine.state.settings.log_key_dir();
    let forged = witnessed_app(backend, &witness, Some(key_dir), 400, 3).await;
    assert_eq!(
        genuine
            .get("/logs/registry/vkey")
            .await
            .text()
            .await
            .unwrap(),
        forged
            .get("/logs/registry/vkey")
            .await
            .text()
            .await
            .unwrap(),
        "the forger signs with the genuine log key"
    );
    // Pointed at the forger (with the state of the genuine log): refused.
    let outcome = witness_once(&args(&forged, &state), &witness)
        .await
        .unwrap();
    let Outcome::Refused(why) = outcome else {
        panic!("a forged history was cosigned: {outcome:?}")
    };
    assert!(why.contains("rewrote history"), "{why}");
    assert_eq!(
        std::fs::read(&state).unwrap(),
        saved,
        "the state is unchanged"
    );
    assert!(
        verify_cosignatures(
            &checkpoint(&forged, "registry").await,
            &[WitnessVerifier::parse(&witness.vkey()).unwrap()]
        )
        .is_err(),
        "the forger got no cosignature"
    );

    // A cosignature of the forged checkpoint, posted to the genuine registry: the log key
    // signed it, but it is not this log's checkpoint of that size.
    let forged_note = witness
        .cosign(&checkpoint(&forged, "registry").await, 1_700_000_000)
        .unwrap();
    let (status, body) = post_cosignature(&genuine, "registry", &forged_note).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "UNKNOWN_CHECKPOINT", "{body}");
}

/// A registry that answers every cosignature with 503 and keeps it, in front of the
/// upstream server it currently names (what a registry after a split view does): GETs
/// are forwarded there, one request per connection.
struct SplitView {
    address: String,
    upstream: std::sync::Arc<std::sync::Mutex<String>>,
    posted: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

async fn split_view(upstream: &str) -> SplitView {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let view = SplitView {
        address: format!("http://{}", listener.local_addr().unwrap()),
        upstream: std::sync::Arc::new(std::sync::Mutex::new(upstream.to_string())),
        posted: Default::default(),
    };
    let (upstream, posted) = (view.upstream.clone(), view.posted.clone());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (upstream, posted) = (upstream.clone(), posted.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_string();
                let mut words = head.split_whitespace();
                let (method, path) = (
                    words.next().unwrap_or_default(),
                    words.next().unwrap_or_default(),
                );
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = if method == "POST" {
                    let body = String::from_utf8_lossy(&request[head_end..]).to_string();
                    posted.lock().unwrap().push(body);
                    (
                        "503 Service Unavailable".to_string(),
                        b"unavailable".to_vec(),
                    )
                } else {
                    let url = format!("{}{path}", upstream.lock().unwrap());
                    let resp = reqwest::get(url).await.unwrap();
                    let status = resp.status();
                    (
                        format!(
                            "{} {}",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or("")
                        ),
                        resp.bytes().await.unwrap().to_vec(),
                    )
                };
                let mut answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                answer.extend_from_slice(&body);
                let _ = tcp.write_all(&answer).await;
            });
        }
    });
    view
}

/// The witness remembers the checkpoint it cosigns before the cosignature leaves: a
/// registry that keeps the cosignature and answers 503 finds the witness's state
/// advanced, and a conflicting checkpoint of the same size (a second server with the
/// same log key and other listings) served in the next round is refused as a rewrite,
/// so the registry never holds this witness's cosignatures on two forks. (Before: the
/// state stayed at the previous checkpoint, and the fork was cosigned too.)
async fn a_cosignature_answered_503_still_binds_the_witness(backend: Backend) {
    let witness = witness_key(26);
    let genuine = witnessed_app(backend, &witness, None, 700, 2).await;
    let key_dir = genuine.state.settings.log_key_dir();
    let forked = witnessed_app(backend, &witness, Some(key_dir), 800, 2).await;
    let vkey = genuine
        .get("/logs/registry/vkey")
        .await
        .text()
        .await
        .unwrap();
    let log = LogVerifier::parse(&vkey).unwrap();
    let genuine_note = checkpoint(&genuine, "registry").await;
    let (a, b) = (
        log.verify_checkpoint(&genuine_note).unwrap(),
        log.verify_checkpoint(&checkpoint(&forked, "registry").await)
            .unwrap(),
    );
    assert_eq!(a.size, b.size, "two histories of the same size");
    assert_ne!(a.root, b.root, "that differ");

    let view = split_view(&genuine.address).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("witness.json");
    let round = WitnessArgs {
        url: view.address.clone(),
        ..args(&genuine, &state)
    };
    let err = witness_once(&round, &witness).await.unwrap_err();
    assert!(err.to_string().contains("503"), "{err:#}");
    assert_eq!(view.posted.lock().unwrap().len(), 1, "the cosignature left");
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["checkpoint"], genuine_note.as_str(), "{saved}");
    assert_eq!(saved["log_vkey"], vkey.as_str(), "{saved}");

    // The fork, served in the next round: refused as a rewrite, nothing posted.
    *view.upstream.lock().unwrap() = forked.address.clone();
    let outcome = witness_once(&round, &witness).await.unwrap();
    let Outcome::Refused(why) = outcome else {
        panic!("the fork was cosigned: {outcome:?}")
    };
    assert!(why.contains("rewrote history"), "{why}");
    assert_eq!(
        view.posted.lock().unwrap().len(),
        1,
        "nothing posted for the fork"
    );

    // Back on the genuine log, the next round verifies from the state and posts again.
    *view.upstream.lock().unwrap() = genuine.address.clone();
    assert!(witness_once(&round, &witness).await.is_err());
    let posted = view.posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 2, "posted again");
    let verifier = WitnessVerifier::parse(&witness.vkey()).unwrap();
    for note in &posted {
        assert_eq!(log.verify_checkpoint(note).unwrap().root, a.root);
        assert_eq!(
            verify_cosignatures(note, std::slice::from_ref(&verifier))
                .unwrap()
                .len(),
            1
        );
    }
}

async fn cosignatures_of_unknown_witnesses_are_refused(backend: Backend) {
    let witness = witness_key(23);
    let app = witnessed_app(backend, &witness, None, 500, 1).await;
    let note = checkpoint(&app, "registry").await;

    // A key the registry was not configured with (even under the same name).
    let stranger = witness_key(24).cosign(&note, 1_700_000_000).unwrap();
    let (status, body) = post_cosignature(&app, "registry", &stranger).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "UNKNOWN_WITNESS", "{body}");

    // The configured witness's line, altered: refused, not stored.
    let genuine = witness.cosign(&note, 1_700_000_000).unwrap();
    let line_start = genuine.rfind("\u{2014} witness.test/w1 ").unwrap();
    let mut bytes = genuine.clone().into_bytes();
    let at = line_start + "\u{2014} witness.test/w1 ".len() + 20;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(bytes).unwrap();
    let (status, body) = post_cosignature(&app, "registry", &altered).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "BAD_COSIGNATURE", "{body}");

    // Not a checkpoint of this log at all.
    let (status, body) = post_cosignature(&app, "registry", "hello\n").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "BAD_CHECKPOINT", "{body}");
    // Another log's checkpoint posted to this one.
    let answers = witness
        .cosign(&checkpoint(&app, "answers").await, 1_700_000_000)
        .unwrap();
    let (status, body) = post_cosignature(&app, "registry", &answers).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "BAD_CHECKPOINT", "{body}");

    // Nothing above was stored: the checkpoint is served as the log signed it.
    assert_eq!(checkpoint(&app, "registry").await, note);
    // And the genuine one is accepted.
    let (status, body) = post_cosignature(&app, "registry", &genuine).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["accepted"][0],
        WitnessVerifier::parse(&witness.vkey()).unwrap().key_label()
    );
}

/// `verify-receipt --witness-vkey … --min-cosignatures N`: a receipt as issued carries
/// none (its checkpoint was signed when the check was answered); with its checkpoint
/// replaced by the cosigned one of the same size it verifies and carries the witness's.
async fn a_receipt_can_require_cosignatures(backend: Backend) {
    use api::tlog::client::receipt_cosigned;
    use api::tlog::proof::TlogProof;
    let witness = witness_key(25);
    let app = witnessed_app(backend, &witness, None, 600, 0).await;
    let (_, receipt) = crate::receipts::restricted_receipt(&app).await;
    let witnesses = [WitnessVerifier::parse(&witness.vkey()).unwrap()];
    assert!(receipt_cosigned(&receipt, &witnesses, 0).is_ok());
    let none = receipt_cosigned(&receipt, &witnesses, 1).unwrap_err();
    assert!(none.contains("fewer than the 1 required"), "{none}");

    // A witness of the answer log cosigns its latest checkpoint: the receipt's (no check
    // was answered since).
    let dir = tempfile::tempdir().unwrap();
    let mut answers = args(&app, &dir.path().join("answers.json"));
    answers.log = "answers".into();
    let outcome = witness_once(&answers, &witness).await.unwrap();
    let proof = TlogProof::parse(&receipt).unwrap();
    let answers_vkey = app.get("/logs/answers/vkey").await.text().await.unwrap();
    let log = LogVerifier::parse(&answers_vkey).unwrap();
    let size = log.verify_checkpoint(&proof.checkpoint).unwrap().size;
    assert_eq!(outcome, Outcome::Cosigned { size });

    let upgraded = TlogProof {
        checkpoint: checkpoint(&app, "answers").await,
        ..proof
    }
    .to_text();
    assert_ne!(upgraded, receipt);
    api::service::receipts::verify_any(&upgraded, &Default::default(), Some(&log)).unwrap();
    receipt_cosigned(&upgraded, &witnesses, 1).unwrap();
    assert!(receipt_cosigned(&upgraded, &witnesses, 2).is_err());
    // A JWS receipt has no checkpoint to carry cosignatures.
    assert!(receipt_cosigned("a.b.c", &witnesses, 1).is_err());

    // The registry log the answer was read from, under a witness policy of its own
    // (`--registry-min-cosignatures`): refused until a witness cosigned that log.
    let payload = api::service::receipts::verify_any(&receipt, &Default::default(), Some(&log))
        .unwrap()
        .payload;
    let head = payload.registry_head().unwrap();
    let registry = format!("{}/logs/registry", app.address);
    let witnessed = |min: usize| {
        api::tlog::client::check_registry_head_witnessed(
            &registry, None, head.size, &head.root, None, &witnesses, min,
        )
    };
    let unwitnessed = witnessed(1).await.unwrap();
    assert!(!unwitnessed.ok(), "{}", unwitnessed.text());
    assert!(
        unwitnessed.text().contains("fewer than the 1 required"),
        "{}",
        unwitnessed.text()
    );
    let registry_state = dir.path().join("registry.json");
    let outcome = witness_once(&args(&app, &registry_state), &witness)
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Cosigned { .. }), "{outcome:?}");
    let cosigned = witnessed(1).await.unwrap();
    assert!(cosigned.ok(), "{}", cosigned.text());
    assert!(!witnessed(2).await.unwrap().ok());
}

/// A registry whose checkpoint commits a status map that does not follow from its log
/// (here: a code's stored leaf given a listing the log never named, which the next
/// change of that code builds on) is refused by the witness, which recomputes the map
/// from the public entries, and by verify-log.
async fn a_status_map_that_does_not_follow_from_the_log_is_refused(backend: Backend) {
    let witness = witness_key(23);
    let app = witnessed_app(backend, &witness, None, 500, 2).await;
    let (code, id, version) =
        crate::listings::listed(&app, "441802", 503, Utc::now() - Duration::days(2)).await;
    app.state.logs.append_registry(&app.db).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("witness.json");
    let outcome = witness_once(&args(&app, &state), &witness).await.unwrap();
    assert!(matches!(outcome, Outcome::Cosigned { .. }), "{outcome:?}");
    let fake = api::tlog::hash_b64(&api::tlog::Hash([0; 32]));
    app.sql(&format!(
        r#"UPDATE status_map_leaves SET listings = '[{{"listing":999999,"index":0,"hash":"{fake}"}}]' WHERE uscc = '{code}'"#
    ))
    .await;
    app.gql(
        Some(&app.admin()),
        "mutation($i: CorrectListingInput!) { correctListing(input: $i) { version } }",
        serde_json::json!({"i": {"id": id, "expectedVersion": version, "reason": "更正", "measureCodes": ["SAMR44_KEY_SUPERVISION"]}}),
    )
    .await
    .data();
    app.state.logs.append_registry(&app.db).await.unwrap();
    let outcome = witness_once(&args(&app, &state), &witness).await.unwrap();
    let Outcome::Refused(why) = outcome else {
        panic!("a checkpoint with a false status map was cosigned: {outcome:?}")
    };
    assert!(why.contains("is not the map of its entries"), "{why}");
    let report = verify_log(&VerifyLogArgs {
        url: format!("{}/logs/registry", app.address),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(!report.ok(), "{}", report.text());
}

tests::on_both_backends_by_backend!(
    a_witness_cosigns_and_the_served_checkpoint_carries_it,
    a_forged_history_is_refused_by_the_witness,
    a_cosignature_answered_503_still_binds_the_witness,
    cosignatures_of_unknown_witnesses_are_refused,
    a_receipt_can_require_cosignatures,
    a_status_map_that_does_not_follow_from_the_log_is_refused,
);
