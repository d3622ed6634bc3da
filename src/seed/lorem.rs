//! Filler text: the pinned `fake` crate's lorem words, drawn two per 32-bit word, and
//! sentences from a keyed pool, cut to a column's length.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::profile::LoremUnit;

/// The pinned `fake` crate's lorem word list.
pub(crate) const LOREM_WORDS: &[&str] = <fake::locales::EN as fake::locales::Data>::LOREM_WORD;

/// Filler-text picks, two from each 32-bit draw: an index below `len` is the high bits of
/// `half × len` for a 16-bit half (multiply-shift; for lists of a few hundred words the
/// bias is a fraction of a percent, which filler text does not mind).
pub(crate) struct Picks<'r, R> {
    rng: &'r mut R,
    spare: Option<u16>,
}

impl<'r, R: RngExt> Picks<'r, R> {
    #[inline]
    fn new(rng: &'r mut R) -> Self {
        Picks { rng, spare: None }
    }

    #[inline]
    fn index(&mut self, len: usize) -> usize {
        let half = match self.spare.take() {
            Some(h) => h,
            None => {
                let x = self.rng.next_u32();
                self.spare = Some((x >> 16) as u16);
                x as u16
            }
        };
        (usize::from(half) * len) >> 16
    }

    #[inline]
    fn word(&mut self) -> &'static str {
        LOREM_WORDS[self.index(LOREM_WORDS.len())]
    }

    #[inline]
    fn sentence(&mut self, out: &mut String) {
        let n = 4 + self.index(6);
        let mut cs = self.word().chars();
        if let Some(c) = cs.next() {
            out.push(c.to_ascii_uppercase());
            out.push_str(cs.as_str());
        }
        for _ in 1..n {
            out.push(' ');
            out.push_str(self.word());
        }
        out.push('.');
    }
}

/// Sentences a lorem column draws from: 1024 made from the column's own seed, so a row
/// picks whole sentences (one draw for two) instead of word by word.
pub(crate) const SENTENCE_POOL: usize = 1024;

#[inline]
pub(crate) fn sentence_pool(key: &[u8; 32], column: usize) -> Vec<String> {
    let mut input = [0u8; 16];
    input[..8].copy_from_slice(b"sentence");
    input[8..].copy_from_slice(&(column as u64).to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(*blake3::keyed_hash(key, &input).as_bytes());
    let mut picks = Picks::new(&mut rng);
    (0..SENTENCE_POOL)
        .map(|_| {
            let mut s = String::with_capacity(64);
            picks.sentence(&mut s);
            s
        })
        .collect()
}

#[inline]
pub(crate) fn lorem_into(
    out: &mut String,
    unit: LoremUnit,
    range: std::ops::Range<usize>,
    pool: &[String],
    rng: &mut impl RngExt,
) {
    let n = rng.random_range(range);
    let per_unit = match unit {
        LoremUnit::Words => 8,
        LoremUnit::Sentences => 60,
        LoremUnit::Paragraphs => 300,
    };
    out.reserve(n * per_unit);
    let mut picks = Picks::new(rng);
    match unit {
        LoremUnit::Words => {
            for k in 0..n {
                if k > 0 {
                    out.push(' ');
                }
                out.push_str(picks.word());
            }
        }
        LoremUnit::Sentences => {
            for k in 0..n {
                if k > 0 {
                    out.push(' ');
                }
                out.push_str(&pool[picks.index(pool.len())]);
            }
        }
        LoremUnit::Paragraphs => {
            for k in 0..n {
                if k > 0 {
                    out.push_str("\n\n");
                }
                let sentences = 3 + picks.index(3);
                for s in 0..sentences {
                    if s > 0 {
                        out.push(' ');
                    }
                    out.push_str(&pool[picks.index(pool.len())]);
                }
            }
        }
    }
}

/// Pads `s` with words, or cuts it, to exactly `len` characters (never ending in a space).
#[inline]
pub(crate) fn fit_length(s: &mut String, len: usize, rng: &mut impl RngExt) {
    let mut picks = Picks::new(rng);
    while s.chars().count() < len {
        s.push(' ');
        s.push_str(picks.word());
    }
    if let Some((cut, _)) = s.char_indices().nth(len) {
        s.truncate(cut);
    }
    if s.ends_with(' ') {
        s.pop();
        s.push('.');
    }
}
