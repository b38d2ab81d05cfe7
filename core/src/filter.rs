//! Which tables a stage works on: `--filter` patterns shared by dump, import, stream and
//! checksum.
//!
//! A pattern is `db.table` where either side is a glob (`*` any run, `?` one character); `db`
//! alone means `db.*`; a leading `!` excludes. With no include pattern everything is included.
//! A table is taken when some include matches and no exclude does. The system schemas
//! (`mysql`, `sys`, `information_schema`, `performance_schema`) are excluded unless a pattern
//! names them without wildcards in the database part.

use crate::CoreError;

const SYSTEM_SCHEMAS: &[&str] = &["mysql", "sys", "information_schema", "performance_schema"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    database: String,
    table: String,
}

impl Pattern {
    fn matches(&self, database: &str, table: &str) -> bool {
        glob(&self.database, database) && glob(&self.table, table)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    original: Vec<String>,
}

impl TableFilter {
    /// Parses the patterns as given on the command line or in a job file.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<TableFilter, CoreError> {
        let mut filter = TableFilter::default();
        for raw in patterns {
            let raw = raw.as_ref().trim();
            let (negate, body) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, raw),
            };
            let (database, table) = body.split_once('.').unwrap_or((body, "*"));
            if database.is_empty() || table.is_empty() {
                return Err(CoreError::invalid(
                    "filter",
                    raw,
                    "expected db.table, db.* or db, with * and ? as wildcards, ! to exclude",
                ));
            }
            let pattern = Pattern {
                database: database.to_owned(),
                table: table.to_owned(),
            };
            if negate {
                filter.exclude.push(pattern);
            } else {
                filter.include.push(pattern);
            }
            filter.original.push(raw.to_owned());
        }
        Ok(filter)
    }

    /// Whether any pattern was given (for "the filter matches nothing" messages).
    pub fn patterns(&self) -> &[String] {
        &self.original
    }

    /// Whether this table is selected.
    pub fn matches(&self, database: &str, table: &str) -> bool {
        if self.exclude.iter().any(|p| p.matches(database, table)) {
            return false;
        }
        let is_system = SYSTEM_SCHEMAS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(database));
        if is_system {
            // Only an explicit include of the schema by name takes a system table.
            return self
                .include
                .iter()
                .any(|p| p.database.eq_ignore_ascii_case(database) && p.matches(database, table));
        }
        self.include.is_empty() || self.include.iter().any(|p| p.matches(database, table))
    }

    /// Whether some table of this database may be selected: for statements on a whole
    /// database (CREATE/DROP DATABASE) seen in a binlog.
    pub fn matches_database(&self, database: &str) -> bool {
        if self
            .exclude
            .iter()
            .any(|p| p.table == "*" && glob(&p.database, database))
        {
            return false;
        }
        let is_system = SYSTEM_SCHEMAS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(database));
        if is_system {
            return self
                .include
                .iter()
                .any(|p| p.database.eq_ignore_ascii_case(database));
        }
        self.include.is_empty() || self.include.iter().any(|p| glob(&p.database, database))
    }
}

impl TableFilter {
    /// The databases, and tables in them, that every table the filter can select lies in,
    /// when the include patterns name them without wildcards: `(db, Some(table))` for a
    /// table, `(db, None)` for a whole database. `None` when any include pattern has a
    /// wildcard in its database part, or there is none (all databases). Lets a caller ask
    /// `information_schema` for those names only, not for every table of the server.
    pub fn exact_names(&self) -> Option<Vec<(String, Option<String>)>> {
        let wild = |s: &str| s.contains(['*', '?']);
        if self.include.is_empty() || self.include.iter().any(|p| wild(&p.database)) {
            return None;
        }
        Some(
            self.include
                .iter()
                .map(|p| {
                    let table = (!wild(&p.table)).then(|| p.table.clone());
                    (p.database.clone(), table)
                })
                .collect(),
        )
    }
}

/// Glob match with `*` and `?`, iterative with backtracking on the last `*`.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_only_where_no_database_is_a_glob() {
        let f = TableFilter::new(&["shop.orders", "crm", "!crm.tmp*", "log.a?"]).unwrap();
        assert_eq!(
            f.exact_names(),
            Some(vec![
                ("shop".to_owned(), Some("orders".to_owned())),
                ("crm".to_owned(), None),
                ("log".to_owned(), None),
            ])
        );
        assert_eq!(
            TableFilter::new(&["shop.*", "s*.x"]).unwrap().exact_names(),
            None
        );
        assert_eq!(TableFilter::new(&["!shop.x"]).unwrap().exact_names(), None);
        assert_eq!(TableFilter::default().exact_names(), None);
    }

    #[test]
    fn includes_excludes_and_globs() {
        let f = TableFilter::new(&["shop.*", "!shop.tmp_*", "logs.2026_??"]).unwrap();
        assert!(f.matches("shop", "orders"));
        assert!(!f.matches("shop", "tmp_x"));
        assert!(f.matches("logs", "2026_01"));
        assert!(!f.matches("logs", "2026_001"));
        assert!(!f.matches("other", "t"));
    }

    #[test]
    fn system_schemas_only_by_name() {
        let all = TableFilter::new::<&str>(&[]).unwrap();
        assert!(all.matches("app", "t"));
        assert!(!all.matches("mysql", "user"));
        assert!(!TableFilter::new(&["*.*"]).unwrap().matches("sys", "x"));
        assert!(
            TableFilter::new(&["mysql.user"])
                .unwrap()
                .matches("mysql", "user")
        );
        assert!(TableFilter::new(&["!app.t"]).unwrap().matches("app", "u"));
    }

    #[test]
    fn databases_match_when_some_table_may() {
        let f = TableFilter::new(&["shop.orders", "logs*", "!junk.*"]).unwrap();
        assert!(f.matches_database("shop"));
        assert!(f.matches_database("logs_2026"));
        assert!(!f.matches_database("other"));
        assert!(
            !TableFilter::new(&["!junk.*"])
                .unwrap()
                .matches_database("junk")
        );
        assert!(
            !TableFilter::new::<&str>(&[])
                .unwrap()
                .matches_database("mysql")
        );
    }

    #[test]
    fn rejects_empty_parts() {
        assert!(TableFilter::new(&[".t"]).is_err());
        assert!(TableFilter::new(&["db."]).is_err());
        assert!(TableFilter::new(&["!"]).is_err());
    }
}
