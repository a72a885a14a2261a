//! Refusals of callers over their rate are answered late: a `429` (rate limited, or too
//! many WebSockets waiting for `connection_init`) is held for its `Retry-After` time, at
//! most `limits.rate_limited_hold_ms`, before it is sent.
//!
//! Why: a refusal is cheap but not free, and a client in a closed loop that is refused at
//! once asks again at once. Three such clients made the server refuse ~6,000 requests a
//! second on a 2-core machine, and partners' checks lost a quarter of their throughput to
//! it. Held, the same client sends one request per connection per hold; it was going to
//! be refused until `Retry-After` anyway, so a well-behaved caller loses nothing.
//!
//! Holding costs a connection and a timer, so at most `limits.rate_limited_max_held`
//! refusals are held at once (process-wide); past that they are answered at once, as
//! before. The hold sits innermost, inside the access middleware, so the access line and
//! the request-duration metric show the time the caller really waited.

use crate::config::Limits;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::RETRY_AFTER;
use actix_web::middleware::Next;
use actix_web::web;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The process's held refusals.
pub struct RefusalHold {
    longest: Duration,
    places: Arc<Semaphore>,
}

impl RefusalHold {
    pub fn from_limits(limits: &Limits) -> Self {
        Self {
            longest: Duration::from_millis(limits.rate_limited_hold_ms),
            places: Arc::new(Semaphore::new(limits.rate_limited_max_held)),
        }
    }

    /// How long a refusal that asks the caller to retry after `retry_after` is held:
    /// that time, at most the configured hold.
    fn hold_for(&self, retry_after: Duration) -> Duration {
        retry_after.min(self.longest)
    }

    /// Waits before a refusal is sent, if a place is free.
    async fn hold(&self, retry_after: Duration) {
        let wait = self.hold_for(retry_after);
        if wait.is_zero() {
            return;
        }
        let Ok(_place) = self.places.clone().try_acquire_owned() else {
            crate::metrics::refusal_hold(false);
            return;
        };
        crate::metrics::refusal_hold(true);
        tokio::time::sleep(wait).await;
    }
}

/// The `Retry-After` of a rate-limit refusal (whole seconds, as the handlers send it).
fn retry_after<B>(response: &ServiceResponse<B>) -> Option<Duration> {
    if response.status() != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let seconds: u64 = response
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

pub async fn hold_refusals<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let hold = req.app_data::<web::Data<RefusalHold>>().cloned();
    let response = next.call(req).await?;
    if let (Some(hold), Some(wait)) = (hold, retry_after(&response)) {
        hold.hold(wait).await;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(ms: u64, places: usize) -> RefusalHold {
        let limits = Limits {
            rate_limited_hold_ms: ms,
            rate_limited_max_held: places,
            ..Limits::default()
        };
        RefusalHold::from_limits(&limits)
    }

    #[test]
    fn a_refusal_is_held_for_its_retry_after_at_most_the_configured_hold() {
        let h = hold(1_000, 4);
        assert_eq!(h.hold_for(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(
            h.hold_for(Duration::from_millis(200)),
            Duration::from_millis(200)
        );
        assert_eq!(hold(0, 4).hold_for(Duration::from_secs(3)), Duration::ZERO);
    }

    #[tokio::test]
    async fn refusals_past_the_places_are_answered_at_once() {
        let h = Arc::new(hold(60_000, 1));
        let first = tokio::spawn({
            let h = h.clone();
            async move { h.hold(Duration::from_secs(60)).await }
        });
        // The first takes the only place (it holds for a minute)...
        while h.places.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // ...so the second is answered at once, while the first is still held.
        h.hold(Duration::from_secs(60)).await;
        assert!(!first.is_finished());
        first.abort();
    }
}
