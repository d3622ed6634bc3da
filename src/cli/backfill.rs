//! `dataforge backfill`: batched, throttled, resumable UPDATEs by primary-key range.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{emit, say, Target};
use crate::migrate::{self, backfill};
use crate::pg;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  dataforge backfill --table users --set \"email_lower = lower(email)\" --where \"email_lower IS NULL\"
  dataforge backfill --table app.orders --set \"total_cents = total * 100\" --batch 5000 --sleep 250ms

Each batch is one short transaction over the next --batch primary keys, so locks are held
briefly and replicas keep up. The position is saved with every batch: run the same command
again after an interruption (Ctrl-C exits 130 saying so) and it resumes after the last
committed batch (the same --table, --set and --where make the same job). A job that
finished is not run again by the same command, which says so; --again runs it over the
rows that match now. The primary key may be any single column a btree orders: bigint,
uuid, text, timestamps.")]
pub struct BackfillArgs {
    /// The table (table or schema.table); it needs a single-column primary key
    #[arg(long, value_name = "TABLE")]
    pub table: String,
    /// The assignment(s), as in UPDATE … SET
    #[arg(long, value_name = "COL = EXPR")]
    pub set: String,
    /// Only rows matching this condition, as in UPDATE … WHERE
    #[arg(long = "where", value_name = "COND")]
    pub filter: Option<String>,
    /// Primary keys per batch
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub batch: i64,
    /// Pause between batches, e.g. 100ms
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = migrate::parse_duration)]
    pub sleep: Duration,
    /// lock_timeout for each batch
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = migrate::parse_duration)]
    pub lock_timeout: Duration,
    /// Run a job that already finished again, over the rows that match --where now
    #[arg(long)]
    pub again: bool,
    /// Print the final counts as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub confirm: super::Confirm,
}

pub async fn run(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    if args.batch < 1 {
        anyhow::bail!("--batch must be at least 1 (got {})", args.batch);
    }
    let url = args.target.resolve().await?;
    let mut client = pg::connect(&url).await?;
    args.confirm.check(&client, &url, "rewrite rows of").await?;
    let job = backfill::Backfill {
        table: args.table.clone(),
        set: args.set.clone(),
        filter: args.filter.clone(),
        batch: args.batch,
        sleep: args.sleep,
        lock_timeout: args.lock_timeout,
        again: args.again,
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} rows walked, {msg} ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut announced = false;
    let _own = crate::cleanup::own_signals();
    let cancel = client.cancel_token();
    let work = backfill::run(&mut client, &job, |p| {
        if !announced {
            announced = true;
            if let Some(after) = &p.resumed_after {
                say(&format!("resuming job {} after key {after}", p.job));
            }
        }
        if let Some(b) = &bar {
            b.set_length(p.total);
            b.set_position(p.scanned);
            b.set_message(format!("{} updated in {} batches", p.updated, p.batches));
        }
    });
    let p = tokio::select! {
        p = work => p?,
        (name, code) = crate::cleanup::interrupted() => {
            pg::cancel(&url, &cancel).await;
            let message = format!(
                "interrupted ({name}): the running batch was cancelled and rolled back; every \
                 batch before it is committed and saved, so the same command resumes after it \
                 (job {})",
                job.job()
            );
            if args.json {
                emit(&super::json_error(&message))?;
            }
            say(&message);
            return Ok(ExitCode::from(code));
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if p.already_finished && !args.json {
        say(&format!(
            "job {} (this --table, --set and --where) finished before: it updated {} rows in \
             {} batches then, and nothing was done now. To run it again over the rows that \
             match now, add --again",
            p.job, p.updated, p.batches
        ));
    } else if args.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&p)?))?;
    } else {
        emit(&format!(
            "updated {} rows of {} in {} batches\n",
            p.updated, args.table, p.batches
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
