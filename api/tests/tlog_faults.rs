//! `kill -9` in the middle of a stream of checks (issue 17): no answered check is ever
//! outside the answer log. After a restart every receipt that was returned verifies
//! against its own checkpoint and is included in the log's new checkpoint, which
//! extends each of the old ones; and the log holds exactly one leaf per check record.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use api::auth::Role;
use api::auth::tokens::TokenRequest;
use api::config::Settings;
use api::tlog::{self as tl, TilePath};
use common::{Server, admin_token, code, pg};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHECK: &str = "query($u: String!) { check(uscc: $u, domain: PROCUREMENT) { receipt } }";

async fn gql(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: Value,
) -> reqwest::Result<Value> {
    client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await?
        .json::<Value>()
        .await
}

fn partner_token(data_dir: &Path) -> String {
    let settings = Settings {
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    api::startup::token_service(&settings)
        .unwrap()
        .issue(&TokenRequest {
            subject: "gov-procurement".into(),
            role: Role::Partner,
            domains: vec![api::domain::measures::Domain::Procurement],
            region: None,
            ttl: chrono::Duration::hours(1),
        })
        .unwrap()
}

async fn text(client: &reqwest::Client, url: String) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

async fn kill_9_mid_group_leaves_no_answer_outside_the_log(url: &str, dir: &Path) {
    let admin = admin_token(dir);
    let server = Server::start(dir, url, &[], "run-1.log").await;
    let base = server.url("");
    let client = reqwest::Client::new();
    let registered = gql(
        &client,
        &base,
        &admin,
        json!({"query": "mutation($i: RegisterPartnerInput!) { registerPartner(input: $i) { id } }",
               "variables": {"i": {"subject": "gov-procurement", "name": "procurement", "domains": ["PROCUREMENT"]}}}),
    )
    .await
    .unwrap();
    assert!(registered["errors"].is_null(), "{registered}");
    let token = partner_token(dir);

    // Four callers check until the server dies under them; each keeps what it was answered.
    let receipts: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut callers = Vec::new();
    for caller in 0..4u32 {
        let (receipts, token, base) = (receipts.clone(), token.clone(), base.clone());
        callers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..100_000u32 {
                let body = json!({"query": CHECK, "variables": {"u": code(caller * 100_000 + i)}});
                match gql(&client, &base, &token, body).await {
                    Ok(answer) => {
                        let receipt = answer["data"]["check"]["receipt"]
                            .as_str()
                            .unwrap_or_else(|| panic!("no receipt: {answer}"))
                            .to_string();
                        receipts.lock().unwrap().push(receipt);
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while receipts.lock().unwrap().len() < 200 {
        assert!(Instant::now() < deadline, "the checks did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    for c in callers {
        c.await.unwrap();
    }
    drop(server);
    let receipts = receipts.lock().unwrap().clone();

    // Restart: the log's new checkpoint covers every receipt that was returned.
    let server = Server::start(dir, url, &[], "run-2.log").await;
    let vkey = text(&client, server.url("/logs/answers/vkey")).await;
    let verifier = tl::note::LogVerifier::parse(&vkey).unwrap();
    let note = text(&client, server.url("/logs/answers/checkpoint")).await;
    let now = verifier.verify_checkpoint(&note).unwrap();
    let mut leaves = Vec::new();
    for n in 0..now.size.div_ceil(tl::TILE_WIDTH) {
        let width = (now.size - n * tl::TILE_WIDTH).min(tl::TILE_WIDTH);
        let tile = TilePath {
            level: Some(0),
            index: n,
            width,
        };
        let bytes = client
            .get(server.url(&format!("/logs/answers/tile/{}", tile.path())))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        leaves.extend(tl::parse_tile(&bytes).unwrap());
    }
    let mut memo = tl::HashMemo::default();
    let (_, root) = tl::stored_hashes_for_leaves(0, &leaves, &mut memo).unwrap();
    assert_eq!(root, now.root);
    let mut checkpoints: HashMap<u64, tl::Hash> = HashMap::new();
    for receipt in &receipts {
        let verified =
            api::service::receipts::verify_any(receipt, &HashMap::new(), Some(&verifier)).unwrap();
        let proof = tl::proof::TlogProof::parse(receipt).unwrap();
        let (index, size) = verified.log.unwrap();
        assert_eq!(
            leaves[index as usize],
            tl::record_hash(proof.extra.as_deref().unwrap())
        );
        let p = tl::prove_inclusion(now.size, index, &memo).unwrap();
        tl::verify_inclusion(&p, now.size, now.root, index, leaves[index as usize]).unwrap();
        let old = verifier.verify_checkpoint(&proof.checkpoint).unwrap();
        checkpoints.insert(size, old.root);
    }
    // Every checkpoint a caller was given is a prefix of the log now.
    for (size, old_root) in &checkpoints {
        let proof = if *size == now.size {
            vec![]
        } else {
            tl::prove_consistency(now.size, *size, &memo).unwrap()
        };
        tl::verify_consistency(&proof, now.size, now.root, *size, *old_root).unwrap();
    }
    // One leaf per check record, no more, no less.
    let db = sea_orm::Database::connect(url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM check_records",
        ))
        .await
        .unwrap()
        .unwrap();
    let records: i64 = row.try_get("", "n").unwrap();
    assert_eq!(records as u64, now.size);
    assert!(records as usize >= receipts.len());
    // `credit-registry verify-receipt` checks a returned receipt offline with the saved
    // verifier key: 0 genuine, 1 altered, 2 when the key is not given.
    let vkey_file = dir.join("answers.vkey");
    std::fs::write(&vkey_file, &vkey).unwrap();
    let cli = |receipt: &str, with_key: bool| -> i32 {
        let file = dir.join("receipt.txt");
        std::fs::write(&file, receipt).unwrap();
        let mut cmd = std::process::Command::new(common::BINARY);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("REGISTRY_DATA_DIR", dir)
            .arg("verify-receipt");
        if with_key {
            cmd.arg("--vkey").arg(&vkey_file);
        }
        cmd.arg(format!("@{}", file.display()))
            .output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    };
    let receipt = &receipts[receipts.len() / 2];
    assert_eq!(cli(receipt, true), 0);
    assert_eq!(cli(&receipt.replacen("index ", "index 1", 1), true), 1);
    assert_eq!(cli(receipt, false), 2);
    eprintln!(
        "kill -9 after {} answered checks; the log holds {} answers under {} checkpoints seen",
        receipts.len(),
        now.size,
        checkpoints.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_group_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("registry.db").display()
    );
    kill_9_mid_group_leaves_no_answer_outside_the_log(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_group_postgres() {
    let admin_url = pg::admin_url();
    let name = format!("tlog_kill_{}", uuid::Uuid::new_v4().simple());
    let url = pg::create_database(&admin_url, &name).await;
    let dir = tempfile::tempdir().unwrap();
    kill_9_mid_group_leaves_no_answer_outside_the_log(&url, dir.path()).await;
}
