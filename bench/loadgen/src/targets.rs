//! The targets of the benchmark issues, each with its figure from this run, its
//! verdict, how far off an unmet one is, and what the CPU split says about it.

use crate::report::{Find, PeerRow, num, pct, ratio, times};
use crate::stats::Record;
use std::fmt::Write;

pub enum Verdict {
    Met,
    NotMet,
    /// A figure the issues ask for without a bound.
    Reported,
    NotMeasured(String),
}

impl Verdict {
    pub fn text(&self) -> String {
        match self {
            Verdict::Met => "met".into(),
            Verdict::NotMet => "**not met**".into(),
            Verdict::Reported => "reported".into(),
            Verdict::NotMeasured(why) => format!("not measured: {why}"),
        }
    }

    /// At least `min` (`None`: not measured, for `why`).
    fn at_least(v: Option<f64>, min: f64, why: &str) -> Self {
        match v {
            Some(v) if v >= min => Verdict::Met,
            Some(_) => Verdict::NotMet,
            None => Verdict::NotMeasured(why.into()),
        }
    }

    fn at_most(v: Option<f64>, max: f64, why: &str) -> Self {
        match v {
            Some(v) if v <= max => Verdict::Met,
            Some(_) => Verdict::NotMet,
            None => Verdict::NotMeasured(why.into()),
        }
    }
}

/// What the report worked out before the targets.
pub struct Figures<'a> {
    pub find: &'a Find<'a>,
    pub records: &'a [Record],
    pub large: &'a str,
    pub small: &'a str,
    /// `check` does not exist in the build measured.
    pub fallback: bool,
    pub batch_ratio: Option<f64>,
    pub scale_ratios: &'a [(u32, f64)],
    pub peak_mib: Option<f64>,
    pub searches: &'a [&'a Record],
    pub abuse_ratios: &'a [(String, Option<f64>)],
    pub peer: &'a [PeerRow],
}

struct Row {
    target: String,
    measured: String,
    verdict: Verdict,
    /// For an unmet target: how far off, and what the profile says would close it.
    gap: String,
    analysis: String,
}

/// The connection count the targets are stated at.
const TARGET_CONNECTIONS: u32 = 16;

/// The CPU split of a measurement, as a sentence.
fn cpu_sentence(r: &Record) -> Option<String> {
    let cpu = r.cpu.as_ref()?;
    let per = cpu.per_request_ms.as_ref()?;
    let idle = ratio(Some(cpu.idle_s), Some(cpu.machine_s));
    Some(format!(
        "per request {} ms of server CPU, {} ms of PostgreSQL, {} ms of the load generator, {} ms \
         elsewhere; the machine was {} idle",
        num(per.server, 3),
        num(Some(per.postgres), 3),
        num(Some(per.loadgen), 3),
        num(Some(per.other), 3),
        pct(idle)
    ))
}

fn capitalized(s: String) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => s,
    }
}

/// Whether a measurement left the cores idle (waiting, not computing).
fn latency_bound(r: &Record) -> Option<bool> {
    let cpu = r.cpu.as_ref()?;
    Some(cpu.idle_s > 0.15 * cpu.machine_s)
}

fn single_check_rows(f: &Figures, rows: &mut Vec<Row>) {
    let Some(h) = f.find.one("http", "single", f.large, TARGET_CONNECTIONS) else {
        rows.push(Row {
            target: format!("single `check` ≥ 25 % of pgbench's PK rate at {TARGET_CONNECTIONS} connections ({})", f.large),
            measured: "–".into(),
            verdict: Verdict::NotMeasured("no check at this connection count".into()),
            gap: String::new(),
            analysis: String::new(),
        });
        return;
    };
    let pgb = f.find.one("pgbench", "pk", f.large, TARGET_CONNECTIONS);
    let share = ratio(Some(h.summary.rps), pgb.map(|p| p.summary.rps));
    let verdict = if f.fallback {
        Verdict::NotMeasured(
            "`check` does not exist yet; the ratio shown is `operator(uscc:)`'s".into(),
        )
    } else {
        Verdict::at_least(share, 0.25, "no pgbench figure")
    };
    let profile = cpu_sentence(h).map_or_else(|| "No CPU split recorded".into(), capitalized);
    let target_rps = pgb.map(|p| p.summary.rps * 0.25);
    let budget = h.cpu.as_ref().and_then(|cpu| {
        let per = cpu.per_request_ms.as_ref()?;
        let total = per.server.unwrap_or(0.0) + per.postgres + per.loadgen + per.other;
        let cores = cpu.machine_s / cpu.window_s.max(1e-9);
        let need = target_rps.map(|t| cores * 1000.0 / t)?;
        Some(format!(
            " At {} ms of CPU per check the {} cores allow about {} checks/s; the target, {} \
             checks/s, leaves at most {} ms per check{}.",
            num(Some(total), 3),
            num(Some(cores), 0),
            num(Some(cores * 1000.0 / total), 0),
            num(target_rps, 0),
            num(Some(need), 3),
            if per.postgres > need {
                format!(
                    ", less than PostgreSQL's share alone ({} ms)",
                    num(Some(per.postgres), 3)
                )
            } else {
                String::new()
            }
        ))
    });
    let analysis = format!(
        "{profile}{}{} Where PostgreSQL's share goes (bench/notes/2026-12-01-check-cpu.md, \
         pg_stat_statements and perf on a cluster of its own): two statements a check and nothing \
         else, the group write about three quarters of it and its durable commit most of that; \
         taking the lookup out altogether saved 27 % of PostgreSQL's CPU per check. What would \
         close it: larger groups per durable commit (the commit is paid per group, so more checks \
         waiting at once share it), the lookup out of PostgreSQL, which needs every operator's \
         code in memory as well as the listings in force (a CLEAR receipt names an operator that \
         exists; 120-160 MB for 10 million codes, kept current by a feed of operator changes that \
         does not exist yet), and a server cheaper per request (its own share alone exceeds the \
         budget).",
        match latency_bound(h) {
            Some(true) =>
                ": the cores were partly idle, so part of the time is waiting for the group's commit.",
            Some(false) => ": CPU-bound on the two shared cores.",
            None => ".",
        },
        budget.unwrap_or_default()
    );
    let gap = share
        .filter(|s| *s < 0.25)
        .map(|s| {
            format!(
                "{} short: needs {} the measured rate ({} req/s of {} tps)",
                pct(Some(0.25 - s)),
                times(Some(0.25 / s)),
                num(Some(h.summary.rps), 0),
                num(pgb.map(|p| p.summary.rps), 0)
            )
        })
        .unwrap_or_default();
    rows.push(Row {
        target: format!(
            "single `check` ≥ 25 % of pgbench's PK rate at {TARGET_CONNECTIONS} connections ({})",
            f.large
        ),
        measured: format!(
            "{} ({} req/s of {} tps)",
            pct(share),
            num(Some(h.summary.rps), 0),
            num(pgb.map(|p| p.summary.rps), 0)
        ),
        verdict,
        gap,
        analysis,
    });
}

fn peer_rows(f: &Figures, rows: &mut Vec<Row>) {
    let Some(p) = f.peer.iter().find(|p| p.connections == TARGET_CONNECTIONS) else {
        rows.push(Row {
            target: format!(
                "single `check` ≥ 2× PostGraphile's bare lookup at {TARGET_CONNECTIONS} connections"
            ),
            measured: "–".into(),
            verdict: Verdict::NotMeasured("PostGraphile was not run (PEER=0?)".into()),
            gap: String::new(),
            analysis: String::new(),
        });
        return;
    };
    let r = ratio(p.check_rps, p.lookup_rps);
    let peer = f
        .find
        .one("http", "graphile-lookup", f.large, TARGET_CONNECTIONS);
    let analysis = match peer.and_then(cpu_sentence) {
        Some(s) => format!(
            "PostGraphile's bare lookup: {s}. The check does a lookup, a durable record, an \
             answer-log leaf and a signed receipt; see the `check` row above for its split."
        ),
        None => String::new(),
    };
    rows.push(Row {
        target: format!(
            "single `check` ≥ 2× PostGraphile's bare lookup at {TARGET_CONNECTIONS} connections ({})",
            f.large
        ),
        measured: format!(
            "{} ({} vs {} req/s; vs its full reading {} req/s: {})",
            times(r),
            num(p.check_rps, 0),
            num(p.lookup_rps, 0),
            num(p.full_rps, 0),
            times(ratio(p.check_rps, p.full_rps))
        ),
        verdict: Verdict::at_least(r, 2.0, "no figure"),
        gap: r
            .filter(|r| *r < 2.0)
            .map(|r| format!("needs {} the measured check rate", times(Some(2.0 / r))))
            .unwrap_or_default(),
        analysis,
    });
}

fn batch_row(f: &Figures, rows: &mut Vec<Row>) {
    let batch = f.find.any("http", "batch", f.large);
    let verdict = match batch {
        None => Verdict::NotMeasured("`checkBatch` was not measured".into()),
        Some(_) => Verdict::at_most(f.batch_ratio, 2.0, "no `= ANY` figure"),
    };
    let analysis = batch
        .and_then(cpu_sentence)
        .map(|s| {
            format!(
                "`checkBatch`: {s}. Above the bare lookup a batch writes 1,000 check records, \
                 appends 1,000 answer-log leaves, builds 1,000 inclusion proofs and receipts \
                 and returns about a megabyte of JSON."
            )
        })
        .unwrap_or_default();
    rows.push(Row {
        target: "`checkBatch` of 1,000 codes p50 ≤ 2× the bare `= ANY($1)` p50".into(),
        measured: times(f.batch_ratio),
        verdict,
        gap: f
            .batch_ratio
            .filter(|r| *r > 2.0)
            .map(|r| {
                format!(
                    "over by {}: needs {} of the measured p50",
                    times(Some(r - 2.0)),
                    pct(Some(2.0 / r))
                )
            })
            .unwrap_or_default(),
        analysis,
    });
}

fn scale_rows(f: &Figures, rows: &mut Vec<Row>) {
    for (c, r) in f.scale_ratios {
        let verdict = if f.fallback {
            Verdict::NotMeasured("`check` does not exist yet".into())
        } else {
            Verdict::at_most(Some(*r), 1.3, "no figure")
        };
        rows.push(Row {
            target: format!(
                "p50 at {} ≤ 1.3× p50 at {} ({c} connections)",
                f.large, f.small
            ),
            measured: times(Some(*r)),
            verdict,
            gap: if *r > 1.3 {
                format!("over by {}", times(Some(r - 1.3)))
            } else {
                String::new()
            },
            analysis: scale_analysis(f, *c),
        });
    }
}

/// The CPU split of the single check at both scales: what grows with the data.
fn scale_analysis(f: &Figures, connections: u32) -> String {
    let split = |scale: &str| {
        f.find
            .one("http", "single", scale, connections)
            .and_then(cpu_sentence)
            .map(|s| format!("at {scale}: {s}"))
    };
    match (split(f.small), split(f.large)) {
        (Some(a), Some(b)) => format!(
            "{a}; {b}. What grows with the data is PostgreSQL's share (index depth, and how much \
             of the indexes the page cache holds); the rest of a check is the same work at every \
             scale."
        ),
        _ => String::new(),
    }
}

fn search_rows(f: &Figures, rows: &mut Vec<Row>) {
    for case in ["no-match", "match"] {
        let r = f
            .searches
            .iter()
            .find(|r| r.scenario == format!("search:{case}"));
        let p50 = r.and_then(|r| r.summary.p50_ms);
        let verdict = match r {
            None => Verdict::NotMeasured("not in this run".into()),
            Some(r) if r.summary.errors > 0 => Verdict::NotMet,
            Some(_) => Verdict::at_most(p50, 20.0, "no successful request"),
        };
        rows.push(Row {
            target: format!("public search p50 ≤ 20 ms, {case} ({})", f.large),
            measured: format!("{} ms", num(p50, 2)),
            verdict,
            gap: p50
                .filter(|p| *p > 20.0)
                .map(|p| format!("over by {} ms", num(Some(p - 20.0), 2)))
                .unwrap_or_default(),
            analysis: r
                .and_then(|r| cpu_sentence(r))
                .map(capitalized)
                .map(|s| {
                    format!(
                        "{s}. A search is one statement on the name index (`pg_trgm`): its cost \
                         is PostgreSQL's, and a text that matches nothing makes the index visit \
                         every candidate of its trigrams."
                    )
                })
                .unwrap_or_default(),
        });
    }
}

fn abuse_rows(f: &Figures, rows: &mut Vec<Row>) {
    if f.abuse_ratios.is_empty() {
        rows.push(Row {
            target: "partners keep ≥ 80 % of their unloaded check throughput under abuse".into(),
            measured: "–".into(),
            verdict: Verdict::NotMeasured("the abuse runs did not run (ABUSE=0?)".into()),
            gap: String::new(),
            analysis: String::new(),
        });
    }
    for (kind, share) in f.abuse_ratios {
        rows.push(Row {
            target: format!(
                "partners keep ≥ 80 % of their unloaded check throughput beside `{kind}`"
            ),
            measured: pct(*share),
            verdict: Verdict::at_least(*share, 0.8, "no figure"),
            gap: String::new(),
            analysis: String::new(),
        });
    }
    rows.push(Row {
        target: "server peak resident memory ≤ 150 MiB in every run".into(),
        measured: format!("{} MiB", num(f.peak_mib, 1)),
        verdict: Verdict::at_most(f.peak_mib, 150.0, "no memory figure"),
        gap: String::new(),
        analysis: String::new(),
    });
}

/// The bulk figures of `bench/bulk.sh` (kind `bulk`: rows as `operators`, seconds as
/// `duration_s`, peak RSS as `rss_peak_mib`).
fn bulk_rows(f: &Figures, rows: &mut Vec<Row>) {
    let bulk = |what: &str| -> Vec<&Record> {
        let mut v: Vec<&Record> = f
            .records
            .iter()
            .filter(|r| r.kind == "bulk" && r.scenario == what)
            .collect();
        v.sort_by_key(|r| r.operators);
        v
    };
    let imports = bulk("import");
    let Some(largest) = imports.last() else {
        rows.push(Row {
            target: "import of 1 million listings ≥ 20,000 rows/s, peak RSS ≤ 200 MiB".into(),
            measured: "–".into(),
            verdict: Verdict::NotMeasured("bench/bulk.sh did not run (BULK=0?)".into()),
            gap: String::new(),
            analysis: String::new(),
        });
        return;
    };
    let rate = Some(largest.summary.rps);
    rows.push(Row {
        target: format!(
            "import of {} listings (CSV, PostgreSQL) ≥ 20,000 rows/s",
            largest.operators
        ),
        measured: format!("{} rows/s", num(rate, 0)),
        verdict: Verdict::at_least(rate, 20_000.0, "no figure"),
        gap: rate
            .filter(|r| *r < 20_000.0)
            .map(|r| format!("needs {} the measured rate", times(Some(20_000.0 / r))))
            .unwrap_or_default(),
        analysis: if rate.is_some_and(|r| r < 20_000.0) {
            "Each listing writes its operator, the listing, its period, one row per measure (11 \
             for the list's defaults), its revision and two audit events, chunk after chunk under \
             the audit chain's lock. PostgreSQL's statement time was about 200 µs per listing \
             (release, log_min_duration_statement = 0 over 20,000 rows, 2026-12-01: the measure \
             links 25 %, the audit events 27 %, the revision 15 %, the listing 14 %, the operator \
             11 %, the period 4 %), and the chain's lock runs the chunks one at a time: a ceiling \
             near 5,000 rows/s whatever the client does. What would close it: a listing's \
             measures as one array (or a reference to the list's default set), the snapshot \
             stored once instead of in both the revision and the audit event, and chunks written \
             on parallel connections (the chain's lock taken at commit instead of at begin, with \
             event ids that follow the chain)."
                .into()
        } else {
            String::new()
        },
    });
    rows.push(Row {
        target: format!(
            "import of {} listings: peak RSS ≤ 200 MiB",
            largest.operators
        ),
        measured: format!("{} MiB", num(largest.rss_peak_mib, 1)),
        verdict: Verdict::at_most(largest.rss_peak_mib, 200.0, "no figure"),
        gap: String::new(),
        analysis: String::new(),
    });
    for format in ["csv", "xlsx"] {
        let exports = bulk(&format!("export-{format}"));
        let (Some(small), Some(big)) = (exports.first(), exports.last()) else {
            continue;
        };
        let growth = ratio(big.rss_peak_mib, small.rss_peak_mib);
        rows.push(Row {
            target: format!(
                "public-list export as {format}: RSS flat in the row count (≤ 1.25× from {} to {} rows)",
                small.operators, big.operators
            ),
            measured: format!(
                "{} → {} MiB ({}); {} rows/s at {}",
                num(small.rss_peak_mib, 1),
                num(big.rss_peak_mib, 1),
                times(growth),
                num(Some(big.summary.rps), 0),
                big.operators
            ),
            verdict: if exports.len() < 2 {
                Verdict::NotMeasured("one size only".into())
            } else {
                Verdict::at_most(growth, 1.25, "no figure")
            },
            gap: String::new(),
            analysis: String::new(),
        });
    }
}

fn receipt_row(f: &Figures, rows: &mut Vec<Row>) {
    let v = f.records.iter().rev().find(|r| r.kind == "verify");
    rows.push(Row {
        target: "a receipt's size and the cost of verifying one offline (reported, no bound)"
            .into(),
        measured: v.map_or("–".into(), |v| {
            format!(
                "{} ms per `verify-receipt` (median); {}",
                num(v.summary.p50_ms, 2),
                v.note.clone().unwrap_or_default()
            )
        }),
        verdict: match v {
            Some(_) => Verdict::Reported,
            None => Verdict::NotMeasured("not in this run".into()),
        },
        gap: String::new(),
        analysis: String::new(),
    });
}

pub fn write(w: &mut String, f: &Figures) {
    let mut rows = Vec::new();
    single_check_rows(f, &mut rows);
    peer_rows(f, &mut rows);
    batch_row(f, &mut rows);
    scale_rows(f, &mut rows);
    search_rows(f, &mut rows);
    abuse_rows(f, &mut rows);
    bulk_rows(f, &mut rows);
    receipt_row(f, &mut rows);

    let _ = writeln!(w, "\n## Targets\n");
    let _ = writeln!(
        w,
        "| target | measured | verdict | how far off |\n|---|---|---|---|"
    );
    for r in &rows {
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            r.target,
            r.measured.replace('|', "/"),
            r.verdict.text(),
            if r.gap.is_empty() { "–" } else { &r.gap }
        );
    }
    let unmet: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::NotMet))
        .collect();
    if !unmet.is_empty() {
        let _ = writeln!(
            w,
            "\n## Analysis: the targets not met\n\nFor each, how far off it is, where its CPU \
             went (\"Where the CPU goes\" above) and what would close it.\n"
        );
        for r in unmet {
            let _ = writeln!(
                w,
                "- **{}** ({}{}).{}",
                r.target,
                r.verdict.text(),
                if r.gap.is_empty() {
                    String::new()
                } else {
                    format!("; {}", r.gap)
                },
                if r.analysis.is_empty() {
                    String::new()
                } else {
                    format!(" {}", r.analysis)
                }
            );
        }
    }
}
