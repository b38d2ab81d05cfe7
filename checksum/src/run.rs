//! A checksum run: plan, compare chunks in parallel, recheck, diff, report, fix.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{
    Chunk, Endpoint, ServerInfo, TableFilter, TableInfo, TableName, plan_table, select_tables,
};
use tokio::task::JoinSet;

use crate::bisect::{self, Fingerprint, fingerprint};
use crate::config::ChecksumConfig;
use crate::diff::{self, Side};
use crate::report::{Report, TableReport};
use crate::row_hash::HashSql;
use crate::sync::{self, Synchronizer};
use crate::{ChecksumError, fix};

/// A checksum run, checked and ready.
pub struct Checker {
    config: ChecksumConfig,
    hash: HashSql,
    tables: Vec<TableInfo>,
    /// `tables` under their target names (the same columns: what `--route` moved).
    targets: Vec<TableInfo>,
    missing_on_target: HashSet<TableName>,
}

impl Checker {
    /// Connects to both servers, selects the tables and finds those missing on the target.
    pub async fn build(config: ChecksumConfig) -> Result<Checker, ChecksumError> {
        let mut src = config.source.connect().await?;
        let mut dst = config.target.connect().await?;
        let src_info = ServerInfo::detect(&mut src, &config.source).await?;
        let dst_info = ServerInfo::detect(&mut dst, &config.target).await?;
        let selection = select_tables(&mut src, &config.source, &config.filter).await?;
        if selection.tables.is_empty() {
            return Err(ChecksumError::NothingMatched {
                patterns: config.filter.patterns().to_vec(),
                source_endpoint: config.source.to_string(),
            });
        }
        config
            .routes
            .check_distinct(selection.tables.iter().map(|t| &t.name))?;
        let targets: Vec<TableInfo> = selection
            .tables
            .iter()
            .map(|t| TableInfo {
                name: config.routes.route(&t.name),
                ..t.clone()
            })
            .collect();
        // The filter names source tables; routed tables are looked for among all of the target's.
        let target_filter = if config.routes.is_empty() {
            config.filter.clone()
        } else {
            TableFilter::default()
        };
        let on_target = select_tables(&mut dst, &config.target, &target_filter).await?;
        let present: HashMap<TableName, TableInfo> = on_target
            .tables
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let missing_on_target = selection
            .tables
            .iter()
            .zip(&targets)
            .filter(|(_, t)| !present.contains_key(&t.name))
            .map(|(s, _)| s.name.clone())
            .collect();
        let pairs: Vec<(&TableInfo, Option<&TableInfo>)> = selection
            .tables
            .iter()
            .zip(&targets)
            .map(|(s, t)| (s, present.get(&t.name)))
            .collect();
        let hash = HashSql::new(&src_info, &dst_info, &pairs);
        Ok(Checker {
            hash,
            config,
            tables: selection.tables,
            targets,
            missing_on_target,
        })
    }

    pub async fn run(self) -> Result<Report, ChecksumError> {
        let started = Instant::now();
        let Checker {
            config,
            hash,
            tables,
            targets,
            missing_on_target,
        } = self;
        let mut planner = config.source.connect().await?;
        let mut queue = VecDeque::new();
        for (i, t) in tables.iter().enumerate() {
            if missing_on_target.contains(&t.name) {
                continue;
            }
            // A keyless table is compared as one multiset, whatever its size.
            queue.extend(plan_table(&mut planner, &config.source, i, t, config.chunk_rows).await?);
        }
        drop(planner);
        let tables = Arc::new(tables);
        let targets = Arc::new(targets);
        let config = Arc::new(config);
        let planned: Vec<Chunk> = queue.iter().cloned().collect();

        let synchronizer = config
            .sync
            .as_ref()
            .map(|h| Arc::new(Synchronizer::new(h.0.clone())));
        let mut results = compare_all(
            &config,
            hash.clone(),
            &tables,
            &targets,
            queue,
            synchronizer.clone(),
        )
        .await?;
        // At sync points a difference is real: nothing to recheck.
        let rechecks = if synchronizer.is_some() {
            0
        } else {
            config.rechecks
        };
        for round in 1..=rechecks {
            let mismatched: VecDeque<Chunk> = results
                .iter()
                .filter(|r| r.differs())
                .map(|r| r.chunk.clone())
                .collect();
            if mismatched.is_empty() {
                break;
            }
            tracing::info!(
                round,
                chunks = mismatched.len(),
                "rechecking mismatching chunks"
            );
            tokio::time::sleep(config.recheck_delay).await;
            let again =
                compare_all(&config, hash.clone(), &tables, &targets, mismatched, None).await?;
            for r in again {
                if let Some(slot) = results
                    .iter_mut()
                    .find(|x| x.chunk.table == r.chunk.table && x.chunk.index == r.chunk.index)
                {
                    *slot = r;
                }
            }
        }

        let mut reports: BTreeMap<usize, TableReport> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let report = TableReport {
                    table: t.name.plain(),
                    target_table: (targets[i].name != t.name).then(|| targets[i].name.plain()),
                    chunks: planned.iter().filter(|c| c.table == i).count(),
                    source_rows: 0,
                    target_rows: 0,
                    mismatched_chunks: Vec::new(),
                    differences: Vec::new(),
                    truncated: false,
                    rows_listed: 0,
                    missing_on_target: missing_on_target.contains(&t.name),
                };
                (i, report)
            })
            .collect();
        let mut fixes = Vec::new();
        let (mut src_conn, mut dst_conn) = (
            config.source.connect().await?,
            config.target.connect().await?,
        );
        for r in &results {
            let Some(report) = reports.get_mut(&r.chunk.table) else {
                continue;
            };
            report.source_rows += r.source.0;
            report.target_rows += r.target.0;
            if !r.differs() {
                continue;
            }
            let table = &tables[r.chunk.table];
            let pair = diff::TablePair {
                index: r.chunk.table,
                source: table,
                target: &targets[r.chunk.table],
            };
            report.mismatched_chunks.push(
                r.chunk
                    .predicate
                    .clone()
                    .unwrap_or_else(|| "all rows".to_owned()),
            );
            let left = config
                .max_rows_reported
                .saturating_sub(report.differences.len());
            if let Some(sync) = &synchronizer {
                sync.pair(&config, &mut src_conn, &mut dst_conn).await?;
            }
            let mut source = Side {
                conn: &mut src_conn,
                endpoint: &config.source,
            };
            let mut target = Side {
                conn: &mut dst_conn,
                endpoint: &config.target,
            };
            let found = if table.primary_key.is_empty() {
                diff::keyless_table(&mut source, &mut target, &hash, pair, left).await?
            } else {
                diff_keyed_chunk(&mut source, &mut target, &hash, pair, r, left).await?
            };
            if synchronizer.is_some() {
                sync::end(&mut src_conn).await;
                sync::end(&mut dst_conn).await;
            }
            report.truncated |= found.truncated;
            report.rows_listed += found.rows_listed;
            report.differences.extend(found.differences);
            fixes.extend(found.fixes);
        }
        drop((src_conn, dst_conn));

        if let Some(path) = &config.fix_sql {
            fix::write_file(path, &fixes)?;
        }
        let fix_applied = config.apply_fix && !fixes.is_empty();
        if fix_applied {
            fix::apply(&config.target, &fixes).await?;
        }
        let tables: Vec<TableReport> = reports.into_values().collect();
        Ok(Report {
            rows: tables.iter().map(|t| t.source_rows).sum(),
            chunks: planned.len(),
            tables,
            seconds: started.elapsed().as_secs_f64(),
            fix_statements: fixes.len(),
            fix_applied,
        })
    }
}

/// The differing rows of a mismatching chunk of a keyed table: the chunk is narrowed by
/// bisection, then the ranges left are diffed row by row (at most `limit` rows reported).
async fn diff_keyed_chunk(
    source: &mut Side<'_>,
    target: &mut Side<'_>,
    hash: &HashSql,
    pair: diff::TablePair<'_>,
    result: &ChunkResult,
    limit: usize,
) -> Result<diff::ChunkDiff, ChecksumError> {
    let ranges = bisect::narrow(
        source,
        target,
        hash,
        pair,
        result.chunk.predicate.as_deref(),
        (result.source.0, result.target.0),
    )
    .await?;
    let mut found = diff::ChunkDiff::default();
    for range in ranges {
        let left = limit.saturating_sub(found.differences.len());
        found.absorb(diff::keyed_chunk(source, target, hash, pair, range.as_deref(), left).await?);
    }
    Ok(found)
}

struct ChunkResult {
    chunk: Chunk,
    source: Fingerprint,
    target: Fingerprint,
}

impl ChunkResult {
    fn differs(&self) -> bool {
        self.source != self.target
    }
}

/// Compares every chunk of `queue` on `threads` pairs of connections.
async fn compare_all(
    config: &Arc<ChecksumConfig>,
    hash: HashSql,
    tables: &Arc<Vec<TableInfo>>,
    targets: &Arc<Vec<TableInfo>>,
    queue: VecDeque<Chunk>,
    synchronizer: Option<Arc<Synchronizer>>,
) -> Result<Vec<ChunkResult>, ChecksumError> {
    let workers = config.threads.max(1).min(queue.len().max(1));
    let queue = Arc::new(Mutex::new(queue));
    let throttle = Arc::new(Throttle::new(config.max_rows_per_sec));
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let (config, hash, tables, targets, queue, throttle, synchronizer) = (
            config.clone(),
            hash.clone(),
            tables.clone(),
            targets.clone(),
            queue.clone(),
            throttle.clone(),
            synchronizer.clone(),
        );
        set.spawn(async move {
            let mut src = config.source.connect().await?;
            let mut dst = config.target.connect().await?;
            let mut done = Vec::new();
            loop {
                let next = queue.lock().map(|mut q| q.pop_front()).unwrap_or(None);
                let Some(chunk) = next else { break };
                if let Some(limit) = config.max_threads_running {
                    wait_for_quiet_source(&mut src, &config.source, limit).await?;
                }
                let table = &tables[chunk.table];
                let predicate = chunk.predicate.as_deref();
                let sql = hash.chunk_sql(chunk.table, &table.name, predicate);
                let target_sql = hash.chunk_sql(chunk.table, &targets[chunk.table].name, predicate);
                if let Some(sync) = &synchronizer {
                    sync.pair(&config, &mut src, &mut dst).await?;
                }
                let (s, t) = tokio::join!(
                    fingerprint(&mut src, &config.source, &sql),
                    fingerprint(&mut dst, &config.target, &target_sql)
                );
                if synchronizer.is_some() {
                    sync::end(&mut src).await;
                    sync::end(&mut dst).await;
                }
                let (source, target) = (s?, t?);
                throttle.account(source.0).await;
                done.push(ChunkResult {
                    chunk,
                    source,
                    target,
                });
            }
            Ok::<_, ChecksumError>(done)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        out.extend(joined.map_err(|e| ChecksumError::Worker(e.to_string()))??);
    }
    Ok(out)
}

/// Sleeps while the source's `Threads_running` is above `limit`.
async fn wait_for_quiet_source(
    conn: &mut Conn,
    endpoint: &Endpoint,
    limit: u64,
) -> Result<(), ChecksumError> {
    loop {
        let row: Option<(String, u64)> = conn
            .query_first("SHOW GLOBAL STATUS LIKE 'Threads_running'")
            .await
            .map_err(|e| endpoint.error("read Threads_running", e))?;
        let running = row.map(|(_, v)| v).unwrap_or(0);
        if running <= limit {
            return Ok(());
        }
        tracing::info!(running, limit, "source busy; checksum paused");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Keeps the average rows per second at or under a cap.
struct Throttle {
    cap: Option<u64>,
    started: Instant,
    rows: Mutex<u64>,
}

impl Throttle {
    fn new(cap: Option<u64>) -> Throttle {
        Throttle {
            cap,
            started: Instant::now(),
            rows: Mutex::new(0),
        }
    }

    async fn account(&self, rows: u64) {
        let Some(cap) = self.cap.filter(|c| *c > 0) else {
            return;
        };
        let total = match self.rows.lock() {
            Ok(mut r) => {
                *r += rows;
                *r
            }
            Err(_) => return,
        };
        let due = Duration::from_secs_f64(total as f64 / cap as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}
