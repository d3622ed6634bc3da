//! `dataforge anonymize`: stream a source through the transformers of `anonymize.toml`.

use std::fs::File;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::say;
use crate::anonymize::config::Config;
use crate::anonymize::{dump, plan, transformers};

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  dataforge anonymize init --from prod.sql > anonymize.toml     a config covering every column
  DATAFORGE_KEY=… dataforge anonymize --from prod.sql --to dev.sql
  pg_dump --data-only prod | dataforge anonymize --from - --to - | psql dev

SRC and DST are a plain pg_dump file or `-` (stdin/stdout). COPY blocks stream through
the transformers; every other line passes unchanged, so the output restores with psql as
the input did. Every column of every table in SRC must be in the config (fail closed):
an unmentioned one stops the run before any row is read, with a snippet to paste.

The key comes from $DATAFORGE_KEY unless the config's [key] section names another
variable (env = \"…\") or a file (file = \"…\"); the config never holds it. The same key
gives the same output on every run and machine. See docs/transformers.md."
)]
pub struct AnonymizeArgs {
    #[command(subcommand)]
    pub command: Option<AnonymizeCommand>,
    /// The anonymization config
    #[arg(long, value_name = "FILE", default_value = "anonymize.toml")]
    pub config: PathBuf,
    /// Source: a plain pg_dump file, or - for stdin
    #[arg(long, value_name = "SRC")]
    pub from: Option<String>,
    /// Destination: a file (written whole or not at all), or - for stdout
    #[arg(long, value_name = "DST")]
    pub to: Option<String>,
    /// Print the run report as JSON: config hash, key id, rows per table and per
    /// transformer, duration (on stdout; on stderr when DST is stdout)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum AnonymizeCommand {
    /// Write a config covering every column of SRC, with a suggested transformer and
    /// the reason for each, to stdout
    Init {
        /// Source: a plain pg_dump file, or - for stdin
        #[arg(long, value_name = "SRC")]
        from: String,
    },
    /// List the transformers (`--markdown`: the catalog in docs/transformers.md)
    Transformers {
        #[arg(long)]
        markdown: bool,
    },
}

pub async fn run(args: AnonymizeArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(AnonymizeCommand::Init { from }) => init(&from),
        Some(AnonymizeCommand::Transformers { markdown }) => {
            if markdown {
                print!("{}", transformers::catalog_markdown());
            } else {
                for s in transformers::ALL {
                    println!(
                        "{:16} {}",
                        s.name,
                        s.summary.split(". ").next().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let from = args.from.as_deref().context(
                "say where to read from: --from FILE (a plain pg_dump file) or --from - (stdin)",
            )?;
            let to = args
                .to
                .as_deref()
                .context("say where to write: --to FILE or --to - (stdout)")?;
            tokio::task::block_in_place(|| anonymize(&args.config, from, to, args.json))
        }
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

/// The source as a readable file: stdin is spooled to a temporary file first, so the
/// config is checked against every table before any row is read.
fn open_source(from: &str) -> anyhow::Result<(PathBuf, Option<tempfile::TempPath>)> {
    if is_url(from) {
        anyhow::bail!(
            "reading a live database is not supported yet; dump it first: \
             pg_dump --data-only '{from}' | dataforge anonymize --from - --to …"
        );
    }
    if from == "-" {
        let mut tmp = tempfile::NamedTempFile::new().context("creating a spool file for stdin")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut tmp).context("reading stdin")?;
        let path = tmp.into_temp_path();
        return Ok((path.to_path_buf(), Some(path)));
    }
    let p = PathBuf::from(from);
    if !p.is_file() {
        anyhow::bail!(
            "the source {from} is not a file (give a plain pg_dump file, or - for stdin)"
        );
    }
    Ok((p, None))
}

fn anonymize(config_path: &Path, from: &str, to: &str, json: bool) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    if is_url(to) {
        anyhow::bail!(
            "loading into a database is not supported yet; write a file and load it: \
             dataforge anonymize --from … --to dev.sql && psql -d DB -f dev.sql"
        );
    }
    let config = Config::load(&config_path.to_string_lossy())?;
    let key = config.load_key()?;
    let (src, _spool) = open_source(from)?;
    let src_name = if from == "-" {
        "<stdin>".to_string()
    } else {
        from.to_string()
    };
    let open = || -> anyhow::Result<BufReader<File>> {
        Ok(BufReader::with_capacity(
            1 << 20,
            File::open(&src).with_context(|| format!("opening {src_name}"))?,
        ))
    };
    let tables = dump::scan_tables(open()?, &src_name)?;
    let plan = plan::plan(&config, &key, &tables)?;
    let stats = if to == "-" {
        dump::anonymize(open()?, std::io::stdout().lock(), &plan, &src_name)?
    } else {
        // written beside the target and renamed at the end: a failure leaves no half file
        let target = PathBuf::from(to);
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        let stats = dump::anonymize(open()?, tmp.as_file(), &plan, &src_name)?;
        tmp.persist(&target)
            .with_context(|| format!("writing {to}"))?;
        stats
    };
    let report = report(&config, &key, &plan, &stats, started.elapsed());
    if json {
        let text = serde_json::to_string_pretty(&report)?;
        if to == "-" {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    } else {
        let rows: u64 = stats.tables.iter().map(|(_, n)| n).sum();
        say(&format!(
            "anonymized {rows} rows in {} tables ({:.1} MB) in {:.2}s{}",
            stats.tables.len(),
            stats.bytes_in as f64 / 1e6,
            started.elapsed().as_secs_f64(),
            if to == "-" {
                String::new()
            } else {
                format!(" into {to}")
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn report(
    config: &Config,
    key: &crate::anonymize::key::Key,
    plan: &plan::Plan,
    stats: &dump::DumpStats,
    took: std::time::Duration,
) -> serde_json::Value {
    let mut per_transformer = std::collections::BTreeMap::<String, u64>::new();
    let tables: Vec<serde_json::Value> = stats
        .tables
        .iter()
        .map(|(name, rows)| {
            let t = plan.table(name);
            if let Some(t) = t.filter(|t| t.action == crate::anonymize::config::Action::Anonymize) {
                for n in &t.transformer_names {
                    *per_transformer.entry(n.clone()).or_default() += rows;
                }
            }
            serde_json::json!({
                "table": name,
                "action": t.map(|t| t.action),
                "rows": rows,
            })
        })
        .collect();
    serde_json::json!({
        "config": config.file,
        "config_hash": blake3::hash(config.text.as_bytes()).to_hex().to_string(),
        "key_id": key.id(),
        "tables": tables,
        "values_by_transformer": per_transformer,
        "bytes_in": stats.bytes_in,
        "duration_ms": took.as_millis() as u64,
    })
}

/// `anonymize init`: a config covering every column, each with a suggestion and why.
fn init(from: &str) -> anyhow::Result<ExitCode> {
    let (src, _spool) = open_source(from)?;
    let src_name = if from == "-" { "<stdin>" } else { from };
    let file = || File::open(&src).with_context(|| format!("opening {src_name}"));
    let tables = dump::scan_tables(BufReader::new(file()?), src_name)?;
    let samples = dump::sample(BufReader::new(file()?), src_name, 50)?;
    let mut out = format!(
        "# anonymize.toml: what `dataforge anonymize` does to each table and column.\n\
         # Written by `dataforge anonymize init --from {src_name}`; review every line.\n\
         # Each column names a transformer (docs/transformers.md) or \"keep\"; a table may say\n\
         # action = \"truncate\" (no rows) or \"skip\" (left out). The key is read from\n\
         # $DATAFORGE_KEY; a [key] section may name another variable (env = \"…\") or a file.\n"
    );
    for t in &tables {
        let s = samples.get(&t.name).cloned().unwrap_or_default();
        out.push_str(&plan::table_section(t, &s));
    }
    std::io::stdout().write_all(out.as_bytes())?;
    say(&format!(
        "wrote a config for {} tables; review the suggestions before use",
        tables.len()
    ));
    Ok(ExitCode::SUCCESS)
}
