//! Which synthetic operators exist and which of them are listed in force.
//!
//! Everything here is a pure function of `(seed, operators, listings, in-force share)`,
//! so the load generator regenerates exactly the codes that `seed-bench` wrote (and knows
//! which are listed) without reading the database or a file of ten million codes.

use api::domain::uscc::{Uscc, complete_code};

/// 31^6: organisation-code bodies `MA` + six symbols, and the cap on operators.
pub const BODY_SPACE: u64 = 887_503_681;
/// Bodies below this are written as eight digits (older organisation codes).
const NUMERIC_BODIES: u64 = 100_000_000;
/// The USCC alphabet in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// At most this share of the listings is in force, so every other state has room.
const MAX_IN_FORCE_SHARE_OF_LISTINGS: f64 = 0.9;
/// Largest in-force share of operators that may be asked for.
pub const MAX_IN_FORCE_SHARE: f64 = 0.9;

/// SplitMix64's finaliser: a good 64-bit mix, stable across platforms and crate versions.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator: one per (seed, stream, index), so any row can be
/// regenerated on its own, in any order, on any machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64, index: u64) -> Self {
        Self(mix(seed
            ^ mix(stream.wrapping_mul(0xD6E8_FEB8_6659_FD93))
            ^ mix(!index)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (`lo` when the range is empty).
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index chosen with the given weights (the last one when all are zero).
    pub fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return i;
            }
            r -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// Streams of randomness; each table's rows draw from their own.
pub mod stream {
    pub const CODE: u64 = 1;
    pub const OPERATOR: u64 = 2;
    pub const LISTING: u64 = 3;
    pub const CHECK: u64 = 4;
    pub const ORDER: u64 = 5;
    pub const BODY: u64 = 6;
    pub const SAMPLE: u64 = 7;
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Modular inverse of `a` modulo `n` (`a` and `n` coprime).
fn mod_inverse(a: u64, n: u64) -> u64 {
    let (mut t, mut new_t) = (0i128, 1i128);
    let (mut r, mut new_r) = (i128::from(n), i128::from(a));
    while new_r != 0 {
        let q = r / new_r;
        (t, new_t) = (new_t, t - q * new_t);
        (r, new_r) = (new_r, r - q * new_r);
    }
    t.rem_euclid(i128::from(n)) as u64
}

/// A bijection of `0..n`: `x -> (a·x + b) mod n`. Cheap in both directions, which is
/// what lets "is operator i listed?" be answered without a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Affine {
    n: u64,
    a: u64,
    b: u64,
    a_inv: u64,
}

impl Affine {
    pub fn new(n: u64, seed: u64, stream: u64) -> Self {
        if n <= 1 {
            return Self {
                n: n.max(1),
                a: 1,
                b: 0,
                a_inv: 1,
            };
        }
        let mut rng = Rng::new(seed, stream, n);
        // A multiplier near n·φ spreads consecutive inputs across the whole range.
        let golden = ((u128::from(n) * 0x9E37_79B9_7F4A_7C15u128) >> 64) as u64;
        let mut a = (golden + rng.below(n / 16 + 1)) % n;
        if a == 0 {
            a = 1;
        }
        while gcd(a, n) != 1 {
            a = (a + 1) % n;
            if a == 0 {
                a = 1;
            }
        }
        let b = rng.below(n);
        Self {
            n,
            a,
            b,
            a_inv: mod_inverse(a, n),
        }
    }

    pub fn apply(&self, x: u64) -> u64 {
        ((u128::from(self.a) * u128::from(x) + u128::from(self.b)) % u128::from(self.n)) as u64
    }

    pub fn invert(&self, y: u64) -> u64 {
        let shifted = (u128::from(y) + u128::from(self.n)
            - u128::from(self.b) % u128::from(self.n))
            % u128::from(self.n);
        ((u128::from(self.a_inv) * shifted) % u128::from(self.n)) as u64
    }
}

/// A listing's place in the plan: the `j`-th in-force listing or the `k`-th other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    InForce(u64),
    Other(u64),
}

/// Registration authority + entity type (positions 1-2) and their share of operators.
pub const ENTITY_KINDS: &[&str] = &["91", "92", "93", "52"];
const ENTITY_KIND_WEIGHTS: &[u64] = &[720, 220, 40, 20];

/// Division codes of generated operators: Qingyuan's (most of them), then elsewhere.
/// (code, full name, locality used in company names, short form used in document numbers)
pub const DIVISIONS: &[(&str, &str, &str, &str)] = &[
    ("441800", "清远市", "清远市", "清"),
    ("441802", "清远市清城区", "清远市", "清城"),
    ("441803", "清远市清新区", "清远市", "清新"),
    ("441821", "清远市佛冈县", "佛冈县", "佛"),
    ("441823", "清远市阳山县", "阳山县", "阳"),
    ("441825", "清远市连山壮族瑶族自治县", "连山", "连山"),
    ("441826", "清远市连南瑶族自治县", "连南", "连南"),
    ("441881", "英德市", "英德市", "英"),
    ("441882", "连州市", "连州市", "连"),
    ("440103", "广州市荔湾区", "广州市", "穗荔"),
    ("440104", "广州市越秀区", "广州市", "穗越"),
    ("440106", "广州市天河区", "广州市", "穗天"),
    ("440111", "广州市白云区", "广州市", "穗云"),
    ("440113", "广州市番禺区", "广州市", "穗番"),
    ("440304", "深圳市福田区", "深圳市", "深福"),
    ("440305", "深圳市南山区", "深圳市", "深南"),
    ("440306", "深圳市宝安区", "深圳市", "深宝"),
    ("440604", "佛山市禅城区", "佛山市", "佛禅"),
    ("440606", "佛山市顺德区", "佛山市", "佛顺"),
    ("441900", "东莞市", "东莞市", "莞"),
    ("442000", "中山市", "中山市", "中"),
    ("440402", "珠海市香洲区", "珠海市", "珠香"),
    ("441202", "肇庆市端州区", "肇庆市", "肇端"),
    ("440203", "韶关市武江区", "韶关市", "韶武"),
    ("110105", "北京市朝阳区", "北京市", "京朝"),
    ("310115", "上海市浦东新区", "上海市", "沪浦"),
    ("330106", "杭州市西湖区", "杭州市", "杭西"),
    ("430104", "长沙市岳麓区", "长沙市", "长岳"),
    ("510107", "成都市武侯区", "成都市", "成武"),
    ("450103", "南宁市青秀区", "南宁市", "南青"),
];
/// The first nine divisions are Qingyuan's; weights per mille of operators.
const DIVISION_WEIGHTS: &[u64] = &[
    40, 170, 110, 60, 60, 30, 30, 130, 70, // Qingyuan: 70 %
    20, 20, 25, 20, 15, 15, 15, 15, 15, 15, 20, 10, 10, 10, 10, 10, 10, 10, 5, 5,
    5, // elsewhere
];

/// The synthetic population of one `seed-bench` run.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    pub seed: u64,
    pub operators: u64,
    pub listings: u64,
    /// Operators (and listings) in force now: exactly one in-force listing each.
    pub in_force: u64,
    /// Listing slot order → operator index.
    order: Affine,
    /// Operator index → organisation-code body.
    body: Affine,
}

impl Population {
    /// `in_force_share` is the share of operators to be listed in force now; it is capped at
    /// 90 % of the listings so that the other states always get some.
    pub fn new(
        seed: u64,
        operators: u64,
        listings: u64,
        in_force_share: f64,
    ) -> Result<Self, String> {
        if operators < 10 {
            return Err("--operators must be at least 10".into());
        }
        if operators > BODY_SPACE {
            return Err(format!(
                "--operators may be at most {BODY_SPACE} (distinct organisation-code bodies)"
            ));
        }
        if !(0.0..=MAX_IN_FORCE_SHARE).contains(&in_force_share) {
            return Err(format!(
                "the in-force share must be between 0 and {MAX_IN_FORCE_SHARE}"
            ));
        }
        let wanted = (in_force_share * operators as f64).round() as u64;
        let room = (listings as f64 * MAX_IN_FORCE_SHARE_OF_LISTINGS).floor() as u64;
        let in_force = wanted.min(room);
        Ok(Self {
            seed,
            operators,
            listings,
            in_force,
            order: Affine::new(operators, seed, stream::ORDER),
            body: Affine::new(BODY_SPACE, seed, stream::BODY),
        })
    }

    /// The in-force share actually produced (lower than asked when listings are too few).
    pub fn in_force_share(&self) -> f64 {
        self.in_force as f64 / self.operators as f64
    }

    /// Listings not in force now (proposed, expired, withdrawn, revoked, repaired).
    pub fn others(&self) -> u64 {
        self.listings - self.in_force
    }

    /// The operator with 0-based index `i` has database id `i + 1`.
    pub fn operator_id(i: u64) -> i64 {
        i as i64 + 1
    }

    /// Positions 1-2 and the division (positions 3-8) of operator `i`.
    pub fn kind_and_division(&self, i: u64) -> (&'static str, usize) {
        let mut rng = Rng::new(self.seed, stream::CODE, i);
        let kind = ENTITY_KINDS[rng.weighted(ENTITY_KIND_WEIGHTS)];
        let division = rng.weighted(DIVISION_WEIGHTS);
        (kind, division)
    }

    /// The unified social credit code of operator `i`: both check digits hold, and no two
    /// operators share one (the organisation-code body is a bijection of `i`).
    pub fn code(&self, i: u64) -> String {
        let (kind, division) = self.kind_and_division(i);
        let body = body_text(self.body.apply(i));
        let prefix = format!("{kind}{}{body}", DIVISIONS[division].0);
        // Every prefix built here is 16 symbols of the alphabet, so completion cannot fail
        // (the unit tests parse every code); the fallback only keeps this total.
        complete_code(&prefix)
            .map(Uscc::into_string)
            .unwrap_or_else(|| format!("{prefix}00"))
    }

    /// Whether operator `i` is listed in force now.
    pub fn is_in_force(&self, i: u64) -> bool {
        self.order.invert(i) < self.in_force
    }

    /// The operator of a listing slot. In-force listings go to distinct operators; the
    /// others go round the operators that are not in force.
    pub fn operator_of(&self, slot: Slot) -> u64 {
        match slot {
            Slot::InForce(j) => self.order.apply(j),
            Slot::Other(k) => {
                let pool = self.operators - self.in_force;
                self.order.apply(self.in_force + k % pool.max(1))
            }
        }
    }

    /// The listing slot with 0-based index `j` (listing id `j + 1`).
    pub fn slot(&self, j: u64) -> Slot {
        if j < self.in_force {
            Slot::InForce(j)
        } else {
            Slot::Other(j - self.in_force)
        }
    }

    pub fn listing_id(&self, slot: Slot) -> i64 {
        match slot {
            Slot::InForce(j) => j as i64 + 1,
            Slot::Other(k) => (self.in_force + k) as i64 + 1,
        }
    }

    /// Every listing slot of operator `i`.
    pub fn slots_of(&self, i: u64) -> Vec<Slot> {
        let rank = self.order.invert(i);
        if rank < self.in_force {
            return vec![Slot::InForce(rank)];
        }
        let pool = self.operators - self.in_force;
        let mut k = rank - self.in_force;
        let mut slots = Vec::new();
        while k < self.others() {
            slots.push(Slot::Other(k));
            k += pool;
        }
        slots
    }

    /// The `n`-th in-force operator (`n < in_force`).
    pub fn in_force_operator(&self, n: u64) -> u64 {
        self.order.apply(n)
    }
}

/// Eight characters of organisation-code body for body number `u < BODY_SPACE`.
fn body_text(u: u64) -> String {
    if u < NUMERIC_BODIES {
        return format!("{u:08}");
    }
    let mut out = [b'0'; 6];
    let mut v = u;
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 31) as usize];
        v /= 31;
    }
    format!("MA{}", String::from_utf8_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn affine_maps_are_bijections() {
        for n in [10u64, 97, 1000, 1024, 12_345] {
            let f = Affine::new(n, 7, stream::ORDER);
            let images: HashSet<u64> = (0..n).map(|x| f.apply(x)).collect();
            assert_eq!(images.len() as u64, n);
            for x in 0..n {
                assert_eq!(f.invert(f.apply(x)), x);
            }
        }
    }

    #[test]
    fn codes_are_valid_and_distinct() {
        let p = Population::new(42, 50_000, 5_000, 0.1).unwrap();
        let mut seen = HashSet::new();
        for i in 0..p.operators {
            let code = p.code(i);
            assert!(Uscc::parse(&code).is_ok(), "{code}");
            assert!(seen.insert(code));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_codes() {
        let a = Population::new(1, 1000, 100, 0.1).unwrap();
        let b = Population::new(1, 1000, 100, 0.1).unwrap();
        let c = Population::new(2, 1000, 100, 0.1).unwrap();
        assert_eq!(a.code(17), b.code(17));
        assert_ne!(a.code(17), c.code(17));
    }

    #[test]
    fn in_force_share_is_exact_and_capped_by_listings() {
        let p = Population::new(3, 10_000, 3_000, 0.1).unwrap();
        assert_eq!(p.in_force, 1_000);
        assert_eq!(
            (0..p.operators).filter(|&i| p.is_in_force(i)).count(),
            1_000
        );
        let capped = Population::new(3, 10_000, 500, 0.1).unwrap();
        assert_eq!(capped.in_force, 450);
        assert!(Population::new(3, 5, 1, 0.1).is_err());
        assert!(Population::new(3, 100, 1, 0.95).is_err());
    }

    #[test]
    fn every_listing_slot_belongs_to_exactly_one_operator() {
        let p = Population::new(9, 200, 600, 0.1).unwrap();
        let mut from_operators: Vec<i64> = (0..p.operators)
            .flat_map(|i| p.slots_of(i).into_iter().map(|s| p.listing_id(s)))
            .collect();
        from_operators.sort_unstable();
        let expected: Vec<i64> = (1..=p.listings as i64).collect();
        assert_eq!(from_operators, expected);
        for j in 0..p.listings {
            let slot = p.slot(j);
            let owner = p.operator_of(slot);
            assert!(p.slots_of(owner).contains(&slot));
            assert_eq!(matches!(slot, Slot::InForce(_)), p.is_in_force(owner));
        }
    }

    #[test]
    fn rng_ranges_hold() {
        let mut r = Rng::new(1, 2, 3);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
            let v = r.between(-3, 3);
            assert!((-3..=3).contains(&v));
        }
        assert_eq!(r.between(5, 5), 5);
        assert_eq!(r.weighted(&[0, 0, 5]), 2);
    }
}
