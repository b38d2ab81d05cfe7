//! A plain loader for dump folders, used by the dumper's tests to restore a dump into the
//! TARGET without the importer: SQL files go through the `mariadb` client, CSV files through a
//! NULL-aware reader and prepared INSERTs. It is deliberately simple and slow; the importer is
//! the fast path.

use std::io::Read;
use std::path::Path;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Value};
use sluice_core::layout::{Compression, CsvRecordReader, DataFormat, DumpMetadata};
use sluice_core::{ColumnKind, quote_ident};

use crate::MariaDb;
use crate::tools::mariadb_client;

/// Reads `metadata.json` of a local dump folder.
pub fn read_metadata(dir: &Path) -> DumpMetadata {
    let text = std::fs::read(dir.join("metadata.json")).expect("metadata.json exists");
    serde_json::from_slice(&text).expect("metadata.json parses")
}

/// A data file's bytes, decompressed.
pub fn read_data_file(path: &Path, compression: Compression) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match compression {
        Compression::None => raw,
        Compression::Gzip => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .expect("gunzip");
            out
        }
        Compression::Zstd => zstd::decode_all(&raw[..]).expect("unzstd"),
    }
}

/// Creates the dump's databases and tables on `target` and loads every chunk.
pub async fn restore(target: &MariaDb, dir: &Path) -> DumpMetadata {
    let meta = read_metadata(dir);
    let mut databases: Vec<&str> = meta.tables.iter().map(|t| t.database.as_str()).collect();
    databases.dedup();
    for db in &databases {
        let create =
            std::fs::read(dir.join(format!("{db}-schema-create.sql"))).expect("db schema file");
        mariadb_client(target, None, &create);
    }
    let mut conn = target.conn().await;
    for table in &meta.tables {
        let create = std::fs::read(dir.join(&table.schema_file)).expect("table schema file");
        mariadb_client(target, Some(&table.database), &create);
        for chunk in &table.chunks {
            let data = read_data_file(&dir.join(&chunk.file), meta.compression);
            match meta.format {
                DataFormat::Sql => mariadb_client(target, Some(&table.database), &data),
                DataFormat::Csv => {
                    let dialect = meta.csv.clone().expect("csv dialect in metadata");
                    load_csv(
                        &mut conn,
                        &table.database,
                        &table.table,
                        &table.columns,
                        &data,
                        dialect,
                        &chunk.file,
                    )
                    .await
                }
                DataFormat::Parquet => panic!("parquet is not loaded by this helper"),
            }
        }
    }
    meta
}

async fn load_csv(
    conn: &mut Conn,
    db: &str,
    table: &str,
    columns: &[String],
    data: &[u8],
    dialect: sluice_core::layout::CsvDialect,
    file: &str,
) {
    let kinds: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, LOWER(DATA_TYPE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, table),
        )
        .await
        .expect("column types");
    let placeholders: Vec<&str> = columns
        .iter()
        .map(|c| {
            let data_type = kinds
                .iter()
                .find(|(n, _)| n == c)
                .map(|(_, t)| t.as_str())
                .unwrap_or("");
            if ColumnKind::from_data_type(data_type) == ColumnKind::Bit {
                "CAST(? AS UNSIGNED)"
            } else {
                "?"
            }
        })
        .collect();
    let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "INSERT INTO {}.{} ({}) VALUES ({})",
        quote_ident(db),
        quote_ident(table),
        cols.join(","),
        placeholders.join(",")
    );
    let header = dialect.header;
    let mut reader = CsvRecordReader::new(data, dialect, file);
    let mut first = true;
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .expect("session time zone");
    while let Some(record) = reader.next_record().unwrap_or_else(|e| panic!("{e}")) {
        if first && header {
            first = false;
            continue;
        }
        first = false;
        let params: Vec<Value> = record
            .into_iter()
            .map(|c| c.map(Value::Bytes).unwrap_or(Value::NULL))
            .collect();
        conn.exec_drop(&sql, params)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

/// Who a file is on disk (inode, mtime seconds and nanoseconds): unchanged when nobody
/// rewrote it.
pub type FileIdentity = (u64, i64, i64);

/// The chunk files an unfinished dump's `dump-progress.json` lists as finished, each with
/// its [`FileIdentity`]; empty when there is no progress file (or it is being replaced).
pub fn finished_chunks(dir: &Path) -> std::collections::BTreeMap<String, FileIdentity> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(text) = std::fs::read(dir.join("dump-progress.json")) else {
        return out;
    };
    let Ok(progress) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return out;
    };
    for table in progress["tables"].as_array().into_iter().flatten() {
        for chunk in table["chunks"].as_array().into_iter().flatten() {
            if let Some(file) = chunk["done"]["file"].as_str()
                && let Some(identity) = file_identity(&dir.join(file))
            {
                out.insert(file.to_owned(), identity);
            }
        }
    }
    out
}

/// A file's [`FileIdentity`], `None` when it is not there.
pub fn file_identity(path: &Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec()))
}
