//! Key hashes of a whole table (unique keys, foreign keys) in bounded memory: appended
//! to a buffer, which is sorted and spilled to a temporary file as a run when full, then
//! read back merged in order. Duplicates, orphans and children per parent all fall out
//! of one ordered walk, at 16 bytes a key however large the table.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// Keys held in memory per set before a run is spilled (16 MiB).
pub const RUN: usize = 1 << 20;

/// The key hashes of one unique key or one side of a foreign key.
pub struct SortedKeys {
    buf: Vec<u128>,
    cap: usize,
    runs: Vec<std::fs::File>,
    pub len: u64,
}

impl SortedKeys {
    pub fn new(cap: usize) -> SortedKeys {
        SortedKeys {
            buf: Vec::new(),
            cap: cap.max(1),
            runs: Vec::new(),
            len: 0,
        }
    }

    pub fn extend(&mut self, keys: &[u128]) -> std::io::Result<()> {
        self.len += keys.len() as u64;
        for chunk in keys.chunks(self.cap) {
            if self.buf.len() + chunk.len() > self.cap {
                self.spill()?;
            }
            self.buf.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// At the end of a table: spills what is buffered unless it is small, so the memory
    /// is free for the next table.
    pub fn settle(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= self.cap / 16 {
            self.spill()?;
        }
        Ok(())
    }

    /// Writes what is buffered as a sorted run.
    pub fn spill(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.buf.sort_unstable();
        let mut f = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for k in &self.buf {
            f.write_all(&k.to_le_bytes())?;
        }
        let mut f = f.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        self.runs.push(f);
        self.buf.clear();
        self.buf.shrink_to_fit();
        Ok(())
    }

    /// Every key, in order, with how many times it was added.
    pub fn counted(mut self) -> std::io::Result<Counted> {
        self.buf.sort_unstable();
        let mut heads = Vec::new();
        for f in self.runs {
            let mut r = BufReader::with_capacity(1 << 16, f);
            let head = next_key(&mut r)?;
            heads.push((r, head));
        }
        Ok(Counted {
            mem: self.buf.into_iter().peekable(),
            runs: heads,
        })
    }
}

fn next_key(r: &mut impl Read) -> std::io::Result<Option<u128>> {
    let mut b = [0u8; 16];
    match r.read_exact(&mut b) {
        Ok(()) => Ok(Some(u128::from_le_bytes(b))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The merged walk of a [`SortedKeys`]: `(key, times added)` in increasing key order.
pub struct Counted {
    mem: std::iter::Peekable<std::vec::IntoIter<u128>>,
    runs: Vec<(BufReader<std::fs::File>, Option<u128>)>,
}

impl Counted {
    fn pop_min(&mut self) -> std::io::Result<Option<u128>> {
        let mut best = self.mem.peek().copied();
        let mut from = None;
        for (i, (_, head)) in self.runs.iter().enumerate() {
            if let Some(h) = *head {
                if best.is_none_or(|b| h < b) {
                    best = Some(h);
                    from = Some(i);
                }
            }
        }
        match from {
            Some(i) => {
                let (r, head) = &mut self.runs[i];
                *head = next_key(r)?;
            }
            None => {
                self.mem.next();
            }
        }
        Ok(best)
    }

    /// The next distinct key and how many times it was added.
    pub fn next_run(&mut self) -> std::io::Result<Option<(u128, u64)>> {
        let Some(k) = self.pop_min()? else {
            return Ok(None);
        };
        let mut n = 1;
        loop {
            let next = self
                .mem
                .peek()
                .copied()
                .into_iter()
                .chain(self.runs.iter().filter_map(|(_, h)| *h))
                .min();
            if next != Some(k) {
                return Ok(Some((k, n)));
            }
            self.pop_min()?;
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(mut keys: SortedKeys) -> Vec<(u128, u64)> {
        keys.spill().unwrap();
        let mut c = keys.counted().unwrap();
        std::iter::from_fn(|| c.next_run().unwrap()).collect()
    }

    #[test]
    fn runs_spilled_and_in_memory_merge_into_counts() {
        let mut k = SortedKeys::new(3);
        k.extend(&[9, 1, 5, 1, 7, 9, 9, 2]).unwrap();
        assert!(k.runs.len() >= 2, "small runs spill");
        k.extend(&[5]).unwrap();
        assert_eq!(k.len, 9);
        let mut c = k.counted().unwrap();
        let got: Vec<_> = std::iter::from_fn(|| c.next_run().unwrap()).collect();
        assert_eq!(got, [(1, 2), (2, 1), (5, 2), (7, 1), (9, 3)]);
        assert_eq!(walk(SortedKeys::new(10)), []);
    }
}
