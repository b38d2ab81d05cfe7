//! Where a source table lands on the target: `--route` rules shared by import, stream and
//! checksum (a dump keeps the source's names; routing happens when rows are written).
//!
//! A rule is `FROM=TO`. `FROM` is a pattern as for `--filter` (`db.table`, globs `*` and `?`,
//! `db` alone meaning `db.*`). `TO` is `db.table` or `db`, where a part that is `*` (or left
//! out) keeps the source's name for that part:
//!
//! - `shop=shop_v2` (same as `shop.*=shop_v2.*`): the whole database under another name;
//! - `shop.orders=archive.orders_2026`: one table moved and renamed;
//! - `shop.*=archive`: every table of `shop` into `archive`, names kept.
//!
//! The first rule that matches a table decides; a table no rule matches keeps its name. Rules
//! apply to source names, after the filter has chosen the tables.
//!
//! Merging shards (two source tables onto one target table, as DM's shard merge does) is
//! refused: [`Routes::check_distinct`] names the two tables. A merge needs key-conflict and DDL
//! coordination across sources that Sluice does not do, and silently interleaving two tables'
//! rows is how rows get lost.

use std::collections::BTreeMap;

use crate::filter::glob;
use crate::{CoreError, TableName};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    from_database: String,
    from_table: String,
    /// `None`: keep the source's name.
    to_database: Option<String>,
    to_table: Option<String>,
    original: String,
}

/// The `--route` rules of a stage, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    rules: Vec<Rule>,
}

fn kept(part: &str) -> Option<String> {
    (part != "*").then(|| part.to_owned())
}

impl Routes {
    /// Parses `FROM=TO` rules as given on the command line.
    pub fn new<S: AsRef<str>>(rules: &[S]) -> Result<Routes, CoreError> {
        let mut out = Routes::default();
        for raw in rules {
            let raw = raw.as_ref().trim();
            let (from, to) = raw.split_once('=').ok_or_else(|| {
                CoreError::invalid("route", raw, "expected FROM=TO, as in shop.*=shop_v2.*")
            })?;
            out.push(from, to)
                .map_err(|reason| CoreError::invalid("route", raw, reason))?;
        }
        Ok(out)
    }

    /// Adds one rule (the job file's `[[route]] from = … to = …`). The error is the reason only.
    pub fn push(&mut self, from: &str, to: &str) -> Result<(), String> {
        let (from, to) = (from.trim(), to.trim());
        let (from_database, from_table) = from.split_once('.').unwrap_or((from, "*"));
        if from_database.is_empty() || from_table.is_empty() {
            return Err(format!(
                "`{from}` is not a table pattern: expected db.table, db.* or db"
            ));
        }
        let (to_database, to_table) = to.split_once('.').unwrap_or((to, "*"));
        if to_database.is_empty() || to_table.is_empty() {
            return Err(format!(
                "`{to}` is not a target: expected db.table, db.* or db"
            ));
        }
        for part in [to_database, to_table] {
            if part != "*" && (part.contains('*') || part.contains('?')) {
                return Err(format!(
                    "`{to}`: a target part is a name or `*` (keep the source's name), not a glob"
                ));
            }
        }
        self.rules.push(Rule {
            from_database: from_database.to_owned(),
            from_table: from_table.to_owned(),
            to_database: kept(to_database),
            to_table: kept(to_table),
            original: format!("{from}={to}"),
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rules as given, for messages and status.
    pub fn describe(&self) -> Vec<String> {
        self.rules.iter().map(|r| r.original.clone()).collect()
    }

    /// The target table for a source table.
    pub fn route(&self, source: &TableName) -> TableName {
        let rule = self.rules.iter().find(|r| {
            glob(&r.from_database, &source.database) && glob(&r.from_table, &source.table)
        });
        match rule {
            None => source.clone(),
            Some(r) => TableName::new(
                r.to_database.as_deref().unwrap_or(&source.database),
                r.to_table.as_deref().unwrap_or(&source.table),
            ),
        }
    }

    /// The target database for a statement on a whole source database (`CREATE DATABASE`,
    /// a DDL's default database): the first rule that moves every table of it (`FROM` table
    /// part `*`, `TO` table part kept) renames it; otherwise it keeps its name.
    pub fn route_database(&self, source: &str) -> String {
        self.rules
            .iter()
            .find(|r| r.from_table == "*" && r.to_table.is_none() && glob(&r.from_database, source))
            .and_then(|r| r.to_database.clone())
            .unwrap_or_else(|| source.to_owned())
    }

    /// Refuses a shard merge: two of `sources` routed to one target table (names compared
    /// exactly, as the target creates them). The error names both source tables and the target.
    pub fn check_distinct<'a>(
        &self,
        sources: impl IntoIterator<Item = &'a TableName>,
    ) -> Result<(), CoreError> {
        let mut seen: BTreeMap<TableName, &TableName> = BTreeMap::new();
        for source in sources {
            let target = self.route(source);
            if let Some(first) = seen.insert(target.clone(), source)
                && first != source
            {
                return Err(CoreError::invalid(
                    "route",
                    self.describe().join(" "),
                    format!(
                        "{} and {} would both land in {}; merging tables is not supported \
                         (route them to different tables)",
                        first.plain(),
                        source.plain(),
                        target.plain()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(db: &str, table: &str) -> TableName {
        TableName::new(db, table)
    }

    #[test]
    fn renames_databases_and_tables_first_rule_wins() {
        let r = Routes::new(&[
            "shop.orders=archive.orders_2026",
            "shop=shop_v2",
            "logs.*=warehouse.*",
        ])
        .unwrap();
        assert_eq!(r.route(&t("shop", "orders")), t("archive", "orders_2026"));
        assert_eq!(r.route(&t("shop", "items")), t("shop_v2", "items"));
        assert_eq!(r.route(&t("logs", "a")), t("warehouse", "a"));
        assert_eq!(r.route(&t("other", "x")), t("other", "x"));
        assert_eq!(r.route_database("shop"), "shop_v2");
        assert_eq!(r.route_database("logs"), "warehouse");
        assert_eq!(r.route_database("other"), "other");
    }

    #[test]
    fn a_table_only_rule_does_not_move_the_database() {
        let r = Routes::new(&["shop.orders=shop.orders_old"]).unwrap();
        assert_eq!(r.route_database("shop"), "shop");
        assert_eq!(r.route(&t("shop", "orders")), t("shop", "orders_old"));
        let keep_db = Routes::new(&["s?op.t_*=*.new"]).unwrap();
        assert_eq!(keep_db.route(&t("shop", "t_1")), t("shop", "new"));
    }

    #[test]
    fn merges_are_refused_naming_both_tables() {
        let r = Routes::new(&["shard_*.orders=all.orders"]).unwrap();
        let a = t("shard_1", "orders");
        let b = t("shard_2", "orders");
        assert!(r.check_distinct([&a]).is_ok());
        let e = r.check_distinct([&a, &b]).unwrap_err().to_string();
        assert!(
            e.contains("shard_1.orders and shard_2.orders would both land in all.orders"),
            "{e}"
        );
    }

    #[test]
    fn rejects_malformed_rules() {
        for bad in ["shop", "=x", "shop=", "a.b=c.d*", ".t=x", "a=b."] {
            assert!(Routes::new(&[bad]).is_err(), "{bad}");
        }
    }
}
