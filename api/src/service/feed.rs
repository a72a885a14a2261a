//! The change feed: every recorded change of a listing that a partner mirroring the
//! list must see (decided, corrected, measures changed, expired, repaired, revoked,
//! withdrawn, repair revoked), in a stable order, read from `listing_revisions` by id.
//! Revisions are written under the audit chain lock, so ids grow in commit order and a
//! reader never sees a later id before an earlier one.
//!
//! Expiry is computed and needs no job; the feed still has to tell mirrors that a
//! listing left the list, so [`record_expiries`] records a `listing.expired` revision
//! (and audit event) once a listed period has run out. Checks never depend on it.
//!
//! [`FeedHub`] pushes the same events live: one task per server reads new revisions
//! when a change is committed (announced by any instance on PostgreSQL, see
//! `cluster::notify`; or at a poll interval, the fallback for a missed announcement and
//! for writers in other processes on SQLite) and broadcasts them; each subscription
//! replays from the database whatever it missed. Every instance runs its own pump for
//! its own subscribers: it only reads.

use super::Actor;
use super::history::RecordedListing;
use super::listing_search::{self, ListingFilter};
use super::public::{PublicListing, Related};
use crate::clock::Clock;
use crate::domain::history::{ChangeKind, effective_at, needs_expiry_event};
use crate::domain::lifecycle::ListingStatus;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::{listing, listing_revision};
use futures_util::Stream;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, broadcast};

/// One change of a listing, with the listing's public fields after it.
#[derive(Clone, Debug)]
pub struct ChangeEvent {
    /// The revision's id: the feed's position.
    pub revision_id: i64,
    pub kind: ChangeKind,
    /// When the registry recorded the change (the feed's order).
    pub occurred_at: DateTime<Utc>,
    /// When it took effect in valid time (a back-dated decision, the end of an expired period).
    pub effective_at: DateTime<Utc>,
    /// The listing's status as recorded, at `occurred_at`.
    pub status: ListingStatus,
    /// Whether the listing was in force at `occurred_at`.
    pub in_force: bool,
    pub version: i32,
    pub measure_codes: Vec<String>,
    pub listing: PublicListing,
}

/// A page of the feed.
#[derive(Clone, Debug, Default)]
pub struct FeedPage {
    pub events: Vec<ChangeEvent>,
    pub has_next: bool,
}

fn event_of(r: &RecordedListing, kind: ChangeKind, related: &Related) -> AppResult<ChangeEvent> {
    let periods = r.periods();
    Ok(ChangeEvent {
        revision_id: r.revision_id,
        kind,
        occurred_at: r.recorded_at,
        effective_at: effective_at(kind, &periods, r.recorded_at),
        status: r.status_at(r.recorded_at)?,
        in_force: r.in_force_at(r.recorded_at),
        version: r.row.version,
        measure_codes: r.measure_codes.clone(),
        listing: related.view(&r.row, &r.periods),
    })
}

/// Up to `first` events after revision `after`, in revision order. Changes to a
/// listing that was never decided (corrections or withdrawal of a proposal) are left out.
pub async fn page(db: &DatabaseConnection, after: Option<i64>, first: u64) -> AppResult<FeedPage> {
    let chunk = (first + 1).clamp(50, 1000);
    let mut recorded: Vec<(RecordedListing, ChangeKind)> = Vec::new();
    let mut cursor = after.unwrap_or(0);
    loop {
        let rows = listing_revision::Entity::find()
            .filter(listing_revision::Column::Id.gt(cursor))
            .filter(listing_revision::Column::Action.is_in(ChangeKind::feed_actions()))
            .order_by_asc(listing_revision::Column::Id)
            .limit(chunk)
            .all(db)
            .await?;
        let exhausted = (rows.len() as u64) < chunk;
        for rev in &rows {
            cursor = rev.id;
            let Some(kind) = ChangeKind::from_action(&rev.action) else {
                continue;
            };
            let r = RecordedListing::from_revision(rev)?;
            // Proposals are never on a list: a listing that was never decided (a
            // proposal, corrected or withdrawn) never appears in the feed.
            if !r.was_decided() {
                continue;
            }
            recorded.push((r, kind));
            if recorded.len() as u64 > first {
                break;
            }
        }
        if exhausted || recorded.len() as u64 > first {
            break;
        }
    }
    let has_next = recorded.len() as u64 > first;
    recorded.truncate(first as usize);
    let related = Related::load(
        db,
        &recorded.iter().map(|(r, _)| &r.row).collect::<Vec<_>>(),
    )
    .await?;
    let events = recorded
        .iter()
        .map(|(r, kind)| event_of(r, *kind, &related))
        .collect::<AppResult<Vec<_>>>()?;
    Ok(FeedPage { events, has_next })
}

/// The id of the newest revision: where a live feed starts.
pub async fn latest_revision_id(db: &DatabaseConnection) -> AppResult<i64> {
    // The id alone: the appender asks on every committed change, and the row carries the
    // listing's whole snapshot.
    let newest: Option<i64> = listing_revision::Entity::find()
        .select_only()
        .column(listing_revision::Column::Id)
        .order_by_desc(listing_revision::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.unwrap_or(0))
}

/// The newest revision recorded at or before `k` (of its latest record time, the highest
/// id; 0 if none): the list as the registry knew it at `k` is the revisions up to it,
/// since revisions take their ids and their record times both under the audit chain's
/// lock (`audit::begin_write_at`), so the two orders agree.
pub async fn revision_known_at(db: &DatabaseConnection, k: DateTime<Utc>) -> AppResult<i64> {
    let newest: Option<i64> = listing_revision::Entity::find()
        .select_only()
        .column(listing_revision::Column::Id)
        .filter(listing_revision::Column::RecordedAt.lte(k))
        // One probe of `idx_listing_revisions_record_time`.
        .order_by_desc(listing_revision::Column::RecordedAt)
        .order_by_desc(listing_revision::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(newest.unwrap_or(0))
}

/// `LISTED`, no period open at `now`, but one was open when the listing was last
/// recorded: the listings whose expiry the feed has not told yet.
fn expiry_candidates(now: DateTime<Utc>, backend: sea_orm::DbBackend) -> sea_orm::Condition {
    let open_when_recorded = crate::store::in_force::listing_has_open_period(Expr::col((
        listing::Entity,
        listing::Column::UpdatedAt,
    )));
    listing_search::condition(
        &ListingFilter {
            status: Some(ListingStatus::Expired),
            ..Default::default()
        },
        now,
        backend,
    )
    .add(open_when_recorded)
}

/// Records a `listing.expired` revision and audit event for every listing whose period
/// ran out since it was last recorded. Idempotent: a second run records nothing. Each
/// listing is re-checked inside its own write transaction, so concurrent runs (several
/// servers) cannot record one expiry twice. The listing's version goes up: an admin
/// holding the old version reloads, as after any other change.
pub async fn record_expiries(db: &DatabaseConnection, clock: &Clock) -> AppResult<usize> {
    let now = clock.now();
    let ids: Vec<i64> = listing::Entity::find()
        .select_only()
        .column(listing::Column::Id)
        .filter(expiry_candidates(now, db.get_database_backend()))
        .order_by_asc(listing::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let actor = Actor::system(format!("expiry-{}", uuid::Uuid::new_v4()));
    let mut recorded = 0;
    for id in ids {
        let (tx, at) = super::audit::begin_write_at(db, clock).await?;
        let Some(l) = listing::Entity::find_by_id(id).one(&tx).await? else {
            continue;
        };
        let periods = super::listings::periods_of(&tx, id).await?;
        let stored = l.status;
        if !needs_expiry_event(
            stored,
            &super::listings::to_periods(&periods),
            l.updated_at,
            at,
        ) {
            continue;
        }
        let before = super::listings::snapshot(&tx, &l).await?;
        let saved = super::listings::bump(l, at).update(&tx).await?;
        super::listings::finish_change(&tx, &actor, &saved, "listing.expired", Some(before), None)
            .await?;
        // Every instance's feed pushes the expiry (this one's is woken by the job).
        super::context::commit_announced(tx, crate::cluster::notify::Announcement::ListChanged)
            .await?;
        recorded += 1;
    }
    Ok(recorded)
}

/// Fans the feed out to live subscribers.
pub struct FeedHub {
    sender: broadcast::Sender<Arc<ChangeEvent>>,
    wake: Notify,
    /// Wakes the registry-log appender (`service::logs`) on the same changes.
    logged: Notify,
    /// The last revision id broadcast (set before sending, so a subscriber that reads it
    /// after subscribing receives every later event).
    position: AtomicI64,
}

impl FeedHub {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        Self {
            sender,
            wake: Notify::new(),
            logged: Notify::new(),
            position: AtomicI64::new(0),
        }
    }

    /// A listing change was committed: look for new events now.
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Waits for the pump's next run (the registry-log appender then compares
    /// [`FeedHub::position`] with what it logged, in memory).
    pub async fn pumped(&self) {
        self.logged.notified().await;
    }

    pub fn set_position(&self, revision_id: i64) {
        self.position.store(revision_id, Ordering::SeqCst);
    }

    pub fn position(&self) -> i64 {
        self.position.load(Ordering::SeqCst)
    }

    /// A receiver of every event after the returned position.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<ChangeEvent>>, i64) {
        let rx = self.sender.subscribe();
        (rx, self.position())
    }

    /// Broadcasts the events recorded since the last run. With nobody subscribed it only
    /// moves its position to the newest revision (one small query), so a new subscriber
    /// starts from the present; a subscriber that arrives meanwhile keeps the position
    /// where it was and reads what it missed from the database.
    pub async fn pump_once(&self, db: &DatabaseConnection) -> AppResult<()> {
        if self.sender.receiver_count() == 0 {
            let latest = latest_revision_id(db).await?;
            if self.sender.receiver_count() == 0 {
                self.set_position(std::cmp::max(latest, self.position()));
            }
            return Ok(());
        }
        loop {
            let page = page(db, Some(self.position()), 500).await?;
            for e in page.events {
                self.set_position(e.revision_id);
                // No receiver is not an error: nobody is subscribed.
                let _ = self.sender.send(Arc::new(e));
            }
            if !page.has_next {
                return Ok(());
            }
        }
    }

    /// Runs for the life of the server: on every notification, and every `poll`.
    pub async fn pump(self: Arc<Self>, db: DatabaseConnection, poll: Duration) {
        loop {
            let _ = tokio::time::timeout(poll, self.wake.notified()).await;
            if let Err(e) = self.pump_once(&db).await {
                tracing::warn!(error = %crate::error::one_line(&e), "change feed: reading new changes failed");
            }
            self.logged.notify_one();
        }
    }
}

/// Runs the expiry recorder every `interval` for the life of the server; with several
/// instances on one PostgreSQL database, each tick runs on one of them
/// (`cluster::locks`).
pub async fn expiry_job(
    db: DatabaseConnection,
    clock: Clock,
    hub: Arc<FeedHub>,
    interval: Duration,
) {
    use crate::cluster::locks::{Lock, run_exclusive};
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match run_exclusive(&db, Lock::ExpiryRecorder, record_expiries(&db, &clock)).await {
            Ok(None | Some(0)) => {}
            Ok(Some(n)) => {
                tracing::info!(recorded = n, "change feed: expiries recorded");
                hub.notify();
            }
            Err(e) => {
                tracing::warn!(error = %crate::error::one_line(&e), "change feed: recording expiries failed")
            }
        }
    }
}

/// What a page read from the database costs its subscriber: called with the number of
/// events a catch-up page read, before they are delivered; `Err(wait)` (the caller's
/// budget is spent) ends the stream with [`LiveError::RateLimited`]. Over HTTP the same
/// read is `changes(first: N)`, charged by its rows; a replay from an old cursor is the
/// same work, however long the stream.
pub type ReplayCharge = Arc<
    dyn Fn(usize) -> futures_util::future::BoxFuture<'static, Result<(), Duration>> + Send + Sync,
>;

/// Why a live stream ended.
#[derive(Debug)]
pub enum LiveError {
    Failed(AppError),
    /// The subscriber's rate limit refused a catch-up page: retry after this long.
    RateLimited(Duration),
}

struct LiveState {
    db: DatabaseConnection,
    charge: Option<ReplayCharge>,
    rx: broadcast::Receiver<Arc<ChangeEvent>>,
    last: i64,
    backlog: VecDeque<Arc<ChangeEvent>>,
    catching_up: bool,
    failed: bool,
}

/// Every event after `after` (default: from now on), in order and without gaps: the
/// stream first reads from the database what the broadcast cannot carry (a replay from
/// a cursor, events the hub has not broadcast yet), and again whenever the subscriber
/// falls too far behind the broadcast buffer.
///
/// The catch-up reads run on `db`, the primary: the broadcast carries what is committed
/// there, so a standby behind it would leave a gap between its newest event and the
/// first one broadcast. Each catch-up page that read events is paid through `charge`.
pub fn live(
    hub: &FeedHub,
    db: DatabaseConnection,
    after: Option<i64>,
    charge: Option<ReplayCharge>,
) -> impl Stream<Item = Result<Arc<ChangeEvent>, LiveError>> + use<> {
    let (rx, position) = hub.subscribe();
    let state = LiveState {
        db,
        charge,
        rx,
        last: after.unwrap_or(position),
        backlog: VecDeque::new(),
        catching_up: true,
        failed: false,
    };
    futures_util::stream::unfold(state, |mut s| async move {
        if s.failed {
            return None;
        }
        loop {
            if let Some(e) = s.backlog.pop_front() {
                s.last = e.revision_id;
                return Some((Ok(e), s));
            }
            if s.catching_up {
                match page(&s.db, Some(s.last), 500).await {
                    Ok(p) => {
                        if let Some(charge) = &s.charge
                            && !p.events.is_empty()
                            && let Err(wait) = charge(p.events.len()).await
                        {
                            s.failed = true;
                            return Some((Err(LiveError::RateLimited(wait)), s));
                        }
                        s.catching_up = p.has_next;
                        s.backlog.extend(p.events.into_iter().map(Arc::new));
                        continue;
                    }
                    Err(e) => {
                        s.failed = true;
                        return Some((Err(LiveError::Failed(e)), s));
                    }
                }
            }
            match s.rx.recv().await {
                Ok(e) if e.revision_id > s.last => {
                    s.last = e.revision_id;
                    return Some((Ok(e), s));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => s.catching_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Decodes a feed position: a revision id.
pub fn position_of(text: &str) -> AppResult<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| AppError::bad_input(format!("'{text}' is not a change feed cursor")))
}
