//! Which load method a table gets: found once per import by probing the target ([`probe`]),
//! then per table from its columns ([`method_for`]). See `load.rs` for the methods themselves.
//! [`plan_on`] tells `sluice check` the same choice before a job runs.

use sluice_core::{ColumnInfo, Endpoint};

use crate::ImportError;
use crate::config::LoadMethod;
use crate::load::BATCH_BYTES;

/// Encoded rows in one bulk execution, at most (and at most a quarter of the target's
/// `max_allowed_packet`, which the whole command must fit).
const BULK_BATCH_BYTES: usize = 4 << 20;

/// What the target offers the loaders, found once per import by [`probe`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wire {
    /// The target runs MariaDB's bulk execution and `--load-method` allows it.
    pub(crate) bulk: bool,
    /// Bytes of rows per bulk execution.
    pub(crate) bulk_batch_bytes: usize,
    /// The biggest row a bulk batch may take: with a batch closed past `bulk_batch_bytes`, a
    /// quarter of `max_allowed_packet`, half of it leaves room for one more row.
    pub(crate) bulk_max_row_bytes: usize,
    /// `--load-method auto` may load tables with BLOB, TEXT or JSON columns by bulk execution:
    /// their loader can load the table again with LOAD DATA if a row is too big.
    pub(crate) bulk_long_values: bool,
}

/// How an import will load its rows into a target, and why: what [`probe`] found, told to
/// the user by `sluice check` before a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPlan {
    /// MariaDB's bulk execution; LOAD DATA LOCAL INFILE only for a table it cannot take.
    Bulk,
    /// `--load-method load-data` (or `[import] load_method`).
    LoadDataAsked,
    /// The target is not MariaDB (MySQL has no bulk execution).
    LoadDataNotMariaDb,
    /// MariaDB logging statements (`binlog_format=STATEMENT`) refuses bulk executions.
    LoadDataStatementLogging,
}

impl LoadPlan {
    /// Every table needs `LOAD DATA LOCAL INFILE` (the target's `local_infile` must be ON).
    pub fn needs_local_infile(self) -> bool {
        self != LoadPlan::Bulk
    }
}

impl std::fmt::Display for LoadPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoadPlan::Bulk => {
                "bulk INSERT (MariaDB's COM_STMT_BULK_EXECUTE); LOAD DATA LOCAL INFILE only for a \
                 table with a row over half of max_allowed_packet or a value a bulk INSERT refuses"
            }
            LoadPlan::LoadDataAsked => "LOAD DATA LOCAL INFILE (load method load-data)",
            LoadPlan::LoadDataNotMariaDb => {
                "LOAD DATA LOCAL INFILE (the target is not MariaDB: no bulk execution)"
            }
            LoadPlan::LoadDataStatementLogging => {
                "LOAD DATA LOCAL INFILE (the target logs statements, binlog_format=STATEMENT, \
                 and MariaDB runs bulk executions only with row-based logging)"
            }
        })
    }
}

/// How an import with `method` would load into `endpoint`; an error where `method` is
/// `bulk-insert` and the target cannot take it.
pub async fn plan_on(endpoint: &Endpoint, method: LoadMethod) -> Result<LoadPlan, ImportError> {
    Ok(probe_plan(endpoint, method).await?.0)
}

/// Finds whether the loaders may use bulk execution on this target.
pub(crate) async fn probe(endpoint: &Endpoint, method: LoadMethod) -> Result<Wire, ImportError> {
    let (plan, max_packet) = probe_plan(endpoint, method).await?;
    if plan != LoadPlan::Bulk {
        if plan == LoadPlan::LoadDataStatementLogging {
            tracing::info!(
                "the target logs statements (binlog_format=STATEMENT): loading with LOAD DATA"
            );
        }
        return Ok(Wire::default());
    }
    Ok(Wire {
        bulk: true,
        bulk_batch_bytes: (max_packet / 4).min(BULK_BATCH_BYTES),
        bulk_max_row_bytes: max_packet / 2,
        bulk_long_values: true,
    })
}

/// The plan, and the target's `max_allowed_packet` where the plan is bulk execution.
async fn probe_plan(
    endpoint: &Endpoint,
    method: LoadMethod,
) -> Result<(LoadPlan, usize), ImportError> {
    if method == LoadMethod::LoadData {
        return Ok((LoadPlan::LoadDataAsked, 0));
    }
    let mut conn = endpoint.connect_raw().await?;
    if !conn.bulk_insert_supported() {
        conn.quit().await;
        if method == LoadMethod::BulkInsert {
            return Err(ImportError::Target(format!(
                "--load-method bulk-insert: the target at {} does not offer MariaDB's bulk \
                 execution (MySQL has none); use --load-method auto or load-data",
                endpoint.address()
            )));
        }
        return Ok((LoadPlan::LoadDataNotMariaDb, 0));
    }
    let rows = conn
        .query_rows("SELECT @@max_allowed_packet, @@log_bin, @@binlog_format")
        .await
        .map_err(|e| endpoint.error("read max_allowed_packet and binlog_format", e))?;
    conn.quit().await;
    let cell = |i: usize| {
        rows.first()
            .and_then(|r| r.get(i))
            .and_then(|c| c.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
            .unwrap_or_default()
    };
    let max_packet = cell(0).parse::<usize>().unwrap_or(1 << 20);
    if cell(1) == "1" && cell(2).eq_ignore_ascii_case("STATEMENT") {
        // MariaDB refuses bulk execution when it logs statements (ERROR 4033).
        if method == LoadMethod::BulkInsert {
            return Err(ImportError::Target(format!(
                "--load-method bulk-insert: the target at {} logs statements (binlog_format=STATEMENT), \
                 and MariaDB runs bulk executions only with row-based logging; use --load-method auto or load-data",
                endpoint.address()
            )));
        }
        return Ok((LoadPlan::LoadDataStatementLogging, 0));
    }
    Ok((LoadPlan::Bulk, max_packet))
}

/// Columns whose one value may be bigger than a bulk batch can hold (tables of a `mysqldump`
/// script load with LOAD DATA when they have one: see [`Wire::bulk_long_values`]).
fn holds_long_values(columns: &[ColumnInfo]) -> bool {
    columns.iter().any(|c| {
        matches!(
            c.data_type.to_ascii_lowercase().as_str(),
            "tinyblob"
                | "blob"
                | "mediumblob"
                | "longblob"
                | "tinytext"
                | "text"
                | "mediumtext"
                | "longtext"
                | "json"
                | "geometry"
                | "point"
                | "linestring"
                | "polygon"
                | "multipoint"
                | "multilinestring"
                | "multipolygon"
                | "geometrycollection"
        )
    })
}

/// The method, batch size and biggest row for one table's columns.
pub(crate) fn method_for(
    wire: Wire,
    asked: LoadMethod,
    columns: &[ColumnInfo],
) -> (LoadMethod, usize, usize) {
    let bulk = wire.bulk
        && (asked == LoadMethod::BulkInsert
            || wire.bulk_long_values
            || !holds_long_values(columns));
    if bulk {
        (
            LoadMethod::BulkInsert,
            wire.bulk_batch_bytes,
            wire.bulk_max_row_bytes,
        )
    } else {
        (LoadMethod::LoadData, BATCH_BYTES, usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::ColumnKind;

    use super::*;

    #[test]
    fn a_table_gets_bulk_execution_only_where_the_target_and_its_values_allow() {
        let int = crate::load::tests::col("id", ColumnKind::Integer);
        let text = ColumnInfo {
            data_type: "mediumtext".into(),
            ..crate::load::tests::col("body", ColumnKind::Text)
        };
        let bulk = Wire {
            bulk: true,
            bulk_batch_bytes: 4 << 20,
            bulk_max_row_bytes: 8 << 20,
            bulk_long_values: true,
        };
        let plain = [int.clone()];
        let long = [int, text];
        assert_eq!(
            method_for(bulk, LoadMethod::Auto, &long),
            (LoadMethod::BulkInsert, 4 << 20, 8 << 20)
        );
        // A mysqldump script cannot load a table again: long values go by LOAD DATA.
        let script = Wire {
            bulk_long_values: false,
            ..bulk
        };
        assert_eq!(
            method_for(script, LoadMethod::Auto, &long).0,
            LoadMethod::LoadData
        );
        assert_eq!(
            method_for(script, LoadMethod::Auto, &plain).0,
            LoadMethod::BulkInsert
        );
        assert_eq!(
            method_for(script, LoadMethod::BulkInsert, &long).0,
            LoadMethod::BulkInsert
        );
        // MySQL, a statement-logging MariaDB, or --load-method load-data.
        assert_eq!(
            method_for(Wire::default(), LoadMethod::Auto, &plain),
            (LoadMethod::LoadData, BATCH_BYTES, usize::MAX)
        );
    }
}
