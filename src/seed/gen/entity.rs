//! Generating one entity's rows: each column drawn from its own keyed stream (or from
//! the row's shared words), references to parent rows chosen from the retained values,
//! and the rows handed on as they are made.

use super::*;

pub(super) struct EntityRun<'a> {
    pub(super) profile: &'a Profile,
    pub(super) entity: &'a Entity,
    pub(super) key: [u8; 32],
    pub(super) parents: &'a [Retained],
    /// Per column: eligible parent rows for a ref column.
    pub(super) eligible: Vec<Vec<usize>>,
    /// Per column: the cached shuffled cycle for mixes and NULL shares.
    pub(super) cycles: Vec<Option<CycleState>>,
    /// Per lorem column: its pool of sentences, made on first use.
    pub(super) sentence_pools: Vec<Option<Vec<String>>>,
    pub(super) null_cycles: Vec<Option<CycleState>>,
    /// One ChaCha8 generator per column, keyed by the entity, on the column's stream.
    pub(super) column_rngs: Vec<ChaCha8Rng>,
    pub(super) row_block: Option<RowBlock>,
    pub(super) slots: Vec<Option<usize>>,
    pub(super) anchor_secs: i64,
    /// Rows this entity gets.
    pub(super) count: usize,
}

pub(super) fn generate_entity<E: From<GenError>>(
    profile: &Profile,
    entity: &Entity,
    opts: &SeedOptions,
    master: &[u8; 32],
    parents: &[Retained],
    keep: &[bool],
    sink: &mut impl FnMut(Event<'_>) -> Result<(), E>,
) -> Result<Retained, E> {
    let key = *blake3::keyed_hash(master, entity.name.as_bytes()).as_bytes();
    let mut eligible = Vec::with_capacity(entity.columns.len());
    for c in &entity.columns {
        eligible.push(match &c.gen {
            Gen::Ref {
                entity: pe,
                filter,
                childless,
            } => {
                let parent = &parents[*pe];
                let mut rows: Vec<usize> = match filter {
                    Some((pc, values)) => (0..parent.len())
                        .filter(|&r| {
                            parent
                                .get(r, pc + 1)
                                .map(|v| values.iter().any(|w| w == v))
                                .unwrap_or(false)
                        })
                        .collect(),
                    None => (0..parent.len()).collect(),
                };
                let keep = rows.len().saturating_sub(*childless as usize);
                rows.truncate(keep);
                if rows.is_empty() {
                    return Err(E::from(GenError::NoParent {
                        entity: entity.name.clone(),
                        column: c.name.clone(),
                        parent: parent.entity.clone(),
                        filter: match filter {
                            Some((pc, v)) => format!(
                                "{} in [{}]",
                                profile.entities[*pe].columns[*pc].name,
                                v.join(", ")
                            ),
                            None => "anything".into(),
                        },
                    }));
                }
                rows
            }
            _ => Vec::new(),
        });
    }
    let column_rngs = entity
        .columns
        .iter()
        .map(|c| {
            let h = blake3::hash(c.name.as_bytes());
            let mut rng = ChaCha8Rng::from_seed(key);
            rng.set_stream(u64::from_le_bytes(
                h.as_bytes()[..8].try_into().expect("8 bytes"),
            ));
            rng
        })
        .collect();
    let mut run = EntityRun {
        profile,
        entity,
        key,
        parents,
        eligible,
        cycles: entity.columns.iter().map(|_| None).collect(),
        sentence_pools: entity.columns.iter().map(|_| None).collect(),
        null_cycles: entity.columns.iter().map(|_| None).collect(),
        column_rngs,
        row_block: Some(RowBlock {
            rng: {
                let mut r = ChaCha8Rng::from_seed(key);
                r.set_stream(u64::MAX);
                r
            },
            words: [0; 64],
            group: None,
        }),
        slots: assign_slots(&entity.columns),
        anchor_secs: opts.anchor * 86_400,
        count: entity.count_at(opts.scale) as usize,
    };
    let count = run.count;
    let mut columns = Vec::with_capacity(entity.columns.len() + 1);
    columns.push(entity.id_column.clone());
    columns.extend(entity.columns.iter().map(|c| c.name.clone()));
    let mut plain = vec![true];
    plain.extend(entity.columns.iter().enumerate().map(|(ci, c)| {
        is_plain(c)
            && entity
                .overrides
                .iter()
                .all(|o| o.get(&ci).is_none_or(is_plain))
    }));
    sink(Event::Begin {
        table: &entity.table,
        columns: &columns,
        plain: &plain,
        rows: count as u64,
    })?;
    let keeps_any = keep.iter().any(|&k| k);
    let mut kept = Retained::new(&entity.name, keep, if keeps_any { count } else { 0 });
    let mut scratch = RowScratch {
        parent_rows: vec![None; entity.columns.len()],
        spare: Vec::new(),
        times: vec![i64::MIN; entity.columns.len() + 1],
    };
    // Every row is made in one reused buffer: no allocation per value.
    let mut row = Vec::new();
    for i in 0..count {
        run.row_into(i, &mut scratch, &mut row);
        sink(Event::Row(&row))?;
        if keeps_any {
            kept.push(&row, &scratch.times);
        }
    }
    sink(Event::End)?;
    Ok(kept)
}

/// Whether every value `c` can make is free of the bytes CSV and COPY escape, and not
/// empty: ids, dates, numbers, and literals that are so.
pub(super) fn is_plain(c: &Column) -> bool {
    let plain_text = |v: &str| {
        !v.is_empty()
            && !v
                .bytes()
                .any(|b| matches!(b, b',' | b'"' | b'\\' | b'\t' | b'\n' | b'\r'))
    };
    c.length.is_none()
        && c.max_length.is_none()
        && match &c.gen {
            Gen::Null | Gen::Ref { .. } | Gen::Time { .. } | Gen::Integer { .. } => true,
            Gen::Const(v) => plain_text(v),
            Gen::Mix(items) => items.iter().all(|(v, _)| plain_text(v)),
            Gen::Template(_) | Gen::OneOf(_) | Gen::Lorem { .. } => false,
        }
}

/// The shuffles of one mix (or NULL share) column.
pub(super) struct CycleState {
    pub(super) rng: ChaCha8Rng,
    /// The next cycle to shuffle.
    pub(super) next: u64,
    pub(super) perm: Vec<u32>,
}

pub(super) struct RowScratch {
    /// For each ref column of the current row: the parent row chosen.
    pub(super) parent_rows: Vec<Option<usize>>,
    /// Buffers of NULL values, kept for the next row.
    pub(super) spare: Vec<String>,
    /// Per value of the current row (id first): the instant a date or timestamp
    /// generator made, `i64::MIN` otherwise.
    pub(super) times: Vec<i64>,
}

impl EntityRun<'_> {
    /// Makes row `i` in `values` (`values[0]` the id), reusing its buffers.
    pub(super) fn row_into(
        &mut self,
        i: usize,
        scratch: &mut RowScratch,
        values: &mut Vec<Option<String>>,
    ) {
        let mut rngs = std::mem::take(&mut self.column_rngs);
        let mut block = self.row_block.take().expect("one row at a time");
        let n_cols = self.entity.columns.len();
        values.resize_with(n_cols + 1, || None);
        if let Some(old_id) = values[0].take() {
            scratch.spare.push(old_id);
        }
        scratch.parent_rows.iter_mut().for_each(|p| *p = None);
        scratch.times.iter_mut().for_each(|t| *t = i64::MIN);
        let entity = self.entity;
        for (ci, column) in entity.columns.iter().enumerate() {
            if entity.key.is_some_and(|k| k + 1 == ci) || (entity.key.is_none() && ci == 0) {
                values[0] = Some(self.id(i, values, scratch));
            }
            let mut rng = ColumnRng {
                block: &mut block,
                slot: self.slots[ci],
                used: 0,
                own: &mut rngs[ci],
                row: i as u64,
                positioned: false,
            };
            let column = entity
                .overrides
                .get(i)
                .and_then(|o| o.get(&ci))
                .unwrap_or(column);
            // Only earlier columns are read while this one is made (checked when the
            // profile is compiled), so this slot's old value can be recycled.
            let mut out = values[ci + 1]
                .take()
                .or_else(|| scratch.spare.pop())
                .unwrap_or_default();
            out.clear();
            if self.value(i, ci, column, values, scratch, &mut rng, &mut out) {
                values[ci + 1] = Some(out);
            } else {
                scratch.spare.push(out);
            }
        }
        if values[0].is_none() {
            values[0] = Some(self.id(i, values, scratch));
        }
        self.column_rngs = rngs;
        self.row_block = Some(block);
    }

    /// UUIDv5 of `profile/entity/natural key` (the key column's value, else `#n`).
    pub(super) fn id(
        &self,
        i: usize,
        values: &[Option<String>],
        scratch: &mut RowScratch,
    ) -> String {
        let mut number = String::new();
        let natural = match self
            .entity
            .key
            .and_then(|k| values.get(k + 1))
            .and_then(|v| v.as_deref())
        {
            Some(natural) => natural,
            None => {
                number.push('#');
                push_padded(&mut number, (i + 1) as u64, 0);
                &number
            }
        };
        let uuid = uuid_v5(&[
            self.profile.name.as_bytes(),
            b"/",
            self.entity.name.as_bytes(),
            b"/",
            natural.as_bytes(),
        ]);
        let mut out = scratch.spare.pop().unwrap_or_default();
        out.clear();
        let mut buf = [0u8; 36];
        out.push_str(uuid.hyphenated().encode_lower(&mut buf));
        out
    }

    /// Writes column `ci` of row `i` into `out`; false for NULL.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn value(
        &mut self,
        i: usize,
        ci: usize,
        column: &Column,
        values: &[Option<String>],
        scratch: &mut RowScratch,
        rng: &mut ColumnRng,
        out: &mut String,
    ) -> bool {
        if let Some((wc, allowed)) = &column.when {
            match values[wc + 1].as_deref() {
                Some(v) if allowed.iter().any(|a| a == v) => {}
                _ => return false,
            }
        }
        if let Some((num, den)) = column.nulls {
            if num > 0 && self.cycle_slot(ci, true, den, i) < num {
                return false;
            }
        }
        match &column.gen {
            Gen::Null => return false,
            Gen::Const(s) => out.push_str(s),
            Gen::Template(t) => self.render(t, i, values, scratch, rng, out),
            Gen::OneOf(ts) => {
                let t = &ts[rng.random_range(0..ts.len())];
                self.render(t, i, values, scratch, rng, out);
            }
            Gen::Mix(items) => {
                let total: u32 = items.iter().map(|(_, w)| w).sum();
                let mut slot = self.cycle_slot(ci, false, total, i);
                let mut chosen = &items[0].0;
                for (v, w) in items {
                    if slot < *w {
                        chosen = v;
                        break;
                    }
                    slot -= w;
                }
                out.push_str(chosen);
            }
            Gen::Ref { entity: pe, .. } => {
                let eligible = &self.eligible[ci];
                let n = eligible.len();
                let pick = if n == 1 {
                    eligible[0]
                } else if n <= 2 * REF_WINDOW {
                    eligible[rng.random_range(0..n)]
                } else {
                    // A random parent near this row's share of the parents: every parent
                    // gets children, the spread is still random, and the parents a run
                    // reads stay in cache at any scale.
                    let centre = (i as u128 * n as u128 / self.count.max(1) as u128) as usize;
                    let lo = centre.saturating_sub(REF_WINDOW).min(n - 2 * REF_WINDOW);
                    eligible[lo + rng.random_range(0..2 * REF_WINDOW)]
                };
                scratch.parent_rows[ci] = Some(pick);
                match self.parents[*pe].get(pick, 0) {
                    Some(id) => out.push_str(id),
                    None => return false,
                }
                return true;
            }
            Gen::Time { from, to, kind } => {
                let (Some(lo), Some(hi)) = (
                    self.bound(from, values, scratch),
                    self.bound(to, values, scratch),
                ) else {
                    return false;
                };
                let hi = hi.max(lo);
                let at = match kind {
                    TimeKind::Date => {
                        let (dlo, dhi) = (lo.div_euclid(86_400), hi.div_euclid(86_400));
                        let day = rng.random_range(dlo..=dhi);
                        push_date(out, day);
                        day * 86_400
                    }
                    TimeKind::Timestamp => {
                        let at = rng.random_range(lo..=hi);
                        push_timestamp(out, at);
                        at
                    }
                };
                if column.length.is_none() && column.max_length.is_none() {
                    scratch.times[ci + 1] = at;
                }
            }
            Gen::Lorem { unit, range } => {
                let key = &self.key;
                let pool = self.sentence_pools[ci].get_or_insert_with(|| sentence_pool(key, ci));
                lorem_into(out, *unit, range.clone(), pool, rng);
            }
            Gen::Integer { range } => {
                let n = rng.random_range(range.clone());
                if n < 0 {
                    out.push('-');
                }
                push_padded(out, n.unsigned_abs(), 0);
            }
        }
        if let Some(len) = column.length {
            fit_length(out, len, rng);
        }
        if let Some(max) = column.max_length {
            if let Some((cut, _)) = out.char_indices().nth(max) {
                out.truncate(cut);
            }
        }
        true
    }

    /// The position of row `i` within its shuffled cycle of `len` slots. Cycle `c`'s
    /// order is the `c`-th shuffle drawn from the column's own ChaCha8 stream; rows are
    /// made in order, so each cycle is shuffled once.
    pub(super) fn cycle_slot(&mut self, ci: usize, nulls: bool, len: u32, i: usize) -> u32 {
        let cycle = (i / len as usize) as u64;
        let key = &self.key;
        let state = if nulls {
            &mut self.null_cycles[ci]
        } else {
            &mut self.cycles[ci]
        };
        let st = state.get_or_insert_with(|| {
            let mut input = [0u8; 16];
            input[..8].copy_from_slice(if nulls {
                b"nulls\0\0\0"
            } else {
                b"mix\0\0\0\0\0"
            });
            input[8..].copy_from_slice(&(ci as u64).to_le_bytes());
            CycleState {
                rng: ChaCha8Rng::from_seed(*blake3::keyed_hash(key, &input).as_bytes()),
                next: 0,
                perm: Vec::with_capacity(len as usize),
            }
        });
        debug_assert!(cycle + 1 >= st.next, "rows are made in order");
        while st.next <= cycle {
            st.perm.clear();
            st.perm.extend(0..len);
            for k in (1..st.perm.len()).rev() {
                let j = st.rng.random_range(0..=k);
                st.perm.swap(k, j);
            }
            st.next += 1;
        }
        st.perm[i % len as usize]
    }

    pub(super) fn bound(
        &self,
        b: &Bound,
        values: &[Option<String>],
        scratch: &RowScratch,
    ) -> Option<i64> {
        for (base, offset) in &b.alternatives {
            let at = match base {
                BoundBase::Anchor => Some(self.anchor_secs),
                BoundBase::Column(c) => match scratch.times[c + 1] {
                    i64::MIN => values[c + 1].as_deref().and_then(parse_time),
                    t => Some(t),
                },
                BoundBase::Parent { via, column } => match &self.entity.columns[*via].gen {
                    Gen::Ref { entity: pe, .. } => scratch.parent_rows[*via]
                        .and_then(|row| self.parents[*pe].time(row, column + 1)),
                    _ => None,
                },
            };
            if let Some(t) = at {
                return Some(t + offset);
            }
        }
        None
    }

    pub(super) fn parent_value(
        &self,
        via: usize,
        column: usize,
        scratch: &RowScratch,
    ) -> Option<&str> {
        let Gen::Ref { entity: pe, .. } = &self.entity.columns[via].gen else {
            return None;
        };
        let row = scratch.parent_rows[via]?;
        self.parents[*pe].get(row, column + 1)
    }

    pub(super) fn render(
        &self,
        t: &Template,
        i: usize,
        values: &[Option<String>],
        scratch: &RowScratch,
        rng: &mut ColumnRng,
        out: &mut String,
    ) {
        for part in &t.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Var(var, mods) if mods.is_empty() => {
                    self.var_into(var, i, values, scratch, rng, out);
                }
                Part::Var(var, mods) => {
                    let mut v = String::new();
                    self.var_into(var, i, values, scratch, rng, &mut v);
                    for m in mods {
                        v = match m {
                            Modifier::Lower => v.to_lowercase(),
                            Modifier::Upper => v.to_uppercase(),
                            Modifier::Slug => {
                                let mut s = String::new();
                                locale::slug_into(&mut s, &v, '-');
                                s
                            }
                            Modifier::Dotted => {
                                let mut s = String::new();
                                locale::slug_into(&mut s, &v, '.');
                                s
                            }
                            Modifier::Year => v.chars().take(4).collect(),
                        };
                    }
                    out.push_str(&v);
                }
            }
        }
    }

    pub(super) fn var_into(
        &self,
        var: &Var,
        i: usize,
        values: &[Option<String>],
        scratch: &RowScratch,
        rng: &mut ColumnRng,
        v: &mut String,
    ) {
        match var {
            Var::RowNumber { width } => push_padded(v, (i + 1) as u64, *width),
            Var::Id => v.push_str(values[0].as_deref().unwrap_or_default()),
            Var::Column(c) => v.push_str(values[c + 1].as_deref().unwrap_or_default()),
            Var::Parent { via, column } => v.push_str(
                self.parent_value(*via, *column, scratch)
                    .unwrap_or_default(),
            ),
            Var::List(name) => {
                if let Some(list) = self.profile.lists.get(name).filter(|l| !l.is_empty()) {
                    v.push_str(&list[rng.random_range(0..list.len())]);
                }
            }
            Var::Fake(kind) => locale::fake_into(v, *kind, self.profile.locale, rng),
            Var::Digits(n) => {
                for _ in 0..*n {
                    v.push(char::from(b'0' + rng.random_range(0..10u8)));
                }
            }
        }
    }
}

/// UUIDv5 (RFC 9562) of the concatenated `name_parts` in [`ID_NAMESPACE`]: the same value as
/// `Uuid::new_v5`, computed with the `sha1` crate, whose hardware-accelerated SHA-1 is
/// several times faster on the millions of ids a large seed needs.
pub fn uuid_v5(name_parts: &[&[u8]]) -> Uuid {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(ID_NAMESPACE.as_bytes());
    for part in name_parts {
        h.update(part);
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// Row `i`'s shared words: 16 words of a stream of the entity's own, at word `i × 16`,
/// which one cipher refill (64 words) makes for four consecutive rows at once. Most
/// columns draw a word or two, so most rows cost a quarter of a refill.
pub(super) struct RowBlock {
    pub(super) rng: ChaCha8Rng,
    pub(super) words: [u32; 64],
    pub(super) group: Option<u64>,
}

impl RowBlock {
    #[inline]
    pub(super) fn word(&mut self, row: u64, k: usize) -> u32 {
        let group = row / 4;
        if self.group != Some(group) {
            self.rng.set_word_pos(u128::from(group) * 64);
            for w in &mut self.words {
                *w = self.rng.next_u32();
            }
            self.group = Some(group);
        }
        self.words[(row % 4) as usize * ROW_WORDS + k]
    }
}

/// Row `i`'s randomness for one column: first the column's 2 shared words (its slot,
/// fixed by its name), then the column's own ChaCha8 stream from word `i × 2^20`.
/// Nothing is computed until the column draws, and no value depends on another row's or
/// another column's draws.
pub(super) struct ColumnRng<'a> {
    pub(super) block: &'a mut RowBlock,
    pub(super) slot: Option<usize>,
    pub(super) used: usize,
    pub(super) own: &'a mut ChaCha8Rng,
    pub(super) row: u64,
    pub(super) positioned: bool,
}

impl rand::TryRng for ColumnRng<'_> {
    type Error = std::convert::Infallible;

    #[inline]
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        if let Some(slot) = self.slot {
            if self.used < SLOT_WORDS {
                let w = self.block.word(self.row, slot * SLOT_WORDS + self.used);
                self.used += 1;
                return Ok(w);
            }
        }
        if !self.positioned {
            self.own
                .set_word_pos(u128::from(self.row) << ROW_WORDS_LOG2);
            self.positioned = true;
        }
        Ok(self.own.next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let lo = u64::from(self.try_next_u32()?);
        let hi = u64::from(self.try_next_u32()?);
        Ok(hi << 32 | lo)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(4) {
            let w = self.try_next_u32()?.to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}

/// Shared words per row.
pub(super) const ROW_WORDS: usize = 16;
/// Words of the row's shared words each column may take before its own stream.
pub(super) const SLOT_WORDS: usize = 2;
/// Columns with a slot in the row's shared words.
pub(super) const SLOTS: usize = ROW_WORDS / SLOT_WORDS;

/// Row-block slots for an entity's columns: each column's name hashes to a slot, and a
/// column finding it taken probes onward in declaration order; past 8, columns draw from
/// their own streams only. Adding a column after the others leaves their slots alone.
pub(super) fn assign_slots(columns: &[Column]) -> Vec<Option<usize>> {
    let mut taken = [false; SLOTS];
    columns
        .iter()
        .map(|c| {
            let h = blake3::hash(c.name.as_bytes()).as_bytes()[0] as usize;
            (0..SLOTS)
                .map(|k| (h + k) % SLOTS)
                .find(|&s| !taken[s])
                .inspect(|&s| taken[s] = true)
        })
        .collect()
}

/// Each row may draw up to 2^20 32-bit words per column before reaching the next row's.
pub(super) const ROW_WORDS_LOG2: u32 = 20;
