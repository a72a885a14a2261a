//! Where a measurement's CPU went: the server, PostgreSQL, the load generator and
//! everything else, read from `/proc` at the start and the end of the window.
//!
//! Every process on this machine shares the same two cores, so a rate alone cannot say
//! whether the service is slow or merely starved; the split says how many milliseconds
//! of CPU one request cost each party. PostgreSQL is every process named `postgres`
//! (the postmaster and its backends); a backend that exits inside the window is still
//! counted, because its time moves into the postmaster's `cutime`/`cstime` when it is
//! reaped, and those are summed too.

use serde::{Deserialize, Serialize};

/// Clock ticks per second of `/proc` times (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime (+ cutime + cstime if `children`) of one `/proc/<pid>/stat` text.
fn ticks_of_stat(stat: &str, children: bool) -> Option<(String, u64)> {
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14, stime 15, cutime 16,
    // cstime 17; here field 3 is index 0.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let mut ticks = field(14)? + field(15)?;
    if children {
        ticks += field(16)? + field(17)?;
    }
    Some((comm, ticks))
}

fn process_ticks(pid: u32, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of_stat(&stat, children).map(|(_, t)| t)
}

/// Every `postgres` process's own and reaped children's ticks.
fn postgres_ticks() -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|s| ticks_of_stat(&s, true))
        .filter(|(comm, _)| comm == "postgres")
        .map(|(_, t)| t)
        .sum()
}

/// Busy and total ticks of the whole machine (first line of `/proc/stat`).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// The counters at one instant.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    server: Option<u64>,
    postgres: u64,
    loadgen: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl Snapshot {
    /// `server_pid`: the process under test (the registry, or PostGraphile's node).
    pub fn take(server_pid: Option<u32>) -> Self {
        let (busy, total) = machine_ticks().unwrap_or((0, 0));
        Self {
            server: server_pid.and_then(|p| process_ticks(p, true)),
            postgres: postgres_ticks(),
            loadgen: process_ticks(std::process::id(), false).unwrap_or(0),
            machine_busy: busy,
            machine_total: total,
        }
    }
}

/// CPU seconds each party spent in the window, and per request.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CpuSplit {
    pub window_s: f64,
    /// Cores' worth of time in the window (window × cores).
    pub machine_s: f64,
    pub server_s: Option<f64>,
    pub postgres_s: f64,
    pub loadgen_s: f64,
    /// Busy time of every other process (and the kernel's interrupts).
    pub other_s: f64,
    /// Idle time of the machine in the window.
    pub idle_s: f64,
    /// CPU milliseconds per successful request, per party.
    pub per_request_ms: Option<PerRequest>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PerRequest {
    pub server: Option<f64>,
    pub postgres: f64,
    pub loadgen: f64,
    pub other: f64,
}

/// The split between two snapshots, `requests` of them answered.
pub fn split(start: &Snapshot, end: &Snapshot, window_s: f64, requests: u64) -> CpuSplit {
    let hz = ticks_per_second();
    let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / hz;
    let server_s = match (start.server, end.server) {
        (Some(a), Some(b)) => Some(secs(a, b)),
        _ => None,
    };
    let postgres_s = secs(start.postgres, end.postgres);
    let loadgen_s = secs(start.loadgen, end.loadgen);
    let busy_s = secs(start.machine_busy, end.machine_busy);
    let machine_s = secs(start.machine_total, end.machine_total);
    let other_s = (busy_s - server_s.unwrap_or(0.0) - postgres_s - loadgen_s).max(0.0);
    let per = |s: f64| s * 1000.0 / requests as f64;
    CpuSplit {
        window_s,
        machine_s,
        server_s,
        postgres_s,
        loadgen_s,
        other_s,
        idle_s: (machine_s - busy_s).max(0.0),
        per_request_ms: (requests > 0).then(|| PerRequest {
            server: server_s.map(per),
            postgres: per(postgres_s),
            loadgen: per(loadgen_s),
            other: per(other_s),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (postgres: a (b) c) S 1 2 3 4 5 6 7 8 9 10 111 222 333 444 20 0 1";
        assert_eq!(
            ticks_of_stat(stat, false),
            Some(("postgres: a (b) c".into(), 333))
        );
        assert_eq!(
            ticks_of_stat(stat, true),
            Some(("postgres: a (b) c".into(), 333 + 777))
        );
        assert_eq!(ticks_of_stat("garbage", false), None);
    }

    #[test]
    fn this_process_is_seen_spending_cpu() {
        let start = Snapshot::take(Some(std::process::id()));
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let end = Snapshot::take(Some(std::process::id()));
        let s = split(&start, &end, 0.3, 10);
        assert!(s.loadgen_s > 0.1, "{s:?}");
        assert!(s.server_s.is_some_and(|v| v > 0.1), "{s:?}");
        assert!(s.per_request_ms.is_some());
    }
}
