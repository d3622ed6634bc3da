//! The source's own identifying values — its e-mail addresses, phone numbers, IBANs, card
//! numbers and national ids — so that the transformers drawing new ones never write one
//! of them: a generated phone number is never another customer's real one (issue 14
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
    /// Its digits (`+40 721-234 567` is `40721234567`).
    Phone,
    /// Trimmed and case-folded.
    Email,
    /// Without spaces, in capitals.
    Iban,
    /// Its digits.
    Card,
    /// Its digits and letters, in capitals.
    NationalId,
}

impl Identity {
    /// The identity of the values transformer `name` draws, if they identify people.
    pub fn of(transformer: &str) -> Option<Identity> {
        match transformer {
            "phone" => Some(Identity::Phone),
            "email" => Some(Identity::Email),
            "iban" => Some(Identity::Iban),
            "card-number" => Some(Identity::Card),
            "national-id" => Some(Identity::NationalId),
            _ => None,
        }
    }

    /// `value` as this identity compares it (`None` when it holds nothing to compare).
    pub fn normalize(self, value: &str) -> Option<String> {
        let out: String = match self {
            Identity::Phone | Identity::Card => {
                value.chars().filter(char::is_ascii_digit).collect()
            }
            Identity::Email => value.trim().to_lowercase(),
            Identity::Iban | Identity::NationalId => value
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        };
        (!out.is_empty()).then_some(out)
    }
}

/// The real values of one domain.
#[derive(Debug)]
pub struct RealValues {
    identity: Identity,
    seed: u64,
    set: foldhash::HashSet<u64>,
}

impl RealValues {
    pub fn new(identity: Identity, seed: u64) -> RealValues {
        RealValues {
            identity,
            seed,
            set: Default::default(),
        }
    }

    pub fn insert(&mut self, value: &str) {
        if let Some(n) = self.identity.normalize(value) {
            self.set.insert(xxh3_64_with_seed(n.as_bytes(), self.seed));
        }
    }

    /// Whether `value` is one of the source's (as the identity compares them).
    pub fn holds(&self, value: &str) -> bool {
        self.identity.normalize(value).is_some_and(|n| {
            self.set
                .contains(&xxh3_64_with_seed(n.as_bytes(), self.seed))
        })
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

/// The real values of every domain an identifying transformer draws for, by domain.
pub type RealSets = BTreeMap<String, Arc<RealValues>>;

/// Source columns feeding a domain's set: `(table, column) → (identity, domain)`.
pub type Wanted = BTreeMap<(String, String), (Identity, String)>;

/// Seeds the set's hashes (they never leave the process).
pub const SEED: u64 = 0x5eed_da7a_f0e9_e001;

/// The draws an identifying transformer makes until one is not a real value: `draw(0)`
/// is its ordinary draw, `draw(n)` its next from the same stream. After 64 draws that all
/// hit (a domain so full that almost every value is taken) the last one stands.
pub fn unreal(real: Option<&RealValues>, mut draw: impl FnMut(u32) -> String) -> String {
    let mut out = draw(0);
    if let Some(r) = real {
        let mut attempt = 1;
        while attempt < 64 && r.holds(&out) {
            out = draw(attempt);
            attempt += 1;
        }
    }
    out
}

/// Which source columns feed which domain's set: `(table, column) → (identity, domain)`,
/// for every anonymized column under an identifying transformer.
pub fn wanted(config: &super::config::Config) -> Wanted {
    let mut out = BTreeMap::new();
    for (table, tc) in &config.tables {
        if tc.action != super::config::Action::Anonymize {
            continue;
        }
        for (column, cc) in &tc.columns {
            if let Some(identity) = Identity::of(&cc.transformer) {
                out.insert(
                    (table.clone(), column.clone()),
                    (identity, cc.domain.clone()),
                );
            }
        }
    }
    out
}

/// Collects the values of the wanted columns into a set per domain.
#[derive(Debug, Default)]
pub struct Collector {
    seed: u64,
    sets: BTreeMap<String, RealValues>,
}

impl Collector {
    pub fn new(seed: u64) -> Collector {
        Collector {
            seed,
            sets: BTreeMap::new(),
        }
    }

    /// Adds one source value (a COPY field, decoded) of a column feeding `domain`. An
    /// array's elements are added one by one.
    pub fn add(&mut self, identity: Identity, domain: &str, value: &str) {
        if !self.sets.contains_key(domain) {
            self.sets
                .insert(domain.to_string(), RealValues::new(identity, self.seed));
        }
        let set = self.sets.get_mut(domain).expect("just made");
        if value.starts_with('{') && value.ends_with('}') {
            let _ = super::types::map_array(value, |e| {
                set.insert(e);
                Ok(None)
            });
        } else {
            set.insert(value);
        }
    }

    pub fn finish(self) -> RealSets {
        self.sets
            .into_iter()
            .map(|(d, s)| (d, Arc::new(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_as_their_identity_says() {
        let mut c = Collector::new(7);
        c.add(Identity::Phone, "phone", "+40 721 234 567");
        c.add(
            Identity::Email,
            "email",
            "{Ann.Lee@X.example,NULL,\"b c@y.example\"}",
        );
        let sets = c.finish();
        let phone = &sets["phone"];
        assert!(phone.holds("+40721234567"), "formatting does not count");
        assert!(phone.holds("(40) 721-234-567"));
        assert!(!phone.holds("+40 721 234 568"));
        let email = &sets["email"];
        assert!(
            email.holds(" ann.lee@x.example"),
            "case and blanks do not count"
        );
        assert!(email.holds("b c@y.example"), "array elements are values");
        assert!(!email.holds("null"));
        assert_eq!(email.len(), 2);
    }

    #[test]
    fn a_draw_that_is_real_is_drawn_again() {
        let mut set = RealValues::new(Identity::Phone, 1);
        set.insert("111");
        set.insert("222");
        let draws = ["111", "222", "333", "444"];
        assert_eq!(unreal(Some(&set), |n| draws[n as usize].to_string()), "333");
        assert_eq!(unreal(None, |n| draws[n as usize].to_string()), "111");
    }
}
