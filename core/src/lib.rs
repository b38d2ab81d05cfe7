//! sluice-core: the model every Sluice stage shares, and nothing stage-specific.
//!
//! It owns how a server is named and reached ([`Endpoint`], [`ServerInfo`]), where a stream of
//! changes stands ([`BinlogPosition`], [`GtidSet`], [`Checkpoint`]), where files live
//! ([`Storage`]) and how identifiers are quoted into SQL ([`TableName`], [`quote_ident`]).
//!
//! Dependency rule: this crate depends on no other Sluice crate. The stages (dumper, importer,
//! streamer, checksum) depend on it and never on each other; `sluice-jobs` wires them together.

mod chunks;
mod column;
pub mod ddl;
mod direct_file;
mod endpoint;
mod error;
mod filter;
mod gtid;
pub mod layout;
mod position;
mod route;
mod schema;
mod sql_literal;
mod storage;
mod table_name;
mod wire;

pub use chunks::{Chunk, plan_table, tuple_compare};
pub use column::{ColumnKind, bit_value};
pub use endpoint::{Endpoint, Flavor, Secret, ServerInfo};
pub use error::{CoreError, Result};
pub use filter::TableFilter;
pub use gtid::{GtidSet, MariaGtid};
pub use position::{BinlogPosition, Checkpoint};
pub use route::Routes;
pub use schema::{ColumnInfo, Selection, TableInfo, select_tables};
pub use sql_literal::{cell, cells, escape_with, sql_literal};
pub use storage::{ObjectInfo, S3Options, Storage, StorageWriter};
pub use table_name::{TableName, quote_ident, quote_string};
pub use wire::bulk;
pub use wire::{BatchError, LocalLoad, Prepared, RawConn, TextRows};
