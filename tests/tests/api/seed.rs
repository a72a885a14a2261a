//! `seed-bench`: bench data that the registry itself accepts as valid.

use api::domain::uscc::Uscc;
use bench_seed::{Population, SeedOptions};
use chrono::{DateTime, Utc};
use entity::{
    check_record, credit_list, list_default_measure, listing, listing_measure, listing_period,
    operator,
};
use sea_orm::{ActiveEnum, EntityTrait};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use tests::{TestApp, on_both_backends};

const OPERATORS: u64 = 600;
const LISTINGS: u64 = 150;
const CHECKS: u64 = 80;

fn options(seed: u64) -> SeedOptions {
    SeedOptions {
        operators: OPERATORS,
        listings: LISTINGS,
        check_records: CHECKS,
        seed,
        in_force_share: 0.1,
        progress: false,
    }
}

fn in_force(p: &listing_period::Model, t: DateTime<Utc>) -> bool {
    p.starts_at <= t && t < p.ends_at && p.removed_at.is_none_or(|r| t < r)
}

async fn seed_bench_writes_valid_consistent_data(app: TestApp) {
    let report = bench_seed::seed(&app.db, &options(7))
        .await
        .expect("seed-bench");
    let now = report.now;
    assert_eq!(app.count("operators").await, OPERATORS as i64);
    assert_eq!(app.count("listings").await, LISTINGS as i64);
    assert_eq!(app.count("check_records").await, CHECKS as i64);

    // Every code passes both check digits, and no two operators share one.
    let operators = operator::Entity::find().all(&app.db).await.unwrap();
    let mut codes = HashSet::new();
    for op in &operators {
        let code = Uscc::parse(&op.uscc).unwrap_or_else(|e| panic!("{}: {e}", op.uscc));
        assert_eq!(code.division(), op.region_code);
        assert!(!op.name.trim().is_empty());
        assert!(codes.insert(op.uscc.clone()), "duplicate {}", op.uscc);
    }

    // Listings in every state; periods consistent with the state now.
    let listings = listing::Entity::find().all(&app.db).await.unwrap();
    let periods = listing_period::Entity::find().all(&app.db).await.unwrap();
    let mut by_listing: BTreeMap<i64, Vec<&listing_period::Model>> = BTreeMap::new();
    for p in &periods {
        assert!(p.starts_at < p.ends_at);
        by_listing.entry(p.listing_id).or_default().push(p);
    }
    let mut states = BTreeSet::new();
    let mut in_force_operators = BTreeSet::new();
    for l in &listings {
        let ps = by_listing.get(&l.id).cloned().unwrap_or_default();
        let now_in_force = ps.iter().any(|p| in_force(p, now));
        let status = l.status.to_value();
        let state = match status.as_str() {
            "PROPOSED" | "WITHDRAWN" => {
                assert!(ps.is_empty(), "{} {} has periods", status, l.id);
                assert!(l.decision_date.is_none());
                status.clone()
            }
            "REVOKED" | "REPAIRED" => {
                assert!(!now_in_force, "{} {} is in force", status, l.id);
                let last = ps.iter().max_by_key(|p| p.starts_at).expect("a period");
                assert_eq!(last.removal_kind.as_deref(), Some(status.as_str()));
                assert!(last.removed_at.is_some_and(|r| r <= now));
                status.clone()
            }
            "LISTED" if now_in_force => "LISTED_IN_FORCE".to_string(),
            "LISTED" => {
                assert!(
                    ps.iter()
                        .all(|p| p.ends_at <= now && p.removed_at.is_none()),
                    "listing {} is LISTED, not in force, and not expired",
                    l.id
                );
                "LISTED_EXPIRED".to_string()
            }
            other => panic!("unexpected status {other}"),
        };
        if now_in_force {
            in_force_operators.insert(l.operator_id);
        }
        if let Some(decided) = l.decision_date {
            let first = ps.iter().map(|p| p.starts_at).min().expect("a period");
            assert!(l.defence_deadline < decided);
            assert!(first >= l.proposed_at);
        }
        states.insert(state);
    }
    let expected: BTreeSet<String> = [
        "PROPOSED",
        "LISTED_IN_FORCE",
        "LISTED_EXPIRED",
        "WITHDRAWN",
        "REVOKED",
        "REPAIRED",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(states, expected);
    // A repair revoked for fraud: a listing back in force with a second period.
    assert!(
        by_listing
            .values()
            .any(|ps| ps.len() == 2 && ps.iter().any(|p| in_force(p, now))),
        "no relisted listing"
    );

    // About the requested share is in force: exactly, here, and the load generator can
    // tell which codes they are from the manifest alone.
    let share = in_force_operators.len() as f64 / OPERATORS as f64;
    assert!((share - 0.1).abs() < 0.005, "in-force share {share}");
    assert_eq!(report.in_force_operators, in_force_operators.len() as u64);
    let population: Population = report.population().unwrap();
    let uscc_by_id: BTreeMap<i64, &str> =
        operators.iter().map(|o| (o.id, o.uscc.as_str())).collect();
    for i in 0..OPERATORS {
        let id = i as i64 + 1;
        assert_eq!(uscc_by_id[&id], population.code(i));
        assert_eq!(
            population.is_in_force(i),
            in_force_operators.contains(&id),
            "operator {id}"
        );
    }

    // Decided listings carry their list's default measures; proposals none.
    let defaults = list_default_measure::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    let lists = credit_list::Entity::find().all(&app.db).await.unwrap();
    let applied = listing_measure::Entity::find().all(&app.db).await.unwrap();
    for l in &listings {
        let mut got: Vec<i64> = applied
            .iter()
            .filter(|m| m.listing_id == l.id)
            .map(|m| m.measure_id)
            .collect();
        got.sort_unstable();
        let mut want: Vec<i64> = if l.decision_date.is_some() {
            defaults
                .iter()
                .filter(|d| d.list_id == l.list_id)
                .map(|d| d.measure_id)
                .collect()
        } else {
            Vec::new()
        };
        want.sort_unstable();
        assert_eq!(got, want, "measures of listing {}", l.id);
        assert!(lists.iter().any(|x| x.id == l.list_id));
    }

    // Check records name existing operators; a RESTRICTED answer names its listings.
    let checks = check_record::Entity::find().all(&app.db).await.unwrap();
    assert!(checks.iter().any(|c| c.decision.to_value() == "RESTRICTED"));
    for c in &checks {
        assert!(codes.contains(&c.uscc));
        assert!(c.checked_at <= now && c.as_of <= c.checked_at);
        let hits = c.hit_listing_ids.as_array().expect("array");
        assert_eq!(c.decision.to_value() == "CLEAR", hits.is_empty(), "{c:?}");
    }

    // A bulk load: no audit events, and the audit chain's head is untouched.
    assert_eq!(app.count("audit_events").await, 0);
    let head = entity::audit_head::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .expect("audit head");
    assert_eq!(head.last_event_id, 0);

    // The service reads the rows it did not write itself.
    let listed = population.code(population.in_force_operator(0));
    let resp = app
        .gql(
            Some(&app.admin()),
            "query($u: String!) { operator(uscc: $u) { uscc name version } }",
            json!({ "u": listed }),
        )
        .await;
    assert_eq!(resp.data()["operator"]["uscc"], listed);

    // New rows continue after the generated ids.
    let created = app
        .create_operator(&tests::valid_code("441802", 99_999_999), "新登记有限公司")
        .await;
    assert_eq!(created, (OPERATORS + 1).to_string());
}

async fn seed_bench_refuses_a_registry_with_data(app: TestApp) {
    app.create_operator(&tests::valid_code("441802", 1), "已有经营者有限公司")
        .await;
    let err = bench_seed::seed(&app.db, &options(1))
        .await
        .expect_err("a registry with data is refused");
    assert!(err.to_string().contains("empty registry"), "{err:#}");
    assert_eq!(app.count("operators").await, 1);
    assert_eq!(app.count("listings").await, 0);
}

async fn seed_bench_is_reproducible_from_its_seed(app: TestApp) {
    let report = bench_seed::seed(&app.db, &options(99)).await.unwrap();
    let other = Population::new(99, OPERATORS, LISTINGS, 0.1).unwrap();
    assert_eq!(report.population().unwrap(), other);
    let first = operator::Entity::find_by_id(1)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.uscc, other.code(0));
    assert_ne!(
        first.uscc,
        Population::new(100, OPERATORS, LISTINGS, 0.1)
            .unwrap()
            .code(0)
    );
}

on_both_backends!(
    seed_bench_writes_valid_consistent_data,
    seed_bench_refuses_a_registry_with_data,
    seed_bench_is_reproducible_from_its_seed,
);
