//! What one rate-limit decision costs, in process and through the shared store: the
//! server's own `RateLimiter` (the same calls the HTTP and WebSocket handlers make),
//! built once without and once with `limits.shared_store_url`.
//!
//! ```sh
//! cargo run --release -p rate-limit-bench -- --redis redis://127.0.0.1:6379
//! ```
//!
//! Prints, for each mode, the latency of one decision by one caller (mean, p50, p99,
//! max) and the decisions per second of `--tasks` concurrent callers for `--seconds`.
//! With `--http`, also the requests per second of a whole server (started in this
//! process on port 0 with a throwaway SQLite database) answering `{ __typename }` to
//! `--tasks` concurrent callers, with the shared store off and on.
//! Talks to the given Redis and its own server only (loopback); bounded in count and time.

use api::config::Limits;
use api::http::rate_limit::{RateKey, RateLimiter};
use clap::Parser;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The Redis of the shared mode.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// Sequential decisions measured for the latency figures.
    #[arg(long, default_value_t = 20_000)]
    decisions: usize,
    /// Concurrent callers for the throughput figure.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Seconds of the throughput measurement, per mode.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Also measure a whole server's request rate with the store off and on.
    #[arg(long)]
    http: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("rate-limit decisions ({profile} build)");
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10} {:>16}",
        "mode", "mean µs", "p50 µs", "p99 µs", "max µs", "decisions/s"
    );
    for shared in [false, true] {
        let limits = Limits {
            // High enough that every decision is a full one that passes (the work of
            // a refusal is the same).
            rate_per_second: 1_000_000_000,
            rate_burst: 1_000_000_000,
            shared_store_url: shared.then(|| args.redis.clone()),
            shared_store_prefix: format!("bench:{}:", uuid::Uuid::new_v4().simple()),
            shared_store_timeout_ms: 1_000,
            ..Limits::default()
        };
        let limiter = Arc::new(RateLimiter::from_limits(&limits)?);
        let key = RateKey::Subject("partner:bench".into());
        // Warm-up: the connection and the script's first load.
        for _ in 0..100 {
            limiter.check(&key, 1).await.ok();
        }
        let mut samples = Vec::with_capacity(args.decisions);
        for _ in 0..args.decisions {
            let started = Instant::now();
            limiter
                .check(&key, 1)
                .await
                .map_err(|w| anyhow::anyhow!("refused for {w:?}"))?;
            samples.push(started.elapsed());
        }
        let throughput = throughput(&limiter, args.tasks, args.seconds).await;
        samples.sort();
        let micros = |d: Duration| d.as_secs_f64() * 1e6;
        let mean = samples.iter().map(|d| micros(*d)).sum::<f64>() / samples.len().max(1) as f64;
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q) as usize).min(samples.len().saturating_sub(1));
            samples.get(i).copied().map_or(0.0, micros)
        };
        println!(
            "{:<12} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>16.0}",
            if shared { "redis" } else { "in-process" },
            mean,
            at(0.5),
            at(0.99),
            at(1.0),
            throughput
        );
    }
    if args.http {
        println!();
        println!(
            "HTTP: {} callers, {} s per mode, {{ __typename }} as one auditor",
            args.tasks, args.seconds
        );
        for shared in [false, true] {
            let rate = http_rate(&args, shared).await?;
            println!(
                "{:<12} {:>10.0} requests/s",
                if shared { "redis" } else { "in-process" },
                rate
            );
        }
    }
    Ok(())
}

/// Requests per second of a server of our own, store off or on.
async fn http_rate(args: &Args, shared: bool) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let mut settings = api::config::Settings {
        bind: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("registry.db").display()
        )),
        workers: 2,
        ..Default::default()
    };
    settings.jobs.expiry_interval_seconds = 0;
    settings.jobs.idempotency_purge_interval_seconds = 0;
    settings.limits.rate_per_second = 1_000_000_000;
    settings.limits.rate_burst = 1_000_000_000;
    if shared {
        settings.limits.shared_store_url = Some(args.redis.clone());
        settings.limits.shared_store_prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());
        settings.limits.shared_store_timeout_ms = 1_000;
    }
    let app = api::startup::Application::build(settings).await?;
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    let token = app.state().tokens.issue(&api::auth::tokens::TokenRequest {
        subject: "bench-auditor".into(),
        role: api::auth::Role::Auditor,
        domains: Vec::new(),
        region: None,
        ttl: chrono::Duration::hours(1),
    })?;
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let body = serde_json::json!({ "query": "{ __typename }" });
    let send = |client: reqwest::Client, token: String, body: serde_json::Value, url: String| async move {
        client
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    };
    // Warm-up: connections, the script's load.
    for _ in 0..50 {
        send(client.clone(), token.clone(), body.clone(), url.clone()).await;
    }
    let until = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..args.tasks)
        .map(|_| {
            let (client, token, body, url) =
                (client.clone(), token.clone(), body.clone(), url.clone());
            tokio::spawn(async move {
                let mut ok = 0u64;
                while Instant::now() < until {
                    if send(client.clone(), token.clone(), body.clone(), url.clone()).await {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut total = 0u64;
    for handle in handles {
        total += handle.await.unwrap_or(0);
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    server.abort();
    Ok(rate)
}

/// Decisions per second of `tasks` callers (distinct subjects) for `seconds`.
async fn throughput(limiter: &Arc<RateLimiter>, tasks: usize, seconds: f64) -> f64 {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let key = RateKey::Subject(format!("partner:bench-{i}"));
                let mut n = 0u64;
                while Instant::now() < until {
                    limiter.check(&key, 1).await.ok();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0u64;
    for handle in handles {
        total += handle.await.unwrap_or(0);
    }
    total as f64 / started.elapsed().as_secs_f64()
}
