//! `dataforge seed PROFILE`: generate a profile's data and apply it as a plan (insert /
//! update / unchanged / delete) in one transaction, or write it as CSV files + load.sql.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{emit, say, Target};
use crate::pg::{self, Masked};
use crate::seed::{self, gen::format_date, profile, ApplyOptions, SeedOptions};

const AFTER_HELP: &str = "\
Examples:
  dataforge seed demo-firm                         into $DATABASE_URL, else the local cluster
  dataforge seed demo-firm --dry-run               show the plan, write nothing
  dataforge seed demo-firm --json                  the plan's counts as JSON, for scripts
  dataforge seed demo-firm --seed 7 --scale 100    other data, a hundred times more of it
  dataforge seed demo-firm --now 2027-03-01        move every date with the anchor
  dataforge seed demo-firm --prune                 also delete rows the seed no longer makes
  dataforge seed demo-firm --out seeds/demo-firm   CSV per table + load.sql for psql
  dataforge seed ./my-profile.toml                 a profile of your own
  dataforge seed --list                            the profiles there are

The same profile, --seed, --scale and --now give the same rows on every run and machine.
A second run writes nothing: it reports every row unchanged. Rows edited by hand are put
back. Any failure leaves the database as it was.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct SeedArgs {
    /// A built-in profile name (e.g. demo-firm), profiles/NAME.toml, or a path to a .toml file
    #[arg(value_name = "PROFILE")]
    pub profile: Option<String>,

    /// List the available profiles and exit
    #[arg(long, conflicts_with = "profile")]
    pub list: bool,

    /// Seed for every random choice: another seed gives other data. Default: the profile's
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Multiply the scaled entities (users follow the profile's ratio), keeping the mixes
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub scale: u32,

    /// Anchor date every generated date is relative to. Default: the profile's anchor
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_now)]
    pub now: Option<i64>,

    /// Print the plan and write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Also delete rows of the seeded tables that the seed does not make
    #[arg(long)]
    pub prune: bool,

    /// Print per-table counts as JSON: {"tables": {"users": {"inserted": 5, …}, …}}
    #[arg(long)]
    pub json: bool,

    /// Write one CSV per table plus load.sql and schema.sql into DIR instead of a database
    #[arg(long, value_name = "DIR", conflicts_with_all = ["dry_run", "prune", "database_url"])]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub target: Target,

    #[command(flatten)]
    pub confirm: super::Confirm,
}

fn parse_now(s: &str) -> Result<i64, String> {
    profile::parse_date(s).ok_or_else(|| format!("`{s}` is not a date written YYYY-MM-DD"))
}

pub async fn run(args: SeedArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        emit(&(profile::available().join("\n") + "\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(name) = args.profile.as_deref() else {
        anyhow::bail!(
            "which profile? available profiles: {} (e.g. `dataforge seed demo-firm`)",
            profile::available().join(", ")
        );
    };
    // Everything is checked and generated before any connection is opened.
    let profile = profile::resolve(name)?;
    let opts = SeedOptions {
        seed: args.seed.unwrap_or(profile.default_seed),
        scale: args.scale,
        anchor: args.now.unwrap_or(profile.anchor),
    };
    if let Some(dir) = &args.out {
        let (files, rows) = seed::out::write_dir(dir, &profile, &opts)?;
        let mut s = String::new();
        for f in files {
            s.push_str(&format!("{}\n", f.display()));
        }
        emit(&s)?;
        say(&format!(
            "wrote {rows} rows of {} into {}; load with: cd {} && psql \"$DATABASE_URL\" -f load.sql",
            profile.name,
            dir.display(),
            dir.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }

    let url = args.target.resolve().await?;
    let mut client = pg::connect(&url).await?;
    // demo data in production is never wanted, and --prune deletes rows
    if !args.dry_run {
        args.confirm
            .check(&client, &url, "seed demo data into")
            .await?;
    }
    let outcome = seed::apply(
        &mut client,
        &profile,
        &opts,
        ApplyOptions {
            dry_run: args.dry_run,
            prune: args.prune,
            progress: std::io::stderr().is_terminal(),
        },
    )
    .await?;

    if args.json {
        let v = seed::outcome_json(&profile, &opts, &outcome, args.dry_run);
        emit(&format!("{}\n", serde_json::to_string_pretty(&v)?))?;
    } else {
        emit(&seed::outcome_table(&outcome))?;
    }
    for m in &outcome.migrations_applied {
        say(&format!("applied migration {m}"));
    }
    for (table, c) in &outcome.tables {
        if c.kept_extra > 0 {
            say(&format!(
                "{table}: {} rows are not part of the seed and were kept (--prune deletes them)",
                c.kept_extra
            ));
        }
    }
    say(&format!(
        "{} {} (seed {}, scale {}, anchor {}) {} {}",
        if args.dry_run { "dry run of" } else { "seeded" },
        profile.name,
        opts.seed,
        opts.scale,
        format_date(opts.anchor),
        if args.dry_run { "against" } else { "into" },
        Masked(&url)
    ));
    if args.dry_run {
        say("dry run: nothing was written");
    }
    Ok(ExitCode::SUCCESS)
}
