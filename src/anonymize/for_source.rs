//! What anonymize asks of a [`Source`]: the plan that fits the config to it (or why it
//! does not fit), and a preview of a few rows before → after for `--dry-run`.

use super::config::{Action, Config};
use super::key::Key;
use super::plan::{self, Plan};
use crate::source::Source;

/// What anonymize asks of a source: its plan, and a preview of it.
impl Source {
    /// The plan, or why the config does not fit this source.
    pub fn plan(&self, config: &Config, key: &Key) -> anyhow::Result<Plan> {
        if let Source::Dump(d, scan) = self {
            // rows outside COPY blocks would never meet a transformer: fail closed
            if !scan.ddl.inserts.is_empty() {
                let places: Vec<String> = scan
                    .ddl
                    .inserts
                    .iter()
                    .map(|(t, line)| format!("{t} (from {}:{line})", d.name))
                    .collect();
                anyhow::bail!(
                    "{} holds rows as INSERT statements (pg_dump --inserts or --column-inserts), \
                     which would pass through untouched; nothing was written. Tables: {}. Dump \
                     with COPY, pg_dump's default, so every row goes through the transformers",
                    d.name,
                    places.join(", ")
                );
            }
            if let Some((name, t)) = config.tables.iter().find(|(_, t)| t.filter.is_some()) {
                let f = t.filter.as_ref().expect("found by its filter");
                return Err(config
                    .err(
                        f.span(),
                        format!(
                            "table {name}: `where` filters the rows of a live database; the \
                             rows of a dump ({}) cannot be filtered. Remove it, or read from \
                             the database (--from postgres://…)",
                            d.name
                        ),
                    )
                    .into());
            }
        }
        let p = plan::plan(config, key, &self.tables(), self.real())?;
        plan::check_unique(config, &p, self.unique_keys())?;
        let (count, first) = self.large_objects();
        super::guard::check_large_objects(config, count, &first)?;
        super::guard::check_foreign(config, self.foreign_keys())?;
        Ok(p)
    }

    /// A few rows of each anonymized table, before → after (`--dry-run`).
    pub async fn preview(
        &self,
        plan: &Plan,
        config: &Config,
        rows: usize,
    ) -> anyhow::Result<String> {
        let anonymized = |name: &str| plan.table(name).map(|p| p.action) == Some(Action::Anonymize);
        let samples = self.sample_lines(rows, Some((config, &anonymized))).await?;
        let mut text = String::new();
        for (name, t) in &plan.tables {
            if t.action != Action::Anonymize {
                text.push_str(&format!(
                    "{name}: {}\n",
                    match t.action {
                        Action::Truncate => "truncate (schema only, no rows)",
                        _ => "skip (left out)",
                    }
                ));
                continue;
            }
            let lines = samples.get(name).map(Vec::as_slice).unwrap_or_default();
            if t.is_passthrough() {
                text.push_str(&format!("{name}: every column kept\n"));
                continue;
            }
            text.push_str(&format!("{name} ({} rows sampled)\n", lines.len()));
            for (n, l) in lines.iter().enumerate() {
                let changes = t
                    .preview(l)
                    .map_err(|e| anyhow::anyhow!("{name}, sampled row {}: {e}", n + 1))?;
                let width = changes.iter().map(|(c, _, _)| c.len()).max().unwrap_or(0);
                // NULL and empty values stay as they are: not worth a line
                let changes: Vec<_> = changes
                    .into_iter()
                    .filter(|(_, b, a)| !(b == a && b.as_deref().unwrap_or("").is_empty()))
                    .collect();
                for (k, (col, before, after)) in changes.iter().enumerate() {
                    let show = |v: &Option<String>| {
                        v.as_deref()
                            .map_or("NULL".to_string(), |s| format!("{s:?}"))
                    };
                    text.push_str(&format!(
                        "  {} {col:width$}  {} → {}\n",
                        if k == 0 {
                            format!("row {}:", n + 1)
                        } else {
                            " ".repeat(format!("row {}:", n + 1).len())
                        },
                        show(before),
                        show(after)
                    ));
                }
            }
        }
        Ok(text)
    }
}
