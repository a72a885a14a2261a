//! Reading the audit log: a filtered, keyset-paginated search, and the verification of
//! its hash chain. Nothing here writes: the log is append-only (the code has no update
//! or delete path, and database triggers refuse one).

use crate::domain::audit_chain::{ChainedEvent, event_hash};
use crate::error::{AppError, AppResult};
use chrono::{DateTime, Utc};
use entity::{audit_event, audit_head};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// The `prev_hash` of the first event.
pub fn genesis_hash() -> String {
    "0".repeat(64)
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// One page of events in chain (id) order after `after`.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<audit_event::Model>, bool)> {
    let mut q = audit_event::Entity::find();
    let text = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_string);
    if let Some(v) = text(&filter.entity_type) {
        q = q.filter(audit_event::Column::EntityType.eq(v));
    }
    if let Some(v) = text(&filter.entity_id) {
        q = q.filter(audit_event::Column::EntityId.eq(v));
    }
    if let Some(v) = text(&filter.actor) {
        q = q.filter(audit_event::Column::Actor.eq(v));
    }
    if let Some(v) = text(&filter.action) {
        q = q.filter(audit_event::Column::Action.eq(v));
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        return Err(AppError::bad_input("`from` must be before `to`"));
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_event::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(audit_event::Column::OccurredAt.lt(to));
    }
    super::page::fetch(
        db,
        super::page::ascending_after(q, audit_event::Column::Id, after),
        first,
    )
    .await
}

/// The verdict on the chain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    pub ok: bool,
    pub checked_events: u64,
    /// The first event whose link does not hold (for removed events at the end: the id
    /// the chain's head still names).
    pub first_broken_event_id: Option<i64>,
    pub problem: Option<String>,
    pub last_event_id: Option<i64>,
    /// The hash of `last_event_id`: with it, the head this verification vouches for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_hash: Option<String>,
}

/// An `(event id, hash)` a verification saw earlier, kept outside the database (see
/// `credit-registry verify-audit --expect`). The chain alone is recomputable by anyone
/// who can write the database: only a head kept elsewhere catches a history rewritten
/// up to it, because event `id` then no longer has `hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHead {
    pub event_id: i64,
    /// Lower-case hex SHA-256, as `audit_events.hash` stores it.
    pub hash: String,
}

impl ExpectedHead {
    /// `ID:HASH`, as `verify-audit` prints it (`head ID HASH`): an event id of at least 1
    /// and the full 64-digit hash (a prefix would be easier to match by a forger).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (id, hash) = text
            .trim()
            .split_once(':')
            .ok_or_else(|| format!("'{text}' is not ID:HASH"))?;
        let event_id: i64 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 1)
            .ok_or_else(|| format!("'{id}' is not an audit event id"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "'{hash}' is not a SHA-256 hash (64 hexadecimal digits)"
            ));
        }
        Ok(Self { event_id, hash })
    }
}

/// What a stored event's hash covers (the chain's own fields of the row).
pub fn chained(e: &audit_event::Model) -> ChainedEvent<'_> {
    ChainedEvent {
        occurred_at: e.occurred_at,
        actor: &e.actor,
        role: &e.role,
        action: &e.action,
        entity_type: &e.entity_type,
        entity_id: &e.entity_id,
        before: e.before.as_ref(),
        after: e.after.as_ref(),
        reason: e.reason.as_deref(),
        request_id: &e.request_id,
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Checks events one at a time, in id order: each must link to the hash of the one
/// before it and hash to its own recorded hash. A pure state machine, so the database
/// is read a page at a time.
pub struct ChainVerifier {
    expected_prev: String,
    previous_id: Option<i64>,
    checked: u64,
    broken: Option<(i64, String)>,
    /// Heads kept elsewhere that the verified chain must still contain.
    expected: Vec<ExpectedHead>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        Self {
            expected_prev: genesis_hash(),
            previous_id: None,
            checked: 0,
            broken: None,
            expected: Vec::new(),
        }
    }

    /// A verifier that also requires each of `heads` to be in the chain it verifies.
    pub fn expecting(heads: &[ExpectedHead]) -> Self {
        Self {
            expected: heads.to_vec(),
            ..Self::new()
        }
    }

    pub fn is_broken(&self) -> bool {
        self.broken.is_some()
    }

    /// Checks the next event; once the chain is broken, later events are ignored.
    pub fn feed(&mut self, e: &audit_event::Model) {
        if self.broken.is_some() {
            return;
        }
        if e.prev_hash != self.expected_prev {
            let before = match self.previous_id {
                Some(id) => format!("event {id}"),
                None => "the start of the chain".to_string(),
            };
            self.broken = Some((
                e.id,
                format!(
                    "event {} links to {} but {before} has hash {}: an event before it was removed, inserted or altered",
                    e.id,
                    short(&e.prev_hash),
                    short(&self.expected_prev)
                ),
            ));
            return;
        }
        let recomputed = event_hash(&e.prev_hash, &chained(e));
        if recomputed != e.hash {
            self.broken = Some((
                e.id,
                format!(
                    "event {}'s stored fields hash to {}, not to its recorded hash {}: the event was altered",
                    e.id,
                    short(&recomputed),
                    short(&e.hash)
                ),
            ));
            return;
        }
        if let Some(want) = self.expected.iter().find(|h| h.event_id == e.id)
            && want.hash != e.hash
        {
            self.broken = Some((
                e.id,
                format!(
                    "event {} has hash {}, not the expected {}: the history up to it was rewritten (the chain was recomputed)",
                    e.id,
                    short(&e.hash),
                    short(&want.hash)
                ),
            ));
            return;
        }
        self.expected_prev = e.hash.clone();
        self.previous_id = Some(e.id);
        self.checked += 1;
    }

    /// The verdict, once every event up to the head has been fed: the head must name the
    /// last event and its hash, so removing events at the end is caught too.
    pub fn finish(self, head: &audit_head::Model) -> ChainReport {
        let last_event_id = self.previous_id;
        if let Some((id, problem)) = self.broken {
            return ChainReport {
                ok: false,
                checked_events: self.checked,
                first_broken_event_id: Some(id),
                problem: Some(problem),
                last_event_id,
                last_hash: None,
            };
        }
        let last_id = last_event_id.unwrap_or(0);
        if head.last_event_id != last_id || head.last_hash != self.expected_prev {
            return ChainReport {
                ok: false,
                checked_events: self.checked,
                first_broken_event_id: Some(head.last_event_id),
                problem: Some(format!(
                    "the chain's head names event {} with hash {}, but the last stored event is {} with hash {}: events at the end were removed or altered",
                    head.last_event_id,
                    short(&head.last_hash),
                    last_id,
                    short(&self.expected_prev)
                )),
                last_event_id,
                last_hash: None,
            };
        }
        // An expected head the chain never reached: its event is gone, or the head was
        // moved back below it.
        if let Some(missing) = self.expected.iter().find(|h| h.event_id > last_id) {
            return ChainReport {
                ok: false,
                checked_events: self.checked,
                first_broken_event_id: Some(missing.event_id),
                problem: Some(format!(
                    "expected event {} with hash {}, but the chain ends at event {last_id}: events were removed",
                    missing.event_id,
                    short(&missing.hash)
                )),
                last_event_id,
                last_hash: None,
            };
        }
        ChainReport {
            ok: true,
            checked_events: self.checked,
            first_broken_event_id: None,
            problem: None,
            last_event_id,
            last_hash: Some(self.expected_prev),
        }
    }
}

/// Recomputes every hash from the stored fields, `page` events at a time, up to the
/// event the head named when verification began (later events are not yet settled).
pub async fn verify_chain<C: ConnectionTrait>(db: &C, page: u64) -> AppResult<ChainReport> {
    verify_chain_expecting(db, page, &[]).await
}

/// [`verify_chain`], also requiring every one of `heads` (saved off-box from earlier
/// runs) to be in the verified chain with its hash.
pub async fn verify_chain_expecting<C: ConnectionTrait>(
    db: &C,
    page: u64,
    heads: &[ExpectedHead],
) -> AppResult<ChainReport> {
    let head = audit_head::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("audit_head row is missing")))?;
    let mut verifier = ChainVerifier::expecting(heads);
    let mut after = 0i64;
    loop {
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Id.gt(after))
            .filter(audit_event::Column::Id.lte(head.last_event_id))
            .order_by_asc(audit_event::Column::Id)
            .limit(page.max(1))
            .all(db)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.id;
        for e in &rows {
            verifier.feed(e);
        }
        if verifier.is_broken() || (rows.len() as u64) < page.max(1) {
            break;
        }
    }
    Ok(verifier.finish(&head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn chain(n: i64) -> Vec<audit_event::Model> {
        let mut prev = genesis_hash();
        (1..=n)
            .map(|id| {
                let occurred_at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::seconds(id);
                let after = json!({"name": format!("n{id}"), "a": {"z": 1, "b": 2}});
                let hash = event_hash(
                    &prev,
                    &ChainedEvent {
                        occurred_at,
                        actor: "a",
                        role: "admin",
                        action: "operator.upsert",
                        entity_type: "operator",
                        entity_id: "1",
                        before: None,
                        after: Some(&after),
                        reason: None,
                        request_id: "r",
                    },
                );
                let e = audit_event::Model {
                    id,
                    occurred_at,
                    actor: "a".into(),
                    role: "admin".into(),
                    action: "operator.upsert".into(),
                    entity_type: "operator".into(),
                    entity_id: "1".into(),
                    before: None,
                    after: Some(after),
                    reason: None,
                    request_id: "r".into(),
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    fn head_of(events: &[audit_event::Model]) -> audit_head::Model {
        let last = events.last().unwrap();
        audit_head::Model {
            id: 1,
            last_event_id: last.id,
            last_hash: last.hash.clone(),
        }
    }

    fn verify(events: &[audit_event::Model], head: &audit_head::Model) -> ChainReport {
        let mut v = ChainVerifier::new();
        for e in events {
            v.feed(e);
        }
        v.finish(head)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let events = chain(5);
        let r = verify(&events, &head_of(&events));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.checked_events, 5);
        let empty = audit_head::Model {
            id: 1,
            last_event_id: 0,
            last_hash: genesis_hash(),
        };
        assert!(verify(&[], &empty).ok);
    }

    #[test]
    fn an_altered_field_is_reported_at_its_event() {
        let mut events = chain(5);
        let head = head_of(&events);
        events[2].actor = "mallory".into();
        let r = verify(&events, &head);
        assert!(!r.ok);
        assert_eq!(r.first_broken_event_id, Some(3));
        assert_eq!(r.checked_events, 2);
        assert!(r.problem.unwrap().contains("altered"));
    }

    #[test]
    fn key_order_of_stored_json_does_not_matter() {
        let mut events = chain(2);
        let head = head_of(&events);
        events[0].after = Some(serde_json::from_str(r#"{"a":{"b":2,"z":1},"name":"n1"}"#).unwrap());
        assert!(verify(&events, &head).ok);
    }

    #[test]
    fn a_removed_event_breaks_the_next_link() {
        let mut events = chain(5);
        let head = head_of(&events);
        events.remove(1);
        let r = verify(&events, &head);
        assert_eq!(r.first_broken_event_id, Some(3));
        assert!(r.problem.unwrap().contains("event 1"));
    }

    /// What a writer with the database can do: recompute every hash and link from the
    /// first edited event on, and move the head.
    fn recompute(events: &mut [audit_event::Model]) {
        let mut prev = genesis_hash();
        for e in events.iter_mut() {
            e.prev_hash = prev.clone();
            e.hash = event_hash(&prev, &chained(e));
            prev = e.hash.clone();
        }
    }

    fn verify_expecting(
        events: &[audit_event::Model],
        head: &audit_head::Model,
        heads: &[ExpectedHead],
    ) -> ChainReport {
        let mut v = ChainVerifier::expecting(heads);
        for e in events {
            v.feed(e);
        }
        v.finish(head)
    }

    #[test]
    fn a_recomputed_rewrite_passes_alone_and_fails_an_expected_head() {
        let events = chain(5);
        let saved = ExpectedHead {
            event_id: 3,
            hash: events[2].hash.clone(),
        };
        let r = verify_expecting(&events, &head_of(&events), std::slice::from_ref(&saved));
        assert!(r.ok, "{r:?}");
        assert_eq!(r.last_event_id, Some(5));
        assert_eq!(r.last_hash.as_deref(), Some(events[4].hash.as_str()));

        // Event 2 rewritten, the chain recomputed, the head moved: the chain holds.
        let mut forged = events.clone();
        forged[1].actor = "bob".into();
        recompute(&mut forged);
        let head = head_of(&forged);
        assert!(verify(&forged, &head).ok);
        // The head kept elsewhere does not.
        let r = verify_expecting(&forged, &head, std::slice::from_ref(&saved));
        assert!(!r.ok);
        assert_eq!(r.first_broken_event_id, Some(3));
        assert!(r.problem.unwrap().contains("rewritten"));
        assert_eq!(r.last_hash, None);

        // Events appended after the saved head are not caught by it: that is the limit.
        let mut extended = chain(6);
        extended[5].actor = "bob".into();
        recompute(&mut extended);
        let r = verify_expecting(&extended, &head_of(&extended), std::slice::from_ref(&saved));
        assert!(r.ok);

        // Events removed back below the saved head are.
        let cut = &events[..2];
        let r = verify_expecting(cut, &head_of(cut), &[saved]);
        assert!(!r.ok);
        assert_eq!(r.first_broken_event_id, Some(3));
    }

    #[test]
    fn expected_heads_parse_as_printed() {
        let hash = "a".repeat(64);
        assert_eq!(
            ExpectedHead::parse(&format!(" 12:{} ", hash.to_uppercase())),
            Ok(ExpectedHead {
                event_id: 12,
                hash: hash.clone()
            })
        );
        for bad in [
            format!("12 {hash}"),
            format!("0:{hash}"),
            format!("x:{hash}"),
            "12:abc".to_string(),
            format!("12:{}", "g".repeat(64)),
        ] {
            assert!(ExpectedHead::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_removed_last_event_is_caught_by_the_head() {
        let mut events = chain(5);
        let head = head_of(&events);
        events.pop();
        let r = verify(&events, &head);
        assert!(!r.ok);
        assert_eq!(r.first_broken_event_id, Some(5));
        assert_eq!(r.checked_events, 4);
    }
}
