//! File names of the dump layout (Dumpling-compatible).

use std::fmt;
use std::str::FromStr;

use crate::CoreError;

/// The file whose presence marks a dump complete. Always written last.
pub const METADATA_FILE: &str = "metadata.json";

/// An unfinished dump's plan and finished chunks, rewritten as chunks finish, so that
/// `sluice dump --resume` (and a rerun job) redoes only the chunks that are not in it. Removed
/// once `metadata.json` is written.
pub const PROGRESS_FILE: &str = "dump-progress.json";

/// The format of data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Sql,
    Csv,
    Parquet,
}

impl DataFormat {
    pub fn extension(self) -> &'static str {
        match self {
            DataFormat::Sql => "sql",
            DataFormat::Csv => "csv",
            DataFormat::Parquet => "parquet",
        }
    }
}

impl FromStr for DataFormat {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sql" => Ok(DataFormat::Sql),
            "csv" => Ok(DataFormat::Csv),
            "parquet" => Ok(DataFormat::Parquet),
            _ => Err(CoreError::invalid(
                "format",
                s,
                "expected sql, csv or parquet",
            )),
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

/// Compression of data files, as a stream layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The suffix after the format's extension: `""`, `".gz"` or `".zst"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }
}

impl FromStr for Compression {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Compression::None),
            "gzip" | "gz" => Ok(Compression::Gzip),
            "zstd" | "zst" => Ok(Compression::Zstd),
            _ => Err(CoreError::invalid(
                "compression",
                s,
                "expected none, gzip or zstd",
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

/// A name part safe as one path segment: `/` and control characters are percent-encoded
/// (`%` itself too, so the mapping can be reversed). Dots stay: the importer splits names on
/// the last dots, which works because chunk numbers and extensions contain none.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c == '/' || c == '%' || c == '\\' || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub fn database_schema_file(db: &str) -> String {
    format!("{}-schema-create.sql", segment(db))
}

pub fn table_schema_file(db: &str, table: &str) -> String {
    format!("{}.{}-schema.sql", segment(db), segment(table))
}

pub fn view_schema_file(db: &str, view: &str) -> String {
    format!("{}.{}-schema-view.sql", segment(db), segment(view))
}

pub fn chunk_file(
    db: &str,
    table: &str,
    chunk: u64,
    format: DataFormat,
    compression: Compression,
) -> String {
    format!(
        "{}.{}.{chunk:09}.{}{}",
        segment(db),
        segment(table),
        format.extension(),
        compression.suffix()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumpling_names() {
        assert_eq!(database_schema_file("shop"), "shop-schema-create.sql");
        assert_eq!(
            table_schema_file("shop", "orders"),
            "shop.orders-schema.sql"
        );
        assert_eq!(
            chunk_file("shop", "orders", 7, DataFormat::Csv, Compression::Zstd),
            "shop.orders.000000007.csv.zst"
        );
    }

    #[test]
    fn hostile_names_stay_one_segment() {
        assert_eq!(table_schema_file("a/b", "c%d"), "a%2Fb.c%25d-schema.sql");
        assert!("bz2".parse::<Compression>().is_err());
        assert!("xml".parse::<DataFormat>().is_err());
    }
}
