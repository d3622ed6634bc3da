//! The values of each entity that later entities read (ids, and what their templates,
//! date bounds and filters name), kept packed while the rest of a row is let go.

use super::*;

/// The values of an entity that later entities read (ids, and the columns their
/// templates, date bounds and filters name), packed in one buffer: a large parent table
/// costs a few allocations, not one per value, and keeps none of the text nobody reads.
pub(super) struct Retained {
    pub(super) entity: String,
    /// Per row value (the id first): its place among the kept values of a row.
    pub(super) slot: Vec<Option<usize>>,
    pub(super) width: usize,
    /// Per kept value: the instant a date or timestamp generator made, so children read
    /// it without parsing text (`i64::MIN` where there is none).
    pub(super) times: Vec<i64>,
    pub(super) text: String,
    /// Per kept value: its end offset in `text` (a NULL ends where it starts).
    pub(super) ends: Vec<u64>,
    pub(super) nulls: Vec<bool>,
}

impl Retained {
    pub(super) fn new(entity: &str, keep: &[bool], rows: usize) -> Self {
        let mut width = 0;
        let slot = keep
            .iter()
            .map(|&k| {
                k.then(|| {
                    width += 1;
                    width - 1
                })
            })
            .collect();
        Retained {
            entity: entity.to_string(),
            slot,
            width,
            times: Vec::with_capacity(rows * width),
            text: String::with_capacity(rows * width * 24),
            ends: Vec::with_capacity(rows * width),
            nulls: Vec::with_capacity(rows * width),
        }
    }

    pub(super) fn push(&mut self, row: &[Option<String>], times: &[i64]) {
        for ((v, t), slot) in row.iter().zip(times).zip(&self.slot) {
            if slot.is_some() {
                self.text.push_str(v.as_deref().unwrap_or_default());
                self.ends.push(self.text.len() as u64);
                self.nulls.push(v.is_none());
                self.times.push(*t);
            }
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.ends.len() / self.width.max(1)
    }

    #[inline]
    pub(super) fn index(&self, row: usize, col: usize) -> usize {
        let slot = self.slot[col].expect("children read only the values kept for them");
        row * self.width + slot
    }

    /// The instant in a date or timestamp value, from the generator or parsed.
    #[inline]
    pub(super) fn time(&self, row: usize, col: usize) -> Option<i64> {
        match self.times[self.index(row, col)] {
            i64::MIN => self.get(row, col).and_then(parse_time),
            t => Some(t),
        }
    }

    #[inline]
    pub(super) fn get(&self, row: usize, col: usize) -> Option<&str> {
        let k = self.index(row, col);
        if self.nulls[k] {
            return None;
        }
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        Some(&self.text[start..self.ends[k] as usize])
    }
}

/// Which values of each entity later entities read: for entity `e`, a flag per row value
/// (the id first). An entity nobody refers to keeps nothing.
pub(super) fn values_read_by_children(profile: &Profile) -> Vec<Vec<bool>> {
    let mut read: Vec<Vec<bool>> = profile
        .entities
        .iter()
        .map(|e| vec![false; e.columns.len() + 1])
        .collect();
    for child in &profile.entities {
        let parent_of = |via: usize| match &child.columns[via].gen {
            Gen::Ref { entity, .. } => Some(*entity),
            _ => None,
        };
        let columns = child
            .columns
            .iter()
            .chain(child.overrides.iter().flat_map(|o| o.values()));
        for c in columns {
            // (parent entity, parent value) pairs this column reads
            let mut reads: Vec<(usize, usize)> = Vec::new();
            let mut mark = |via: usize, column: usize| {
                if let Some(pe) = parent_of(via) {
                    reads.push((pe, column + 1));
                }
            };
            let mut templates: Vec<&Template> = Vec::new();
            match &c.gen {
                Gen::Ref { entity, filter, .. } => {
                    read[*entity][0] = true;
                    if let Some((pc, _)) = filter {
                        read[*entity][pc + 1] = true;
                    }
                }
                Gen::Template(t) => templates.push(t),
                Gen::OneOf(ts) => templates.extend(ts),
                Gen::Time { from, to, .. } => {
                    for (base, _) in from.alternatives.iter().chain(&to.alternatives) {
                        if let BoundBase::Parent { via, column } = base {
                            mark(*via, *column);
                        }
                    }
                }
                _ => {}
            }
            for t in templates {
                for part in &t.parts {
                    if let Part::Var(Var::Parent { via, column }, _) = part {
                        mark(*via, *column);
                    }
                }
            }
            for (pe, v) in reads {
                read[pe][v] = true;
            }
        }
    }
    read
}
