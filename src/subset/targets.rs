//! The targets' rows into their lists: by condition and order in one statement on the
//! keeper, or, for `percent`, each primary key through the keyed PRF on this side.

use tokio_postgres::Client;

use super::place::rejected;
use super::resolve::Resolved;
use super::{cols, temp, Kept};
use crate::anonymize::config::Config;
use crate::anonymize::key::Key;
use crate::pg::PgContext as _;
use crate::source::live::Live;

/// Keeps the targets' rows (round 0); returns how many each table gained.
pub(super) async fn keep(
    live: &Live,
    config: &Config,
    key: &Key,
    keeper: &Client,
    kept: &[Kept],
    resolved: &Resolved<'_>,
) -> anyhow::Result<Vec<u64>> {
    let n = live.tables.len();
    let (targets, pks) = (&resolved.targets, &resolved.pks);
    let temp = |i: usize| temp(kept, i);
    // the targets, round 0; then, per round, the rows each table gained in the one
    // before (a reference from a table that gained none has nothing new to follow)
    let mut fresh = vec![0u64; n];
    let sampler = key.domain("dataforge subset");
    for (i, t) in targets {
        let (i, t) = (*i, *t);
        let lt = &live.tables[i];
        let into = temp(i).expect("a target is not passthrough");
        let what = format!("subset target {}", t.table);
        let order_limit = match (&t.order, t.limit) {
            (Some(o), Some(l)) => format!(" ORDER BY {o} LIMIT {l}"),
            (Some(o), None) => format!(" ORDER BY {o}"),
            _ => String::new(),
        };
        if t.percent.is_none() {
            let head = format!(
                "INSERT INTO {into} (id) SELECT ctid FROM {} WHERE ",
                lt.only()
            );
            let cond = t.filter.clone().unwrap_or_else(|| "true".into());
            let sql = format!("{head}({cond}){order_limit} ON CONFLICT DO NOTHING");
            fresh[i] += keeper
                .execute(&sql, &[])
                .await
                .map_err(|e| rejected(config, t, &head, e))?;
            continue;
        }
        // percent: the primary key of each row (under the condition) through the PRF
        let pk = &pks[&lt.table.name];
        let head = format!(
            "COPY (SELECT ctid, {} FROM {} WHERE ",
            cols("", pk),
            lt.only()
        );
        let cond = t.filter.clone().unwrap_or_else(|| "true".into());
        let sql = format!("{head}({cond})) TO STDOUT");
        let threshold = t.percent.expect("percent") / 100.0;
        let take = |pk_text: &[u8]| -> bool {
            if threshold >= 1.0 {
                return true;
            }
            // the table as the config names it (a partitioned table's, not a
            // partition's: a row moved between partitions stays in or out)
            let mut input = t.table.as_bytes().to_vec();
            input.push(0);
            input.extend_from_slice(pk_text);
            (sampler.hash_u64(&input) as f64) < threshold * (u64::MAX as f64)
        };
        // into the target's own list when it is still empty and nothing orders or
        // limits the sample (each row comes once); else through the sample table
        let direct = order_limit.is_empty() && fresh[i] == 0;
        if !direct {
            keeper
                .batch_execute("DELETE FROM pg_temp.dataforge_sample")
                .await
                .pg(|| "preparing the subset's sample".into())?;
        }
        let reader = live.reader().await?;
        reader
            .batch_execute("SET bytea_output = 'hex'")
            .await
            .pg(|| "pinning how the sample reads keys".into())?;
        let stream = reader
            .copy_out(&sql)
            .await
            .map_err(|e| rejected(config, t, &head, e))?;
        let sink = keeper
            .copy_in::<_, bytes::Bytes>(&if direct {
                format!("COPY {into} (id) FROM STDIN")
            } else {
                "COPY pg_temp.dataforge_sample (id) FROM STDIN".to_string()
            })
            .await
            .pg(|| format!("{what}: keeping the sample"))?;
        futures_util::pin_mut!(stream);
        futures_util::pin_mut!(sink);
        let (mut partial, mut out) = (Vec::new(), Vec::with_capacity(1 << 20));
        let mut sampled = 0u64;
        use futures_util::{SinkExt as _, StreamExt as _};
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.pg(|| format!("{what}: reading its primary keys"))?;
            partial.extend_from_slice(&chunk);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &partial[start..]) {
                let line = &partial[start..start + nl];
                if let Some(tab) = memchr::memchr(b'\t', line) {
                    if take(&line[tab + 1..]) {
                        out.extend_from_slice(&line[..tab]);
                        out.push(b'\n');
                        sampled += 1;
                    }
                }
                start += nl + 1;
            }
            partial.drain(..start);
            if out.len() >= 1 << 20 {
                sink.send(bytes::Bytes::from(std::mem::take(&mut out)))
                    .await
                    .pg(|| format!("{what}: keeping the sample"))?;
            }
        }
        if !out.is_empty() {
            sink.send(bytes::Bytes::from(out))
                .await
                .pg(|| format!("{what}: keeping the sample"))?;
        }
        sink.as_mut()
            .finish()
            .await
            .pg(|| format!("{what}: keeping the sample"))?;
        if direct {
            fresh[i] += sampled;
            continue;
        }
        let sql = if order_limit.is_empty() {
            format!("INSERT INTO {into} (id) SELECT DISTINCT id FROM pg_temp.dataforge_sample ORDER BY id ON CONFLICT DO NOTHING")
        } else {
            format!(
                    "INSERT INTO {into} (id) SELECT ctid FROM {} WHERE ctid = ANY(ARRAY(SELECT id FROM pg_temp.dataforge_sample)){order_limit} ON CONFLICT DO NOTHING",
                    lt.only()
                )
        };
        fresh[i] += keeper
            .execute(&sql, &[])
            .await
            .map_err(|e| rejected(config, t, "", e))?;
    }
    Ok(fresh)
}
