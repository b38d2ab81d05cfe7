//! What a dump folder holds: its layout (Sluice, Dumpling or mydumper), databases, tables,
//! schema files and data files, found from `metadata.json` or from the file names.
//!
//! Names are Dumpling's (`{db}-schema-create.sql`, `{db}.{table}-schema.sql`,
//! `{db}.{table}.{n}.{sql|csv|parquet}[.gz|.zst]`); mydumper uses the same schema names and
//! `{db}.{table}.{n}.sql` or `{db}.{table}.sql` for data. A data file is matched to its table by
//! the longest `{db}.{table}` prefix that has a schema file, so dots in names do not confuse it.
//! Every name is checked to stay inside the input (no `..`, no absolute paths).

use std::collections::BTreeMap;

use sluice_core::layout::{
    Compression, CsvDialect, DataFormat, DumpMetadata, FingerprintVersion, METADATA_FILE,
};
use sluice_core::{Storage, TableName};

use crate::ImportError;
use crate::objects::{ObjectFile, post_file, triggers_of};
use crate::views::{ViewSource, view_of_file};

#[derive(Debug, Clone)]
pub struct DataFile {
    pub name: String,
    pub format: DataFormat,
    pub compression: Compression,
}

#[derive(Debug, Clone)]
pub struct TableSource {
    /// Where the rows go: the dump's name, or where `--route` sends it.
    pub name: TableName,
    /// The table's name in the dump (and in its schema file).
    pub dump_name: TableName,
    pub schema_file: String,
    pub files: Vec<DataFile>,
    /// Rows and fingerprint the dump recorded (Sluice dumps only).
    pub expected_rows: Option<u64>,
    pub expected_fingerprint: Option<Vec<String>>,
    /// How `expected_fingerprint` was computed (by the dump's metadata version).
    pub fingerprint_version: FingerprintVersion,
    /// Its triggers (mydumper's `-schema-triggers.sql`), made after its rows.
    pub triggers_file: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DumpSource {
    /// `sluice`, `dumpling` or `mydumper`.
    pub layout: &'static str,
    pub database_schemas: BTreeMap<String, Option<String>>,
    pub tables: Vec<TableSource>,
    pub csv: CsvDialect,
    pub metadata: Option<DumpMetadata>,
    /// Created after the tables (see `views.rs`).
    pub views: Vec<ViewSource>,
    /// Routines and events, made after the tables and views (see `objects.rs`).
    pub post_files: Vec<ObjectFile>,
}

pub(crate) fn safe_name(name: &str) -> Result<(), ImportError> {
    if name.starts_with('/') || name.split('/').any(|p| p == "..") || name.contains('\\') {
        return Err(ImportError::Input(format!(
            "`{name}` points outside the input folder; refused"
        )));
    }
    Ok(())
}

/// `x.sql.gz` → (`x`, Sql, Gzip); `None` for names that are not data files.
pub(crate) fn split_data_name(name: &str) -> Option<(&str, DataFormat, Compression)> {
    // Extensions compare case-insensitively (`x.CSV` is CSV, as Lightning reads it).
    let strip = |s: &'static str, from: &str| -> Option<usize> {
        (from.len() >= s.len() && from[from.len() - s.len()..].eq_ignore_ascii_case(s))
            .then(|| from.len() - s.len())
    };
    let (stem, compression) = if let Some(n) = strip(".gz", name) {
        (&name[..n], Compression::Gzip)
    } else if let Some(n) = strip(".zst", name) {
        (&name[..n], Compression::Zstd)
    } else {
        (name, Compression::None)
    };
    let (stem, format) = if let Some(n) = strip(".sql", stem) {
        (&stem[..n], DataFormat::Sql)
    } else if let Some(n) = strip(".csv", stem) {
        (&stem[..n], DataFormat::Csv)
    } else if let Some(n) = strip(".parquet", stem) {
        (&stem[..n], DataFormat::Parquet)
    } else {
        return None;
    };
    Some((stem, format, compression))
}

/// Reads the layout of the dump at `storage`.
pub async fn discover(storage: &Storage) -> Result<DumpSource, ImportError> {
    let objects = storage.list("").await?;
    if objects.is_empty() {
        return Err(ImportError::Input(format!(
            "{} holds no files",
            storage.url()
        )));
    }
    if let Some(bytes) = storage.get_if_exists(METADATA_FILE).await? {
        let meta: DumpMetadata = serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::Input(format!(
                "{}/{METADATA_FILE}: not a Sluice metadata document: {e}",
                storage.url()
            ))
        })?;
        if meta.version > DumpMetadata::VERSION {
            return Err(ImportError::Input(format!(
                "{METADATA_FILE} has version {}; this Sluice reads up to {}",
                meta.version,
                DumpMetadata::VERSION
            )));
        }
        let mut source = from_metadata(meta)?;
        source.views = views_in(objects.iter().map(|o| o.name.as_str()))?;
        add_objects(&mut source, objects.iter().map(|o| o.name.as_str()))?;
        return Ok(source);
    }
    if objects
        .iter()
        .any(|o| split_data_name(&o.name).is_some_and(|(s, _, _)| s.ends_with(".000000000")))
        && !objects.iter().any(|o| o.name == "metadata")
    {
        return Err(ImportError::Input(format!(
            "{} has data files but no {METADATA_FILE} or metadata: the dump is incomplete",
            storage.url()
        )));
    }
    let views = views_in(objects.iter().map(|o| o.name.as_str()))?;
    let names: Vec<String> = objects.into_iter().map(|o| o.name).collect();
    let mut source = from_names(names.clone())?;
    // Dumpling and mydumper write a placeholder table for each view (so that a view reading
    // another loads in any order); the view itself takes its name.
    source
        .tables
        .retain(|t| !views.iter().any(|v| v.dump_name == t.dump_name));
    source.views = views;
    add_objects(&mut source, names.iter().map(String::as_str))?;
    Ok(source)
}

/// Triggers files to their tables, and the post files of routines and events.
fn add_objects<'a>(
    source: &mut DumpSource,
    names: impl Iterator<Item = &'a str>,
) -> Result<(), ImportError> {
    for name in names {
        if let Some(table) = triggers_of(name) {
            safe_name(name)?;
            if let Some(t) = source.tables.iter_mut().find(|t| t.dump_name == table) {
                t.triggers_file = Some(name.to_owned());
            }
        } else if let Some(post) = post_file(name) {
            safe_name(name)?;
            source.post_files.push(post);
        }
    }
    Ok(())
}

/// `db.table` from a data file's name without its extension (`db.table` or `db.table.0001`)
/// where no schema file names the table.
fn table_of_bare_data_file(stem: &str) -> Option<(&str, &str)> {
    let (db, rest) = stem.split_once('.')?;
    let table = match rest.rsplit_once('.') {
        Some((t, chunk)) if !chunk.is_empty() && chunk.bytes().all(|b| b.is_ascii_digit()) => t,
        _ => rest,
    };
    (!db.is_empty() && !table.is_empty()).then_some((db, table))
}

/// The views among a dump's file names.
fn views_in<'a>(names: impl Iterator<Item = &'a str>) -> Result<Vec<ViewSource>, ImportError> {
    let mut views = Vec::new();
    for name in names {
        if let Some(v) = view_of_file(name) {
            safe_name(name)?;
            views.push(v);
        }
    }
    Ok(views)
}

fn from_metadata(meta: DumpMetadata) -> Result<DumpSource, ImportError> {
    let mut database_schemas = BTreeMap::new();
    let mut tables = Vec::new();
    for t in &meta.tables {
        safe_name(&t.schema_file)?;
        database_schemas.insert(
            t.database.clone(),
            Some(sluice_core::layout::database_schema_file(&t.database)),
        );
        let mut files = Vec::new();
        for c in &t.chunks {
            safe_name(&c.file)?;
            let (_, format, compression) = split_data_name(&c.file).ok_or_else(|| {
                ImportError::Input(format!(
                    "{METADATA_FILE}: `{}` is not a data file name",
                    c.file
                ))
            })?;
            files.push(DataFile {
                name: c.file.clone(),
                format,
                compression,
            });
        }
        tables.push(TableSource {
            name: TableName::new(&t.database, &t.table),
            dump_name: TableName::new(&t.database, &t.table),
            schema_file: t.schema_file.clone(),
            files,
            expected_rows: Some(t.rows),
            expected_fingerprint: Some(t.chunks.iter().map(|c| c.fingerprint.clone()).collect()),
            fingerprint_version: FingerprintVersion::of_metadata(meta.version),
            triggers_file: None,
        });
    }
    Ok(DumpSource {
        layout: "sluice",
        database_schemas,
        tables,
        csv: meta.csv.clone().unwrap_or_default(),
        metadata: Some(meta),
        views: Vec::new(),
        post_files: Vec::new(),
    })
}

fn from_names(names: Vec<String>) -> Result<DumpSource, ImportError> {
    let mut database_schemas = BTreeMap::new();
    let mut tables: BTreeMap<String, TableSource> = BTreeMap::new();
    for name in &names {
        safe_name(name)?;
        if let Some(db) = name.strip_suffix("-schema-create.sql") {
            database_schemas.insert(db.to_owned(), Some(name.clone()));
        } else if let Some(qualified) = name.strip_suffix("-schema.sql") {
            let Some((db, table)) = qualified.split_once('.') else {
                continue;
            };
            database_schemas.entry(db.to_owned()).or_insert(None);
            tables.insert(
                qualified.to_owned(),
                TableSource {
                    name: TableName::new(db, table),
                    dump_name: TableName::new(db, table),
                    schema_file: name.clone(),
                    files: Vec::new(),
                    expected_rows: None,
                    expected_fingerprint: None,
                    fingerprint_version: FingerprintVersion::default(),
                    triggers_file: None,
                },
            );
        }
    }
    for name in &names {
        if name.contains("-schema") {
            continue;
        }
        let Some((stem, format, compression)) = split_data_name(name) else {
            continue;
        };
        // The longest `db.table` with a schema file that this name starts with.
        let owner = tables
            .keys()
            .filter(|q| {
                stem == q.as_str()
                    || stem
                        .strip_prefix(q.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|q| q.len())
            .cloned();
        match owner {
            Some(q) => {
                if let Some(t) = tables.get_mut(&q) {
                    t.files.push(DataFile {
                        name: name.clone(),
                        format,
                        compression,
                    });
                }
            }
            None => {
                // No schema file (Lightning's `no-schema` layout): the table must exist on the
                // target (`--no-schema`; see `run.rs`). Named `db.table[.chunk]`.
                let Some((db, table)) = table_of_bare_data_file(stem) else {
                    tracing::warn!(file = %name, "a data file whose name is not db.table: skipped");
                    continue;
                };
                let qualified = format!("{db}.{table}");
                let t = tables.entry(qualified).or_insert_with(|| TableSource {
                    name: TableName::new(db, table),
                    dump_name: TableName::new(db, table),
                    schema_file: String::new(),
                    files: Vec::new(),
                    expected_rows: None,
                    expected_fingerprint: None,
                    fingerprint_version: FingerprintVersion::default(),
                    triggers_file: None,
                });
                t.files.push(DataFile {
                    name: name.clone(),
                    format,
                    compression,
                });
            }
        }
    }
    let layout = if names.iter().any(|n| n == "metadata")
        && names
            .iter()
            .any(|n| n.ends_with(".00000.sql") || n.ends_with(".00000.sql.gz"))
    {
        "mydumper"
    } else {
        "dumpling"
    };
    for t in tables.values_mut() {
        t.files.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(DumpSource {
        layout,
        database_schemas,
        tables: tables.into_values().collect(),
        csv: CsvDialect {
            header: true,
            ..CsvDialect::default()
        },
        metadata: None,
        views: Vec::new(),
        post_files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_tables_by_longest_prefix() {
        let names = [
            "shop-schema-create.sql",
            "shop.t-schema.sql",
            "shop.t.x-schema.sql",
            "shop.t.000000000.sql",
            "shop.t.x.000000001.csv.zst",
            "shop.t.sql.gz",
            "metadata",
        ];
        let src = from_names(names.iter().map(|s| s.to_string()).collect()).unwrap();
        let files = |t: &str| -> Vec<String> {
            src.tables
                .iter()
                .find(|x| x.name.table == t)
                .unwrap()
                .files
                .iter()
                .map(|f| f.name.clone())
                .collect()
        };
        assert_eq!(files("t"), ["shop.t.000000000.sql", "shop.t.sql.gz"]);
        assert_eq!(files("t.x"), ["shop.t.x.000000001.csv.zst"]);
    }

    #[test]
    fn data_files_without_a_schema_file_name_their_table() {
        let names = [
            "noschema.t.sql",
            "db.u.0001.csv",
            "db.u.0002.csv",
            "loose.sql",
        ];
        let src = from_names(names.iter().map(|s| s.to_string()).collect()).unwrap();
        let tables: Vec<(String, usize, bool)> = src
            .tables
            .iter()
            .map(|t| (t.name.plain(), t.files.len(), t.schema_file.is_empty()))
            .collect();
        assert_eq!(
            tables,
            [
                ("db.u".to_owned(), 2, true),
                ("noschema.t".to_owned(), 1, true)
            ]
        );
    }

    #[test]
    fn path_traversal_is_refused() {
        assert!(from_names(vec!["../etc/passwd.sql".into()]).is_err());
        assert!(safe_name("/abs.sql").is_err());
        assert!(safe_name("a/../../b").is_err());
    }
}
