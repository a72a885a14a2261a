//! Closed-loop HTTP load: N connections, each sending its next request as soon as the
//! previous answer is read, for a warm-up and then a fixed measurement window.

use crate::client::{Connection, Target};
use crate::cpu;
use crate::groups;
use crate::schema::Queries;
use crate::stats::{Record, Summary, summarize};
use bench_seed::Population;
use bench_seed::population::Rng;
use bytes::Bytes;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// One code per request (`check`, or `operator` until `check` exists).
    Single,
    /// `checkBatch` of `--batch-size` codes per request.
    Batch,
    /// Anonymous `publicListings(search: --search, first: 20)`, the public list's search.
    Search,
    /// Single checks, and admin mutations (`upsertOperator`) for `--write-share` of requests.
    Mixed,
    /// The peer: PostGraphile's bare `operatorByUscc` lookup (anonymous, its defaults).
    GraphileLookup,
    /// The peer doing a check's reading: the operator by code with its listings, their
    /// periods and their measures (no record written, nothing signed).
    GraphileFull,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Single => "single",
            Scenario::Batch => "batch",
            Scenario::Search => "search",
            Scenario::Mixed => "mixed",
            Scenario::GraphileLookup => "graphile-lookup",
            Scenario::GraphileFull => "graphile-full",
        }
    }

    /// PostGraphile's scenarios: another server, not the registry.
    pub fn is_peer(self) -> bool {
        matches!(self, Scenario::GraphileLookup | Scenario::GraphileFull)
    }

    /// Requests sent without a token (the public search, and the peer).
    fn anonymous(self) -> bool {
        matches!(
            self,
            Scenario::Search | Scenario::GraphileLookup | Scenario::GraphileFull
        )
    }
}

/// The query a peer scenario sends; `None` for the registry's own scenarios.
pub fn peer_query(scenario: Scenario) -> Option<&'static str> {
    match scenario {
        Scenario::GraphileLookup => Some(GRAPHILE_LOOKUP),
        Scenario::GraphileFull => Some(GRAPHILE_FULL),
        _ => None,
    }
}

/// PostGraphile 4's names for the bench schema at its default inflection: the unique
/// `operators.uscc` gives `operatorByUscc`, each foreign key a `…By…Id` connection.
pub const GRAPHILE_LOOKUP: &str =
    "query PeerLookup($u: String!) { operatorByUscc(uscc: $u) { id uscc name regionCode } }";
pub const GRAPHILE_FULL: &str = "query PeerFull($u: String!) { operatorByUscc(uscc: $u) { id uscc name regionCode \
    listingsByOperatorId { nodes { id listId status authority decisionDocNo decisionDate \
    listingPeriodsByListingId { nodes { startsAt endsAt removedAt } } \
    listingMeasuresByListingId { nodes { measureByMeasureId { code name domain effect legalBasis } } } } } } }";

/// The admin mutation of the mixed load: renaming an existing operator (audited), among
/// a few names so that `formerNames` stays short.
const UPSERT: &str =
    "mutation BenchUpsert($i: UpsertOperatorInput!) { upsertOperator(input: $i) { id version } }";
/// The public list's search, as the public page asks it (anonymous).
const SEARCH: &str = "query BenchSearch($s: String) { publicListings(search: $s, first: 20) { edges { node { id uscc operatorName listName decisionDate } } } }";

const RENAMES: [&str; 4] = [
    "压测更名甲有限公司",
    "压测更名乙有限公司",
    "压测更名丙有限公司",
    "压测更名丁有限公司",
];

pub struct HttpLoad {
    pub target: Target,
    pub scenario: Scenario,
    pub connections: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub population: Population,
    pub queries: Queries,
    /// The partners' tokens (checks): connection i uses token i mod n.
    pub read_tokens: Vec<String>,
    /// The search text of the `search` scenario.
    pub search: String,
    /// A refusal reason that counts as an answer (a refusal being measured).
    pub expect_reason: Option<String>,
    /// An admin token (mutations of the mixed load).
    pub admin_token: String,
    pub domain: String,
    pub batch_size: u32,
    pub write_per_mille: u64,
    pub seed: u64,
    pub server_pid: Option<u32>,
    pub scale: String,
}

struct Request {
    write: bool,
    body: Bytes,
    codes: u64,
    listed: u64,
}

#[derive(Default)]
struct WorkerOut {
    read: Vec<u32>,
    write: Vec<u32>,
    read_errors: u64,
    write_errors: u64,
    samples: Vec<String>,
    codes: u64,
    listed: u64,
}

impl WorkerOut {
    fn sample(&mut self, s: String) {
        if self.samples.len() < 3 && !self.samples.contains(&s) {
            self.samples.push(s);
        }
    }
}

impl HttpLoad {
    fn pick(&self, rng: &mut Rng) -> (String, bool) {
        let i = rng.below(self.population.operators);
        (self.population.code(i), self.population.is_in_force(i))
    }

    fn request(&self, rng: &mut Rng) -> anyhow::Result<Request> {
        let write = self.scenario == Scenario::Mixed && rng.below(1000) < self.write_per_mille;
        if write {
            let (code, _) = self.pick(rng);
            let body = json!({
                "query": UPSERT,
                "variables": {"i": {"uscc": code, "name": rng.pick(&RENAMES)}},
            });
            return Ok(Request {
                write: true,
                body: Bytes::from(serde_json::to_vec(&body)?),
                codes: 0,
                listed: 0,
            });
        }
        if self.scenario == Scenario::Search {
            let body = json!({"query": SEARCH, "variables": {"s": self.search}});
            return Ok(Request {
                write: false,
                body: Bytes::from(serde_json::to_vec(&body)?),
                codes: 0,
                listed: 0,
            });
        }
        if let Scenario::GraphileLookup | Scenario::GraphileFull = self.scenario {
            let (code, listed) = self.pick(rng);
            let body = json!({"query": peer_query(self.scenario), "variables": {"u": code}});
            return Ok(Request {
                write: false,
                body: Bytes::from(serde_json::to_vec(&body)?),
                codes: 1,
                listed: u64::from(listed),
            });
        }
        if self.scenario == Scenario::Batch {
            let batch = self
                .queries
                .batch
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("checkBatch does not exist on this server"))?;
            let mut codes = Vec::with_capacity(self.batch_size as usize);
            let mut listed = 0;
            for _ in 0..self.batch_size {
                let (code, l) = self.pick(rng);
                listed += u64::from(l);
                codes.push(code);
            }
            let body = json!({"query": batch, "variables": {"u": codes, "d": self.domain}});
            return Ok(Request {
                write: false,
                body: Bytes::from(serde_json::to_vec(&body)?),
                codes: u64::from(self.batch_size),
                listed,
            });
        }
        let (code, listed) = self.pick(rng);
        let variables = if self.queries.single_name == "check" {
            json!({"u": code, "d": self.domain})
        } else {
            json!({"u": code})
        };
        let body = json!({"query": self.queries.single, "variables": variables});
        Ok(Request {
            write: false,
            body: Bytes::from(serde_json::to_vec(&body)?),
            codes: 1,
            listed: u64::from(listed),
        })
    }

    async fn worker(self: Arc<Self>, id: u32, measure_from: Instant, stop: Instant) -> WorkerOut {
        let mut out = WorkerOut::default();
        let mut rng = Rng::new(self.seed, 1000 + u64::from(id), self.connections as u64);
        let mut conn: Option<Connection> = None;
        while Instant::now() < stop {
            if conn.is_none() {
                match Connection::open(&self.target).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        out.read_errors += 1;
                        out.sample(format!("connect: {e}"));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                }
            }
            let Some(c) = conn.as_mut() else { continue };
            let req = match self.request(&mut rng) {
                Ok(r) => r,
                Err(e) => {
                    out.read_errors += 1;
                    out.sample(e.to_string());
                    break;
                }
            };
            let token = if req.write {
                Some(self.admin_token.as_str())
            } else if self.scenario.anonymous() {
                None
            } else {
                let i = id as usize % self.read_tokens.len().max(1);
                self.read_tokens.get(i).map(String::as_str)
            };
            let started = Instant::now();
            let result = c.post(req.body, token).await;
            let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
            let measured = started >= measure_from && started < stop;
            let ok = match result {
                Ok(reply) if reply.ok() => true,
                Ok(reply)
                    if self
                        .expect_reason
                        .as_deref()
                        .is_some_and(|c| reply.has_reason(c)) =>
                {
                    true
                }
                Ok(reply) => {
                    out.sample(reply.snippet());
                    false
                }
                Err(e) => {
                    out.sample(format!("transport: {e}"));
                    conn = None;
                    false
                }
            };
            if !measured {
                continue;
            }
            match (req.write, ok) {
                (false, true) => {
                    out.read.push(micros);
                    out.codes += req.codes;
                    out.listed += req.listed;
                }
                (false, false) => out.read_errors += 1,
                (true, true) => out.write.push(micros),
                (true, false) => out.write_errors += 1,
            }
        }
        out
    }

    pub async fn run(self) -> anyhow::Result<Record> {
        let load = Arc::new(self);
        let measure_from = Instant::now() + load.warmup;
        let stop = measure_from + load.duration;
        let sampler = load
            .server_pid
            .map(|pid| tokio::spawn(sample_rss(pid, stop)));
        // The registry's grouping metrics; not the peer's (it has none).
        let metrics = (!load.scenario.is_peer()).then(|| load.target.clone());
        let cpu_watch = tokio::spawn(watch_cpu(load.server_pid, metrics, measure_from, stop));
        let workers: Vec<_> = (0..load.connections)
            .map(|id| tokio::spawn(load.clone().worker(id, measure_from, stop)))
            .collect();
        let mut all = WorkerOut::default();
        for w in workers {
            let out = w.await?;
            all.read.extend(out.read);
            all.write.extend(out.write);
            all.read_errors += out.read_errors;
            all.write_errors += out.write_errors;
            all.codes += out.codes;
            all.listed += out.listed;
            for s in out.samples {
                all.sample(s);
            }
        }
        let rss_peak_kib = match sampler {
            Some(s) => s.await.unwrap_or(None),
            None => None,
        };
        let seconds = load.duration.as_secs_f64();
        let (cpu_window, groups_window) = match cpu_watch.await {
            Ok((start, end, groups)) => (Some((start, end)), groups),
            Err(_) => (None, None),
        };
        let mut parts = BTreeMap::new();
        let summary: Summary = if load.scenario == Scenario::Mixed {
            let merged: Vec<u32> = all.read.iter().chain(all.write.iter()).copied().collect();
            parts.insert(
                "read".to_string(),
                summarize(all.read, all.read_errors, seconds),
            );
            parts.insert(
                "write".to_string(),
                summarize(all.write, all.write_errors, seconds),
            );
            summarize(merged, all.read_errors + all.write_errors, seconds)
        } else {
            summarize(all.read, all.read_errors, seconds)
        };
        let query = match load.scenario {
            Scenario::Batch => load.queries.batch.clone().unwrap_or_default(),
            Scenario::Mixed => format!("{} + {UPSERT}", load.queries.single),
            Scenario::Single => load.queries.single.clone(),
            Scenario::Search => format!("{SEARCH} with search = {:?}", load.search),
            Scenario::GraphileLookup | Scenario::GraphileFull => {
                peer_query(load.scenario).unwrap_or_default().to_string()
            }
        };
        let answered = summary.requests - summary.errors;
        let cpu = cpu_window.map(|(a, b)| cpu::split(&a, &b, seconds, answered));
        let groups = groups_window.and_then(|(a, b)| groups::window(&a, &b, answered));
        Ok(Record {
            kind: "http".into(),
            scenario: load.scenario.name().into(),
            query,
            scale: load.scale.clone(),
            operators: load.population.operators,
            connections: load.connections,
            duration_s: seconds,
            summary,
            parts,
            batch_size: (load.scenario == Scenario::Batch).then_some(load.batch_size),
            listed_share: (all.codes > 0).then(|| all.listed as f64 / all.codes as f64),
            rss_peak_mib: rss_peak_kib.map(|k| k as f64 / 1024.0),
            error_samples: all.samples,
            note: Some(match load.scenario {
                Scenario::GraphileLookup | Scenario::GraphileFull => {
                    "the peer: PostGraphile at its defaults".to_string()
                }
                _ => format!("single lookup measured with `{}`", load.queries.single_name),
            }),
            cpu,
            groups,
            loadavg: None,
        })
    }
}

/// The CPU counters at the start and at the end of the measurement window, and the
/// registry's grouping counters at the same instants (when `metrics` names a server
/// whose `/metrics` answers).
async fn watch_cpu(
    server_pid: Option<u32>,
    metrics: Option<Target>,
    from: Instant,
    stop: Instant,
) -> (
    cpu::Snapshot,
    cpu::Snapshot,
    Option<(groups::Counters, groups::Counters)>,
) {
    tokio::time::sleep_until(from.into()).await;
    let start = cpu::Snapshot::take(server_pid);
    let groups_start = read_groups(metrics.as_ref()).await;
    tokio::time::sleep_until(stop.into()).await;
    let end = cpu::Snapshot::take(server_pid);
    let groups_end = read_groups(metrics.as_ref()).await;
    (start, end, groups_start.zip(groups_end))
}

/// The registry's grouping counters, from its `/metrics` (served to loopback callers).
async fn read_groups(target: Option<&Target>) -> Option<groups::Counters> {
    let reply = crate::client::get(target?, "/metrics").await.ok()?;
    (reply.status == 200)
        .then(|| groups::Counters::parse(&String::from_utf8_lossy(&reply.body)))
        .flatten()
}

/// Resident memory of a process in KiB, from `/proc/<pid>/status` (`VmRSS` or `VmHWM`).
pub fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The highest `VmRSS` seen until `stop`, sampled every 100 ms.
async fn sample_rss(pid: u32, stop: Instant) -> Option<u64> {
    let mut peak = None;
    while Instant::now() < stop {
        if let Some(kib) = proc_status_kib(pid, "VmRSS:") {
            peak = Some(peak.map_or(kib, |p: u64| p.max(kib)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}
