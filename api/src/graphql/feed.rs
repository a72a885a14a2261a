//! The change feed: `changes(after, first)` for mirroring the list page by page, and
//! the `registryChanged` subscription (graphql-transport-ws at `/graphql/ws`) pushing
//! the same events live.

use super::connection::{decode_cursor, encode_cursor, page_size};
use super::state;
use crate::domain::history::ChangeKind;
use crate::domain::lifecycle::ListingStatus;
use crate::graphql::guards::AUTHENTICATED;
use crate::graphql::limits::CostCharge;
use crate::service::feed::{self, ChangeEvent};
use crate::service::public::PublicListing;
use async_graphql::{Context, ErrorExtensions, ID, Object, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use std::sync::Arc;

const CURSOR_KIND: &str = "change";

fn cursor_of(revision_id: i64) -> String {
    encode_cursor(CURSOR_KIND, &revision_id.to_string())
}

fn decode(after: Option<&str>) -> Result<Option<i64>, crate::error::AppError> {
    after
        .map(|c| decode_cursor(CURSOR_KIND, c).and_then(|p| feed::position_of(&p)))
        .transpose()
}

/// One change of a listing, with the listing's public fields after it.
pub struct ListingChange(pub Arc<ChangeEvent>);

#[Object]
impl ListingChange {
    /// Pass it as `after` to continue from this event.
    async fn cursor(&self) -> String {
        cursor_of(self.0.revision_id)
    }
    async fn kind(&self) -> ChangeKind {
        self.0.kind
    }
    async fn listing_id(&self) -> ID {
        self.0.listing.id.clone()
    }
    /// The operator's unified social credit code.
    async fn uscc(&self) -> &str {
        &self.0.listing.uscc
    }
    async fn list_code(&self) -> &str {
        &self.0.listing.list_code
    }
    /// When the registry recorded the change: the feed's order.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// When the change took effect (a back-dated decision, the end of an expired period).
    async fn effective_at(&self) -> DateTime<Utc> {
        self.0.effective_at
    }
    /// The status after the change, at `occurredAt`.
    async fn status(&self) -> ListingStatus {
        self.0.status
    }
    /// Whether the listing is in force after the change, at `occurredAt`: a mirror drops
    /// the listing when this is false.
    async fn in_force(&self) -> bool {
        self.0.in_force
    }
    /// The listing's version after the change.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The measures applied after the change.
    async fn measure_codes(&self) -> &[String] {
        &self.0.measure_codes
    }
    /// The listing's public fields after the change.
    async fn listing(&self) -> &PublicListing {
        &self.0.listing
    }
}

/// The feed's page info: unlike other lists, `endCursor` is never null once a consumer
/// has a position, so it can keep it and ask again later.
#[derive(SimpleObject)]
pub struct FeedPageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct ListingChangeEdge {
    pub cursor: String,
    pub node: ListingChange,
}

#[derive(SimpleObject)]
pub struct ListingChangeConnection {
    pub edges: Vec<ListingChangeEdge>,
    /// `endCursor` is the last event's cursor (or the `after` given, on an empty page):
    /// keep it and ask again later for what happened since.
    pub page_info: FeedPageInfo,
}

#[derive(Default)]
pub struct FeedQuery;

#[Object]
impl FeedQuery {
    /// Listing changes in the order they were recorded, after `after` (from the start
    /// when omitted): decided, corrected, measures changed, expired, repaired, revoked,
    /// withdrawn, repair revoked. Any authenticated caller.
    #[graphql(guard = "AUTHENTICATED")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        first: Option<i32>,
    ) -> Result<ListingChangeConnection> {
        let st = state(ctx)?;
        let first = page_size(first, st.settings.limits.max_page_size)?;
        let position = decode(after.as_deref())?;
        let page = feed::page(&st.db, position, first).await?;
        let edges: Vec<ListingChangeEdge> = page
            .events
            .into_iter()
            .map(|e| ListingChangeEdge {
                cursor: cursor_of(e.revision_id),
                node: ListingChange(Arc::new(e)),
            })
            .collect();
        let end_cursor = edges.last().map(|e| e.cursor.clone()).or(after);
        Ok(ListingChangeConnection {
            edges,
            page_info: FeedPageInfo {
                has_next_page: page.has_next,
                end_cursor,
            },
        })
    }
}

#[derive(Default)]
pub struct FeedSubscription;

#[Subscription]
impl FeedSubscription {
    /// The same events as `changes`, pushed as they are committed. With `after` (a
    /// cursor from `changes` or an earlier event), the events since then are replayed
    /// first, so a mirror that reconnects misses nothing. Any authenticated caller;
    /// authenticate in `connection_init` with `{"Authorization": "Bearer <token>"}`.
    /// It ends when the token expires (the socket is closed with 4403) or the partner
    /// is deactivated (an `error` message with `FORBIDDEN`).
    // Both are the connection's doing (`http::ws`), not this resolver's.
    #[graphql(guard = "AUTHENTICATED")]
    async fn registry_changed(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<ListingChange>> + use<>> {
        let st = state(ctx)?;
        let position = decode(after.as_deref())?;
        // Each page replayed (from `after`, or after falling behind the broadcast) is
        // charged to the subscriber's bucket as `changes` charges its rows: one point per
        // event plus its selection. The subscription itself was charged once, for one
        // event's worth; without this a cursor of revision 0 read the whole history for
        // one token.
        let per_event = 1usize.saturating_add(selection_cost(ctx.field().selection_set()));
        let charge = ctx
            .data_opt::<CostCharge>()
            .cloned()
            .map(|charge| -> feed::ReplayCharge {
                Arc::new(move |events| {
                    let charge = charge.clone();
                    let cost = events.saturating_mul(per_event);
                    Box::pin(async move {
                        let refused = charge.charge(cost).await;
                        if refused.is_err() {
                            // The page was read: its cost is owed, as a refused
                            // document's is, so a resubscribe waits at the door.
                            charge.charge_refused(cost).await;
                        }
                        refused
                    })
                })
            });
        Ok(
            feed::live(&st.feed, st.db.clone(), position, charge).map(|item| {
                item.map(ListingChange).map_err(|e| match e {
                    feed::LiveError::Failed(e) => e.into_graphql(),
                    feed::LiveError::RateLimited(wait) => replay_refused(wait),
                })
            }),
        )
    }
}

/// One point per field of an event's selection, nested selections included (an event's
/// lists are small and count once, as in `graphql::cost`).
fn selection_cost<'a>(fields: impl Iterator<Item = async_graphql::SelectionField<'a>>) -> usize {
    fields.fold(0usize, |total, field| {
        total
            .saturating_add(1)
            .saturating_add(selection_cost(field.selection_set()))
    })
}

/// `RATE_LIMITED` with `details.retryAfter` in seconds, as a refused operation has.
fn replay_refused(wait: std::time::Duration) -> async_graphql::Error {
    let seconds = crate::http::rate_limit::retry_after_seconds(wait);
    async_graphql::Error::new(format!(
        "too many requests: replaying the change feed costs more than the rate limit has left; retry in {seconds} s"
    ))
    .extend_with(|_, ext| {
        ext.set("code", crate::graphql::limits::RATE_LIMITED);
        ext.set("details", async_graphql::Value::from_json(serde_json::json!({ "retryAfter": seconds })).unwrap_or_default());
    })
}
