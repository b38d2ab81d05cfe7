//! `sluice check JOB.toml`: the pre-checks against the real servers, all of them, before a job
//! runs. Each gives pass, warn or fail with what was found and how to fix it; a failure makes
//! the command exit 2.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::{Endpoint, Storage, quote_string, select_tables};
use sluice_importer::{LoadMethod, LoadPlan, plan_on};

use super::file::Job;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: String,
    pub verdict: Verdict,
    pub detail: String,
    pub fix: String,
}

fn finding(
    check: &str,
    verdict: Verdict,
    detail: impl Into<String>,
    fix: impl Into<String>,
) -> Finding {
    Finding {
        check: check.to_owned(),
        verdict,
        detail: detail.into(),
        fix: fix.into(),
    }
}

/// Runs every check; connection failures are findings too.
pub async fn run(job: &Job) -> Vec<Finding> {
    let mut out = Vec::new();
    let source = connect(&job.source, "source", &mut out).await;
    let target = connect(&job.target, "target", &mut out).await;
    let mut bytes = 0;
    if let Some(mut s) = source {
        let retention = binlog(&mut s, &job.source, &mut out).await;
        privileges(&mut s, &job.source, &mut out).await;
        bytes = tables(&mut s, job, target.is_some(), &mut out).await;
        out.push(retention_finding(retention, bytes));
    }
    if let Some(mut t) = target {
        let plan = load_plan(job, &mut out).await;
        let infile: Option<(String, String)> = t
            .query_first("SHOW GLOBAL VARIABLES LIKE 'local_infile'")
            .await
            .unwrap_or(None);
        out.push(local_infile_finding(
            infile.map(|(_, v)| v.to_ascii_uppercase()),
            plan,
        ));
    }
    storage(job, &mut out).await;
    free_space(job, bytes, &mut out);
    out
}

/// How the import will load the target (the importer's own probe, with the job's
/// `[import] load_method`); `None` where it cannot tell.
async fn load_plan(job: &Job, out: &mut Vec<Finding>) -> Option<LoadPlan> {
    let asked = job
        .load_method
        .as_deref()
        .and_then(|m| m.parse().ok())
        .unwrap_or(LoadMethod::Auto);
    match plan_on(&job.target, asked).await {
        Ok(plan) => {
            out.push(finding(
                "target load method",
                Verdict::Pass,
                plan.to_string(),
                "",
            ));
            Some(plan)
        }
        Err(e) => {
            out.push(finding(
                "target load method",
                Verdict::Fail,
                e.to_string(),
                "[import] load_method = \"auto\"",
            ));
            None
        }
    }
}

/// `local_infile` matters as much as the import needs LOAD DATA LOCAL INFILE: for every table
/// unless it loads by bulk execution, where it is only the way back for a table bulk cannot take.
fn local_infile_finding(value: Option<String>, plan: Option<LoadPlan>) -> Finding {
    let value = match value {
        Some(v) if v == "ON" || v == "1" => {
            return finding("target local_infile", Verdict::Pass, "ON", "");
        }
        other => other.unwrap_or_default(),
    };
    match plan {
        Some(plan) if !plan.needs_local_infile() => finding(
            "target local_infile",
            Verdict::Warn,
            format!(
                "{value} (the import loads by bulk INSERT; a table with a row over half of \
                 max_allowed_packet, or a value a bulk INSERT refuses, needs LOAD DATA LOCAL INFILE)"
            ),
            "SET GLOBAL local_infile = 1",
        ),
        _ => finding(
            "target local_infile",
            Verdict::Fail,
            format!("{value} (the import loads with LOAD DATA LOCAL INFILE)"),
            "SET GLOBAL local_infile = 1",
        ),
    }
}

/// Free bytes on the file system holding `path` (or its nearest existing parent), from
/// `df -Pk` (POSIX output: the fourth column is the space available, in KiB).
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let mut at = path;
    while !at.exists() {
        at = at.parent()?;
    }
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(at)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The dump's local folder must hold about the tables' size (SQL text of the rows, before
/// compression); the sort folder takes the import's spilled runs, up to about as much.
fn free_space(job: &Job, table_bytes: u64, out: &mut Vec<Finding>) {
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30));
    let local_storage = (!job.storage.starts_with("s3://"))
        .then(|| std::path::PathBuf::from(job.storage.trim_start_matches("file://")));
    let sort_dir = job
        .sort_dir
        .as_ref()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let places = [
        (
            "storage space",
            local_storage,
            Verdict::Fail,
            "free space there, or use s3:// storage or --compress zstd",
        ),
        (
            "sort space",
            Some(sort_dir),
            Verdict::Warn,
            "point [import] sort_dir at a larger disk, or raise sort_memory",
        ),
    ];
    for (check, path, short, fix) in places {
        let Some(path) = path else { continue };
        out.push(match free_bytes(&path) {
            None => finding(
                check,
                Verdict::Warn,
                format!("could not read the free space of {}", path.display()),
                "",
            ),
            Some(free) if free < table_bytes => finding(
                check,
                short,
                format!(
                    "{} free at {}, the tables take {}",
                    gib(free),
                    path.display(),
                    gib(table_bytes)
                ),
                fix,
            ),
            Some(free) => finding(
                check,
                Verdict::Pass,
                format!(
                    "{} free at {} for {} of tables",
                    gib(free),
                    path.display(),
                    gib(table_bytes)
                ),
                "",
            ),
        });
    }
}

async fn connect(endpoint: &Endpoint, role: &str, out: &mut Vec<Finding>) -> Option<Conn> {
    let check = format!("{role} connection");
    match endpoint.connect().await {
        Ok(mut c) => {
            let v: Option<String> = c.query_first("SELECT VERSION()").await.unwrap_or(None);
            out.push(finding(
                &check,
                Verdict::Pass,
                format!("{endpoint}: {}", v.unwrap_or_default()),
                "",
            ));
            Some(c)
        }
        Err(e) => {
            out.push(finding(
                &check,
                Verdict::Fail,
                e.to_string(),
                "check the URL, the password and that the server listens",
            ));
            None
        }
    }
}

/// Checks the binlog settings; returns the binlog retention in seconds (0: never purged).
async fn binlog(c: &mut Conn, source: &Endpoint, out: &mut Vec<Finding>) -> f64 {
    let vars: Vec<(String, String)> = c
        .query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', \
             'server_id', 'expire_logs_days', 'binlog_expire_logs_seconds')",
        )
        .await
        .unwrap_or_default();
    let get = |n: &str| {
        vars.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.to_ascii_uppercase())
            .unwrap_or_default()
    };
    let want = [
        (
            "log_bin",
            "ON",
            "start the source with --log-bin (not dynamic)",
        ),
        (
            "binlog_format",
            "ROW",
            "SET GLOBAL binlog_format = 'ROW' (and in the option file)",
        ),
        (
            "binlog_row_image",
            "FULL",
            "SET GLOBAL binlog_row_image = 'FULL'",
        ),
    ];
    for (name, value, fix) in want {
        let have = get(name);
        out.push(if have == value {
            finding(name, Verdict::Pass, have, "")
        } else {
            finding(
                name,
                Verdict::Fail,
                format!("{have} on {}; Sluice needs {value}", source.address()),
                fix,
            )
        });
    }
    let id = get("server_id");
    out.push(if id == "0" || id.is_empty() {
        finding(
            "server_id",
            Verdict::Fail,
            "0: a source needs a unique non-zero server_id",
            "SET GLOBAL server_id = <unique number>",
        )
    } else {
        finding("server_id", Verdict::Pass, id, "")
    });
    let days: f64 = get("expire_logs_days").parse().unwrap_or(0.0);
    let secs: f64 = get("binlog_expire_logs_seconds").parse().unwrap_or(0.0);
    if secs > 0.0 { secs } else { days * 86_400.0 }
}

async fn privileges(c: &mut Conn, source: &Endpoint, out: &mut Vec<Finding>) {
    let grants: Vec<String> = c.query("SHOW GRANTS").await.unwrap_or_default();
    let global: Vec<String> = grants
        .iter()
        .filter(|g| g.contains(" ON *.* "))
        .flat_map(|g| {
            let list = g
                .trim_start_matches("GRANT ")
                .split(" ON ")
                .next()
                .unwrap_or("")
                .to_owned();
            list.split(',')
                .map(|p| p.trim().to_ascii_uppercase())
                .collect::<Vec<_>>()
        })
        .collect();
    let has = |p: &str| global.iter().any(|g| g == "ALL PRIVILEGES" || g == p);
    let has_any_select = has("SELECT") || grants.iter().any(|g| g.contains("SELECT"));
    let mut missing = Vec::new();
    if !has_any_select {
        missing.push("SELECT (dump, checksum)");
    }
    if !has("RELOAD") {
        missing.push("RELOAD (a consistent dump with a millisecond lock; without it the dump falls back to LOCK TABLES)");
    }
    if !has("REPLICATION SLAVE") {
        missing.push("REPLICATION SLAVE (binlog streaming)");
    }
    if !(has("REPLICATION CLIENT") || has("BINLOG MONITOR")) {
        missing.push("BINLOG MONITOR / REPLICATION CLIENT (binlog positions)");
    }
    out.push(if missing.is_empty() {
        finding(
            "source privileges",
            Verdict::Pass,
            "every phase's grants are there",
            "",
        )
    } else {
        finding(
            "source privileges",
            Verdict::Fail,
            format!("{} lacks: {}", source.user, missing.join("; ")),
            format!(
                "GRANT SELECT, RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO {}",
                quote_string(&source.user)
            ),
        )
    });
}

/// Checks the selected tables; returns their size in bytes (data + indexes).
async fn tables(c: &mut Conn, job: &Job, target_up: bool, out: &mut Vec<Finding>) -> u64 {
    let selection = match select_tables(c, &job.source, &job.filter).await {
        Ok(s) => s,
        Err(e) => {
            out.push(finding("tables", Verdict::Fail, e.to_string(), ""));
            return 0;
        }
    };
    if selection.tables.is_empty() {
        out.push(finding(
            "tables",
            Verdict::Fail,
            format!("the filter {:?} selects no table", job.filter.patterns()),
            "fix [filter] include",
        ));
        return 0;
    }
    out.push(finding(
        "tables",
        Verdict::Pass,
        format!("{} tables selected", selection.tables.len()),
        "",
    ));
    if let Err(e) = job
        .routes
        .check_distinct(selection.tables.iter().map(|t| &t.name))
    {
        out.push(finding(
            "routes",
            Verdict::Fail,
            e.to_string(),
            "fix [[route]]",
        ));
    }
    let keyless: Vec<String> = selection
        .tables
        .iter()
        .filter(|t| t.primary_key.is_empty())
        .map(|t| t.name.plain())
        .collect();
    out.push(if keyless.is_empty() {
        finding("primary keys", Verdict::Pass, "every table has one", "")
    } else {
        finding(
            "primary keys",
            Verdict::Warn,
            format!("no primary key: {} (one dump chunk each; streamed rows are matched on all columns)", keyless.join(", ")),
            "ALTER TABLE … ADD PRIMARY KEY (…)",
        )
    });
    let names: Vec<String> = selection
        .tables
        .iter()
        .map(|t| {
            format!(
                "({}, {})",
                quote_string(&t.name.database),
                quote_string(&t.name.table)
            )
        })
        .collect();
    let bytes: u64 = c
        .query_first::<Option<u64>, _>(format!(
            "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({})",
            names.join(", ")
        ))
        .await
        .unwrap_or(None)
        .flatten()
        .unwrap_or(0);
    if !target_up {
        return bytes;
    }
    let Ok(mut t) = job.target.connect().await else {
        return bytes;
    };
    // Collations the target lacks.
    let used: Vec<String> = c
        .query(format!(
            "SELECT DISTINCT COLLATION_NAME FROM information_schema.COLUMNS WHERE COLLATION_NAME IS NOT NULL \
             AND (TABLE_SCHEMA, TABLE_NAME) IN ({})",
            names.join(", ")
        ))
        .await
        .unwrap_or_default();
    let known: Vec<String> = t
        .query("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")
        .await
        .unwrap_or_default();
    let lacking: Vec<&String> = used.iter().filter(|u| !known.contains(u)).collect();
    out.push(if lacking.is_empty() {
        finding(
            "collations",
            Verdict::Pass,
            format!("{} used, all on the target", used.len()),
            "",
        )
    } else {
        finding(
            "collations",
            Verdict::Fail,
            format!(
                "the target lacks {}",
                lacking
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "upgrade the target or change those columns' collation on the source",
        )
    });
    // Target tables (where [[route]] sends them) that already hold rows: the import refuses them.
    let mut filled: Vec<String> = Vec::new();
    for table in &selection.tables {
        let target_name = job.routes.route(&table.name);
        let n: Option<u64> = t
            .query_first(format!("SELECT 1 FROM {target_name} LIMIT 1"))
            .await
            .unwrap_or(None);
        if n.is_some() {
            filled.push(target_name.plain());
        }
    }
    out.push(if filled.is_empty() {
        finding("target tables", Verdict::Pass, "none of the tables holds rows on the target", "")
    } else {
        finding(
            "target tables",
            Verdict::Fail,
            format!("already hold rows: {}", filled.join(", ")),
            "drop or empty them (or resume the job that loaded them: its checkpoints let it continue)",
        )
    });
    bytes
}

/// Binlog retention against a rough estimate of dump + import time for `bytes` of tables.
fn retention_finding(retention_secs: f64, bytes: u64) -> Finding {
    const CHECK: &str = "binlog retention";
    if retention_secs == 0.0 {
        return finding(
            CHECK,
            Verdict::Pass,
            "binlogs are never purged automatically",
            "",
        );
    }
    // Measured here: about 200 MB/s dumped and 40 MB/s imported; allow three times that.
    let estimate_secs = 3.0 * (bytes as f64 / 200e6 + bytes as f64 / 40e6);
    let hours = retention_secs / 3600.0;
    if retention_secs < estimate_secs {
        finding(
            CHECK,
            Verdict::Fail,
            format!(
                "{hours:.1} hours, but dump + import of {} MB may take {:.1} hours",
                bytes / 1_000_000,
                estimate_secs / 3600.0
            ),
            "raise binlog_expire_logs_seconds (or expire_logs_days) for the migration",
        )
    } else {
        finding(CHECK, Verdict::Pass, format!("{hours:.1} hours"), "")
    }
}

async fn storage(job: &Job, out: &mut Vec<Finding>) {
    let probe = ".sluice-check";
    let result = async {
        let s = Storage::open(&job.storage)?;
        s.put(probe, bytes_probe()).await?;
        s.delete(probe).await?;
        Ok::<(), sluice_core::CoreError>(())
    }
    .await;
    out.push(match result {
        Ok(()) => finding(
            "storage",
            Verdict::Pass,
            format!("{} is writable", job.storage),
            "",
        ),
        Err(e) => finding(
            "storage",
            Verdict::Fail,
            e.to_string(),
            "create the folder or bucket and grant write access",
        ),
    });
}

fn bytes_probe() -> Vec<u8> {
    b"sluice check".to_vec()
}

/// The findings as a table for a terminal.
pub fn print(findings: &[Finding]) {
    let width = findings
        .iter()
        .map(|f| f.check.len())
        .max()
        .unwrap_or(5)
        .max(5);
    for f in findings {
        let v = match f.verdict {
            Verdict::Pass => "pass",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        };
        println!("{:<width$}  {v}  {}", f.check, f.detail);
        if !f.fix.is_empty() && f.verdict != Verdict::Pass {
            println!("{:<width$}        fix: {}", "", f.fix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_weighed_against_the_size() {
        assert_eq!(retention_finding(0.0, 1 << 40).verdict, Verdict::Pass);
        assert_eq!(
            retention_finding(86_400.0, 1_000_000).verdict,
            Verdict::Pass
        );
        let short = retention_finding(3_600.0, 100_000_000_000);
        assert_eq!(short.verdict, Verdict::Fail);
        assert!(short.detail.contains("1.0 hours"), "{}", short.detail);
    }

    #[test]
    fn local_infile_off_fails_only_where_every_table_needs_it() {
        let off = || Some("OFF".to_owned());
        let on = local_infile_finding(Some("ON".into()), Some(LoadPlan::LoadDataNotMariaDb));
        assert_eq!(on.verdict, Verdict::Pass);
        assert_eq!(
            local_infile_finding(off(), Some(LoadPlan::Bulk)).verdict,
            Verdict::Warn
        );
        for plan in [
            Some(LoadPlan::LoadDataAsked),
            Some(LoadPlan::LoadDataNotMariaDb),
            Some(LoadPlan::LoadDataStatementLogging),
            None,
        ] {
            assert_eq!(
                local_infile_finding(off(), plan).verdict,
                Verdict::Fail,
                "{plan:?}"
            );
        }
    }
}

#[cfg(test)]
mod space_tests {
    use super::*;

    #[test]
    fn free_space_is_weighed_against_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "name = \"x\"\n[source]\nurl = \"mysql://h:1\"\n[target]\nurl = \"mysql://h:2\"\n\
             [storage]\nurl = \"{}\"\n[import]\nsort_dir = \"{}\"\n",
            dir.path().join("not/yet/made").display(),
            dir.path().display()
        );
        let job = crate::job::file::parse(&text, "job.toml").unwrap();
        let mut out = Vec::new();
        free_space(&job, 1 << 20, &mut out);
        assert!(out.iter().all(|f| f.verdict == Verdict::Pass), "{out:?}");
        out.clear();
        free_space(&job, u64::MAX / 2, &mut out);
        assert_eq!(out[0].check, "storage space");
        assert_eq!(out[0].verdict, Verdict::Fail, "{out:?}");
        assert_eq!(out[1].verdict, Verdict::Warn, "{out:?}");
        assert!(out[1].detail.contains("free at"), "{out:?}");
    }
}
