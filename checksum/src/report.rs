//! What a checksum run found, per table and per row.

use serde::Serialize;

/// In JSON: `"kind": "missing_on_target" | "extra_on_target" | "changed"`, with `"columns"` for
/// `changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DifferenceKind {
    /// The row is on the source only.
    MissingOnTarget,
    /// The row is on the target only.
    ExtraOnTarget,
    /// Same key, different values in the named columns.
    Changed { columns: Vec<String> },
}

#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The primary key as `col=value` pairs, or the whole row for a table without a key.
    pub key: String,
    #[serde(flatten)]
    pub kind: DifferenceKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    /// The table compared on the target when `--route` moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_table: Option<String>,
    pub chunks: usize,
    pub source_rows: u64,
    pub target_rows: u64,
    /// Chunks whose fingerprint differed after all rechecks.
    pub mismatched_chunks: Vec<String>,
    pub differences: Vec<Difference>,
    /// More differing rows existed than were listed.
    pub truncated: bool,
    /// `(key, row hash)` pairs read from both sides to locate the differences (mismatching
    /// chunks are narrowed by bisection first, so this stays small for a few differences).
    pub rows_listed: u64,
    /// Set when the table does not exist on the target.
    pub missing_on_target: bool,
}

impl TableReport {
    pub fn is_equal(&self) -> bool {
        !self.missing_on_target && self.mismatched_chunks.is_empty() && self.differences.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tables: Vec<TableReport>,
    pub rows: u64,
    pub chunks: usize,
    pub seconds: f64,
    pub fix_statements: usize,
    pub fix_applied: bool,
}

impl Report {
    pub fn is_equal(&self) -> bool {
        self.tables.iter().all(TableReport::is_equal)
    }
}
