//! The real `credit-registry` binary imports and exports (issue 14): template, dry run,
//! import, re-import (no change), export → import (no change), a refused file with
//! `--errors-out`. SQLite in a temporary folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_credit-registry");

fn run(dir: &Path, args: &[&str]) -> Output {
    let db = format!("sqlite://{}?mode=rwc", dir.join("registry.db").display());
    Command::new(BINARY)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("REGISTRY_DATA_DIR", dir)
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .current_dir(dir)
        .args(args)
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
    let errors = std::fs::read_to_string(d.join("errors.csv")).unwrap();
    assert!(errors.starts_with("row,column,message\n"), "{errors}");
    assert!(errors.contains("2,告知日期,"), "{errors}");
}
