//! `dataforge verify`: proof that an anonymized copy holds no personal data of its
//! source and still looks like it.
//!
//! One streaming read of the source collects keyed hashes of every anonymized value and
//! a deterministic sample per table; one read of the output scans every cell for those
//! hashes, runs the detectors over kept columns, samples, and collects the key hashes
//! that unique keys and foreign keys are checked with; then the two samples are
//! compared column by column. When the scan found something to settle (a Bloom hit to
//! confirm, or a value equal to one of its own column's source values, which is a leak
//! if it is the same row's and chance if it is another's), the source is read once
//! more for just that. Each read runs on every core. Memory holds hashes and samples,
//! never a table; key hashes past a bound go to temporary files.

pub mod keys;
pub mod leak;
mod objects;
mod own_row;
mod reference;
pub mod report;
mod scan;
mod schema;
pub mod settings;
pub mod stats;
mod valid_input;

mod checks;

mod read_output;
mod read_source;
mod rows;
mod sample;
mod settle;

use read_output::*;
use read_source::*;
use rows::*;
use sample::*;
use settle::*;

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use foldhash::{HashMap, HashSet};
use xxhash_rust::xxh3::{xxh3_128_with_seed, xxh3_64_with_seed};

use crate::anonymize::config::{Action, Config};
use crate::anonymize::key::Key;
use crate::pg::copy;
use crate::pii::detect;
use crate::source::catalog::{ForeignKey, UniqueKey};
use crate::source::Source;
use crate::source::SourceTable;
use keys::SortedKeys;
pub use report::{Check, Report, Status};
use report::{LeakHit, LeakSummary};
use scan::{par_read, Step};
use settings::Settings;
use stats::Profile;

/// Output columns whose values are drawn from a generator's lists: a source value
/// found there is the generator's coincidence (a fake "Mary" for a real one), not a
/// survivor, so they are not searched ([`own_row::LIST_DRAWN`] are held to their own row
/// instead); nor are columns a config fills with chosen or constant values.
fn generated(transformer: &str) -> bool {
    own_row::LIST_DRAWN.contains(&transformer)
        || matches!(transformer, "choice" | "constant" | "null")
}

/// Fewer sampled values than this on either side, and a column's distribution is not
/// compared (its NULL rate still is).
const MIN_COMPARE: usize = 50;

/// Hits kept as examples per column.
const EXAMPLES: usize = 20;

/// Hits kept to be settled by the second read of the source; past it, a hit counts as
/// a leak unsettled.
const HIT_RECORDS: usize = 1_000_000;

/// Parents (in keyed-hash order, so a uniform sample) whose children are counted for
/// the fan-out comparison.
const FANOUT_SAMPLE: usize = 200_000;

pub use schema::SchemaMismatch;

/// What every read of a run shares: the config and settings, the seed of its keyed
/// hashes, the threads it reads on, the output's foreign keys, and which source columns
/// are searched for (by table, with their names by index).
pub(crate) struct Run<'a> {
    pub config: &'a Config,
    pub settings: &'a Settings,
    pub seed: u64,
    pub jobs: usize,
    pub fks: &'a [ForeignKey],
    /// Which table each partition belongs to: a key of a partitioned table is checked
    /// on its partitions' rows.
    pub partitions: &'a crate::source::catalog::Partitions,
    pub searched: &'a HashMap<String, Searched>,
    pub names: &'a [String],
}

/// Where `names` are among `columns`; `None` if one is missing.
fn positions(columns: &[String], names: &[String]) -> Option<Vec<usize>> {
    names
        .iter()
        .map(|c| columns.iter().position(|x| x == c))
        .collect()
}

/// Verifies `dst` against `src` under `config`.
///
/// `jobs` threads scan at once (at least one). Reading a live database needs the
/// multi-threaded tokio runtime.
pub async fn verify(
    config: &Config,
    key: &Key,
    settings: &Settings,
    src: &Source,
    dst: &Source,
    jobs: usize,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (src_name, dst_name) = (src.name(), dst.name());
    let src_tables = src.tables();
    crate::anonymize::guard::check_coverage(config, &src_tables)?;
    let differences = schema::schema_differences(config, &src_tables, &dst.tables());
    if !differences.is_empty() {
        return Err(SchemaMismatch {
            src: src_name,
            dst: dst_name,
            differences,
        }
        .into());
    }
    let seed = key.domain("dataforge verify").hash_u64(b"seed");
    let partitions = dst.partitions();
    let fks = partitions.declared(dst.foreign_keys());
    let (searched, names) = searched(config, &src_tables);
    let run = Run {
        config,
        settings,
        seed,
        jobs,
        fks: &fks,
        partitions: &partitions,
        searched: &searched,
        names: &names,
    };
    let mut set = leak::LeakSet::new(seed, settings.leak_exact_max, settings.bloom_mb);
    let source = read_source(src, &run, &mut set)?;
    let typed = valid_input::plan(config, dst);
    let mut output = read_output(dst, &run, &set, &typed)?;
    let reference_checks =
        reference::settle(src, settings, seed, &mut output.hits, |h| h.hash).await?;
    let settled = settle(
        src,
        &run,
        std::mem::take(&mut output.hits),
        std::mem::take(&mut output.unsettled),
        &output.row_keys,
    )?;

    let mut checks = Vec::new();
    let mut samples = Vec::new();
    checks::leak::leaks(&mut checks, &settled);
    checks.extend(reference_checks);
    checks.extend(schema::parity(config, src, dst).await?);
    if let Some(c) = objects::check(dst).await? {
        checks.push(c);
    }
    checks.extend(objects::comments(dst));
    checks::leak::none_found(&mut checks, &settled, &output);
    checks::leak::coincidences(&mut checks, &settled, &output, settings);
    checks::detector::checks(&mut checks, &output, settings);
    checks.extend(valid_input::checks(&typed, &output.invalid));
    checks::rows::checks(
        &mut checks,
        &mut samples,
        config,
        settings,
        &src_tables,
        &source,
        &output,
    );
    checks::integrity::foreign_keys(
        &mut checks,
        &fks,
        source.children,
        output.children,
        output.parents,
        settings,
    )?;
    checks::integrity::unique_keys(&mut checks, dst.unique_keys(), &output.duplicates);

    Ok(Report::new(
        src_name,
        dst_name,
        key.id(),
        settled.summary(&set, output.cells),
        samples,
        checks,
        started.elapsed().as_secs_f64(),
    ))
}
