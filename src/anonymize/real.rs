//! The source's own identifying values — its phone numbers, IBANs, card numbers and
//! national ids, drawn from spaces small enough that a keyed draw lands on a real one —
//! so that the transformers drawing new ones never write one of them: a generated phone number is never another customer's real one (issue 14
//! measured 3,622 of 2M on the shared people table). A draw that hits one is drawn again,
//! continuing the same keyed stream, so the output stays deterministic: a function of
//! (key, domain, input, mapping version) and, where a draw had to be repeated, of the
//! source's values in that domain.
//!
//! The set holds 64-bit keyed hashes of normalized values (digits of a phone, a folded
//! e-mail), not the values: about 8 bytes a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// What makes two values one identifying value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Its last 9 digits (`+40 721-234 567` and `0721 234 567` are `721234567`).
    Phone,
    /// Without spaces, in capitals.
    Iban,
    /// Its digits.
    Card,
    /// Its digits and letters, in capitals.
    NationalId,
}

impl Identity {
    /// The identity of the values transformer `name` draws, if they identify people and
    /// come from a space small enough for a keyed draw to land on a real one.
    pub fn of(transformer: &str) -> Option<Identity> {
        match transformer {
            "phone" => Some(Identity::Phone),
            // not `email`: its output carries a 40-bit keyed tag, so it equals a real
            // address only if one has that very tag (a 2^-40 event a pair); a pass over
            // every address would buy nothing but time
            "iban" => Some(Identity::Iban),
            "card-number" => Some(Identity::Card),
            "national-id" => Some(Identity::NationalId),
            _ => None,
        }
    }

    /// `value` as this identity compares it, into `out` (cleared first): ASCII digits
    /// and letters only, so it works on the bytes of a COPY field as they come.
    fn normalize_into(self, value: &[u8], out: &mut Vec<u8>) {
        out.clear();
        match self {
            Identity::Phone | Identity::Card => {
                out.extend(value.iter().copied().filter(u8::is_ascii_digit));
            }
            Identity::Iban | Identity::NationalId => out.extend(
                value
                    .iter()
                    .filter(|b| b.is_ascii_alphanumeric())
                    .map(u8::to_ascii_uppercase),
            ),
        }
    }
}

/// The real values of one domain: a Bloom filter of their keyed hashes, one cache line a
/// lookup (a 64 MB hash set cost a miss on every insert and lookup of 2M phones). A false
/// positive, about one in 10^5 at 24 bits a value, only means one more draw.
pub struct RealValues {
    identity: Identity,
    seed: u64,
    filter: crate::bloom::Bloom,
    count: usize,
}

impl std::fmt::Debug for RealValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RealValues({:?}, {} values)", self.identity, self.count)
    }
}

/// Bits of filter per distinct value.
const BITS: usize = 24;

/// The 128 bits a filter probe takes, from a 64-bit hash (its block from the low half).
fn wide(h: u64) -> u128 {
    let hi = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (u128::from(hi) << 64) | u128::from(h)
}

/// splitmix64's finalizer: a bijection of 64 bits that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The keyed hash of `value` as `identity` compares it, if it holds anything.
fn hash(identity: Identity, seed: u64, value: &[u8]) -> Option<u64> {
    // a phone or card number is hashed as a number, without a buffer (this runs for
    // every value written). A phone counts by its last 9 digits, its national number in
    // most countries: `+40 721 234 567` and `0721 234 567` are one number
    if matches!(identity, Identity::Phone | Identity::Card) {
        let (mut n, mut digits) = (0u64, 0u32);
        for &b in value {
            if b.is_ascii_digit() {
                n = n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
                digits += 1;
            }
        }
        if digits == 0 {
            return None;
        }
        if identity == Identity::Phone && digits > 9 {
            (n, digits) = (n % 1_000_000_000, 9);
        }
        if digits <= 19 {
            return Some(mix(n ^ mix(seed ^ u64::from(digits))));
        }
    }
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        identity.normalize_into(value, buf);
        (!buf.is_empty()).then(|| xxh3_64_with_seed(buf, seed))
    })
}

impl RealValues {
    /// A set for about `capacity` values.
    pub fn new(identity: Identity, seed: u64, capacity: usize) -> RealValues {
        RealValues {
            identity,
            seed,
            filter: crate::bloom::Bloom::for_items(capacity.max(1), BITS),
            count: 0,
        }
    }

    pub fn insert(&mut self, value: &str) {
        if let Some(h) = hash(self.identity, self.seed, value.as_bytes()) {
            self.filter.insert(wide(h));
            self.count += 1;
        }
    }

    /// Whether `value` is one of the source's (as the identity compares them).
    pub fn holds(&self, value: &str) -> bool {
        hash(self.identity, self.seed, value.as_bytes())
            .is_some_and(|h| self.filter.contains(wide(h)))
    }

    /// How many values it was made from, repeats counted.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The real values of every domain an identifying transformer draws for, by domain.
pub type RealSets = BTreeMap<String, Arc<RealValues>>;

/// What one source column feeds into one domain's set: its values, or the leaves at a
/// path of its JSON documents.
#[derive(Debug, Clone)]
pub struct Feed {
    pub identity: Identity,
    pub domain: String,
    pub path: Option<crate::anonymize::transformers::json::JsonPaths>,
}

/// Source columns feeding domains' sets: `(table, column) → feeds`.
pub type Wanted = BTreeMap<(String, String), Vec<Feed>>;

/// A column's feeds resolved to the collector's slots: `(slot, path)`.
pub type Slots = Vec<(
    usize,
    Option<crate::anonymize::transformers::json::JsonPaths>,
)>;

/// Seeds the set's hashes (they never leave the process).
pub const SEED: u64 = 0x5eed_da7a_f0e9_e001;

/// The draws an identifying transformer makes until one is not a real value: `draw(0)`
/// is its ordinary draw, `draw(n)` its next from the same stream. After 64 draws that all
/// hit (a domain so full that almost every value is taken) the last one stands.
pub fn unreal(real: Option<&RealValues>, mut draw: impl FnMut(u32) -> String) -> String {
    let mut out = String::new();
    unreal_into(real, &mut out, |attempt, out| out.push_str(&draw(attempt)));
    out
}

/// [`unreal`], appending to `out`: `draw(n, out)` appends its draw.
pub fn unreal_into(
    real: Option<&RealValues>,
    out: &mut String,
    mut draw: impl FnMut(u32, &mut String),
) {
    let start = out.len();
    draw(0, out);
    if let Some(r) = real {
        let mut attempt = 1;
        while attempt < 64 && r.holds(&out[start..]) {
            out.truncate(start);
            draw(attempt, out);
            attempt += 1;
        }
    }
}

/// Which source columns feed which domain's set, for every anonymized column under an
/// identifying transformer and every identifying path of a `json` column.
pub fn wanted(config: &super::config::Config) -> Wanted {
    let mut out: Wanted = BTreeMap::new();
    for (table, tc) in &config.tables {
        if tc.action != super::config::Action::Anonymize {
            continue;
        }
        for (column, cc) in &tc.columns {
            let feeds = out.entry((table.clone(), column.clone())).or_default();
            if let Some(identity) = Identity::of(&cc.transformer) {
                feeds.push(Feed {
                    identity,
                    domain: cc.domain.clone(),
                    path: None,
                });
            }
            if cc.transformer == "json" {
                for (path, name, domain) in
                    crate::anonymize::transformers::json::JsonPaths::identifying(&cc.options)
                {
                    if let Some(identity) = Identity::of(&name) {
                        feeds.push(Feed {
                            identity,
                            domain,
                            path: Some(path),
                        });
                    }
                }
            }
        }
    }
    out.retain(|_, feeds| !feeds.is_empty());
    out
}

/// Collects the values of the wanted columns, per domain, as hashes pushed in reading
/// order (8 bytes a value, no lookup, up to [`HASHES_MAX`] a domain);
/// [`finish`](Self::finish) builds each filter sized by the values read, repeats counted.
/// The filter's answers, and so the draws they turn down, are a function of the source's
/// values in the domain, repeats counted, whatever the order they are read in. A column's domain is resolved once ([`slot`](Self::slot)), not per value.
#[derive(Debug, Default)]
pub struct Collector {
    seed: u64,
    sets: Vec<(String, Identity, Hashes)>,
    /// [`HASHES_MAX`], or less in tests.
    listed_max: usize,
}

/// One domain's values as they are read.
enum Hashes {
    /// Every hash, until there are [`HASHES_MAX`]: the filter is then sized by their
    /// count.
    Listed(Vec<u64>),
    /// Past that, a filter of the largest size, filled as values come: memory stays
    /// bounded whatever the table's size. With more distinct values than it was made for
    /// it answers "maybe" more often, which costs draws; past about 11M distinct values
    /// in one domain, a draw that exhausts its 64 tries may be written although real
    /// (verify's leak scan still finds it). The values seen, with repeats.
    Filtered(crate::bloom::Bloom, usize),
}

/// Hashes listed per domain before its filter is made at the largest size (16 MB).
const HASHES_MAX: usize = 2 << 20;
/// The values the largest filter is made for (32 MB at [`BITS`] a value).
const FILTER_MAX_ITEMS: usize = 11 << 20;

impl std::fmt::Debug for Hashes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hashes::Listed(v) => write!(f, "{} hashes", v.len()),
            Hashes::Filtered(_, n) => write!(f, "a filter of {n} values"),
        }
    }
}

impl Hashes {
    fn push(&mut self, h: u64, listed_max: usize) {
        match self {
            Hashes::Listed(v) if v.len() < listed_max => v.push(h),
            Hashes::Listed(v) => {
                let filter = crate::bloom::Bloom::for_items(FILTER_MAX_ITEMS, BITS);
                filter.insert_all(v.iter().map(|&h| wide(h)));
                filter.insert(wide(h));
                *self = Hashes::Filtered(filter, v.len() + 1);
            }
            Hashes::Filtered(filter, n) => {
                filter.insert(wide(h));
                *n += 1;
            }
        }
    }
}

impl Collector {
    pub fn new(seed: u64) -> Collector {
        Collector {
            seed,
            sets: Vec::new(),
            listed_max: HASHES_MAX,
        }
    }

    /// The slot values of a column feeding `domain` go to.
    pub fn slot(&mut self, identity: Identity, domain: &str) -> usize {
        match self.sets.iter().position(|(d, _, _)| d == domain) {
            Some(i) => i,
            None => {
                self.sets
                    .push((domain.to_string(), identity, Hashes::Listed(Vec::new())));
                self.sets.len() - 1
            }
        }
    }

    /// The slots of a column's feeds.
    pub fn slots(&mut self, feeds: &[Feed]) -> Slots {
        feeds
            .iter()
            .map(|f| (self.slot(f.identity, &f.domain), f.path.clone()))
            .collect()
    }

    /// Adds one source value (a COPY field, decoded) to each of its column's slots: the
    /// value itself, or the leaves at a slot's JSON path (a value that is not JSON has
    /// none).
    pub fn add_to(&mut self, slots: &Slots, value: &[u8]) {
        for (slot, path) in slots {
            match path {
                None => self.add(*slot, value),
                Some(p) => {
                    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(value) {
                        p.leaves(&doc, &mut |leaf| self.add(*slot, leaf.as_bytes()));
                    }
                }
            }
        }
    }

    /// Adds one source value (a COPY field, decoded) to `slot`; an array's elements are
    /// added one by one.
    pub fn add(&mut self, slot: usize, value: &[u8]) {
        let (seed, max) = (self.seed, self.listed_max);
        let (_, identity, hashes) = &mut self.sets[slot];
        // `{a,b}`, or with bounds, `[0:1]={a,b}`
        if matches!(value.first(), Some(b'{' | b'[')) && value.last() == Some(&b'}') {
            let _ = super::types::map_array(&String::from_utf8_lossy(value), |e| {
                if let Some(h) = hash(*identity, seed, e.as_bytes()) {
                    hashes.push(h, max);
                }
                Ok(None)
            });
        } else if let Some(h) = hash(*identity, seed, value) {
            hashes.push(h, max);
        }
    }

    pub fn finish(self) -> RealSets {
        self.sets
            .into_iter()
            .map(|(domain, identity, hashes)| {
                let (filter, count) = match hashes {
                    // sized by the values read, repeats counted: a sort to count the
                    // distinct ones cost more than the whole scan of the column
                    Hashes::Listed(hashes) => {
                        let filter = crate::bloom::Bloom::for_items(hashes.len().max(1), BITS);
                        filter.insert_all(hashes.iter().map(|&h| wide(h)));
                        (filter, hashes.len())
                    }
                    Hashes::Filtered(filter, seen) => (filter, seen),
                };
                let set = RealValues {
                    identity,
                    seed: self.seed,
                    filter,
                    count,
                };
                (domain, Arc::new(set))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the bound on listed hashes a domain's values go straight into a filter of
    /// the largest size: every real value is still held, and others mostly are not.
    #[test]
    fn a_domain_past_its_bound_is_filtered_and_still_holds_every_value() {
        let phone = |i: u32| format!("+40 7{i:08}");
        let collect = |listed_max: usize| {
            let mut c = Collector::new(SEED);
            c.listed_max = listed_max;
            let slot = c.slot(Identity::Phone, "phone");
            for i in 0..5_000 {
                c.add(slot, phone(i * 7).as_bytes());
            }
            c.finish().remove("phone").unwrap()
        };
        let (listed, filtered) = (collect(usize::MAX), collect(1_000));
        assert_eq!(listed.len(), 5_000, "values, listed");
        assert!(filtered.filter.bytes() > listed.filter.bytes());
        for set in [&listed, &filtered] {
            assert!((0..5_000).all(|i| set.holds(&phone(i * 7))), "{set:?}");
            let others = (0..5_000).filter(|i| set.holds(&phone(i * 7 + 1))).count();
            assert!(others < 5, "{set:?}: {others} false positives");
        }
    }

    /// A `json` column's phone path feeds the phone domain's set with the leaves there,
    /// so a phone drawn for a JSON leaf is never a real one either (issue 14, §1).
    #[test]
    fn json_paths_feed_their_domains_set() {
        let config = crate::anonymize::config::Config::parse(
            "[tables.people]\ncolumns.profile = { transformer = \"json\", paths = { \"$.contact.phones[*]\" = \"phone\", \"$.contact.name\" = \"full-name\" } }\n",
            "anonymize.toml",
        )
        .unwrap();
        let wanted = wanted(&config);
        let feeds = &wanted[&("public.people".to_string(), "profile".to_string())];
        assert_eq!(feeds.len(), 1, "the phone path only: {feeds:?}");
        let mut c = Collector::new(7);
        let slots = c.slots(feeds);
        c.add_to(
            &slots,
            br#"{"contact": {"name": "Maria Anders", "phones": ["+40 721 234 567", "0744 000 111"]}}"#,
        );
        c.add_to(&slots, b"not json");
        let sets = c.finish();
        assert!(sets["phone"].holds("+40 721 234 567") && sets["phone"].holds("744000111"));
        assert_eq!(sets["phone"].len(), 2);
    }

    #[test]
    fn values_compare_as_their_identity_says() {
        let mut c = Collector::new(7);
        let phone = c.slot(Identity::Phone, "phone");
        c.add(phone, b"+40 721 234 567");
        c.add(phone, b"{\"+40 721 000 001\",NULL}");
        let iban = c.slot(Identity::Iban, "iban");
        c.add(iban, b"RO49 AAAA 1B31 0075 9384 0000");
        assert_eq!(c.slot(Identity::Phone, "phone"), phone, "one slot a domain");
        let sets = c.finish();
        let phone = &sets["phone"];
        assert!(phone.holds("+40721234567"), "formatting does not count");
        assert!(phone.holds("(40) 721-234-567"));
        assert!(phone.holds("40 721 000 001"), "array elements are values");
        assert!(!phone.holds("+40 721 234 568"));
        assert!(
            phone.holds("0721 234 567"),
            "the national form of a real number"
        );
        c2_bounds();
        assert_eq!(phone.len(), 2);
        assert!(sets["iban"].holds("ro49aaaa1b3100759384 0000"));
        assert_eq!(
            Identity::of("email"),
            None,
            "a keyed tag makes it unique already"
        );
    }

    fn c2_bounds() {
        let mut c = Collector::new(7);
        let slot = c.slot(Identity::Phone, "phone");
        c.add(slot, b"[0:1]={\"+40 721 000 002\",\"+40 721 000 003\"}");
        let sets = c.finish();
        assert!(
            sets["phone"].holds("+40 721 000 003"),
            "elements of an array with bounds"
        );
    }

    #[test]
    fn a_draw_that_is_real_is_drawn_again() {
        let mut set = RealValues::new(Identity::Phone, 1, 2);
        set.insert("111");
        set.insert("222");
        let draws = ["111", "222", "333", "444"];
        assert_eq!(unreal(Some(&set), |n| draws[n as usize].to_string()), "333");
        assert_eq!(unreal(None, |n| draws[n as usize].to_string()), "111");
    }
}
