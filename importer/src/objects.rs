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
    // Sluice's files set each object's sql_mode: the session gets its own back after.
    let mode: Option<String> = conn
        .query_first("SELECT @@SESSION.sql_mode")
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
        // The binlog already carries what a source trigger or event did, as row changes: on a
        // target a stream applies to, they would do it a second time.
        if upper.starts_with("CREATE") && (upper.contains(" TRIGGER ") || upper.contains(" EVENT "))
        {
            tracing::warn!(file = %file.file, line, "a trigger or event was made on the target: a stream into it would apply its effects twice; make them at cut-over there");
        }
    }
    conn.query_drop(format!(
        "SET SESSION sql_mode = {}",
        sluice_core::quote_string(&mode.unwrap_or_default())
    ))
    .await
    .map_err(|e| fail(0, e))?;
    Ok(created)
}

/// Statements (with the line each starts on) that end with `;` at the end of a line, outside
/// quotes and comments, as myloader reads mydumper's files; a last statement without `;` too.
/// Sluice's own files put each object between `DELIMITER ;;` lines (a trigger's multi-line
/// body keeps its `;` at line ends): there a statement ends with `;;` at the end of a line.
fn split_at_line_ends(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut delimiter = ";";
    let mut block_start = 0;
    let mut block_line = 1;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let trimmed = line.trim();
        if trimmed.len() > 10 && trimmed[..10].eq_ignore_ascii_case("DELIMITER ") {
            out.extend(split_block(
                &text[block_start..offset],
                block_line,
                delimiter,
            ));
            delimiter = trimmed[10..].trim();
            block_start = offset + line.len();
            block_line = i + 2;
        }
        offset += line.len();
    }
    out.extend(split_block(&text[block_start..], block_line, delimiter));
    out
}

/// [`split_at_line_ends`] for a stretch of text under one delimiter (`;` or `;;`).
fn split_block<'t>(text: &'t str, first_line: usize, delimiter: &str) -> Vec<(usize, &'t str)> {
    if delimiter != ";" {
        let mut out = Vec::new();
        let (mut start, mut line) = (0, first_line);
        let mut start_line = line;
        for l in text.split_inclusive('\n') {
            let end = start_offset(text, l) + l.len();
            line += 1;
            if l.trim_end().ends_with(delimiter) {
                let statement = text[start..end].trim_end();
                let statement = statement[..statement.len() - delimiter.len()].trim();
                if !statement.is_empty() {
                    out.push((start_line, statement));
                }
                start = end;
                start_line = line;
            }
        }
        let last = text[start..].trim();
        if !last.is_empty() {
            out.push((start_line, last));
        }
        return out;
    }
    split_semicolons(text, first_line)
}

/// Where `part` (a slice of `text`) starts in it.
fn start_offset(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

fn split_semicolons(text: &str, first_line: usize) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let (mut at, mut start, mut line, mut start_line) = (0, 0, first_line, first_line);
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
    fn delimiter_blocks_end_at_their_delimiter() {
        let text = "SET SESSION sql_mode = '';\nDELIMITER ;;\nCREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN\n  SET NEW.a = 1;\n  SET NEW.b = 2;\nEND;;\nDELIMITER ;\nDROP PROCEDURE IF EXISTS `p`;\n";
        let got = split_at_line_ends(text);
        assert_eq!(
            got,
            [
                (1, "SET SESSION sql_mode = ''"),
                (
                    3,
                    "CREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW BEGIN\n  SET NEW.a = 1;\n  SET NEW.b = 2;\nEND"
                ),
                (8, "DROP PROCEDURE IF EXISTS `p`"),
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
