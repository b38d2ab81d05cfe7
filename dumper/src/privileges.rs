//! Checks, before anything is locked or written, that the account has every privilege the dump
//! needs, and reports all that are missing at once.
//!
//! It reads `SHOW GRANTS` for global (`ON *.*`) and database (`ON `db`.*`) grants. When the
//! account's rights come through roles or table-level grants the check cannot see them all,
//! so it stays silent and lets the server's own errors speak.

use std::collections::BTreeSet;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, Flavor, Selection, ServerInfo};

use crate::DumpError;
use crate::config::Consistency;

pub async fn check(
    conn: &mut Conn,
    endpoint: &Endpoint,
    info: &ServerInfo,
    consistency: Consistency,
    binlog_on: bool,
    selection: &Selection,
) -> Result<(), DumpError> {
    let grants: Vec<String> = conn
        .query("SHOW GRANTS")
        .await
        .map_err(|e| endpoint.error("SHOW GRANTS", e))?;
    let user: Option<String> = conn
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(|e| endpoint.error("SELECT CURRENT_USER()", e))?;
    let mut global = BTreeSet::new();
    let mut per_db: Vec<(String, BTreeSet<String>)> = Vec::new();
    for line in &grants {
        let upper = line.to_ascii_uppercase();
        let Some(on) = upper.find(" ON ") else {
            return Ok(()); // a role grant: rights we cannot see from here
        };
        let privs: BTreeSet<String> = upper
            .trim_start_matches("GRANT ")
            .get(..on.saturating_sub(6))
            .unwrap_or("")
            .split(',')
            .map(|p| p.trim().to_owned())
            .collect();
        if privs.len() == 1 && privs.contains("PROXY") {
            continue;
        }
        let object = line[on + 4..].split(" TO ").next().unwrap_or("").trim();
        if object == "*.*" {
            global.extend(privs);
        } else if let Some(db) = object.strip_suffix(".*") {
            per_db.push((db.trim_matches('`').replace("``", "`"), privs));
        } else {
            return Ok(()); // table-level grants: let the server decide
        }
    }
    let has_global = |p: &str| global.contains("ALL PRIVILEGES") || global.contains(p);
    let mut missing = Vec::new();
    let needs_lock = matches!(consistency, Consistency::Auto | Consistency::Flush);
    if needs_lock && !has_global("RELOAD") {
        missing.push(format!("RELOAD ON *.* (for --consistency {consistency})"));
    }
    if consistency == Consistency::Lock && !has_global("LOCK TABLES") {
        let dbs_ok = selection.tables.iter().all(|t| {
            per_db.iter().any(|(db, p)| {
                db == &t.name.database
                    && (p.contains("LOCK TABLES") || p.contains("ALL PRIVILEGES"))
            })
        });
        if !dbs_ok {
            missing.push("LOCK TABLES ON *.* (for --consistency lock)".to_owned());
        }
    }
    if binlog_on && consistency != Consistency::None {
        let position_privs: &[&str] = match info.flavor {
            Flavor::MariaDb if info.version >= (10, 5, 2) => &["BINLOG MONITOR", "SUPER"],
            _ => &["REPLICATION CLIENT", "SUPER"],
        };
        if !position_privs.iter().any(|p| has_global(p)) {
            missing.push(format!(
                "{} ON *.* (to read the binlog position)",
                position_privs[0]
            ));
        }
    }
    if !has_global("SELECT") {
        let dbs: BTreeSet<&str> = selection
            .tables
            .iter()
            .map(|t| t.name.database.as_str())
            .collect();
        for db in dbs {
            let ok = per_db
                .iter()
                .any(|(d, p)| d == db && (p.contains("SELECT") || p.contains("ALL PRIVILEGES")));
            if !ok {
                missing.push(format!("SELECT ON `{db}`.*"));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(DumpError::MissingPrivileges {
        user: user.unwrap_or_else(|| endpoint.user.clone()),
        endpoint: endpoint.address(),
        missing,
        hint: if needs_lock {
            "use --consistency snapshot, which takes no lock".to_owned()
        } else {
            "dump with an account that has them".to_owned()
        },
    })
}
