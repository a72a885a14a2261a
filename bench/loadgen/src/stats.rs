//! Latency summaries and the result records every measurement appends (JSON lines).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Throughput and latency of one stream of requests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub errors: u64,
    /// Completed requests per second of measurement (errors excluded).
    pub rps: f64,
    #[serde(default)]
    pub mean_ms: Option<f64>,
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p90_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
    #[serde(default)]
    pub max_ms: Option<f64>,
}

/// The value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[u32], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(f64::from(sorted[rank - 1]) / 1000.0)
}

/// Summarises latencies in microseconds of successful requests over `seconds`.
pub fn summarize(mut micros: Vec<u32>, errors: u64, seconds: f64) -> Summary {
    micros.sort_unstable();
    let ok = micros.len() as u64;
    let mean = (!micros.is_empty())
        .then(|| micros.iter().map(|&m| f64::from(m)).sum::<f64>() / micros.len() as f64 / 1000.0);
    Summary {
        requests: ok + errors,
        errors,
        rps: ok as f64 / seconds.max(1e-9),
        mean_ms: mean,
        p50_ms: quantile(&micros, 0.50),
        p90_ms: quantile(&micros, 0.90),
        p99_ms: quantile(&micros, 0.99),
        max_ms: micros.last().map(|&m| f64::from(m) / 1000.0),
    }
}

/// One measurement, as a line of `results.jsonl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    /// `http`, `pg` (this tool's own SQL loop) or `pgbench`.
    pub kind: String,
    /// `single`, `batch`, `mixed`, `lookup`, `any`, `pk`.
    pub scenario: String,
    /// What was asked: the GraphQL operation or SQL text.
    pub query: String,
    /// Short name of the data set (e.g. `10k`, `10m`).
    pub scale: String,
    pub operators: u64,
    pub connections: u32,
    pub duration_s: f64,
    #[serde(flatten)]
    pub summary: Summary,
    /// Per request kind in a mixed load (`read`, `write`).
    #[serde(default)]
    pub parts: BTreeMap<String, Summary>,
    /// Codes per request in a batch.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Share of the codes sent that were listed in force.
    #[serde(default)]
    pub listed_share: Option<f64>,
    /// Peak resident memory of the server while this ran (sampled).
    #[serde(default)]
    pub rss_peak_mib: Option<f64>,
    #[serde(default)]
    pub error_samples: Vec<String>,
    #[serde(default)]
    pub note: Option<String>,
    /// The machine's 1-minute load average when the measurement ended (it is shared).
    #[serde(default)]
    pub loadavg: Option<f64>,
    /// Where the window's CPU went (server, PostgreSQL, load generator, the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<crate::cpu::CpuSplit>,
    /// How the registry grouped the window's checks into statements (its `/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<crate::groups::Grouping>,
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

pub fn append(path: &Path, record: &Record) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{}", serde_json::to_string(record)?)?;
    Ok(())
}

pub fn print(record: &Record) {
    let s = &record.summary;
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!(
        "{:<8} {:<7} {:<5} c={:<3} {:>9.0} req/s  p50 {:>8} ms  p99 {:>8} ms  errors {}{}  load {}",
        record.kind,
        record.scenario,
        record.scale,
        record.connections,
        s.rps,
        ms(s.p50_ms),
        ms(s.p99_ms),
        s.errors,
        record
            .listed_share
            .map_or(String::new(), |l| format!("  listed {:.1} %", l * 100.0)),
        record
            .loadavg
            .map_or("-".to_string(), |l| format!("{l:.2}")),
    );
    for (name, part) in &record.parts {
        println!(
            "           {name:<6} {:>9.0} req/s  p50 {:>8} ms  p99 {:>8} ms  errors {}",
            part.rps,
            ms(part.p50_ms),
            ms(part.p99_ms),
            part.errors
        );
    }
    for sample in &record.error_samples {
        println!("           error: {sample}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let s = summarize((1..=100).map(|v| v * 1000).collect(), 2, 10.0);
        assert_eq!(s.requests, 102);
        assert_eq!(s.rps, 10.0);
        assert_eq!(s.p50_ms, Some(50.0));
        assert_eq!(s.p99_ms, Some(99.0));
        assert_eq!(s.max_ms, Some(100.0));
        assert_eq!(summarize(Vec::new(), 0, 1.0).p50_ms, None);
    }
}
