//! A keyed permutation of the numbers below 2^n for any n up to 128: a 4-round Feistel
//! network on blake3 over two halves, with cycle walking when n is odd. One-to-one, so
//! a transformer built on it keeps distinct values distinct (network addresses under a
//! unique key).

use crate::anonymize::key::DomainKey;

pub struct Feistel {
    rounds: [DomainKey; 4],
}

impl Feistel {
    pub fn new(key: &DomainKey) -> Feistel {
        Feistel {
            rounds: [key.sub("r0"), key.sub("r1"), key.sub("r2"), key.sub("r3")],
        }
    }

    /// `x` (below 2^n) permuted among the numbers below 2^n.
    pub fn permute(&self, x: u128, n: u32) -> u128 {
        debug_assert!(n <= 128 && (n == 128 || x >> n == 0));
        if n == 0 {
            return x;
        }
        // an even width holds the odd one: walk the cycle until the value is back in range
        let width = n + n % 2;
        let mut y = self.once(x, width);
        while n < 128 && y >> n != 0 {
            y = self.once(y, width);
        }
        y
    }

    fn once(&self, x: u128, width: u32) -> u128 {
        let half = width / 2;
        let mask = if half == 64 {
            u128::from(u64::MAX)
        } else {
            (1u128 << half) - 1
        };
        let (mut l, mut r) = (x >> half, x & mask);
        for k in &self.rounds {
            let mut input = [0u8; 17];
            input[..16].copy_from_slice(&r.to_le_bytes());
            input[16] = width as u8;
            let f = u128::from(k.hash_u64(&input)) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << half) | r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permutation_at_every_small_width() {
        let f = Feistel::new(
            &crate::anonymize::key::Key::from_secret(b"a test key, 16+ characters").domain("f"),
        );
        for n in 1..=10u32 {
            let mut seen = vec![false; 1 << n];
            for x in 0..(1u128 << n) {
                let y = f.permute(x, n) as usize;
                assert!(!seen[y], "width {n}: {y} twice");
                seen[y] = true;
            }
        }
        assert_ne!(f.permute(5, 128), 5);
    }
}
