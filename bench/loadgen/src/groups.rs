//! How the registry grouped a window's checks: its `/metrics` read at the start and the
//! end of the window (at the same instants as the CPU split).
//!
//! A check pays PostgreSQL for two shared statements: the lookup of its group of single
//! checks (`check_lookups`) and the durable write of its record group (`check_records`,
//! one statement and one commit per group). Most of what each statement costs
//! PostgreSQL is fixed per statement (measured on the bench machine: a durable commit
//! about 0.3–0.6 ms of PostgreSQL CPU, the write's rows about 0.02 ms each, a lookup
//! about 0.03 ms plus 0.01 ms per code), so PostgreSQL's CPU per check depends on how
//! many checks each statement carried, and the commit's wall time bounds what few
//! connections can reach. Both are printed beside the CPU split.

use serde::{Deserialize, Serialize};

/// The registry's grouping metrics (`api/src/metrics.rs`), as the Prometheus text names them.
const LOOKUP_GROUP: &str = "registry_check_lookup_group_size";
const RECORD_GROUP: &str = "registry_check_record_group_size";
const RECORD_COMMIT: &str = "registry_check_record_commit_seconds";

/// The counters behind the grouping at one instant (each a histogram's `_sum` and `_count`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counters {
    lookups: f64,
    lookup_codes: f64,
    writes: f64,
    write_rows: f64,
    write_seconds: f64,
}

/// The value of the unlabelled sample `name` in Prometheus text (0 when absent: a
/// histogram appears only once something was recorded in it).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .next()
        .unwrap_or(0.0)
}

impl Counters {
    /// Reads the counters from the `/metrics` text; `None` if it is no registry's.
    pub fn parse(text: &str) -> Option<Self> {
        if !text.contains("registry_") {
            return None;
        }
        let pair = |name: &str| {
            (
                sample(text, &format!("{name}_sum")),
                sample(text, &format!("{name}_count")),
            )
        };
        let (lookup_codes, lookups) = pair(LOOKUP_GROUP);
        let (write_rows, writes) = pair(RECORD_GROUP);
        let (write_seconds, _) = pair(RECORD_COMMIT);
        Some(Self {
            lookups,
            lookup_codes,
            writes,
            write_rows,
            write_seconds,
        })
    }
}

/// How a window's checks were grouped.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Grouping {
    /// Shared lookup statements per successful request.
    pub lookups_per_request: f64,
    /// Codes per shared lookup statement (mean).
    pub codes_per_lookup: Option<f64>,
    /// Record-group statements (one commit each) per successful request.
    pub writes_per_request: f64,
    /// Records per group statement (mean).
    pub records_per_write: Option<f64>,
    /// Mean wall time of a group's write (computing its log append, the statement and
    /// its commit), milliseconds.
    pub write_ms: Option<f64>,
}

/// The grouping between two readings, `requests` of them answered.
pub fn window(start: &Counters, end: &Counters, requests: u64) -> Option<Grouping> {
    if requests == 0 {
        return None;
    }
    let d = |a: f64, b: f64| (b - a).max(0.0);
    let lookups = d(start.lookups, end.lookups);
    let writes = d(start.writes, end.writes);
    let mean = |sum: f64, n: f64| (n > 0.0).then(|| sum / n);
    Some(Grouping {
        lookups_per_request: lookups / requests as f64,
        codes_per_lookup: mean(d(start.lookup_codes, end.lookup_codes), lookups),
        writes_per_request: writes / requests as f64,
        records_per_write: mean(d(start.write_rows, end.write_rows), writes),
        write_ms: mean(d(start.write_seconds, end.write_seconds) * 1000.0, writes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE registry_check_lookup_group_size histogram\n\
        registry_check_lookup_group_size_bucket{le=\"1\"} 400\n\
        registry_check_lookup_group_size_sum 1969\n\
        registry_check_lookup_group_size_count 888\n\
        registry_check_record_commit_seconds_sum 5.0883\n\
        registry_check_record_commit_seconds_count 638\n\
        registry_check_record_group_size_sum 1969\n\
        registry_check_record_group_size_count 638\n";
    const AFTER: &str = "registry_check_lookup_group_size_sum 9647\n\
        registry_check_lookup_group_size_count 4824\n\
        registry_check_record_commit_seconds_sum 25.9654\n\
        registry_check_record_commit_seconds_count 3087\n\
        registry_check_record_group_size_sum 9647\n\
        registry_check_record_group_size_count 3087\n";

    #[test]
    fn a_window_is_the_difference_of_two_readings() {
        let (a, b) = (
            Counters::parse(BEFORE).unwrap(),
            Counters::parse(AFTER).unwrap(),
        );
        let g = window(&a, &b, 7678).unwrap();
        assert!((g.lookups_per_request - 3936.0 / 7678.0).abs() < 1e-9);
        assert!((g.codes_per_lookup.unwrap() - 7678.0 / 3936.0).abs() < 1e-9);
        assert!((g.writes_per_request - 2449.0 / 7678.0).abs() < 1e-9);
        assert!((g.records_per_write.unwrap() - 7678.0 / 2449.0).abs() < 1e-9);
        assert!((g.write_ms.unwrap() - 20877.1 / 2449.0).abs() < 1e-6);
    }

    #[test]
    fn bucket_lines_and_missing_histograms_are_not_sums() {
        let c = Counters::parse(BEFORE).unwrap();
        assert_eq!(c.lookups, 888.0);
        // No lookups at all (SQLite, or a batch): no statements, no mean.
        let none = Counters::parse("registry_up 1\n").unwrap();
        let g = window(&none, &none, 10).unwrap();
        assert_eq!(g.lookups_per_request, 0.0);
        assert_eq!(g.codes_per_lookup, None);
        assert!(Counters::parse("node_up 1\n").is_none());
        assert!(window(&c, &c, 0).is_none());
    }
}
