//! A blocked Bloom filter: every probe of an item falls in one 64-byte block, so a lookup
//! is one cache miss and can be prefetched. Shared by verify's leak set (the source's
//! forms past the exact set's bound) and anonymize's real values (the source's own
//! identifying values, which no draw may equal).

use std::sync::atomic::{AtomicU64, Ordering};

/// A Bloom filter whose probes for one item all fall in one 64-byte block: one cache
/// miss per lookup, and a lookup can be prefetched. Its words are atomic, so every
/// worker reading the source can add to it at once (an OR is the same in any order).
pub struct Bloom {
    blocks: Vec<[AtomicU64; 8]>,
}

/// Bits set per item. With the default 96 MB and the ~10M distinct forms of the
/// 2M-row benchmark table (80 bits an item), eight probes would leave one false
/// positive in ~10^8 lookups, so nearly every run of that size would read the source
/// again to rule one out; twelve make that ~10^-9. Past ~20 bits an item fewer probes
/// would do better, but by then the filter is too full to use anyway.
const PROBES: u32 = 12;

impl Bloom {
    pub fn with_mb(mb: usize) -> Bloom {
        Bloom::with_bytes(mb << 20)
    }

    /// A filter for about `items` values at `bits` bits each (at least one block).
    pub fn for_items(items: usize, bits: usize) -> Bloom {
        Bloom::with_bytes(items.saturating_mul(bits) / 8)
    }

    fn with_bytes(bytes: usize) -> Bloom {
        let n = (bytes / 64).max(1);
        let mut blocks: Vec<[AtomicU64; 8]> = Vec::with_capacity(n);
        // Random probes over ~100 MB miss the TLB on nearly every lookup with 4 KiB
        // pages; ask for huge pages (a hint, ignored where unsupported), before the
        // memory is first touched. madvise wants a page-aligned start.
        #[cfg(target_os = "linux")]
        {
            const PAGE: usize = 4096;
            let start = blocks.as_ptr() as usize;
            let aligned = start.next_multiple_of(PAGE);
            let end = (start + n * 64) & !(PAGE - 1);
            if end > aligned {
                // SAFETY: advice on whole pages inside memory this Vec owns
                unsafe {
                    libc::madvise(
                        aligned as *mut libc::c_void,
                        end - aligned,
                        libc::MADV_HUGEPAGE,
                    )
                };
            }
        }
        blocks.resize_with(n, Default::default);
        Bloom { blocks }
    }

    /// The block of `h`: its low half scaled onto the blocks (a multiply, not a
    /// division: this runs for every form and every candidate).
    fn block(&self, h: u128) -> &[AtomicU64; 8] {
        &self.blocks[((u128::from(h as u64) * self.blocks.len() as u128) >> 64) as usize]
    }

    /// The bits `h` sets in its block: nine bits of the hash a probe, seven probes
    /// from its high half and the rest from a mix of both halves (the low half alone
    /// picked the block). Built in registers, so setting or testing them is one pass
    /// over the block's eight words.
    fn mask(h: u128) -> [u64; 8] {
        let hi = (h >> 64) as u64;
        let mixed = (hi ^ (h as u64).rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut mask = [0u64; 8];
        for i in 0..PROBES {
            let bits = if i < 7 {
                hi >> (i * 9)
            } else {
                mixed >> ((i - 7) * 9)
            };
            let b = bits as usize & 511;
            mask[b / 64] |= 1u64 << (b % 64);
        }
        mask
    }

    /// Starts loading the block `h` falls in, so a lookup soon after does not wait.
    pub fn prefetch(&self, h: u128) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults, and the address is in bounds
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch(self.block(h).as_ptr() as *const i8, _MM_HINT_T0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = h;
    }

    pub fn insert(&self, h: u128) {
        for (w, m) in self.block(h).iter().zip(Bloom::mask(h)) {
            // a bit already set (a value met before) costs no locked write
            if w.load(Ordering::Relaxed) & m != m {
                w.fetch_or(m, Ordering::Relaxed);
            }
        }
    }

    /// Inserts every hash, the blocks of the next few asked for ahead.
    pub fn insert_all(&self, hashes: impl Iterator<Item = u128> + Clone) {
        const AHEAD: usize = 16;
        let mut ahead = hashes.clone().skip(AHEAD);
        for h in hashes {
            if let Some(next) = ahead.next() {
                self.prefetch(next);
            }
            self.insert(h);
        }
    }

    pub fn contains(&self, h: u128) -> bool {
        self.block(h)
            .iter()
            .zip(Bloom::mask(h))
            .all(|(w, m)| w.load(Ordering::Relaxed) & m == m)
    }

    /// The chance that a value it does not hold is found: the mean over blocks of the
    /// share of the block's bits set, to the power of the probes. Measured from the
    /// bits, so a value inserted twice counts once.
    pub fn false_positive_rate(&self) -> f64 {
        let sum: f64 = self
            .blocks
            .iter()
            .map(|b| {
                let set: u32 = b
                    .iter()
                    .map(|w| w.load(Ordering::Relaxed).count_ones())
                    .sum();
                (f64::from(set) / 512.0).powi(PROBES as i32)
            })
            .sum();
        sum / self.blocks.len() as f64
    }

    pub fn bytes(&self) -> usize {
        self.blocks.len() * 64
    }
}
