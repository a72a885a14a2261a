//! Logging: `tracing` with a request id per request (tracing-actix-web), human-readable
//! by default and JSON when `log_format = "json"`. `RUST_LOG` sets the filter.
//!
//! Every line goes to standard error: standard output belongs to the commands' answers
//! (`TOKEN=$(credit-registry token …)` must capture the token and nothing else, even on
//! a first run that warns about generating a development key).

use crate::config::LogFormat;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests start several servers) is harmless: keep the first.
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(fmt::layer().with_target(false).with_writer(std::io::stderr))
            .try_init(),
    };
}
