//! `dataforge verify`: prove an anonymized copy clean and still useful.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::say;
use crate::anonymize::config::Config;
use crate::source::Source;
use crate::verify::{self, settings::Settings, Report};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge verify --from prod.sql --to dev.sql
  dataforge verify --from postgres://prod/app --to postgres://localhost/dev --html verify.html
  dataforge verify --from prod.sql --to dev.sql --verbose     # every check, passing ones too
  dataforge verify --from prod.sql --to dev.sql --json | jq '.checks[] | select(.status != \"pass\")'

SRC is the original and DST the anonymized copy: each a postgres:// URL or a pg_dump file.
The checks:
  leak         every value of every anonymized source column (trimmed and case-folded; also
               the digits of phones and ids, the local part of e-mails) searched for in every
               cell of the output: whole values, words and short phrases of free text, JSON
               leaves, array elements. Any hit fails, naming the row and the source column.
  coincidence  a new value equal to another row's source value in its own column: chance,
               for a generator with few values to draw from, held to coincidence_rate (a
               value left in its own row is a leak).
  detector     e-mail addresses, phone numbers, IBANs, card numbers and CNPs in kept columns;
               allow one in a column with [verify.columns.\"table.column\"] allow = [...] and
               a reason.
  rows         row counts equal the source's (at most, under a row filter; 0 if truncated;
               with [subset], as many as the slice keeps, computed again in this run's own
               snapshot of SRC, which must then be a database and unchanged since).
  null_rate, distinct_ratio, tvd, psi, ks, length_tvd
               per column, what its transformer is expected to keep, on a deterministic
               sample (by keyed hash of the row key).
  shape_tvd    a categorical column keeps the shape of its frequencies (labels aside).
  foreign_key, unique, fanout_ks
               no orphans, no duplicates, children per parent as in the source.
  schema       every table, index, constraint, trigger, view, materialized view, policy,
               rule, sequence and extension of the source is in the output, defined alike;
               large_object_count: the large objects [large_objects] asks for.
  valid_input  a file output: every anonymized value is valid input for its column's type
               (length of varchar(n), integer range, dates, inet, JSON, XML …), so the file
               restores.
  large_objects, comments
               their text searched by the detectors.
With [subset], distributions, samples and fan-outs are those of the source's kept rows,
and the leak search covers their values (anonymize keeps generated values off every row's).
The report lists failures and warnings first and counts the passing checks by kind
(--verbose lists them); dates and timestamps are shown as such.
A check fails past its threshold and warns past half of it. Thresholds and their defaults
are in [verify] (see anonymize.toml). The key ($DATAFORGE_KEY) seeds the hashes and the
sample, so a run is repeatable.

Exit: 0 every check passed, 1 a check failed, 2 an error (including SRC and DST with
different schemas).")]
pub struct VerifyArgs {
    /// The anonymization config (its [verify] section holds the thresholds)
    #[arg(long, value_name = "FILE", default_value = "anonymize.toml")]
    pub config: PathBuf,
    /// The original: a postgres:// URL or a pg_dump file
    #[arg(long, value_name = "SRC")]
    pub from: String,
    /// The anonymized copy: a postgres:// URL or a pg_dump file
    #[arg(long, value_name = "DST")]
    pub to: String,
    /// Print the report as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Also write a one-page HTML report, with a chart for each failed or warned column
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// List every check, the passing ones too (by default they are counted by kind)
    #[arg(long, short)]
    pub verbose: bool,
    /// Threads scanning at once [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    for (flag, v) in [("--from", &args.from), ("--to", &args.to)] {
        if v == "-" {
            anyhow::bail!("verify reads {flag} twice at most and cannot take stdin; give a file or a postgres:// URL");
        }
    }
    let config = Config::load(&args.config.to_string_lossy())?;
    let settings = Settings::from_config(&config)?;
    let key = config.load_key()?;
    // both at once: a dump is read through once to find its tables and keys
    let from = args.from.clone();
    let (config2, key2) = (config.clone(), key.clone());
    let src = tokio::spawn(async move {
        Source::open_sliced(&from, &config2, &key2, &Default::default()).await
    });
    let dst = Source::open(&args.to).await;
    let src = src
        .await
        .map_err(|e| anyhow::anyhow!("opening {}: {e}", args.from))??;
    let dst = dst?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let report = verify::verify(&config, &key, &settings, &src, &dst, jobs).await?;
    show(&report, args.json, args.html.as_deref(), args.verbose)
}

/// Prints the report (JSON on stdout, or the table) and writes the HTML page; the exit
/// code is 1 when a check failed.
pub fn show(
    report: &Report,
    json: bool,
    html: Option<&std::path::Path>,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(path) = html {
        std::fs::write(path, report.html())
            .map_err(|e| anyhow::anyhow!("cannot write the HTML report {}: {e}", path.display()))?;
        say(&format!("wrote the HTML report to {}", path.display()));
    }
    if json {
        super::emit(&format!("{}\n", serde_json::to_string_pretty(report)?))?;
    } else {
        super::emit(&if verbose {
            report.text()
        } else {
            report.text_flagged()
        })?;
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FOUND)
    })
}
