//! The memory of values a column's transformer has answered, per column and thread,
//! that [`super::plan`]'s row rewrite looks up before transforming a value.

/// Values a column's transformer has answered, by their COPY text: names, cities, dates
/// and statuses repeat, and a repeat then costs a lookup instead of a keyed hash and a
/// fake. A two-way set-associative cache: its size is fixed whatever the table's, a miss
/// overwrites the less recently used of two slots and reuses their buffers, so a column
/// whose values never repeat (emails, keys) costs a hash and a copy a value, and no
/// allocation once warm. A column cycling through more values than a hash map trial
/// would have seen repeat (20,000 last names, in key order) still hits most of the time.
///
/// A miss costs a cache miss or two in memory this size, more than the copy, so a column
/// that hits less than one lookup in eight over a window rests: it then looks up only
/// the values whose hash falls in one sixteenth of the hash space. A value is always or
/// never in that sample, so the sample's hit rate is the column's; when it reaches one in
/// eight the column wakes, with a window as long as the cache is large, so that values
/// repeating over a long period (20,000 birth dates in key order) fill it first.
#[derive(Default)]
pub(super) struct ColumnMemo {
    /// `sets` sets of two slots, made at the first insert.
    slots: Vec<MemoSlot>,
    /// Sets now: from `MEMO_SETS_FIRST`, four times as many each time as many values
    /// as slots went in, up to `MEMO_SETS`; a small table, or a thread going from one
    /// table to another, never pays for the largest.
    sets: usize,
    /// Values put in since the sets were last made.
    inserts: usize,
    /// Per set, the way used last.
    recent: Vec<u8>,
    /// Lookups and hits in the current window.
    lookups: u32,
    hits: u32,
    /// Whether only the sample is looked up.
    resting: bool,
    /// Lookups the current window holds.
    window: u32,
}

/// Lookups in the first window of a column.
const MEMO_WINDOW: u32 = 4096;
/// Lookups in a window of a resting column's sample (about 4,096 values).
const MEMO_SAMPLE: u32 = 256;

#[derive(Default)]
struct MemoSlot {
    hash: u64,
    raw: Vec<u8>,
    encoded: Vec<u8>,
    used: bool,
}

/// Sets per column and thread (two slots each).
const MEMO_SETS: usize = 1 << 14;
/// Sets a column's memory starts with.
const MEMO_SETS_FIRST: usize = 1 << 8;
/// The longest field, and the longest output, remembered: longer ones are rarely
/// repeated, and the bound (buffers grown to the exact size) keeps a column's memory
/// under 2 × 16,384 × 256 bytes (8 MB; about 4 MB for names and addresses).
const MEMO_RAW_MAX: usize = 64;
const MEMO_OUT_MAX: usize = 128;

impl ColumnMemo {
    pub(super) fn hash(raw: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64(raw)
    }

    /// Whether to look up (and remember) the value whose hash is `h`.
    pub(super) fn wanted(&self, h: u64) -> bool {
        !self.resting || h >> 60 == 0
    }

    /// Counts a lookup; at the end of a window, rests a column that hit less than one
    /// time in eight, or wakes a resting one whose sample hit at least that often.
    pub(super) fn counted(&mut self, hit: bool) {
        self.lookups += 1;
        self.hits += u32::from(hit);
        let limit = if self.resting {
            MEMO_SAMPLE
        } else {
            self.window.max(MEMO_WINDOW)
        };
        if self.lookups >= limit {
            let often = self.hits * 8 >= self.lookups;
            if self.resting && often {
                self.resting = false;
                self.window = (2 * MEMO_SETS) as u32;
            } else if !self.resting && !often {
                self.resting = true;
            }
            (self.lookups, self.hits) = (0, 0);
        }
    }

    /// The remembered output for `raw`, whose [`hash`](Self::hash) is `h`.
    pub(super) fn get(&mut self, h: u64, raw: &[u8]) -> Option<&[u8]> {
        if self.slots.is_empty() {
            return None;
        }
        let set = h as usize & (self.sets - 1);
        for way in 0..2 {
            let slot = &self.slots[set * 2 + way];
            if slot.used && slot.hash == h && slot.raw == raw {
                self.recent[set] = way as u8;
                return Some(&self.slots[set * 2 + way].encoded);
            }
        }
        None
    }

    /// Makes `sets` sets, moving the remembered values over (one that finds both slots
    /// of its new set taken is dropped).
    fn make(&mut self, sets: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots.resize_with(sets * 2, MemoSlot::default);
        self.recent = vec![0; sets];
        (self.sets, self.inserts) = (sets, 0);
        for slot in old.into_iter().filter(|s| s.used) {
            let set = slot.hash as usize & (sets - 1);
            if let Some(free) = (0..2).find(|&way| !self.slots[set * 2 + way].used) {
                self.slots[set * 2 + free] = slot;
            }
        }
    }

    pub(super) fn put(&mut self, h: u64, raw: &[u8], encoded: &[u8]) {
        if raw.len() > MEMO_RAW_MAX || encoded.len() > MEMO_OUT_MAX {
            return;
        }
        if self.slots.is_empty() {
            self.make(MEMO_SETS_FIRST);
        } else if self.sets < MEMO_SETS && self.inserts >= 2 * self.sets {
            self.make((self.sets * 4).min(MEMO_SETS));
        }
        self.inserts += 1;
        let set = h as usize & (self.sets - 1);
        let way = 1 - usize::from(self.recent[set]);
        self.recent[set] = way as u8;
        let slot = &mut self.slots[set * 2 + way];
        slot.hash = h;
        slot.used = true;
        // grown to the exact size, never doubled past the bounds above
        slot.raw.clear();
        slot.raw.reserve_exact(raw.len());
        slot.raw.extend_from_slice(raw);
        slot.encoded.clear();
        slot.encoded.reserve_exact(encoded.len());
        slot.encoded.extend_from_slice(encoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache grows from its first size to its largest, moving what it holds, and
    /// never answers a value with another's output, whatever it has dropped.
    #[test]
    fn the_memo_grows_and_answers_only_what_it_was_given() {
        let mut m = ColumnMemo::default();
        let out = |i: u32| format!("out {i}").into_bytes();
        for i in 0..200_000u32 {
            let raw = format!("value {}", i % 70_000).into_bytes();
            let h = ColumnMemo::hash(&raw);
            match m.get(h, &raw) {
                Some(v) => assert_eq!(v, out(i % 70_000), "value {}", i % 70_000),
                None => m.put(h, &raw, &out(i % 70_000)),
            }
        }
        assert_eq!(m.sets, MEMO_SETS, "grown to the largest");
        let held = (0..70_000u32)
            .filter(|i| {
                let raw = format!("value {i}").into_bytes();
                m.get(ColumnMemo::hash(&raw), &raw).is_some()
            })
            .count();
        assert!(held > 20_000, "{held} of 70,000 held");
        let long = vec![b'x'; MEMO_RAW_MAX + 1];
        m.put(ColumnMemo::hash(&long), &long, b"y");
        assert!(
            m.get(ColumnMemo::hash(&long), &long).is_none(),
            "too long to keep"
        );
    }
}
