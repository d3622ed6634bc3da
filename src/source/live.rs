//! A live PostgreSQL database as the source. One connection opens a repeatable-read,
//! read-only transaction and exports its snapshot; every other reader (and pg_dump, for
//! the schema) imports it, so tables copied in parallel come from one consistent moment.
//! Large tables are split into ranges of pages (`ctid` ranges, a TID range scan each).

use tokio_postgres::Client;

use super::catalog::{self, ForeignKey, UniqueKey};
use super::SourceTable;
use crate::anonymize::config::Config;
use crate::anonymize::real::{Collector, RealSets, Wanted};
use crate::pg::{self, quote_ident, quote_literal, PgContext as _, PgError};
use crate::source::types::ColumnType;

pub struct Live {
    pub(crate) url: String,
    /// Holds the exporting transaction open for as long as the run lasts.
    _holder: Client,
    /// That session's process id and start, as the server reports them: a target server
    /// that lists this very session is the source's server, however its URL is spelled.
    session: (i32, String),
    pub snapshot: String,
    pub tables: Vec<LiveTable>,
    pub unique: Vec<UniqueKey>,
    pub foreign: Vec<ForeignKey>,
    /// Partition → the table it is a partition of.
    pub partitions: Vec<(String, String)>,
    /// `SELECT pg_catalog.setval(…)` for every sequence, as the snapshot saw it, and the
    /// table whose identity column it is (`schema.table`), if it is one.
    pub sequences: Vec<(String, Option<String>)>,
    /// The materialized views the snapshot has populated, quoted, in creation order (one
    /// that reads another was made after it): pg_dump's schema sections leave them
    /// empty, so a copy refreshes these over its anonymized rows.
    pub matviews: Vec<String>,
    /// The OIDs of its large objects.
    pub large_objects: Vec<u32>,
    /// The identifying values of the columns a run asked for, by domain.
    pub real: RealSets,
    /// The text of its comments on its own objects (the first 10,000).
    pub comments: Vec<String>,
    /// The slice `[subset]` keeps, when the config has one.
    pub slice: Option<crate::subset::Slice>,
}

impl LiveTable {
    /// The table alone, for a query's FROM: `ONLY "schema"."table"` (not its
    /// inheritance children, which are tables of their own).
    pub fn only(&self) -> String {
        format!("ONLY {}", self.quoted)
    }
}

pub struct LiveTable {
    pub table: SourceTable,
    /// `"schema"."table"`.
    pub quoted: String,
    pub pages: i64,
    /// The planner's row estimate, for progress.
    pub rows_estimate: i64,
}

/// One unit of reading: a table, or a range of its pages.
#[derive(Debug, Clone)]
pub struct Piece {
    pub table: usize,
    pub pages: Option<(Option<i64>, Option<i64>)>,
}

const TABLES: &str = "
SELECT n.nspname::text, c.relname::text, c.relpages::int8, greatest(c.reltuples, 0)::int8,
       array_agg(a.attname::text ORDER BY a.attnum),
       array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum),
       array_agg(a.atttypid::int8 ORDER BY a.attnum),
       array_agg(a.atttypmod ORDER BY a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attgenerated = ''
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2";

/// Every type a column can have, to see through arrays and domains.
const TYPES: &str = "
SELECT t.oid::int8, t.typname::text, t.typtype::text, t.typelem::int8, t.typbasetype::int8,
       t.typtypmod, t.typcategory::text
FROM pg_type t";

/// One row of [`TYPES`].
struct PgType {
    name: String,
    typtype: String,
    elem: i64,
    base: i64,
    typmod: i32,
    category: String,
}

/// A column's type from the catalog: through a domain to its base (keeping the domain's
/// length where the column has none), through an array to its element.
fn column_type(
    types: &std::collections::HashMap<i64, PgType>,
    sql: String,
    oid: i64,
    typmod: i32,
) -> Option<ColumnType> {
    let (mut oid, mut typmod, mut array) = (oid, typmod, false);
    for _ in 0..16 {
        let t = types.get(&oid)?;
        if t.typtype == "d" {
            if typmod < 0 {
                typmod = t.typmod;
            }
            oid = t.base;
        } else if t.category == "A" && t.elem != 0 {
            array = true;
            oid = t.elem;
        } else {
            return Some(ColumnType::from_catalog(
                sql,
                &t.name,
                typmod,
                array,
                t.typtype == "e",
            ));
        }
    }
    None
}

const MATVIEWS: &str = "
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND c.relispopulated ORDER BY c.oid";

const UNIQUE: &str = "
SELECT pg_get_indexdef(x.indexrelid)
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE x.indisunique AND c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'";

const FOREIGN: &str = "
SELECT n.nspname || '.' || c.relname, k.conname::text,
       array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
       pn.nspname || '.' || p.relname,
       array(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2";

/// Each partition and the table it is a partition of (one level; a chain is followed by
/// [`crate::source::catalog::Partitions`]).
const PARTITIONS: &str = "
SELECT cn.nspname || '.' || c.relname, pn.nspname || '.' || p.relname
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace
WHERE c.relispartition";

const SEQUENCES: &str = "
SELECT format('SELECT pg_catalog.setval(%L, %s, true);',
              quote_ident(s.schemaname) || '.' || quote_ident(s.sequencename), s.last_value),
       (SELECT tn.nspname || '.' || t.relname
        FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE d.classid = 'pg_class'::regclass
          AND d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
          AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'i'
        LIMIT 1)
FROM pg_sequences s
WHERE s.last_value IS NOT NULL AND s.schemaname <> 'information_schema'
ORDER BY s.schemaname, s.sequencename";

impl Live {
    /// The `setval` statements of the sequences the copy has: an identity column's goes
    /// with its table, so a skipped table's is not there (a serial column's sequence is
    /// an object of its own, which pg_dump keeps).
    pub fn setvals(&self, config: &Config) -> Vec<&str> {
        self.sequences
            .iter()
            .filter(|(_, owner)| {
                owner.as_ref().is_none_or(|t| {
                    config
                        .tables
                        .get(t)
                        .is_none_or(|t| t.action != crate::anonymize::config::Action::Skip)
                })
            })
            .map(|(s, _)| s.as_str())
            .collect()
    }

    /// Connects, exports a snapshot and reads the catalog inside it.
    pub async fn open(url: &str) -> Result<Live, PgError> {
        let holder = pg::connect(url).await?;
        holder
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .pg(|| "starting the source snapshot".into())?;
        let snapshot: String = holder
            .query_one("SELECT pg_export_snapshot()", &[])
            .await
            .pg(|| "exporting the source snapshot".into())?
            .get(0);
        let row = holder
            .query_one(
                "SELECT pid, backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .pg(|| "reading the source session".into())?;
        let session = (row.get(0), row.get(1));
        let catalog: std::collections::HashMap<i64, PgType> = holder
            .query(TYPES, &[])
            .await
            .pg(|| "reading the source's types".into())?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    PgType {
                        name: r.get(1),
                        typtype: r.get(2),
                        elem: r.get(3),
                        base: r.get(4),
                        typmod: r.get(5),
                        category: r.get(6),
                    },
                )
            })
            .collect();
        let mut tables = Vec::new();
        for r in holder
            .query(TABLES, &[])
            .await
            .pg(|| "reading the source's tables".into())?
        {
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            let sql: Vec<String> = r.get(5);
            let (oids, mods): (Vec<i64>, Vec<i32>) = (r.get(6), r.get(7));
            let types = sql
                .into_iter()
                .zip(oids.into_iter().zip(mods))
                .map(|(sql, (oid, m))| column_type(&catalog, sql, oid, m))
                .collect();
            tables.push(LiveTable {
                quoted: format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
                table: SourceTable {
                    name: format!("{schema}.{name}"),
                    columns: r.get(4),
                    types,
                },
                pages: r.get(2),
                rows_estimate: r.get(3),
            });
        }
        let unique = holder
            .query(UNIQUE, &[])
            .await
            .pg(|| "reading the source's unique indexes".into())?
            .iter()
            .filter_map(|r| catalog::unique_index(r.get(0)))
            .collect();
        let foreign = holder
            .query(FOREIGN, &[])
            .await
            .pg(|| "reading the source's foreign keys".into())?
            .iter()
            .map(|r| ForeignKey {
                table: r.get(0),
                name: r.get(1),
                columns: r.get(2),
                parent: r.get(3),
                parent_columns: r.get(4),
            })
            .collect();
        let partitions = holder
            .query(PARTITIONS, &[])
            .await
            .pg(|| "reading the source's partitions".into())?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let sequences = holder
            .query(SEQUENCES, &[])
            .await
            .pg(|| "reading the source's sequences".into())?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let matviews = holder
            .query(MATVIEWS, &[])
            .await
            .pg(|| "reading the source's materialized views".into())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let large_objects = large_objects(&holder).await?;
        let comments = holder
            .query(
                "SELECT description FROM pg_catalog.pg_description
                 WHERE objoid >= 16384 AND description <> '' LIMIT 10000",
                &[],
            )
            .await
            .pg(|| "reading the source's comments".into())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Live {
            url: url.to_string(),
            _holder: holder,
            session,
            snapshot,
            tables,
            unique,
            foreign,
            partitions,
            sequences,
            matviews,
            large_objects,
            real: RealSets::new(),
            comments,
            slice: None,
        })
    }

    /// Reads the `wanted` columns inside the snapshot (one COPY per table, those columns
    /// only) into their domains' sets of real values.
    pub async fn collect_real(&mut self, wanted: &Wanted) -> Result<(), PgError> {
        self.real = self.read_real(wanted).await?;
        Ok(())
    }

    /// The sets [`collect_real`](Self::collect_real) keeps, read without taking the
    /// source (a subset's closure is computed meanwhile).
    pub async fn read_real(&self, wanted: &Wanted) -> Result<RealSets, PgError> {
        if wanted.is_empty() {
            return Ok(RealSets::new());
        }
        let reader = self.reader().await?;
        let mut collector = Collector::new(crate::anonymize::real::SEED);
        for (i, t) in self.tables.iter().enumerate() {
            let cols: Vec<(String, crate::anonymize::real::Slots)> = t
                .table
                .columns
                .iter()
                .filter_map(|c| {
                    let feeds = wanted.get(&(t.table.name.clone(), c.clone()))?;
                    Some((c.clone(), collector.slots(feeds)))
                })
                .collect();
            if cols.is_empty() {
                continue;
            }
            let names: Vec<String> = cols.iter().map(|(c, _)| c.clone()).collect();
            let name = &t.table.name;
            let stream = reader
                .copy_out(&self.copy_columns(i, &names))
                .await
                .pg(|| format!("reading the identifying values of {name}"))?;
            futures_util::pin_mut!(stream);
            let mut partial: Vec<u8> = Vec::new();
            let take = |line: &[u8], collector: &mut Collector| {
                for (f, (_, slots)) in crate::pg::copy::split_fields(line).zip(&cols) {
                    if let Some(v) = crate::pg::copy::decode_field_cow(f) {
                        collector.add_to(slots, &v);
                    }
                }
            };
            while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
                let chunk = chunk.pg(|| format!("reading the identifying values of {name}"))?;
                partial.extend_from_slice(&chunk);
                let mut start = 0;
                while let Some(n) = memchr::memchr(b'\n', &partial[start..]) {
                    take(&partial[start..start + n], &mut collector);
                    start += n + 1;
                }
                partial.drain(..start);
            }
        }
        Ok(collector.finish())
    }

    /// The source for messages: its URL without the password.
    pub fn name(&self) -> String {
        pg::mask_url(&self.url)
    }

    /// Whether `url` names this very database (same host, port and name).
    /// Whether `url` names the source database, asked of the server `url` reaches: it is
    /// the same server when it lists the source's own session, and then the same database
    /// when the names match (`localhost` and `127.0.0.1`, a socket or another port that
    /// forwards, an alias in DNS: all are seen through).
    pub async fn is_source(&self, url: &str) -> Result<bool, PgError> {
        if self.is_same_database(url) {
            return Ok(true);
        }
        let Some(name) = pg::parse(url)
            .ok()
            .and_then(|(c, _)| c.get_dbname().map(str::to_string))
        else {
            return Ok(false);
        };
        // the target database may not exist yet: ask its server's maintenance database
        let client = match pg::connect(url).await {
            Ok(c) => c,
            Err(_) => match pg::connect(&pg::with_database(url, "postgres")).await {
                Ok(c) => c,
                // a server we cannot reach is not the source's (the load will say why)
                Err(_) => return Ok(false),
            },
        };
        let row = client
            .query_opt(
                "SELECT datname::text FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2",
                &[&self.session.0, &self.session.1],
            )
            .await
            .pg(|| "asking the target server whether it is the source's".into())?;
        Ok(row.is_some_and(|r| r.get::<_, Option<String>>(0).as_deref() == Some(name.as_str())))
    }

    fn is_same_database(&self, url: &str) -> bool {
        let key = |u: &str| {
            pg::parse(u).ok().map(|(c, _)| {
                (
                    format!("{:?}", c.get_hosts()),
                    c.get_ports().to_vec(),
                    c.get_dbname().map(str::to_string),
                )
            })
        };
        key(&self.url).is_some() && key(&self.url) == key(url)
    }

    pub fn source_tables(&self) -> Vec<SourceTable> {
        self.tables.iter().map(|t| t.table.clone()).collect()
    }

    /// A new connection reading inside the run's snapshot.
    pub async fn reader(&self) -> Result<Client, PgError> {
        let c = pg::connect(&self.url).await?;
        // a subset's reads fetch their kept rows by TID: a TID scan, which returns
        // them in TID order without a sort and visits only their pages (a sequential or
        // TID-range scan would read every row of the range to keep a tenth). The
        // planner prices a TID scan of 50,000 rows above a scan, so scans are priced out,
        // and JIT, which that price would switch on, is off. Were a sequential scan
        // chosen anyway, it returns TID order too once it runs alone from the first page.
        let in_tid_order = if self.slice.is_some() {
            "; SET LOCAL enable_seqscan = off; SET LOCAL jit = off; \
             SET LOCAL synchronize_seqscans = off; SET LOCAL max_parallel_workers_per_gather = 0"
        } else {
            ""
        };
        c.batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}{in_tid_order}",
            quote_literal(&self.snapshot)
        ))
        .await
        .pg(|| "joining the source snapshot".into())?;
        Ok(c)
    }

    /// The pieces to read, largest tables first so parallel readers finish together;
    /// a table of at least `split_pages` pages becomes `jobs * 2` page ranges.
    pub fn pieces(
        &self,
        wanted: impl Fn(&LiveTable) -> bool,
        jobs: usize,
        split_pages: i64,
    ) -> Vec<Piece> {
        let mut order: Vec<usize> = (0..self.tables.len())
            .filter(|&i| wanted(&self.tables[i]))
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.tables[i].pages));
        let mut out = Vec::new();
        for i in order {
            let pages = match &self.slice {
                Some(s) if s.reads(i).is_some() => s.pages[i],
                _ => self.tables[i].pages,
            };
            let mut n = if jobs > 1 && pages >= split_pages.max(1) {
                (jobs as i64 * 2).min(pages).max(2)
            } else {
                1
            };
            // a subset's kept rows are read by TID, some thousands a statement
            if let Some(reads) = self.slice.as_ref().and_then(|s| s.reads(i)) {
                if reads == 0 {
                    continue;
                }
                n = n.max(reads).min(pages.max(1));
            }
            if n == 1 {
                out.push(Piece {
                    table: i,
                    pages: None,
                });
                continue;
            }
            let step = (pages + n - 1) / n;
            for k in 0..n {
                // the first range has no lower bound and the last no upper one, so pages
                // the statistics do not know of are read too
                let from = (k > 0).then_some(k * step);
                let to = (k + 1 < n).then_some((k + 1) * step);
                out.push(Piece {
                    table: i,
                    pages: Some((from, to)),
                });
            }
        }
        out
    }

    /// The `COPY … TO STDOUT` for a piece, with the table's row filter and, for samples,
    /// a row limit.
    /// COPY of some columns of a whole table.
    pub fn copy_columns(&self, table: usize, columns: &[String]) -> String {
        let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
        format!(
            "COPY {} ({}) TO STDOUT",
            self.tables[table].quoted,
            cols.join(", ")
        )
    }

    /// The reads of `piece`, a `COPY … TO STDOUT` at a time: one, under `filter`; or,
    /// for a table of a subset, its kept rows by TID, some thousands a statement, in TID
    /// order (so a copy is the same on every run), none when the subset keeps none.
    pub fn piece_reads<'a>(&'a self, piece: &Piece, filter: Option<&str>) -> PieceReads<'a> {
        PieceReads {
            live: self,
            piece: piece.clone(),
            filter: filter.map(str::to_string),
            limit: None,
            after: None,
            done: false,
        }
    }

    /// The pieces of table `i` alone, in page order, for a reader that reads one at a
    /// time.
    pub fn table_pieces(&self, i: usize, split_pages: i64) -> Vec<Piece> {
        self.pieces(|t| std::ptr::eq(t, &self.tables[i]), 1, split_pages)
    }

    pub fn copy_out(&self, piece: &Piece, filter: Option<&str>, limit: Option<usize>) -> String {
        let t = &self.tables[piece.table];
        let cols: Vec<String> = t.table.columns.iter().map(|c| quote_ident(c)).collect();
        let mut conds = Vec::new();
        if let Some((from, to)) = piece.pages {
            if let Some(f) = from {
                conds.push(format!("ctid >= '({f},0)'::tid"));
            }
            if let Some(to) = to {
                conds.push(format!("ctid < '({to},0)'::tid"));
            }
        }
        if let Some(f) = filter {
            conds.push(format!("({f})"));
        }
        if conds.is_empty() && limit.is_none() {
            return format!("COPY {} ({}) TO STDOUT", t.quoted, cols.join(", "));
        }
        // ONLY: a query of a table with inheritance children reads theirs too, where
        // `COPY t` reads the table alone
        let mut select = format!("SELECT {} FROM {}", cols.join(", "), t.only());
        if !conds.is_empty() {
            select.push_str(&format!(" WHERE {}", conds.join(" AND ")));
        }
        if let Some(n) = limit {
            select.push_str(&format!(" LIMIT {n}"));
        }
        format!("COPY ({select}) TO STDOUT")
    }

    /// The schema as pg_dump writes it for `section` (`pre-data`: types, tables,
    /// sequences, functions; `post-data`: indexes, constraints, triggers), from the run's
    /// snapshot, without owners (the target's roles are not production's), with grants
    /// unless `[grants] action = "drop"`, and
    /// without the tables the config skips.
    pub async fn schema(&self, section: &str, config: &Config) -> anyhow::Result<String> {
        let mut args = vec![
            "--schema-only".to_string(),
            format!("--section={section}"),
            "--no-owner".into(),
            format!("--snapshot={}", self.snapshot),
        ];
        if !config.keep_grants {
            args.push("--no-privileges".into());
        }
        if config.comments == crate::anonymize::comments::CommentAction::Drop {
            args.push("--no-comments".into());
        }
        for (name, t) in &config.tables {
            if t.action == crate::anonymize::config::Action::Skip {
                args.push(format!("--exclude-table={}", pg::quote_qualified(name)));
            }
        }
        args.push(format!("--dbname={}", self.url));
        let text = tokio::task::spawn_blocking(move || {
            let os: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
            crate::backup::run_tool("pg_dump", &os)
        })
        .await??;
        Ok(text)
    }
}

/// The statements that read one piece, from [`Live::piece_reads`].
pub struct PieceReads<'a> {
    live: &'a Live,
    piece: Piece,
    filter: Option<String>,
    limit: Option<usize>,
    /// The last TID read, for a subset's table.
    after: Option<String>,
    done: bool,
}

impl PieceReads<'_> {
    /// At most `rows` rows, in one statement (a sample).
    pub fn limit(mut self, rows: usize) -> Self {
        self.limit = Some(rows);
        self
    }

    /// The next statement, or `None` when the piece is read.
    pub async fn next(&mut self) -> anyhow::Result<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let (live, piece) = (self.live, &self.piece);
        let Some(slice) = live
            .slice
            .as_ref()
            .filter(|s| s.reads(piece.table).is_some())
        else {
            self.done = true;
            return Ok(Some(live.copy_out(
                piece,
                self.filter.as_deref(),
                self.limit,
            )));
        };
        let Some((tids, last)) = slice
            .tids(piece.table, piece.pages, self.after.as_deref())
            .await?
        else {
            self.done = true;
            return Ok(None);
        };
        let t = &live.tables[piece.table];
        let cols: Vec<String> = t.table.columns.iter().map(|c| quote_ident(c)).collect();
        let sql = format!(
            "COPY (SELECT {} FROM {} WHERE ctid = ANY({tids}){}) TO STDOUT",
            cols.join(", "),
            t.only(),
            self.limit
                .map(|n| format!(" LIMIT {n}"))
                .unwrap_or_default()
        );
        self.after = Some(last);
        self.done = self.limit.is_some();
        Ok(Some(sql))
    }
}

/// The source's large objects, by OID, as the snapshot `reader` sees them.
async fn large_objects(reader: &Client) -> Result<Vec<u32>, PgError> {
    Ok(reader
        .query(
            "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid",
            &[],
        )
        .await
        .pg(|| "listing the source's large objects".into())?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
