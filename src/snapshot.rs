//! Anonymize, verify, then put in place: the one place that runs the two halves of an
//! anonymized copy together. [`anonymize::pipeline`](crate::anonymize::pipeline) makes the
//! output whole beside its target; [`verify`](crate::verify) compares it with the source;
//! only a copy that passes is swapped in (a database) or renamed (a file). Neither half
//! knows the other: they meet here, over a [`Source`](crate::source::Source).

use crate::anonymize::config::Config;
use crate::anonymize::key::Key;
use crate::anonymize::pipeline::{self, RunOptions, Written};
use crate::anonymize::plan::Plan;
use crate::source::Source;
use crate::verify::settings::Settings;
use crate::verify::Report;

/// What a run did: the pipeline's outcome, and verify's report when it ran.
#[derive(Debug)]
pub struct Outcome {
    pub run: pipeline::Outcome,
    pub verify: Option<Report>,
}

/// The output was made but verify found something in it: nothing was put in place. The
/// CLI exits 1 on it (personal data found) and prints the report for `--json`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct VerifyFailed {
    pub message: String,
    pub report: Box<Report>,
}

/// Runs `source` through `plan` into `to` (a file, `-`, or a URL). With `verify` (a key
/// and settings), the output is verified against the source where it was written, before
/// it takes the target's place: a database before the swap (a failure keeps the target as
/// it was), a file before the rename (one that fails is kept as `TO.rejected`). stdout is
/// not verified (nothing can be taken back).
pub async fn run(
    config: &Config,
    source: Source,
    plan: Plan,
    to: &str,
    opts: &RunOptions,
    verify: Option<(Key, Settings)>,
) -> anyhow::Result<Outcome> {
    let written = pipeline::write(config, &source, plan, to, opts).await?;
    let (Some((key, settings)), Some(at)) = (verify, written.location()) else {
        return Ok(Outcome {
            run: written.commit().await?,
            verify: None,
        });
    };
    let is_db = matches!(written, Written::Database { .. });
    let mut dst = match Source::open(&at).await {
        Ok(dst) => dst,
        Err(e) if is_db => return Err(written.abandon(e).await),
        Err(e) => return Err(e),
    };
    if let Source::Dump(d, _) = &mut dst {
        // the report and its messages name the file the user asked for
        d.name = to.to_string();
    }
    let checked = crate::verify::verify(config, &key, &settings, &source, &dst, opts.jobs).await;
    drop(dst);
    match checked {
        Ok(report) if report.passed => Ok(Outcome {
            run: written.commit().await?,
            verify: Some(report),
        }),
        Ok(report) => {
            let message = if is_db {
                format!("the loaded copy failed verify:\n{}", report.text_flagged())
            } else {
                format!(
                    "the copy failed verify, so {to} was left as it was; it is kept as \
                     {to}.rejected (readable by you only) to look into, not to share:\n{}",
                    report.text_flagged()
                )
            };
            let failed = VerifyFailed {
                message,
                report: Box::new(report),
            };
            Err(written.abandon(failed.into()).await)
        }
        // verify could not run: a database's copy is dropped, a file's partial removed
        Err(e) if is_db => Err(written
            .abandon(e.context("verifying the loaded copy"))
            .await),
        Err(e) => Err(e),
    }
}
