//! The statements that repair the target: written to a file for review, and executed only when
//! asked (`--apply-fix`), in one transaction on the target. Never on the source.

use std::io::Write;
use std::path::Path;

use mysql_async::prelude::Queryable;
use sluice_core::Endpoint;

use crate::ChecksumError;

/// Session settings the fix statements rely on (the literals are exact text in UTC).
const HEADER: &str = "SET NAMES utf8mb4;\nSET time_zone = '+00:00';\nSET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';\n\
                      SET foreign_key_checks = 0;\n";

/// Writes the statements to `path` (replacing it), atomically: a temporary file renamed.
pub fn write_file(path: &Path, statements: &[String]) -> Result<(), ChecksumError> {
    let err = |action, source| ChecksumError::FixFile {
        path: path.display().to_string(),
        action,
        source,
    };
    let tmp = path.with_extension("sql.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| err("create", e))?;
    file.write_all(HEADER.as_bytes())
        .map_err(|e| err("write", e))?;
    for s in statements {
        file.write_all(s.as_bytes()).map_err(|e| err("write", e))?;
        file.write_all(b"\n").map_err(|e| err("write", e))?;
    }
    file.sync_all().map_err(|e| err("sync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("rename", e))
}

/// Executes the statements on the target in one transaction.
pub async fn apply(target: &Endpoint, statements: &[String]) -> Result<(), ChecksumError> {
    let mut conn = target.connect().await?;
    conn.query_drop("SET SESSION foreign_key_checks = 0")
        .await
        .map_err(|e| target.error("prepare the fix", e))?;
    let mut tx = conn
        .start_transaction(Default::default())
        .await
        .map_err(|e| target.error("begin the fix transaction", e))?;
    for s in statements {
        tx.query_drop(s.as_str())
            .await
            .map_err(|e| target.error(format!("fix statement `{s:.120}`"), e))?;
    }
    tx.commit()
        .await
        .map_err(|e| target.error("commit the fix", e))?;
    Ok(())
}
