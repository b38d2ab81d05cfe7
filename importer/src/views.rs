//! Views: `{db}.{view}-schema-view.sql` files (Sluice's, Dumpling's and mydumper's name), run
//! after every table is loaded, since a view needs its tables (and Dumpling's and mydumper's
//! placeholder table of the same name is never created: see `source.rs`).
//!
//! A file is run statement by statement in the view's database: Dumpling's and mydumper's
//! files drop the placeholder and set the client character set themselves; Sluice's hold only
//! the `CREATE VIEW`. Each file is preceded by `DROP VIEW IF EXISTS`, so a resumed import runs
//! them again. A view over another view may come first in name order: a view whose statement
//! fails because a table or view it reads is missing waits for the next pass, until a pass
//! creates nothing.
//!
//! Definers. `SHOW CREATE VIEW` names the definer (`DEFINER=`app`@`10.0.0.%``). A view whose
//! definer does not exist on the target is created, but every query on it fails (ERROR 1449),
//! so the clause is dropped there, with a warning: the importing user becomes the definer.
//! Where the target does not say (no privilege to read `mysql.user`), the clause stays.
//!
//! Routes. `--route` renames the view itself (as `route_statement` renames any DDL); the
//! tables its `SELECT` reads keep the names the file gives them.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::ddl::route_statement;
use sluice_core::{Endpoint, Routes, Storage, TableName, quote_ident};

use crate::ImportError;
use crate::sql_reader::SqlReader;

/// The file name suffix of a view's statements.
pub(crate) const VIEW_FILE_SUFFIX: &str = "-schema-view.sql";

/// A view of the dump.
#[derive(Debug, Clone)]
pub struct ViewSource {
    /// Where it is created: the dump's name, or where `--route` sends it.
    pub name: TableName,
    /// Its name in the dump.
    pub dump_name: TableName,
    pub file: String,
}

/// The view a file name holds, for `{db}.{view}-schema-view.sql`.
pub(crate) fn view_of_file(name: &str) -> Option<ViewSource> {
    let qualified = name.strip_suffix(VIEW_FILE_SUFFIX)?;
    let (db, view) = qualified.split_once('.')?;
    let dump_name = TableName::new(db, view);
    Some(ViewSource {
        name: dump_name.clone(),
        dump_name,
        file: name.to_owned(),
    })
}

/// Server errors that mean "something this view reads does not exist yet": no such table
/// (1146), a view referencing a missing table or column (1356).
const MISSING_DEPENDENCY: [u16; 2] = [1146, 1356];

/// Creates every view; returns how many.
pub(crate) async fn create_views(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    views: &[ViewSource],
    routes: &Routes,
) -> Result<usize, ImportError> {
    let mut pending: Vec<&ViewSource> = views.iter().collect();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut last_error = None;
        for view in &pending {
            match create_view(conn, endpoint, storage, view, routes).await {
                Ok(()) => tracing::info!(view = %view.name.plain(), "view created"),
                Err(Failed::MissingDependency(e)) => {
                    waiting.push(*view);
                    last_error = Some(e);
                }
                Err(Failed::Other(e)) => return Err(e),
            }
        }
        if waiting.len() == pending.len() {
            return Err(last_error.unwrap_or_else(|| {
                ImportError::Input("views depend on each other in a cycle".into())
            }));
        }
        pending = waiting;
    }
    Ok(views.len())
}

enum Failed {
    MissingDependency(ImportError),
    Other(ImportError),
}

async fn create_view(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    view: &ViewSource,
    routes: &Routes,
) -> Result<(), Failed> {
    let bytes = storage
        .get(&view.file)
        .await
        .map_err(|e| Failed::Other(e.into()))?;
    let mut reader = SqlReader::whole(bytes, view.file.clone());
    let mut statements = Vec::new();
    while let Some(s) = reader
        .next_statement()
        .map_err(|e| Failed::Other(e.into()))?
    {
        statements.push((String::from_utf8_lossy(&s.text).trim().to_owned(), s.line));
    }
    let database = &view.dump_name.database;
    let target_db = routes.route_database(database);
    let run = |sql: String, line: u64| {
        let what = format!(
            "create view {} from {}:{line}",
            view.name.plain(),
            view.file
        );
        (sql, what)
    };
    let mut plan = vec![run(format!("USE {}", quote_ident(&target_db)), 0)];
    // A table of that name (ERROR 1347) is the file's to drop (a placeholder) or an error
    // its CREATE VIEW reports.
    match conn
        .query_drop(format!("DROP VIEW IF EXISTS {}", view.name))
        .await
    {
        Err(mysql_async::Error::Server(e)) if e.code == 1347 => {}
        Err(e) => {
            return Err(Failed::Other(
                endpoint
                    .error(format!("drop view {}", view.name.plain()), e)
                    .into(),
            ));
        }
        Ok(()) => {}
    }
    for (text, line) in statements {
        if text.is_empty() {
            continue;
        }
        let text = if is_create_view(&text) {
            keep_definer_if_it_exists(conn, &text, &format!("view {}", view.name.plain())).await
        } else {
            text
        };
        plan.push(run(route_statement(&text, database, routes).0, line));
    }
    for (sql, what) in plan {
        if let Err(e) = conn.query_drop(&sql).await {
            let missing =
                matches!(&e, mysql_async::Error::Server(s) if MISSING_DEPENDENCY.contains(&s.code));
            let e = ImportError::from(endpoint.error(what, e));
            return Err(if missing {
                Failed::MissingDependency(e)
            } else {
                Failed::Other(e)
            });
        }
    }
    Ok(())
}

/// `CREATE [OR REPLACE] [ALGORITHM=…] [DEFINER=…] [SQL SECURITY …] VIEW …`, also inside
/// mysqldump's `/*!50001 … */` comments.
fn is_create_view(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    let Some(head) = upper.split(" AS ").next() else {
        return false;
    };
    upper
        .trim_start_matches("/*!50001")
        .trim_start()
        .starts_with("CREATE")
        && head
            .split_whitespace()
            .any(|w| w == "VIEW" || w.ends_with("*/VIEW"))
}

/// The statement without its DEFINER clause when that user does not exist on the target
/// (views here; triggers, routines and events in `objects.rs`). `what` names the object.
pub(crate) async fn keep_definer_if_it_exists(conn: &mut Conn, sql: &str, what: &str) -> String {
    let Some(clause) = definer_clause(sql) else {
        return sql.to_owned();
    };
    let found: Result<Option<u64>, _> = conn
        .exec_first(
            "SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?",
            (&clause.user, &clause.host),
        )
        .await;
    match found {
        Ok(Some(0)) => {
            tracing::warn!(
                object = %what,
                definer = %format!("'{}'@'{}'", clause.user, clause.host),
                "the definer does not exist on the target: the importing user becomes it"
            );
            format!("{}{}", &sql[..clause.start], &sql[clause.end..])
        }
        _ => sql.to_owned(),
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Definer {
    /// Byte range of `DEFINER = user@host` in the statement.
    start: usize,
    end: usize,
    user: String,
    host: String,
}

/// Finds `DEFINER = user@host` before the `VIEW` keyword (user and host quoted with backticks,
/// single or double quotes, or bare). `CURRENT_USER` is no clause to check.
fn definer_clause(sql: &str) -> Option<Definer> {
    let upper = sql.to_ascii_uppercase();
    let start = upper.find("DEFINER")?;
    if upper.find(" VIEW").is_some_and(|v| v < start) {
        return None;
    }
    let b = sql.as_bytes();
    let mut at = start + "DEFINER".len();
    let skip_spaces = |at: &mut usize| {
        while b.get(*at).is_some_and(u8::is_ascii_whitespace) {
            *at += 1;
        }
    };
    skip_spaces(&mut at);
    if b.get(at) != Some(&b'=') {
        return None;
    }
    at += 1;
    skip_spaces(&mut at);
    let user = name_part(b, &mut at, b'@')?;
    if b.get(at) != Some(&b'@') {
        return None;
    }
    at += 1;
    let host = name_part(b, &mut at, b' ')?;
    Some(Definer {
        start,
        end: at,
        user,
        host,
    })
}

/// A quoted name (doubled quotes inside) or a bare one up to `stop`, whitespace or `*/`.
fn name_part(b: &[u8], at: &mut usize, stop: u8) -> Option<String> {
    let quote = *b.get(*at)?;
    let mut out = Vec::new();
    if matches!(quote, b'`' | b'\'' | b'"') {
        *at += 1;
        loop {
            let c = *b.get(*at)?;
            *at += 1;
            if c == quote {
                if b.get(*at) == Some(&quote) {
                    out.push(quote);
                    *at += 1;
                    continue;
                }
                break;
            }
            out.push(c);
        }
    } else {
        while let Some(&c) = b.get(*at) {
            if c == stop || c.is_ascii_whitespace() || c == b'*' {
                break;
            }
            out.push(c);
            *at += 1;
        }
        if out.is_empty() || out.eq_ignore_ascii_case(b"CURRENT_USER") {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_files_name_their_view() {
        let v = view_of_file("db1.v1-schema-view.sql").unwrap();
        assert_eq!(v.dump_name, TableName::new("db1", "v1"));
        assert!(view_of_file("db1.t-schema.sql").is_none());
        assert!(view_of_file("db1-schema-view.sql").is_none());
    }

    #[test]
    fn the_definer_clause_is_found_in_each_quoting() {
        let sql = "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`192.168.198.178` SQL SECURITY DEFINER VIEW `v2` (`s`) AS SELECT 1";
        let d = definer_clause(sql).unwrap();
        assert_eq!(
            (d.user.as_str(), d.host.as_str()),
            ("root", "192.168.198.178")
        );
        assert_eq!(
            format!("{}{}", &sql[..d.start], &sql[d.end..]),
            "CREATE ALGORITHM=UNDEFINED  SQL SECURITY DEFINER VIEW `v2` (`s`) AS SELECT 1"
        );
        let d = definer_clause("CREATE DEFINER = 'a''b'@'%' VIEW v AS SELECT 1").unwrap();
        assert_eq!((d.user.as_str(), d.host.as_str()), ("a'b", "%"));
        let d = definer_clause("/*!50013 DEFINER=app@localhost SQL SECURITY DEFINER */").unwrap();
        assert_eq!((d.user.as_str(), d.host.as_str()), ("app", "localhost"));
        assert!(definer_clause("CREATE DEFINER=CURRENT_USER VIEW v AS SELECT 1").is_none());
        assert!(definer_clause("CREATE VIEW v AS SELECT definer FROM t").is_none());
    }

    #[test]
    fn create_view_statements_are_told_from_the_others() {
        assert!(is_create_view(
            "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `views`.`v` AS select 1"
        ));
        assert!(is_create_view("create or replace view v as select 1"));
        assert!(!is_create_view("DROP VIEW IF EXISTS `v`"));
        assert!(!is_create_view("CREATE TABLE v (a int)"));
        assert!(!is_create_view("SET character_set_client = utf8mb4"));
    }
}
