//! `config/registry.example.toml` is the reference for operators: it must load, equal the
//! built-in defaults in every field, and list exactly the keys the code has and the
//! README's configuration and security tables document.
// figment's Jail takes closures that return its (large) error by value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::result_large_err)]

use api::config::Settings;
use figment::Jail;
use figment::value::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn example_path() -> PathBuf {
    repo_file("config/registry.example.toml")
}

fn example_text() -> String {
    std::fs::read_to_string(example_path()).unwrap()
}

/// `# key = value` lines: keys that have no fixed default, shown with what is used.
fn commented_keys(text: &str) -> Vec<(String, usize)> {
    let mut section = String::new();
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
            continue;
        }
        let Some(rest) = line.strip_prefix("# ") else {
            continue;
        };
        let Some((key, _)) = rest.split_once(" = ") else {
            continue;
        };
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            keys.push((format!("{section}{key}"), n));
        }
    }
    keys
}

/// The example with its commented-out keys switched on.
fn uncommented(text: &str) -> String {
    let lines: BTreeSet<usize> = commented_keys(text).into_iter().map(|(_, n)| n).collect();
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            if lines.contains(&n) {
                line.trim_start().trim_start_matches("# ").to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn leaf_keys(prefix: &str, value: &serde_json::Value, out: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_keys(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn toml_keys(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Dict(_, dict) => {
            for (k, v) in dict {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                toml_keys(&key, v, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

/// Every key the code has: the defaults serialized, with the optional keys set.
fn code_keys() -> BTreeSet<String> {
    let mut settings = Settings {
        database_url: Some(String::new()),
        ..Settings::default()
    };
    settings.auth.signing_key_file = Some(PathBuf::new());
    settings.receipts.key_dir = Some(PathBuf::new());
    let mut keys = BTreeSet::new();
    leaf_keys("", &serde_json::to_value(&settings).unwrap(), &mut keys);
    keys
}

/// Every key of the example, live or commented out.
fn example_keys() -> BTreeSet<String> {
    use figment::Provider;
    use figment::providers::Format;
    let text = example_text();
    let data = figment::providers::Toml::string(&text).data().unwrap();
    let mut keys = BTreeSet::new();
    for dict in data.values() {
        for (k, v) in dict {
            toml_keys(k, v, &mut keys);
        }
    }
    for (key, _) in commented_keys(&text) {
        assert!(
            keys.insert(key.clone()),
            "{key} is both set and commented out"
        );
    }
    keys
}

/// Backticked keys in the "key" column of every table under the README's
/// "Configuration" and "Security" sections (`auth.*`-style wildcards left out).
fn readme_keys() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let mut keys = BTreeSet::new();
    let mut in_section = false;
    let mut key_column: Option<usize> = None;
    let mut in_table = false;
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title == "Configuration" || title == "Security";
            continue;
        }
        if !in_section || !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if !in_table {
            in_table = true;
            key_column = cells.iter().position(|c| *c == "key");
            continue;
        }
        let Some(column) = key_column else { continue };
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        let Some(cell) = cells.get(column) else {
            continue;
        };
        for (i, part) in cell.split('`').enumerate() {
            let is_key = i % 2 == 1
                && !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
            if is_key {
                keys.insert(part.to_string());
            }
        }
    }
    keys
}

#[test]
fn the_example_loads_and_equals_the_defaults() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let loaded = Settings::load(Some(&example_path())).expect("the example loads");
        assert_eq!(loaded, Settings::default());
        // The commented-out keys show the values used when they are unset.
        jail.create_file("uncommented.toml", &uncommented(&example_text()))?;
        let explicit = Settings::load(Some(Path::new("uncommented.toml"))).expect("loads");
        let defaults = Settings::default();
        assert_eq!(explicit.database_url(), defaults.database_url());
        assert_eq!(explicit.signing_key_file(), defaults.signing_key_file());
        assert_eq!(explicit.receipt_key_dir(), defaults.receipt_key_dir());
        Ok(())
    });
}

#[test]
fn the_example_has_every_key_of_the_code() {
    let code = code_keys();
    let example = example_keys();
    assert_eq!(
        code.difference(&example).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys missing from config/registry.example.toml"
    );
    assert_eq!(
        example.difference(&code).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys in config/registry.example.toml that the code does not have"
    );
}

#[test]
fn the_readme_tables_and_the_example_list_the_same_keys() {
    let example = example_keys();
    let readme = readme_keys();
    assert!(
        readme.len() > 20,
        "the README tables were not found: {readme:?}"
    );
    assert_eq!(
        example.difference(&readme).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys of the example missing from the README's configuration/security tables"
    );
    assert_eq!(
        readme.difference(&example).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "keys in the README's tables missing from the example"
    );
}

#[test]
fn a_misspelt_key_is_refused_naming_it() {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let typo = example_text().replace("max_depth = 12", "max_dpeth = 12");
        jail.create_file("typo.toml", &typo)?;
        let err = Settings::load(Some(Path::new("typo.toml"))).unwrap_err();
        assert!(err.to_string().contains("max_dpeth"), "{err}");
        Ok(())
    });
}
