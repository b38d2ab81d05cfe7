//! Preparing the target: databases and tables from the dump's schema files, checks that an
//! existing table can take the data, and secondary indexes deferred until after the load.

use std::collections::HashSet;

use futures::StreamExt;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use sluice_core::ddl::route_statement;
use sluice_core::{
    Endpoint, Routes, Storage, TableFilter, TableInfo, TableName, quote_ident, select_tables,
};

use crate::ImportError;
use crate::config::DeferIndexes;
use crate::source::TableSource;
use crate::sql_reader::SqlReader;

/// The statements of a schema file.
async fn statements(storage: &Storage, name: &str) -> Result<Vec<String>, ImportError> {
    let bytes = storage.get(name).await?;
    let mut reader = SqlReader::whole(bytes, name);
    let mut out = Vec::new();
    while let Some(s) = reader.next_statement()? {
        out.push(
            String::from_utf8(s.text)
                .map_err(|_| ImportError::Input(format!("{name}: not UTF-8")))?,
        );
    }
    Ok(out)
}

/// The tables that some table of the dump names in a `FOREIGN KEY … REFERENCES` clause, by
/// table name whatever the database (so a qualified, unqualified or routed reference all
/// match). `--defer-indexes auto` leaves their indexes in place: a child table created after
/// its parent needs the index its key references, even with foreign key checks off.
pub async fn referenced_tables(
    storage: &Storage,
    tables: &[TableSource],
) -> Result<HashSet<String>, ImportError> {
    let mut reads =
        futures::stream::iter(tables.iter().map(|t| statements(storage, &t.schema_file)))
            .buffer_unordered(16);
    let mut out = HashSet::new();
    while let Some(statements) = reads.next().await {
        for s in statements? {
            out.extend(references_in(&s));
        }
    }
    Ok(out)
}

/// The table names after each `REFERENCES` of a statement (the last part of `db`.`t`).
fn references_in(statement: &str) -> Vec<String> {
    let upper = statement.to_ascii_uppercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = upper[from..].find("REFERENCES") {
        let mut rest = statement[from + at + "REFERENCES".len()..].trim_start();
        let mut last = None;
        loop {
            let (name, after) = if let Some(quoted) = rest.strip_prefix('`') {
                match quoted.find('`') {
                    Some(end) => (&quoted[..end], &quoted[end + 1..]),
                    None => break,
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
                    .unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            };
            if name.is_empty() {
                break;
            }
            last = Some(name.to_owned());
            match after.trim_start().strip_prefix('.') {
                Some(next) => rest = next.trim_start(),
                None => break,
            }
        }
        out.extend(last);
        from += at + "REFERENCES".len();
    }
    out
}

pub async fn database_exists(
    conn: &mut Conn,
    endpoint: &Endpoint,
    db: &str,
) -> Result<bool, ImportError> {
    let n: Option<u64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            (db,),
        )
        .await
        .map_err(|e| endpoint.error("look up a database", e))?;
    Ok(n.unwrap_or(0) > 0)
}

/// Creates a database from its schema file unless it exists. The name comes from the file name,
/// as Lightning takes it: when the file's statement fails (another tool's dialect) or creates a
/// differently spelled name, a plain `CREATE DATABASE` of the file's name follows.
pub async fn ensure_database(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    db: &str,
    file: Option<&str>,
    routes: &Routes,
) -> Result<(), ImportError> {
    if database_exists(conn, endpoint, db).await? {
        return Ok(());
    }
    let from_file = match file {
        Some(f) => statements(storage, f)
            .await?
            .into_iter()
            .find(|s| s.to_ascii_uppercase().starts_with("CREATE DATABASE"))
            .map(|s| route_statement(&s, "", routes).0),
        None => None,
    };
    if let Some(sql) = from_file {
        if let Err(e) = conn.query_drop(&sql).await {
            tracing::warn!(database = db, error = %e, "the schema file's CREATE DATABASE failed; creating the database plainly");
        }
        if database_exists(conn, endpoint, db).await? {
            return Ok(());
        }
    }
    let sql = format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(db));
    conn.query_drop(&sql)
        .await
        .map_err(|e| ImportError::from(endpoint.error(format!("create database {db}"), e)))
}

/// The target's view of one table, if it exists.
pub async fn lookup(
    conn: &mut Conn,
    endpoint: &Endpoint,
    name: &TableName,
) -> Result<Option<TableInfo>, ImportError> {
    let filter = TableFilter::new(&[format!("{}.{}", name.database, name.table)])?;
    let selection = select_tables(conn, endpoint, &filter).await?;
    Ok(selection.tables.into_iter().find(|t| &t.name == name))
}

pub async fn row_count(
    conn: &mut Conn,
    endpoint: &Endpoint,
    name: &TableName,
) -> Result<u64, ImportError> {
    let n: Option<u64> = conn
        .query_first(format!("SELECT COUNT(*) FROM {name}"))
        .await
        .map_err(|e| endpoint.error(format!("count rows of {}", name.plain()), e))?;
    Ok(n.unwrap_or(0))
}

/// Creates a table from its schema file. The secondary indexes `defer` names are left out and
/// returned as `ALTER TABLE … ADD …` clauses to run after the data.
pub async fn create_table(
    conn: &mut Conn,
    endpoint: &Endpoint,
    storage: &Storage,
    table: &TableSource,
    routes: &Routes,
    defer: DeferIndexes,
) -> Result<Vec<String>, ImportError> {
    let (name, schema_file) = (&table.name, table.schema_file.as_str());
    let all = statements(storage, schema_file).await?;
    // The schema file names the table as the dump does: routed names are written into it,
    // and it runs in the routed database (or the table's, where the route moved only it).
    let schema = routes.route_database(&table.dump_name.database);
    let mut used = conn
        .query_drop(format!("USE {}", quote_ident(&schema)))
        .await;
    if used.is_err() && schema != name.database {
        used = conn
            .query_drop(format!("USE {}", quote_ident(&name.database)))
            .await;
    }
    used.map_err(|e| endpoint.error(format!("USE {}", name.database), e))?;
    let mut deferred = Vec::new();
    let mut created = false;
    for s in all {
        let s = route_statement(&s, &table.dump_name.database, routes).0;
        let upper = s.to_ascii_uppercase();
        let s = if upper.starts_with("CREATE TABLE") && defer != DeferIndexes::None {
            let (table_sql, removed) = strip_secondary_indexes(&s, defer);
            deferred = removed;
            table_sql
        } else {
            s
        };
        if upper.starts_with("CREATE TABLE") {
            created = true;
        } else if !upper.starts_with("SET ") {
            continue; // views, triggers and the like are not this table's schema
        }
        let mut result = conn.query_drop(&s).await;
        if let Err(mysql_async::Error::Server(e)) = &result
            && e.code == 1064
            && let Some(plain) = without_tidb_keywords(&s)
        {
            // A TiDB schema (`PRIMARY KEY … CLUSTERED`): the same table without the words.
            tracing::warn!(table = %name.plain(), file = %schema_file, "the CREATE TABLE has TiDB's CLUSTERED or NONCLUSTERED: created without them");
            result = conn.query_drop(&plain).await;
        }
        result.map_err(|e| {
            ImportError::from(endpoint.error(
                format!("create table {} from {schema_file}", name.plain()),
                e,
            ))
        })?;
    }
    if !created {
        return Err(ImportError::Input(format!(
            "{schema_file}: no CREATE TABLE statement"
        )));
    }
    Ok(deferred)
}

/// The statement without TiDB's index options `CLUSTERED` and `NONCLUSTERED` (bare words,
/// outside quotes and comments), which MySQL and MariaDB do not know; `None` without them.
fn without_tidb_keywords(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut at, mut copied, mut found) = (0, 0, false);
    while at < b.len() {
        match b[at] {
            q @ (b'\'' | b'"' | b'`') => {
                at += 1;
                while at < b.len() && b[at] != q {
                    at += if b[at] == b'\\' && q != b'`' { 2 } else { 1 };
                }
                at += 1;
            }
            b'/' if b.get(at + 1) == Some(&b'*') => {
                at = sql[at + 2..].find("*/").map_or(b.len(), |e| at + 2 + e + 2);
            }
            b'-' if b.get(at + 1) == Some(&b'-') => {
                at = sql[at..].find('\n').map_or(b.len(), |e| at + e);
            }
            c if c.is_ascii_alphabetic() => {
                let start = at;
                while at < b.len() && (b[at].is_ascii_alphanumeric() || b[at] == b'_') {
                    at += 1;
                }
                let word = &sql[start..at];
                if word.eq_ignore_ascii_case("CLUSTERED")
                    || word.eq_ignore_ascii_case("NONCLUSTERED")
                {
                    out.push_str(&sql[copied..start]);
                    copied = at;
                    found = true;
                }
            }
            _ => at += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    found.then_some(out)
}

/// Splits the secondary indexes `defer` names off a `SHOW CREATE TABLE` text; returns the new
/// text and the removed definitions. `Auto` takes plain `KEY`/`INDEX` lines of a table without
/// foreign keys; `All` takes `UNIQUE`, `FULLTEXT` and `SPATIAL` ones too (a FULLTEXT index added
/// later rebuilds the table, so `Auto` leaves it). Neither takes the index that leads with the
/// AUTO_INCREMENT column: InnoDB refuses the table without it.
pub fn strip_secondary_indexes(create: &str, defer: DeferIndexes) -> (String, Vec<String>) {
    let upper = create.to_ascii_uppercase();
    if defer == DeferIndexes::None || (defer == DeferIndexes::Auto && upper.contains("FOREIGN KEY"))
    {
        return (create.to_owned(), Vec::new());
    }
    let auto_increment = create
        .lines()
        .map(str::trim_start)
        .find(|l| l.starts_with('`') && l.to_ascii_uppercase().contains(" AUTO_INCREMENT"))
        .and_then(|l| l[1..].find('`').map(|end| format!("(`{}`", &l[1..1 + end])));
    let mut kept: Vec<String> = Vec::new();
    let mut removed = Vec::new();
    for line in create.lines() {
        let t = line.trim_start();
        let head = t.to_ascii_uppercase();
        let plain = ["KEY ", "INDEX "];
        let others = ["UNIQUE KEY ", "UNIQUE INDEX ", "FULLTEXT ", "SPATIAL "];
        let wanted = plain.iter().any(|p| head.starts_with(p))
            || (defer == DeferIndexes::All && others.iter().any(|p| head.starts_with(p)));
        // `auto_increment` is the column list's opening: "(`id`".
        let leads_with_auto_increment = auto_increment.as_deref().is_some_and(|opening| {
            t.find('(')
                .is_some_and(|open| t[open..].starts_with(opening))
        });
        if wanted && !leads_with_auto_increment {
            removed.push(t.trim_end_matches(',').to_owned());
        } else {
            kept.push(line.to_owned());
        }
    }
    // The definition before the closing parenthesis must not end in a comma.
    if let Some(close) = kept.iter().position(|l| l.trim_start().starts_with(')'))
        && close > 0
    {
        let prev = kept[close - 1].trim_end().trim_end_matches(',').to_owned();
        kept[close - 1] = prev;
    }
    (kept.join("\n"), removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidb_index_options_are_dropped_outside_quotes_and_comments() {
        assert_eq!(
            without_tidb_keywords(
                "create table `pk` (a tinyint primary key clustered auto_increment, \
                 b int, key k (b) NONCLUSTERED, c varchar(9) default 'clustered' /* clustered */)"
            )
            .as_deref(),
            Some(
                "create table `pk` (a tinyint primary key  auto_increment, b int, key k (b) , \
                 c varchar(9) default 'clustered' /* clustered */)"
            )
        );
        assert_eq!(
            without_tidb_keywords("CREATE TABLE `clustered` (x INT) COMMENT 'nonclustered'"),
            None
        );
    }

    #[test]
    fn secondary_indexes_are_split_off() {
        let create = "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` int,\n  PRIMARY KEY (`id`),\n  KEY `k` (`k`),\n  UNIQUE KEY `u` (`k`,`id`)\n) ENGINE=InnoDB";
        let (sql, removed) = strip_secondary_indexes(create, DeferIndexes::All);
        assert_eq!(
            sql,
            "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` int,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
        );
        assert_eq!(removed, ["KEY `k` (`k`)", "UNIQUE KEY `u` (`k`,`id`)"]);
        // Unique indexes kept: the comma before the closing parenthesis goes only when the
        // last line went.
        let (sql, removed) = strip_secondary_indexes(create, DeferIndexes::Auto);
        assert_eq!(
            sql,
            "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `k` int,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`k`,`id`)\n) ENGINE=InnoDB"
        );
        assert_eq!(removed, ["KEY `k` (`k`)"]);
        assert_eq!(
            strip_secondary_indexes(create, DeferIndexes::None),
            (create.to_owned(), Vec::new())
        );
    }

    #[test]
    fn references_name_the_parent_tables() {
        assert_eq!(
            references_in(
                "CREATE TABLE c (a INT, b INT, CONSTRAINT f FOREIGN KEY (a) REFERENCES `db`.`p` (`id`), \
                 FOREIGN KEY (b) references q(id))"
            ),
            ["p", "q"]
        );
        assert!(references_in("CREATE TABLE t (id INT)").is_empty());
    }

    #[test]
    fn the_auto_increment_index_foreign_keys_and_fulltext_stay_under_auto() {
        let create = "CREATE TABLE `t` (\n  `a` int NOT NULL,\n  `id` int NOT NULL AUTO_INCREMENT,\n  `id2` int,\n  `s` text,\n  PRIMARY KEY (`a`),\n  KEY `by_id` (`id`,`a`),\n  KEY `by_id2` (`id2`),\n  FULLTEXT KEY `ft` (`s`)\n) ENGINE=InnoDB";
        let (sql, removed) = strip_secondary_indexes(create, DeferIndexes::Auto);
        assert_eq!(removed, ["KEY `by_id2` (`id2`)"]);
        assert!(
            sql.contains("KEY `by_id` (`id`,`a`),") && sql.contains("FULLTEXT KEY `ft` (`s`)\n)"),
            "{sql}"
        );
        let (_, removed) = strip_secondary_indexes(create, DeferIndexes::All);
        assert_eq!(removed, ["KEY `by_id2` (`id2`)", "FULLTEXT KEY `ft` (`s`)"]);
        let with_fk = create.replace(
            "PRIMARY KEY (`a`),",
            "PRIMARY KEY (`a`),\n  CONSTRAINT `f` FOREIGN KEY (`id2`) REFERENCES `p` (`id`),",
        );
        assert!(
            strip_secondary_indexes(&with_fk, DeferIndexes::Auto)
                .1
                .is_empty()
        );
    }
}
