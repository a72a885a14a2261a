//! `credit-registry witness-key` and `credit-registry witness --once`, the real binary
//! against the real server binary (SQLite): the key is made and its vkey printed, the
//! server takes it from `REGISTRY_LOGS__WITNESSES`, the witness cosigns (exit 0) and the
//! served checkpoint carries its line; a witness the server does not know is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{BINARY, Server};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_commands_cosign_a_live_log() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("witness.pem");
    let made = Command::new(BINARY)
        .args(["witness-key", "--name", "witness.cli/w1", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let vkey = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert!(vkey.starts_with("witness.cli/w1+"), "{vkey}");
    // The same key again: the same vkey, the file untouched.
    let again = Command::new(BINARY)
        .args(["witness-key", "--name", "witness.cli/w1", "--key"])
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap().trim(), vkey);

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = format!("sqlite://{}?mode=rwc", data.join("registry.db").display());
    let witnesses = format!("[\"{vkey}\"]");
    let server = Server::start(
        &data,
        &db,
        &[("REGISTRY_LOGS__WITNESSES", witnesses.as_str())],
        "server.log",
    )
    .await;

    let witness = |name: &str, state: &str| {
        Command::new(BINARY)
            .args(["witness", "--log", "answers", "--once", "--name", name])
            .args(["--url", &server.url("")])
            .arg("--key")
            .arg(&key)
            .arg("--state")
            .arg(dir.path().join(state))
            .output()
            .unwrap()
    };
    let run = witness("witness.cli/w1", "state.json");
    assert_eq!(run.status.code(), Some(0), "{run:?}\n{}", server.logs());
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.contains("cosigned: the answers log at size 0"), "{out}");
    let served = reqwest::get(server.url("/logs/answers/checkpoint"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(served.contains("\u{2014} witness.cli/w1 "), "{served}");

    // The same key under another name is another witness, which the server does not know.
    let stranger = witness("witness.cli/w2", "stranger.json");
    assert_eq!(stranger.status.code(), Some(2), "{stranger:?}");
    let err = String::from_utf8_lossy(&stranger.stderr);
    assert!(err.contains("UNKNOWN_WITNESS"), "{err}");
}
