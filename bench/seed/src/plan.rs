//! The rows of a bench data set: operators, listings in every state with their periods
//! and measures, and check records. Each row is a pure function of the plan and its
//! index, so tables can be generated in separate passes (one `COPY` each) and still agree.

use super::population::{DIVISIONS, Population, Rng, Slot, stream};
use super::synth;
use api::domain::names::normalize_name;
use api::domain::working_days::WorkingCalendar;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc, Weekday};

/// Listing dates start here (the registry's data runs from 2021).
pub const FIRST_DECISION: NaiveDate = match NaiveDate::from_ymd_opt(2021, 3, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Operators were registered (imported into the registry) from this day on.
const IMPORT_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2021, 1, 4) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// Check records start here.
const FIRST_CHECK: NaiveDate = match NaiveDate::from_ymd_opt(2024, 1, 2) {
    Some(d) => d,
    None => NaiveDate::MIN,
};
/// China Standard Time, in seconds east of UTC (no daylight saving).
const CST_OFFSET_SECONDS: i64 = 8 * 3600;
/// Request id written on every generated row that has one.
pub const SEED_REQUEST_ID: &str = "seed-bench";

/// A list as the generator needs it (from `credit_lists` and `list_default_measures`).
#[derive(Clone, Debug)]
pub struct ListInfo {
    pub id: i64,
    pub code: String,
    pub legal_basis: String,
    pub period_months: u32,
    pub defence_working_days: u32,
    pub publicity_stop_working_days: u32,
    pub repair_min_months: u32,
    pub measures: Vec<MeasureInfo>,
}

#[derive(Clone, Debug)]
pub struct MeasureInfo {
    pub id: i64,
    pub domain: String,
    pub effect: String,
}

#[derive(Clone, Debug)]
pub struct Category {
    pub code: String,
    pub name: String,
    pub article: String,
}

/// The catalogues the generated listings refer to.
#[derive(Clone, Debug, Default)]
pub struct Catalogue {
    pub lists: Vec<ListInfo>,
    pub categories: Vec<Category>,
    pub calendar: WorkingCalendar,
}

/// A listing's state now. `Expired` and `Relisted` are stored as `LISTED`: expiry is
/// computed from the dates, and a revoked repair puts the listing back on the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListingState {
    Proposed,
    ListedInForce,
    /// Repaired, then the repair was revoked (obtained by fraud): a second period in force.
    Relisted,
    Expired,
    Withdrawn,
    Revoked,
    Repaired,
}

impl ListingState {
    pub fn status(self) -> &'static str {
        match self {
            Self::Proposed => "PROPOSED",
            Self::ListedInForce | Self::Relisted | Self::Expired => "LISTED",
            Self::Withdrawn => "WITHDRAWN",
            Self::Revoked => "REVOKED",
            Self::Repaired => "REPAIRED",
        }
    }
}

/// States of the listings that are not in force, repeating every 20 listings:
/// 10 % proposed, 40 % expired, 10 % withdrawn, 15 % revoked, 25 % repaired. The first
/// five cover every state, so even a tiny data set has all of them.
const OTHER_CYCLE: [ListingState; 20] = {
    use ListingState::*;
    [
        Proposed, Expired, Withdrawn, Revoked, Repaired, Expired, Repaired, Expired, Revoked,
        Expired, Repaired, Expired, Proposed, Expired, Withdrawn, Repaired, Expired, Revoked,
        Expired, Repaired,
    ]
};
/// One in-force listing in 20 is a relisting after a revoked repair.
const RELISTED_EVERY: u64 = 20;

/// An interval during which a listing is in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Period {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    pub removal_kind: Option<&'static str>,
}

impl Period {
    /// In force at `t`, by the registry's own rule (`Period::covers` in
    /// `api::domain::lifecycle`), so the data set agrees with what checks will answer.
    pub fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        api::domain::lifecycle::Period {
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            removed_at: self.removed_at,
        }
        .covers(t)
    }
}

/// The dates and state of one listing.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub state: ListingState,
    pub list: usize,
    pub penalty_date: NaiveDate,
    pub notice_date: NaiveDate,
    pub defence_deadline: NaiveDate,
    pub proposed_at: DateTime<Utc>,
    pub decision_date: Option<NaiveDate>,
    pub period_months_override: Option<u32>,
    pub periods: Vec<Period>,
    /// Withdrawal, revocation or repair day (the listing's current removal).
    pub removal_date: Option<NaiveDate>,
    pub publicity_stop_deadline: Option<NaiveDate>,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OperatorRow {
    pub id: i64,
    pub uscc: String,
    pub name: String,
    pub name_normalized: String,
    pub former_names: Vec<String>,
    pub entity_type: Option<String>,
    pub region_code: String,
    pub legal_representative: Option<String>,
    pub legal_rep_id_number: Option<String>,
    pub address: Option<String>,
    pub address_is_personal: bool,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ListingRow {
    pub id: i64,
    pub operator_id: i64,
    pub list_id: i64,
    pub status: &'static str,
    pub authority: String,
    pub authority_region: String,
    pub penalty_doc_no: String,
    pub penalty_date: NaiveDate,
    pub violation_category: String,
    pub reason: String,
    pub legal_basis: String,
    pub notice_date: NaiveDate,
    pub defence_deadline: NaiveDate,
    pub proposed_at: DateTime<Utc>,
    pub decision_doc_no: Option<String>,
    pub decision_date: Option<NaiveDate>,
    pub period_months_override: Option<i32>,
    pub removal_doc_no: Option<String>,
    pub removal_reason: Option<String>,
    pub publicity_stop_deadline: Option<NaiveDate>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PeriodRow {
    pub listing_id: i64,
    pub period: Period,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckRow {
    pub id: String,
    pub subject: String,
    pub role: &'static str,
    pub domain: &'static str,
    pub uscc: String,
    pub operator_id: Option<i64>,
    pub as_of: DateTime<Utc>,
    pub checked_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub decision: &'static str,
    pub hit_listing_ids: Vec<i64>,
    pub request_id: &'static str,
}

/// Partner domains of the generated checks, with their share per mille and the prefix of
/// the procedure numbers partners give as `reference`.
const CHECK_DOMAINS: &[(&str, &str)] = &[
    ("PROCUREMENT", "QYCG"),
    ("BIDDING", "QYZB"),
    ("LAND_TRANSFER", "QYTD"),
    ("HONORS", "QYRY"),
];
const CHECK_DOMAIN_WEIGHTS: &[u64] = &[400, 300, 150, 150];

/// Everything needed to generate the data set.
#[derive(Clone, Debug)]
pub struct Plan {
    pub population: Population,
    pub catalogue: Catalogue,
    pub check_records: u64,
    /// The instant the states are relative to ("in force now").
    pub now: DateTime<Utc>,
    today: NaiveDate,
    list_weights: Vec<u64>,
}

impl Plan {
    pub fn new(
        population: Population,
        catalogue: Catalogue,
        check_records: u64,
        now: DateTime<Utc>,
    ) -> Result<Self, String> {
        if catalogue.lists.is_empty() && population.listings > 0 {
            return Err("no credit lists in the database: run the migrations first".into());
        }
        if catalogue.categories.is_empty() && population.listings > 0 {
            return Err("no violation categories in the database: run the migrations first".into());
        }
        let today = local_date(now);
        if today < FIRST_DECISION + Duration::days(120) {
            return Err(format!(
                "bench data runs from {FIRST_DECISION}; the clock says {today}"
            ));
        }
        // The list of Order 44 gets most listings, as in a market-supervision registry.
        let list_weights = catalogue
            .lists
            .iter()
            .map(|l| {
                if l.code == "SAMR_SERIOUS_DISHONEST" {
                    3
                } else {
                    1
                }
            })
            .collect();
        Ok(Self {
            population,
            catalogue,
            check_records,
            now,
            today,
            list_weights,
        })
    }

    pub fn operator_row(&self, i: u64) -> OperatorRow {
        let p = &self.population;
        let (kind, division) = p.kind_and_division(i);
        let mut rng = Rng::new(p.seed, stream::OPERATOR, i);
        let text = synth::operator_text(&mut rng, kind, division);
        let created_at =
            cst_instant(IMPORT_DAY, 0) + Duration::seconds(rng.between(0, 30 * 86_400));
        let (former_names, version, updated_at) = match text.former_name {
            Some(former) => (
                vec![former],
                2,
                created_at + Duration::days(rng.between(30, 900)),
            ),
            None => (Vec::new(), 1, created_at),
        };
        OperatorRow {
            id: Population::operator_id(i),
            uscc: p.code(i),
            name_normalized: normalize_name(&text.name),
            name: text.name,
            former_names,
            entity_type: Some(text.entity_type),
            region_code: DIVISIONS[division].0.to_string(),
            legal_representative: Some(text.legal_representative),
            legal_rep_id_number: Some(text.legal_rep_id_number),
            address: Some(text.address),
            address_is_personal: text.address_is_personal,
            version,
            created_at,
            updated_at: updated_at.min(self.now),
        }
    }

    fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        add_working_days(&self.catalogue.calendar, day, n)
    }

    /// The state and dates of a listing slot.
    pub fn timeline(&self, slot: Slot) -> Timeline {
        let id = self.population.listing_id(slot) as u64;
        let mut rng = Rng::new(self.population.seed, stream::LISTING, id);
        let list = rng.weighted(&self.list_weights);
        let wanted = match slot {
            Slot::InForce(j) if j % RELISTED_EVERY == RELISTED_EVERY - 1 => ListingState::Relisted,
            Slot::InForce(_) => ListingState::ListedInForce,
            Slot::Other(k) => OTHER_CYCLE[(k % OTHER_CYCLE.len() as u64) as usize],
        };
        // A state whose dates do not fit (an unusual catalogue edit) falls back to one that
        // always does, keeping "in force now" exactly as the population says.
        self.try_timeline(wanted, list, &mut rng)
            .or_else(|| {
                let fallback = if matches!(slot, Slot::InForce(_)) {
                    ListingState::ListedInForce
                } else {
                    ListingState::Withdrawn
                };
                self.try_timeline(fallback, list, &mut rng)
            })
            .unwrap_or_else(|| self.proposed(list, &mut rng))
    }

    fn proposal(&self, list: usize, notice: NaiveDate, rng: &mut Rng) -> Timeline {
        let info = &self.catalogue.lists[list];
        let proposed_at = cst_instant(notice, rng.between(9 * 3600, 17 * 3600));
        Timeline {
            state: ListingState::Proposed,
            list,
            penalty_date: notice - Duration::days(rng.between(3, 20)),
            notice_date: notice,
            defence_deadline: self.add_working_days(notice, info.defence_working_days.max(1)),
            proposed_at,
            decision_date: None,
            period_months_override: None,
            periods: Vec::new(),
            removal_date: None,
            publicity_stop_deadline: None,
            version: 1,
            updated_at: proposed_at,
        }
    }

    fn proposed(&self, list: usize, rng: &mut Rng) -> Timeline {
        let notice = date_between(
            rng,
            self.today - Duration::days(40),
            self.today - Duration::days(1),
        )
        .unwrap_or(self.today);
        self.proposal(list, notice, rng)
    }

    /// A decided listing: proposal dates before the decision, one period from it.
    fn decided(&self, list: usize, decision: NaiveDate, months: u32, rng: &mut Rng) -> Timeline {
        let notice = decision - Duration::days(rng.between(20, 45));
        let mut t = self.proposal(list, notice, rng);
        let decided_at = cst_instant(decision, rng.between(9 * 3600, 17 * 3600));
        t.state = ListingState::ListedInForce;
        t.decision_date = Some(decision);
        t.periods.push(Period {
            starts_at: decided_at,
            ends_at: add_months(decided_at, months),
            removed_at: None,
            removal_kind: None,
        });
        t.version = 2;
        t.updated_at = decided_at;
        t
    }

    fn remove(t: &mut Timeline, day: NaiveDate, at: DateTime<Utc>, kind: &'static str) {
        if let Some(period) = t.periods.last_mut() {
            period.removed_at = Some(at);
            period.removal_kind = Some(kind);
        }
        t.removal_date = Some(day);
        t.version += 1;
        t.updated_at = at;
    }

    fn try_timeline(&self, state: ListingState, list: usize, rng: &mut Rng) -> Option<Timeline> {
        let info = &self.catalogue.lists[list];
        let period = info.period_months;
        let repair_min = info.repair_min_months;
        let today = self.today;
        let yesterday = today - Duration::days(1);
        match state {
            ListingState::Proposed => Some(self.proposed(list, rng)),
            ListingState::Withdrawn => {
                let notice = date_between(
                    rng,
                    FIRST_DECISION - Duration::days(30),
                    today - Duration::days(60),
                )?;
                let mut t = self.proposal(list, notice, rng);
                let day = (t.defence_deadline + Duration::days(rng.between(1, 20))).min(yesterday);
                let at = cst_instant(day, rng.between(9 * 3600, 17 * 3600));
                t.state = ListingState::Withdrawn;
                t.removal_date = Some(day);
                t.version = 2;
                t.updated_at = at.max(t.proposed_at);
                Some(t)
            }
            ListingState::ListedInForce => {
                // Now and then a law sets a longer period than the list's (here five years).
                let months = if rng.chance(20) { 60 } else { period };
                let lo = sub_months(today, months) + Duration::days(1);
                let decision = date_between(rng, lo.max(FIRST_DECISION), yesterday)?;
                let mut t = self.decided(list, decision, months, rng);
                if months != period {
                    t.period_months_override = Some(months);
                }
                Some(t)
            }
            ListingState::Expired => {
                let hi = sub_months(today, period) - Duration::days(2);
                let decision = date_between(rng, FIRST_DECISION, hi)?;
                let mut t = self.decided(list, decision, period, rng);
                t.state = ListingState::Expired;
                Some(t)
            }
            ListingState::Revoked => {
                let decision = date_between(rng, FIRST_DECISION, today - Duration::days(40))?;
                let mut t = self.decided(list, decision, period, rng);
                let last = (add_months_date(decision, period) - Duration::days(1)).min(yesterday);
                let day = date_between(rng, decision + Duration::days(20), last)?;
                let at = cst_instant(day, rng.between(9 * 3600, 17 * 3600));
                Self::remove(&mut t, day, at, "REVOKED");
                t.state = ListingState::Revoked;
                t.publicity_stop_deadline =
                    Some(self.add_working_days(day, info.publicity_stop_working_days.max(1)));
                Some(t)
            }
            ListingState::Repaired => {
                if repair_min >= period {
                    return None;
                }
                let hi = sub_months(today, repair_min) - Duration::days(20);
                let decision = date_between(rng, FIRST_DECISION, hi)?;
                let mut t = self.decided(list, decision, period, rng);
                let first = add_months_date(decision, repair_min) + Duration::days(1);
                let last = (add_months_date(decision, period) - Duration::days(1)).min(yesterday);
                let day = date_between(rng, first, last)?;
                let at = cst_instant(day, rng.between(9 * 3600, 17 * 3600));
                Self::remove(&mut t, day, at, "REPAIRED");
                t.state = ListingState::Repaired;
                Some(t)
            }
            ListingState::Relisted => {
                if repair_min + 2 >= period {
                    return None;
                }
                let lo = sub_months(today, repair_min + 10).max(FIRST_DECISION);
                let hi = sub_months(today, repair_min) - Duration::days(75);
                let decision = date_between(rng, lo, hi)?;
                let mut t = self.decided(list, decision, period, rng);
                let repaired =
                    add_months_date(decision, repair_min) + Duration::days(rng.between(1, 30));
                let repaired_at = cst_instant(repaired, rng.between(9 * 3600, 17 * 3600));
                Self::remove(&mut t, repaired, repaired_at, "REPAIRED");
                // The repair is revoked for fraud: the period is counted again from then.
                let relisted = repaired + Duration::days(rng.between(10, 40));
                if relisted >= today {
                    return None;
                }
                let relisted_at = cst_instant(relisted, rng.between(9 * 3600, 17 * 3600));
                let ends_at = add_months(relisted_at, period);
                if ends_at <= self.now {
                    return None;
                }
                t.periods.push(Period {
                    starts_at: relisted_at,
                    ends_at,
                    removed_at: None,
                    removal_kind: None,
                });
                t.state = ListingState::Relisted;
                t.removal_date = None;
                t.version += 1;
                t.updated_at = relisted_at;
                Some(t)
            }
        }
    }

    /// The listing row of a slot, with its periods and measures.
    pub fn listing(&self, slot: Slot) -> (ListingRow, Vec<PeriodRow>, Vec<i64>) {
        let t = self.timeline(slot);
        let id = self.population.listing_id(slot);
        let operator = self.population.operator_of(slot);
        let (_, division) = self.population.kind_and_division(operator);
        let mut rng = Rng::new(self.population.seed, stream::LISTING, !(id as u64));
        // Qingyuan's own operators are listed by their county; others by where they offended.
        let authority_division = if division < 9 {
            division
        } else {
            rng.below(9) as usize
        };
        let (region, full, _, abbr) = DIVISIONS[authority_division];
        let info = &self.catalogue.lists[t.list];
        let category = rng.pick(&self.catalogue.categories);
        let year = t.penalty_date.year();
        let serial = rng.between(1, 3000);
        let docs = Documents::for_list(&info.code, full, abbr);
        let decision_doc_no = t
            .decision_date
            .map(|d| docs.decision(d.year(), rng.between(1, 800)));
        let removal_doc_no = match t.state {
            ListingState::Revoked | ListingState::Repaired => t
                .removal_date
                .map(|d| docs.removal(d.year(), rng.between(1, 500))),
            _ => None,
        };
        let removal_reason = match t.state {
            ListingState::Withdrawn => Some("当事人陈述、申辩理由成立，不予列入".to_string()),
            ListingState::Revoked => {
                Some("作为列入依据的行政处罚决定被依法撤销，依照《市场监督管理严重违法失信名单管理办法》第十九条撤销列入".to_string())
            }
            ListingState::Repaired => Some(
                "当事人已履行行政处罚义务、纠正违法行为并提交信用承诺书，准予信用修复、提前移出".to_string(),
            ),
            _ => None,
        };
        let measures = if t.decision_date.is_some() {
            info.measures.iter().map(|m| m.id).collect()
        } else {
            Vec::new()
        };
        let periods = t
            .periods
            .iter()
            .map(|p| PeriodRow {
                listing_id: id,
                period: p.clone(),
            })
            .collect();
        let penalty_doc_no = docs.penalty(year, serial);
        let row = ListingRow {
            id,
            operator_id: Population::operator_id(operator),
            list_id: info.id,
            status: t.state.status(),
            authority: docs.authority,
            authority_region: region.to_string(),
            penalty_doc_no,
            penalty_date: t.penalty_date,
            violation_category: category.code.clone(),
            reason: format!(
                "{}，涉案金额{}万元，受到较重行政处罚",
                category.name,
                rng.between(2, 500)
            ),
            legal_basis: format!("{}；{}", info.legal_basis, category.article),
            notice_date: t.notice_date,
            defence_deadline: t.defence_deadline,
            proposed_at: t.proposed_at,
            decision_doc_no,
            decision_date: t.decision_date,
            period_months_override: t.period_months_override.map(|m| m as i32),
            removal_doc_no,
            removal_reason,
            publicity_stop_deadline: t.publicity_stop_deadline,
            version: t.version,
            created_at: t.proposed_at,
            updated_at: t.updated_at,
        };
        (row, periods, measures)
    }

    /// Check record `r`: a partner's check of a random operator (one in five of them a
    /// listed one), answered from the listings in force at its instant.
    pub fn check_row(&self, r: u64) -> CheckRow {
        let p = &self.population;
        let mut rng = Rng::new(p.seed, stream::CHECK, r);
        let operator = if p.in_force > 0 && rng.chance(200) {
            p.in_force_operator(rng.below(p.in_force))
        } else {
            rng.below(p.operators)
        };
        let (domain, prefix) = CHECK_DOMAINS[rng.weighted(CHECK_DOMAIN_WEIGHTS)];
        let first = cst_instant(FIRST_CHECK, 0);
        let span = (self.now - first).num_seconds().max(1);
        let checked_at = first
            + Duration::seconds(rng.between(0, span - 1))
            + Duration::microseconds(rng.between(0, 999_999));
        let checked_at = checked_at.min(self.now);
        // Most checks ask about "now"; some about an earlier instant (an award's date).
        let as_of = if rng.chance(100) {
            checked_at - Duration::days(rng.between(1, 30))
        } else {
            checked_at
        };
        let (decision, hit_listing_ids) = self.decide(operator, domain, as_of);
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        CheckRow {
            id: uuid::Builder::from_random_bytes(bytes)
                .into_uuid()
                .to_string(),
            subject: format!(
                "bench-partner-{}",
                domain.to_ascii_lowercase().replace('_', "-")
            ),
            role: "partner",
            domain,
            uscc: p.code(operator),
            operator_id: Some(Population::operator_id(operator)),
            as_of,
            checked_at,
            reference: (!rng.chance(100))
                .then(|| format!("{prefix}-{}-{:05}", as_of.year(), rng.between(1, 99_999))),
            decision,
            hit_listing_ids,
            request_id: SEED_REQUEST_ID,
        }
    }

    /// The decision for `domain` about operator `i` at `t`: RESTRICTED when a listing in
    /// force has a PROHIBIT measure for the domain, REVIEW for CONSIDER, else CLEAR.
    /// Hits are the listings in force at `t` with a measure for the domain.
    pub fn decide(&self, i: u64, domain: &str, t: DateTime<Utc>) -> (&'static str, Vec<i64>) {
        let mut prohibit = false;
        let mut consider = false;
        let mut hits = Vec::new();
        for slot in self.population.slots_of(i) {
            let timeline = self.timeline(slot);
            if !timeline.periods.iter().any(|p| p.in_force_at(t)) {
                continue;
            }
            let info = &self.catalogue.lists[timeline.list];
            let mut hit = false;
            for m in info.measures.iter().filter(|m| m.domain == domain) {
                hit = true;
                prohibit |= m.effect == "PROHIBIT";
                consider |= m.effect == "CONSIDER";
            }
            if hit {
                hits.push(self.population.listing_id(slot));
            }
        }
        let decision = if prohibit {
            "RESTRICTED"
        } else if consider {
            "REVIEW"
        } else {
            "CLEAR"
        };
        (decision, hits)
    }
}

/// Authority names and document numbers in the style of each list's issuer.
struct Documents {
    authority: String,
    kind: DocKind,
    abbr: &'static str,
}

enum DocKind {
    Samr,
    Tax,
    Court,
}

impl Documents {
    fn for_list(code: &str, full: &str, abbr: &'static str) -> Self {
        let (authority, kind) = match code {
            "TAX_MAJOR_VIOLATION" => (format!("国家税务总局{full}税务局"), DocKind::Tax),
            "COURT_DISHONEST_DEBTOR" => (format!("{full}人民法院"), DocKind::Court),
            _ => (format!("{full}市场监督管理局"), DocKind::Samr),
        };
        Self {
            authority,
            kind,
            abbr,
        }
    }

    fn penalty(&self, year: i32, n: i64) -> String {
        let abbr = self.abbr;
        match self.kind {
            DocKind::Samr => format!("{abbr}市监罚〔{year}〕{n}号"),
            DocKind::Tax => format!("{abbr}税稽罚〔{year}〕{n}号"),
            DocKind::Court => format!("（{year}）粤18执{n}号"),
        }
    }

    fn decision(&self, year: i32, n: i64) -> String {
        let abbr = self.abbr;
        match self.kind {
            DocKind::Samr => format!("{abbr}市监失信〔{year}〕{n}号"),
            DocKind::Tax => format!("{abbr}税失信〔{year}〕{n}号"),
            DocKind::Court => format!("（{year}）粤18执失{n}号"),
        }
    }

    fn removal(&self, year: i32, n: i64) -> String {
        let abbr = self.abbr;
        match self.kind {
            DocKind::Samr => format!("{abbr}市监移出〔{year}〕{n}号"),
            DocKind::Tax => format!("{abbr}税移出〔{year}〕{n}号"),
            DocKind::Court => format!("（{year}）粤18执失移{n}号"),
        }
    }
}

/// The calendar date in China at instant `t`.
pub fn local_date(t: DateTime<Utc>) -> NaiveDate {
    (t + Duration::seconds(CST_OFFSET_SECONDS)).date_naive()
}

/// The instant `seconds` after midnight of `day` in China.
pub fn cst_instant(day: NaiveDate, seconds: i64) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc() - Duration::seconds(CST_OFFSET_SECONDS)
        + Duration::seconds(seconds)
}

fn add_months(t: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(months)).unwrap_or(t)
}

fn add_months_date(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_add_months(Months::new(months)).unwrap_or(d)
}

fn sub_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_sub_months(Months::new(months)).unwrap_or(d)
}

/// A uniform day in `lo..=hi`, or `None` when the range is empty.
fn date_between(rng: &mut Rng, lo: NaiveDate, hi: NaiveDate) -> Option<NaiveDate> {
    if hi < lo {
        return None;
    }
    Some(lo + Duration::days(rng.below((hi - lo).num_days() as u64 + 1) as i64))
}

/// `n` working days after `day` by the loaded calendar; for years it does not cover
/// (bench data reaches back to 2021), weekends only.
pub fn add_working_days(calendar: &WorkingCalendar, day: NaiveDate, n: u32) -> NaiveDate {
    calendar.add_working_days(day, n).unwrap_or_else(|_| {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                left -= 1;
            }
        }
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn catalogue() -> Catalogue {
        let samr = ListInfo {
            id: 1,
            code: "SAMR_SERIOUS_DISHONEST".into(),
            legal_basis: "令第44号".into(),
            period_months: 36,
            defence_working_days: 5,
            publicity_stop_working_days: 3,
            repair_min_months: 12,
            measures: vec![
                MeasureInfo {
                    id: 1,
                    domain: "PROCUREMENT".into(),
                    effect: "CONSIDER".into(),
                },
                MeasureInfo {
                    id: 2,
                    domain: "PROCUREMENT".into(),
                    effect: "PROHIBIT".into(),
                },
                MeasureInfo {
                    id: 3,
                    domain: "SUPERVISION".into(),
                    effect: "SUPERVISE".into(),
                },
            ],
        };
        let court = ListInfo {
            id: 3,
            code: "COURT_DISHONEST_DEBTOR".into(),
            period_months: 24,
            measures: vec![MeasureInfo {
                id: 4,
                domain: "BIDDING".into(),
                effect: "CONSIDER".into(),
            }],
            ..samr.clone()
        };
        Catalogue {
            lists: vec![samr, court],
            categories: vec![Category {
                code: "FOOD_SAFETY".into(),
                name: "食品安全".into(),
                article: "第五条".into(),
            }],
            calendar: WorkingCalendar::default(),
        }
    }

    fn plan(operators: u64, listings: u64) -> Plan {
        let now = cst_instant(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(), 12 * 3600);
        let population = Population::new(11, operators, listings, 0.1).unwrap();
        Plan::new(population, catalogue(), 100, now).unwrap()
    }

    #[test]
    fn states_match_their_periods_now() {
        let plan = plan(2_000, 1_000);
        let mut seen = std::collections::BTreeSet::new();
        for j in 0..plan.population.listings {
            let slot = plan.population.slot(j);
            let t = plan.timeline(slot);
            seen.insert(t.state);
            let in_force = t.periods.iter().any(|p| p.in_force_at(plan.now));
            assert_eq!(in_force, matches!(slot, Slot::InForce(_)), "{t:?}");
            for p in &t.periods {
                assert!(p.starts_at < p.ends_at);
                assert!(
                    p.removed_at
                        .is_none_or(|r| p.starts_at < r && r <= plan.now)
                );
                assert!(p.starts_at <= plan.now);
                assert!(p.starts_at >= cst_instant(FIRST_DECISION, 0));
            }
            assert!(t.penalty_date <= t.notice_date && t.notice_date < t.defence_deadline);
            match t.state {
                ListingState::Proposed | ListingState::Withdrawn => assert!(t.periods.is_empty()),
                ListingState::Relisted => assert_eq!(t.periods.len(), 2),
                _ => assert_eq!(t.periods.len(), 1),
            }
            if let Some(d) = t.decision_date {
                assert!(t.defence_deadline < d);
            }
        }
        assert_eq!(seen.len(), 7, "{seen:?}");
    }

    #[test]
    fn listing_rows_are_reproducible() {
        let plan = plan(500, 200);
        let slot = plan.population.slot(7);
        assert_eq!(plan.listing(slot), plan.listing(slot));
        assert_eq!(plan.operator_row(3), plan.operator_row(3));
        assert_eq!(plan.check_row(5), plan.check_row(5));
    }

    #[test]
    fn check_decisions_follow_the_measures_in_force() {
        let plan = plan(500, 200);
        let listed = plan.population.in_force_operator(0);
        let (decision, hits) = plan.decide(listed, "PROCUREMENT", plan.now);
        let t = plan.timeline(plan.population.slots_of(listed)[0]);
        if t.list == 0 {
            assert_eq!(decision, "RESTRICTED");
            assert_eq!(hits.len(), 1);
        } else {
            assert_eq!(decision, "CLEAR");
            assert!(hits.is_empty());
        }
        let (decision, _) = plan.decide(listed, "HONORS", plan.now);
        assert_eq!(decision, "CLEAR");
        let unlisted = (0..500)
            .find(|&i| plan.population.slots_of(i).is_empty())
            .unwrap();
        assert_eq!(plan.decide(unlisted, "PROCUREMENT", plan.now).0, "CLEAR");
    }

    #[test]
    fn instants_are_china_time() {
        let d = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        assert_eq!(cst_instant(d, 0).to_rfc3339(), "2024-12-31T16:00:00+00:00");
        assert_eq!(local_date(cst_instant(d, 0)), d);
        assert_eq!(local_date(cst_instant(d, 86_399)), d);
    }

    #[test]
    fn working_days_fall_back_to_weekdays_outside_the_calendar() {
        let friday = NaiveDate::from_ymd_opt(2021, 3, 5).unwrap();
        let cal = WorkingCalendar::default();
        assert_eq!(
            add_working_days(&cal, friday, 1),
            NaiveDate::from_ymd_opt(2021, 3, 8).unwrap()
        );
    }
}
