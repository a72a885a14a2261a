//! The database's own ceilings, driven with the same random codes as the HTTP load:
//! the primary-key lookup by code (`uscc = $1`), and the bare `uscc = ANY($1)` of a
//! batch. Prepared statements, one connection per client, closed loop.

use crate::stats::{Record, summarize};
use bench_seed::Population;
use bench_seed::population::Rng;
use sea_orm::sqlx::{self, postgres::PgPoolOptions};
use std::time::{Duration, Instant};

pub const LOOKUP_SQL: &str = "SELECT * FROM operators WHERE uscc = $1";
pub const ANY_SQL: &str = "SELECT * FROM operators WHERE uscc = ANY($1)";

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PgScenario {
    /// One code per query.
    Lookup,
    /// `--batch-size` codes per query with `= ANY($1)`.
    Any,
}

pub struct PgLoad {
    pub database_url: String,
    pub scenario: PgScenario,
    pub connections: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub population: Population,
    pub batch_size: u32,
    pub seed: u64,
    pub scale: String,
}

impl PgLoad {
    pub async fn run(self) -> anyhow::Result<Record> {
        let pool = PgPoolOptions::new()
            .max_connections(self.connections)
            .min_connections(self.connections)
            .connect(&self.database_url)
            .await?;
        let measure_from = Instant::now() + self.warmup;
        let stop = measure_from + self.duration;
        let mut tasks = Vec::new();
        for id in 0..self.connections {
            let mut conn = pool.acquire().await?;
            let population = self.population.clone();
            let scenario = self.scenario;
            let batch = self.batch_size;
            let mut rng = Rng::new(self.seed, 5000 + u64::from(id), u64::from(self.connections));
            tasks.push(tokio::spawn(async move {
                let mut micros = Vec::new();
                let mut errors = 0u64;
                let mut sample = None;
                while Instant::now() < stop {
                    let started;
                    let result = match scenario {
                        PgScenario::Lookup => {
                            let code = population.code(rng.below(population.operators));
                            started = Instant::now();
                            sqlx::query(LOOKUP_SQL)
                                .bind(code)
                                .fetch_optional(&mut *conn)
                                .await
                                .map(|_| ())
                        }
                        PgScenario::Any => {
                            let codes: Vec<String> = (0..batch)
                                .map(|_| population.code(rng.below(population.operators)))
                                .collect();
                            started = Instant::now();
                            sqlx::query(ANY_SQL)
                                .bind(codes)
                                .fetch_all(&mut *conn)
                                .await
                                .map(|_| ())
                        }
                    };
                    let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
                    if started < measure_from || started >= stop {
                        continue;
                    }
                    match result {
                        Ok(()) => micros.push(us),
                        Err(e) => {
                            errors += 1;
                            sample.get_or_insert_with(|| e.to_string());
                        }
                    }
                }
                (micros, errors, sample)
            }));
        }
        let mut micros = Vec::new();
        let mut errors = 0;
        let mut samples = Vec::new();
        for t in tasks {
            let (m, e, s) = t.await?;
            micros.extend(m);
            errors += e;
            samples.extend(s);
        }
        pool.close().await;
        samples.truncate(3);
        let seconds = self.duration.as_secs_f64();
        Ok(Record {
            kind: "pg".into(),
            scenario: match self.scenario {
                PgScenario::Lookup => "lookup".into(),
                PgScenario::Any => "any".into(),
            },
            query: match self.scenario {
                PgScenario::Lookup => LOOKUP_SQL.into(),
                PgScenario::Any => ANY_SQL.into(),
            },
            scale: self.scale,
            operators: self.population.operators,
            connections: self.connections,
            duration_s: seconds,
            summary: summarize(micros, errors, seconds),
            batch_size: (self.scenario == PgScenario::Any).then_some(self.batch_size),
            error_samples: samples,
            ..Record::default()
        })
    }
}
