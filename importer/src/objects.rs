//! Triggers, stored routines and events of a mydumper folder (`mydumper -G -R -E`):
//! `{db}.{table}-schema-triggers.sql`, run once the table's rows are in (a trigger must not
//! fire for the imported rows), and `{db}-schema-post.sql` (functions, procedures, events),
//! run after every table and view.
//!
//! mydumper writes these files as statements that end with `;` at the end of a line, and a
//! routine's body keeps its own `;` (`begin select 1; select 2; end;`): they are split as
//! myloader splits them, at a `;` that ends a line outside quotes and comments. Each runs in
//! its database (routed), with a definer missing on the target replaced as for views. The post
//! files drop each object before creating it, so a rerun makes them again.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::{Endpoint, Routes, Storage, TableName, quote_ident};

use crate::ImportError;
use crate::views::keep_definer_if_it_exists;

/// A table's triggers: `{db}.{table}-schema-triggers.sql`.
pub(crate) const TRIGGERS_SUFFIX: &str = "-schema-triggers.sql";
/// A database's routines and events: `{db}-schema-post.sql`.
pub(crate) const POST_SUFFIX: &str = "-schema-post.sql";

/// A file of schema objects and the database its statements run in (as the dump names it).
#[derive(Debug, Clone)]
pub struct ObjectFile {
    pub database: String,
    pub file: String,
}

/// `(db, table)` of a triggers file name.
pub(crate) fn triggers_of(name: &str) -> Option<TableName> {
    let (db, table) = name.strip_suffix(TRIGGERS_SUFFIX)?.split_once('.')?;
    Some(TableName::new(db, table))
}

/// The post file of a database, from its name.
pub(crate) fn post_file(name: &str) -> Option<ObjectFile> {
    let db = name.strip_suffix(POST_SUFFIX)?;
    (!db.contains('.')).then(|| ObjectFile {
        database: db.to_owned(),
        file: name.to_owned(),
    })
}

/// Runs the statements of `file` in its database (routed), with missing definers replaced;
/// returns how many objects it created.
pub(crate) async fn run_object_file(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    file: &ObjectFile,
    routes: &Routes,
) -> Result<usize, ImportError> {
    let bytes = storage.get(&file.file).await?;
    let text = String::from_utf8_lossy(&bytes);
    let target_db = routes.route_database(&file.database);
    let fail = |line: usize, e| -> ImportError {
        endpoint
            .error(format!("create the objects of {}:{line}", file.file), e)
            .into()
    };
    conn.query_drop(format!("USE {}", quote_ident(&target_db)))
        .await
        .map_err(|e| fail(0, e))?;
    let mut created = 0;
    for (line, statement) in split_at_line_ends(&text) {
        let upper = statement.trim_start().to_ascii_uppercase();
        let sql = if upper.starts_with("CREATE") {
            created += 1;
            let what = format!("{}:{line}", file.file);
            keep_definer_if_it_exists(conn, statement, &what).await
        } else {
            statement.to_owned()
        };
        conn.query_drop(&sql).await.map_err(|e| fail(line, e))?;
    }
    Ok(created)
}

/// Statements (with the line each starts on) that end with `;` at the end of a line, outside
/// quotes and comments, as myloader reads mydumper's files; a last statement without `;` too.
fn split_at_line_ends(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut at, mut start, mut line, mut start_line) = (0, 0, 1, 1);
    let mut quote: Option<u8> = None;
    while at < b.len() {
        let c = b[at];
        if c == b'\n' {
            line += 1;
        }
        match quote {
            Some(q) => {
                if c == b'\\' && q != b'`' {
                    at += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' | b'`' => quote = Some(c),
                b'-' if b.get(at + 1) == Some(&b'-') => {
                    while at + 1 < b.len() && b[at + 1] != b'\n' {
                        at += 1;
                    }
                }
                b'/' if b.get(at + 1) == Some(&b'*') => {
                    let end = text[at + 2..]
                        .find("*/")
                        .map_or(b.len(), |e| at + 2 + e + 1);
                    line += text[at..end.min(b.len())].matches('\n').count();
                    at = end;
                }
                b';' => {
                    let rest = &text[at + 1..];
                    let line_end = rest.find('\n').unwrap_or(rest.len());
                    if rest[..line_end].trim().is_empty() {
                        let statement = text[start..at].trim();
                        if !statement.is_empty() {
                            out.push((start_line, statement));
                        }
                        start = at + 1;
                        start_line = line + 1;
                    }
                }
                _ => {}
            },
        }
        at += 1;
    }
    let last = text[start.min(b.len())..].trim();
    if !last.is_empty() {
        out.push((start_line, last));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_where_a_line_ends_with_a_semicolon() {
        let text = "SET character_set_client = utf8mb3;\nDROP PROCEDURE IF EXISTS `p1`;\n\
                    CREATE DEFINER=`root`@`localhost` PROCEDURE `p1`()\nbegin select 1; select ';\n'; end;\n\
                    -- a comment;\nCREATE EVENT e DO SELECT 1 /* x;\n */;\n";
        let got: Vec<&str> = split_at_line_ends(text)
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        assert_eq!(
            got,
            [
                "SET character_set_client = utf8mb3",
                "DROP PROCEDURE IF EXISTS `p1`",
                "CREATE DEFINER=`root`@`localhost` PROCEDURE `p1`()\nbegin select 1; select ';\n'; end",
                "-- a comment;\nCREATE EVENT e DO SELECT 1 /* x;\n */",
            ]
        );
    }

    #[test]
    fn file_names_say_what_they_hold() {
        assert_eq!(
            triggers_of("trg.t-schema-triggers.sql"),
            Some(TableName::new("trg", "t"))
        );
        assert_eq!(
            post_file("trg-schema-post.sql").map(|f| f.database),
            Some("trg".into())
        );
        assert!(post_file("trg.t-schema-post.sql").is_none());
        assert!(triggers_of("trg.t-schema.sql").is_none());
    }
}
