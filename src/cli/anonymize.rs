//! `dataforge anonymize`: stream a source through the transformers of `anonymize.toml`;
//! `dataforge snapshot import`: the same from production into a dev database, checked.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::say;
use crate::anonymize::config::{Action, Config};
use crate::anonymize::key::MAPPING_VERSION;
use crate::anonymize::pipeline::RunOptions;
use crate::anonymize::{init, transformers};
use crate::snapshot::{self, Outcome, VerifyFailed};
use crate::source::{is_url, Source};

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  dataforge anonymize init --from postgres://prod/app > anonymize.toml   a config for every column
  DATAFORGE_KEY=… dataforge anonymize --from postgres://prod/app --to postgres://localhost/dev
  dataforge anonymize --from prod.sql --to dev.sql                       plain dump → plain dump
  dataforge anonymize --from prod.dump --to dev.sql                      pg_dump -Fc archive
  pg_dump prod | dataforge anonymize --from - --to - | psql dev
  dataforge anonymize --from prod.sql --dry-run                          3 rows per table, before → after

SRC is a postgres:// URL (read with COPY inside one exported snapshot, tables in parallel,
large tables in page ranges), a pg_dump file (plain SQL, or -Fc read through pg_restore),
or - (stdin). DST is a postgres:// URL, a file (written whole or not at all) or - (stdout).

Into a database, everything loads into a new database beside the target: the schema (the
live source's pg_dump without owners and grants, or the dump's own), the rows, then indexes
and constraints, then sequences raised above the loaded keys. Only then is it swapped in
for the target, and only once it is whole: every row read, every statement of the source's
schema run, and (from a live source) every constraint, index, trigger, view, materialized
view (refreshed), policy and sequence present with the source's definition. Otherwise the
run fails (exit 2) naming what is missing, and the target stays as it was. Only a session
setting the target does not know (`SET transaction_timeout` from a newer pg_dump) is left
out with a note. A target that holds tables is only replaced with --replace, and never one
marked production.

Every column of every table in SRC must be in the config (fail closed): an unmentioned one
stops the run before any row is read, with a snippet to paste. A column under a unique key
whose transformer could give two rows one value stops it too.

The key comes from $DATAFORGE_KEY unless the config's [key] section names another variable
(env = \"…\") or a file (file = \"…\"); the config never holds it. The same key gives the
same output on every run and machine. See docs/transformers.md.

A slice instead of everything (live sources): a [subset] section keeps the target rows,
the rows that refer to them (children = \"all\" | \"none\" | { max = N }), and every row
any kept row refers to, through foreign keys and [[subset.relations]] the schema does not
declare; passthrough tables are copied whole, the rest empty. --dry-run shows per table
what is kept before anything is copied. See docs/subset.md.
  [subset]
  targets = [{ table = \"public.customer\", percent = 10 }]   keyed sample by primary key
  passthrough = [\"public.film\"]"
)]
pub struct AnonymizeArgs {
    #[command(subcommand)]
    pub command: Option<AnonymizeCommand>,
    /// The anonymization config
    #[arg(long, value_name = "FILE", default_value = "anonymize.toml")]
    pub config: PathBuf,
    /// Source: a postgres:// URL, a pg_dump file (plain or -Fc), or - for stdin
    #[arg(long, value_name = "SRC")]
    pub from: Option<String>,
    /// Destination: a postgres:// URL, a file, or - for stdout
    #[arg(long, value_name = "DST")]
    pub to: Option<String>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Show a few rows of each table before → after (with [subset]: first, per table,
    /// the rows kept and their size), and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Rows per table for --dry-run
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub sample: usize,
}

/// What `anonymize` and `snapshot import` share.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Parallel workers: threads transforming a dump, connections copying a database
    /// [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Read tables of at least this many 8 kB pages in parallel page ranges (live sources)
    #[arg(long, value_name = "PAGES", default_value_t = 2048)]
    pub split_pages: i64,
    /// Replace a target database that already holds tables (it stays as it is until the
    /// anonymized copy has fully loaded, then the copy is swapped in)
    #[arg(long)]
    pub replace: bool,
    /// Print the run report as JSON: config hash, key id, rows per table and per
    /// transformer, refused statements, checks, duration, the subset (on stdout; on
    /// stderr when DST is stdout). With `anonymize --dry-run`: the config hash, key id and
    /// subset
    #[arg(long)]
    pub json: bool,
    /// Skip the verification of the output (`dataforge verify`) that otherwise runs at
    /// the end: into a database before the swap, into a file once it is written
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Debug, Subcommand)]
pub enum AnonymizeCommand {
    /// Write a config covering every column of SRC, with a suggested transformer and
    /// the reason for each, to stdout
    #[command(after_help = "\
Examples:
  dataforge anonymize init --from postgres://localhost/app > anonymize.toml
  dataforge anonymize init --from prod.sql > anonymize.toml        a plain pg_dump file
  pg_dump -Fc app | dataforge anonymize init --from - > anonymize.toml

Each column gets a transformer its type can take (a column's type comes from the catalog
or the dump's own CREATE TABLE), chosen from its name and 50 sampled values, with the reason
as a comment; both sides of every foreign key get the same one, so references still join.
Review every line before use: a suggestion is a starting point, not a verdict. Then
`dataforge anonymize --dry-run --from SRC` shows a few rows before → after.")]
    Init {
        /// Source: a postgres:// URL, a pg_dump file (plain or -Fc), or - for stdin
        #[arg(long, value_name = "SRC")]
        from: String,
    },
    /// List the transformers (`--markdown`: the catalog in docs/transformers.md)
    #[command(after_help = "\
Examples:
  dataforge anonymize transformers                      one line each
  dataforge anonymize transformers --markdown > docs/transformers.md

In anonymize.toml a column names one, with options and a domain:
  columns.email = \"email\"
  columns.phone = { transformer = \"phone\", domain = \"customer-phone\" }
  columns.notes = { transformer = \"lorem\" }
Each transformer writes certain column types (text, date, uuid, …; on an array column it
applies to each element); a pairing it cannot write stops the run before any row is read.")]
    Transformers {
        /// Print the whole catalog (options, what each writes, worked examples) as Markdown
        #[arg(long)]
        markdown: bool,
    },
}

/// `dataforge snapshot …`
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Production into dev in one step: read PROD in one snapshot, anonymize every
    /// column by the config, load into a new database beside DEV, check it (row counts,
    /// every schema object with its definition, no refused statement) and verify it,
    /// then swap it in for DEV
    #[command(after_help = "\
Example:
  DATAFORGE_KEY=… dataforge snapshot import --from postgres://prod/app \\
      --to postgres://localhost/app_dev --config anonymize.toml --replace

If the copy is incomplete (a missing row or schema object), the copy is dropped and DEV
stays as it was (exit 2); if verify finds personal data in it, likewise (exit 1).")]
    Import {
        /// The production database (read only, inside one snapshot)
        #[arg(long, value_name = "PROD_URL")]
        from: String,
        /// The dev database to create or replace
        #[arg(long, value_name = "DEV_URL")]
        to: String,
        /// The anonymization config
        #[arg(long, value_name = "FILE", default_value = "anonymize.toml")]
        config: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
}

pub async fn run(args: AnonymizeArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(AnonymizeCommand::Init { from }) => init(&from).await,
        Some(AnonymizeCommand::Transformers { markdown }) => {
            if markdown {
                super::emit(&transformers::catalog_markdown())?;
            } else {
                let lines: String = transformers::ALL
                    .iter()
                    .map(|s| {
                        format!(
                            "{:16} {}\n",
                            s.name,
                            s.summary.split(". ").next().unwrap_or("")
                        )
                    })
                    .collect();
                super::emit(&lines)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let from = args.from.as_deref().context(
                "say where to read from: --from postgres://…, --from FILE (a pg_dump file) or \
                 --from - (stdin)",
            )?;
            if args.dry_run {
                return dry_run(&args.config, from, args.sample, args.run.json).await;
            }
            let to = args
                .to
                .as_deref()
                .context("say where to write: --to postgres://…, --to FILE or --to - (stdout)")?;
            anonymize(&args.config, from, to, &args.run).await
        }
    }
}

pub async fn run_snapshot(args: SnapshotArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        SnapshotCommand::Import {
            from,
            to,
            config,
            run,
        } => {
            if !is_url(&from) || !is_url(&to) {
                anyhow::bail!(
                    "snapshot import reads a database and loads a database: give postgres:// \
                     URLs for --from and --to (for files, use `dataforge anonymize`)"
                );
            }
            anonymize(&config, &from, &to, &run).await
        }
    }
}

fn progress_wanted(json: bool, to: &str) -> bool {
    use std::io::IsTerminal as _;
    !json && to != "-" && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

async fn anonymize(
    config_path: &std::path::Path,
    from: &str,
    to: &str,
    run: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if to == "-" {
        // stdout carries the dump: an error must not append JSON to it
        super::mark_emitted();
    }
    let config = Config::load(&config_path.to_string_lossy())?;
    let key = config.load_key()?;
    let source = Source::open_run(from, &config, &key).await?;
    let plan = source.plan(&config, &key)?;
    let opts = RunOptions {
        jobs: run
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: progress_wanted(run.json, to),
        replace: run.replace,
        split_pages: run.split_pages,
    };
    let verify = if run.no_verify || to == "-" {
        None
    } else {
        Some((
            key.clone(),
            crate::verify::settings::Settings::from_config(&config)?,
        ))
    };
    let names: Names = plan
        .tables
        .values()
        .map(|t| (t.name.clone(), (t.action, t.transformer_names.clone())))
        .collect();
    let (subset, subset_line) = match &source {
        Source::Live(live) => match &live.slice {
            Some(s) => (
                Some(subset_report(s)),
                Some(format!(
                    "subset: {} rows kept in {} tables ({} passed through whole, {} left empty)",
                    s.tables.iter().map(|t| t.rows).sum::<i64>(),
                    s.tables.len(),
                    s.tables
                        .iter()
                        .filter(|t| t.why == crate::subset::Why::Passthrough)
                        .count(),
                    s.tables
                        .iter()
                        .filter(|t| t.why == crate::subset::Why::Empty)
                        .count(),
                )),
            ),
            None => (None, None),
        },
        Source::Dump(..) => (None, None),
    };
    let result = snapshot::run(&config, source, plan, to, &opts, verify).await;
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let failed = match e.downcast_ref() {
                Some(VerifyFailed { report, .. }) => Some(report),
                _ => None,
            };
            // --json says what happened whatever happened: CI needs it most on failure
            if run.json {
                let text = serde_json::to_string_pretty(&serde_json::json!({
                    "error": super::describe(&e),
                    "config_hash": config_hash(&config),
                    "key_id": key.id(),
                    "mapping_version": MAPPING_VERSION,
                    "verify": failed,
                    "subset": subset,
                }))?;
                if to == "-" {
                    eprintln!("{text}");
                } else {
                    super::emit(&format!("{text}\n"))?;
                }
            }
            if failed.is_some() {
                say(&super::describe(&e));
                return Ok(ExitCode::from(super::EXIT_FOUND));
            }
            return Err(e);
        }
    };
    for r in &outcome.run.rejected {
        say(&format!("{}, left out: {r}", r.why_tolerated()));
    }
    let report = report(&config, &key, &names, &outcome, started.elapsed(), subset);
    if run.json {
        let text = serde_json::to_string_pretty(&report)?;
        if to == "-" {
            eprintln!("{text}");
        } else {
            super::emit(&format!("{text}\n"))?;
        }
    } else {
        let rows: u64 = outcome.run.stats.tables.iter().map(|(_, n)| n).sum();
        for c in &outcome.run.checks {
            say(&format!("check {}: {}", c.check, c.detail));
        }
        if let Some(line) = &subset_line {
            say(line);
        }
        say(&match &outcome.verify {
            Some(v) => format!(
                "verify passed: {} checks ({} warned), no source value in {} output cells",
                v.checks.len(),
                v.warned,
                v.leak.cells_scanned
            ),
            None if to == "-" => {
                "verify skipped: the output went to stdout; run `dataforge verify` on it".into()
            }
            None => "verify skipped (--no-verify)".into(),
        });
        say(&format!(
            "anonymized {rows} rows in {} tables{} in {:.2}s{} (key id {}, mapping {MAPPING_VERSION})",
            outcome.run.stats.tables.len(),
            if outcome.run.stats.bytes_in > 0 {
                format!(" ({:.1} MB)", outcome.run.stats.bytes_in as f64 / 1e6)
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64(),
            if to == "-" {
                String::new()
            } else {
                format!(" into {}", crate::pg::mask_url(to))
            },
            key.id()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn dry_run(
    config_path: &std::path::Path,
    from: &str,
    rows: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(&config_path.to_string_lossy())?;
    let key = config.load_key()?;
    let source = Source::open_run(from, &config, &key).await?;
    let plan = source.plan(&config, &key)?;
    let slice = match &source {
        Source::Live(live) => live.slice.as_ref(),
        Source::Dump(..) => None,
    };
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "dry_run": true,
            "config": config.file,
            "config_hash": config_hash(&config),
            "key_id": key.id(),
            "mapping_version": MAPPING_VERSION,
            "subset": slice.map(subset_report),
        }))?;
        super::emit(&format!("{text}\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    if let Some(slice) = slice {
        text.push_str(&subset_text(slice));
        text.push('\n');
    }
    text.push_str(&source.preview(&plan, &config, rows).await?);
    super::emit(&text)?;
    say("dry run: nothing was written");
    Ok(ExitCode::SUCCESS)
}

/// A subset's tables for `--json`: per table, why it is in the slice, the rows it keeps
/// and the size they take in the source, estimated.
fn subset_report(slice: &crate::subset::Slice) -> serde_json::Value {
    serde_json::json!({
        "tables": slice.tables,
        "rows": slice.tables.iter().map(|t| t.rows).sum::<i64>(),
        "bytes_estimate": slice.tables.iter().map(|t| t.bytes_estimate).sum::<i64>(),
        "rounds": slice.rounds,
    })
}

/// The same as a table to read.
fn subset_text(slice: &crate::subset::Slice) -> String {
    use crate::subset::Why;
    let width = slice
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "subset: {:width$}  {:>12}  {:>12}  {:>10}  why\n",
        "table", "rows kept", "of about", "size"
    );
    let mb = |b: i64| format!("{:.1} MB", b as f64 / 1e6);
    for t in &slice.tables {
        out.push_str(&format!(
            "        {:width$}  {:>12}  {:>12}  {:>10}  {}\n",
            t.table,
            t.rows,
            t.rows_estimate,
            mb(t.bytes_estimate),
            match t.why {
                Why::Target => "target",
                Why::Passthrough => "passthrough (whole)",
                Why::Referring => "refers to kept rows (children)",
                Why::Referenced => "kept rows refer to these",
                Why::Empty => "not reached: schema only, no rows",
            }
        ));
    }
    let rows: i64 = slice.tables.iter().map(|t| t.rows).sum();
    let bytes: i64 = slice.tables.iter().map(|t| t.bytes_estimate).sum();
    out.push_str(&format!(
        "subset: {rows} rows, about {} (closure in {} rounds)\n",
        mb(bytes),
        slice.rounds
    ));
    out
}

/// Per table: its action and its columns' transformers.
type Names = std::collections::BTreeMap<String, (Action, Vec<String>)>;

fn report(
    config: &Config,
    key: &crate::anonymize::key::Key,
    names: &Names,
    outcome: &Outcome,
    took: std::time::Duration,
    subset: Option<serde_json::Value>,
) -> serde_json::Value {
    let stats = &outcome.run.stats;
    let mut per_transformer = std::collections::BTreeMap::<String, u64>::new();
    let tables: Vec<serde_json::Value> = stats
        .tables
        .iter()
        .map(|(name, rows)| {
            let t = names.get(name);
            if let Some((_, transformers)) = t.filter(|(a, _)| *a == Action::Anonymize) {
                for n in transformers {
                    *per_transformer.entry(n.clone()).or_default() += rows;
                }
            }
            serde_json::json!({
                "table": name,
                "action": t.map(|(a, _)| a),
                "rows": rows,
            })
        })
        .collect();
    serde_json::json!({
        "config": config.file,
        "config_hash": config_hash(config),
        "key_id": key.id(),
        "mapping_version": MAPPING_VERSION,
        "tables": tables,
        "values_by_transformer": per_transformer,
        "bytes_in": stats.bytes_in,
        "refused_statements": outcome.run.rejected,
        "checks": outcome.run.checks,
        "verify": match &outcome.verify {
            Some(v) => serde_json::to_value(v).unwrap_or_default(),
            None => serde_json::Value::String("skipped".into()),
        },
        "duration_ms": took.as_millis() as u64,
        "subset": subset,
    })
}

/// The hash that names what a config does: its text under this mapping version, so a
/// copy made by the same file under another mapping never shows the same hash.
fn config_hash(config: &Config) -> String {
    let mut h = blake3::Hasher::new();
    h.update(format!("dataforge mapping {MAPPING_VERSION}\n").as_bytes());
    h.update(config.text.as_bytes());
    h.finalize().to_hex().to_string()
}

/// `anonymize init`: a config covering every column, each with a suggestion and why.
async fn init(from: &str) -> anyhow::Result<ExitCode> {
    let source = Source::open(from).await?;
    let tables = source.tables();
    let samples = source.sample_lines(50, None).await?;
    let shown = if is_url(from) {
        crate::pg::mask_url(from)
    } else {
        from.to_string()
    };
    let mut out = format!(
        "# anonymize.toml: what `dataforge anonymize` does to each table and column.\n\
         # Written by `dataforge anonymize init --from {shown}`; review every line.\n\
         # Each column names a transformer (docs/transformers.md) or \"keep\"; a table may say\n\
         # action = \"truncate\" (no rows) or \"skip\" (left out), and, for a live source,\n\
         # where = \"…\" (an SQL condition: only those rows). The key is read from\n\
         # $DATAFORGE_KEY; a [key] section may name another variable (env = \"…\") or a file.\n"
    );
    let mut suggested = std::collections::BTreeMap::new();
    for t in &tables {
        let s = samples
            .get(&t.name)
            .map(|lines| crate::source::dump::columns_of(lines))
            .unwrap_or_default();
        suggested.insert(t.name.clone(), init::suggestions(t, &s));
    }
    init::keep_catalogue_names(&mut suggested, source.foreign_keys());
    init::rewrite_person_vectors(&mut suggested, &tables);
    init::fit_unique_keys(&mut suggested, &tables, source.unique_keys());
    init::align_foreign_keys(&mut suggested, &tables, source.foreign_keys());
    for t in &tables {
        out.push_str(&init::section(t, &suggested[&t.name]));
    }
    let personal: Vec<&str> = source
        .comments()
        .iter()
        .flat_map(|c| crate::pii::names::personal_in(c))
        .fold(Vec::new(), |mut all, d| {
            if !all.contains(&d) {
                all.push(d);
            }
            all
        });
    if !personal.is_empty() {
        out.push_str(&format!(
            "\n# the source's COMMENT ON text holds {}: left out of the copy\n\
             [comments]\naction = \"drop\"\n",
            personal.join(", ")
        ));
    }
    let (objects, first) = source.large_objects();
    if objects > 0 {
        out.push_str(&format!(
            "\n# the source holds {objects} large object{} ({first}): whole files no column\n\
             # transformer sees. \"empty\" keeps each (every oid still resolves) with no content;\n\
             # \"drop\" leaves them out; \"keep\" copies them as they are, with reason = \"…\".\n\
             [large_objects]\naction = \"empty\"\n",
            if objects == 1 { "" } else { "s" }
        ));
    }
    let undecided = init::undecided(&suggested, &tables);
    out.push_str(&undecided);
    super::emit(&out)?;
    say(&format!(
        "wrote a config for {} tables; review the suggestions before use{}",
        tables.len(),
        if undecided.is_empty() {
            ""
        } else {
            " (the columns it could not decide are listed at the end)"
        }
    ));
    Ok(ExitCode::SUCCESS)
}
