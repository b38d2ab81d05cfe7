//! What a QUERY event's statement is, and which tables it touches: enough to decide whether a
//! DDL belongs to the replicated tables (the filter) without a full SQL parser.
//!
//! Recognised: CREATE/ALTER/DROP/RENAME/TRUNCATE TABLE, CREATE/DROP INDEX … ON, CREATE/ALTER/
//! DROP DATABASE|SCHEMA, CREATE/DROP VIEW. Anything else (GRANT, CREATE USER, triggers,
//! routines, events) is [`Statement::Other`]: the streamer skips it with a warning, because in
//! ROW format it changes no replicated row.
//!
//! [`route_statement`] rewrites the names of a DDL for `--route`: every table name the
//! classifier finds (plus `LIKE x` and `REFERENCES x`) and every database name is replaced,
//! fully qualified, where its route differs; the rest of the text stays byte for byte.

use crate::{Routes, TableFilter, TableName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `BEGIN` of a non-transactional event group.
    Begin,
    /// `COMMIT` ends a non-transactional event group.
    Commit,
    Rollback,
    /// A schema change on these tables (unqualified names resolved against the event's schema).
    TableDdl(Vec<TableName>),
    /// A schema change on whole databases.
    DatabaseDdl(Vec<String>),
    /// Row changes written as a statement (a session with `binlog_format=STATEMENT`): on a
    /// replicated table the streamer must stop, as it cannot apply them exactly.
    StatementDml(Vec<TableName>),
    Other,
}

impl Statement {
    /// Whether the replicated tables include something this statement changes.
    pub fn is_selected(&self, filter: &TableFilter) -> bool {
        match self {
            Statement::TableDdl(tables) => {
                tables.iter().any(|t| filter.matches(&t.database, &t.table))
            }
            Statement::DatabaseDdl(dbs) => dbs.iter().any(|d| filter.matches_database(d)),
            Statement::StatementDml(tables) => {
                tables.iter().any(|t| filter.matches(&t.database, &t.table))
            }
            _ => false,
        }
    }
}

/// Classifies `sql`, run with `schema` as the default database.
pub fn classify(sql: &str, schema: &str) -> Statement {
    let tokens = tokenize(sql);
    let mut t = Tokens {
        tokens: &tokens,
        at: 0,
        names: Vec::new(),
    };
    classify_tokens(&mut t, schema)
}

/// Where a name stands in the statement text, and what it names.
#[derive(Debug)]
enum NameAt {
    /// Bytes `start..end` spell a table name (qualified when `qualified`).
    Table {
        start: usize,
        end: usize,
        name: TableName,
        qualified: bool,
    },
    Database {
        start: usize,
        end: usize,
        name: String,
    },
}

/// `sql` (run with default database `schema`) as it must run on a target with `routes`:
/// the statement with routed names, and the routed default database.
pub fn route_statement(sql: &str, schema: &str, routes: &Routes) -> (String, String) {
    let target_schema = routes.route_database(schema);
    if routes.is_empty() {
        return (sql.to_owned(), target_schema);
    }
    let tokens = tokenize(sql);
    let mut t = Tokens {
        tokens: &tokens,
        at: 0,
        names: Vec::new(),
    };
    let statement = classify_tokens(&mut t, schema);
    if matches!(statement, Statement::TableDdl(_)) {
        // Tables a CREATE TABLE copies or references are named too.
        t.at = 0;
        while t.at < tokens.len() {
            let word = t.keyword();
            if word == "LIKE" || word == "REFERENCES" {
                t.name(schema);
            }
        }
    }
    let mut names = t.names;
    names.sort_by_key(|n| match n {
        NameAt::Table { start, .. } | NameAt::Database { start, .. } => *start,
    });
    let mut out = String::with_capacity(sql.len() + 16);
    let mut copied = 0;
    for n in &names {
        let (start, end, replacement) = match n {
            NameAt::Table {
                start,
                end,
                name,
                qualified,
            } => {
                let routed = routes.route(name);
                // What the text would name on the target, run in the routed default database.
                let as_written = if *qualified {
                    name.clone()
                } else {
                    TableName::new(target_schema.as_str(), name.table.as_str())
                };
                if routed == as_written {
                    continue;
                }
                (*start, *end, routed.to_string())
            }
            NameAt::Database { start, end, name } => {
                let routed = routes.route_database(name);
                if &routed == name {
                    continue;
                }
                (*start, *end, crate::quote_ident(&routed))
            }
        };
        if start < copied {
            continue; // the same name found twice (a LIKE already seen as a table)
        }
        out.push_str(&sql[copied..start]);
        out.push_str(&replacement);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    (out, target_schema)
}

fn classify_tokens(t: &mut Tokens<'_>, schema: &str) -> Statement {
    let first = t.keyword();
    match first.as_str() {
        "BEGIN" => Statement::Begin,
        "COMMIT" => Statement::Commit,
        "ROLLBACK" => Statement::Rollback,
        "XA" => Statement::Other,
        "CREATE" | "ALTER" | "DROP" => {
            t.skip_words(&["OR", "REPLACE", "ONLINE", "IGNORE", "TEMPORARY", "UNIQUE"]);
            t.skip_words(&["FULLTEXT", "SPATIAL"]);
            // CREATE ALGORITHM=… DEFINER=… SQL SECURITY … VIEW
            while matches!(t.peek_keyword().as_str(), "ALGORITHM" | "DEFINER" | "SQL") {
                t.skip_view_option();
            }
            match t.keyword().as_str() {
                "TABLE" | "VIEW" | "SEQUENCE" => {
                    t.skip_words(&["IF", "NOT", "EXISTS"]);
                    let mut tables = t.name_list(schema);
                    if first == "ALTER" {
                        // ALTER TABLE a RENAME [TO|AS] b
                        if let Some(to) = t.find_rename_target(schema) {
                            tables.push(to);
                        }
                    }
                    if tables.is_empty() {
                        Statement::Other
                    } else {
                        Statement::TableDdl(tables)
                    }
                }
                "INDEX" => {
                    t.skip_words(&["IF", "NOT", "EXISTS"]);
                    t.next();
                    while let Some(tok) = t.next() {
                        if tok.eq_ignore_ascii_case("ON") {
                            return t
                                .name(schema)
                                .map_or(Statement::Other, |n| Statement::TableDdl(vec![n]));
                        }
                    }
                    Statement::Other
                }
                "DATABASE" | "SCHEMA" => {
                    t.skip_words(&["IF", "NOT", "EXISTS"]);
                    match t.next_token() {
                        Some(db) => {
                            t.names.push(NameAt::Database {
                                start: db.start,
                                end: db.end,
                                name: db.text.clone(),
                            });
                            Statement::DatabaseDdl(vec![db.text.clone()])
                        }
                        // ALTER DATABASE without a name means the default one.
                        None if !schema.is_empty() => {
                            Statement::DatabaseDdl(vec![schema.to_owned()])
                        }
                        None => Statement::Other,
                    }
                }
                _ => Statement::Other,
            }
        }
        "RENAME" => {
            if t.keyword() != "TABLE" {
                return Statement::Other;
            }
            let mut tables = Vec::new();
            while let Some(from) = t.name(schema) {
                tables.push(from);
                if !t.next().is_some_and(|w| w.eq_ignore_ascii_case("TO")) {
                    break;
                }
                let Some(to) = t.name(schema) else { break };
                tables.push(to);
                if !t.eat(",") {
                    break;
                }
            }
            Statement::TableDdl(tables)
        }
        "INSERT" | "REPLACE" | "UPDATE" | "DELETE" => {
            t.skip_words(&[
                "LOW_PRIORITY",
                "DELAYED",
                "HIGH_PRIORITY",
                "IGNORE",
                "INTO",
                "FROM",
            ]);
            t.name(schema)
                .map_or(Statement::Other, |n| Statement::StatementDml(vec![n]))
        }
        "TRUNCATE" => {
            t.skip_words(&["TABLE"]);
            t.name(schema)
                .map_or(Statement::Other, |n| Statement::TableDdl(vec![n]))
        }
        _ => Statement::Other,
    }
}

/// One token and the bytes of the statement it came from.
struct Token {
    text: String,
    start: usize,
    end: usize,
}

struct Tokens<'a> {
    tokens: &'a [Token],
    at: usize,
    /// Every name read so far, for [`route_statement`].
    names: Vec<NameAt>,
}

impl<'a> Tokens<'a> {
    fn next_token(&mut self) -> Option<&'a Token> {
        let t = self.tokens.get(self.at)?;
        self.at += 1;
        Some(t)
    }

    fn next(&mut self) -> Option<&String> {
        self.next_token().map(|t| &t.text)
    }

    fn peek_keyword(&self) -> String {
        self.tokens
            .get(self.at)
            .map(|s| s.text.to_ascii_uppercase())
            .unwrap_or_default()
    }

    fn keyword(&mut self) -> String {
        let k = self.peek_keyword();
        self.at += 1;
        k
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.tokens.get(self.at).is_some_and(|t| t.text == token) {
            self.at += 1;
            return true;
        }
        false
    }

    fn skip_words(&mut self, words: &[&str]) {
        while words.contains(&self.peek_keyword().as_str()) {
            self.at += 1;
        }
    }

    /// `ALGORITHM = x`, `DEFINER = user@host`, `SQL SECURITY x`.
    fn skip_view_option(&mut self) {
        if self.keyword() == "SQL" {
            self.at += 2;
            return;
        }
        self.eat("=");
        self.at += 1;
        if self.eat("@") {
            self.at += 1;
        }
    }

    /// `db.t`, `` `db`.`t` `` or `t` (then in `schema`).
    fn name(&mut self, schema: &str) -> Option<TableName> {
        let first = self.next_token()?;
        let (text, start, mut end) = (first.text.clone(), first.start, first.end);
        if text == "," || text == "(" || text == ";" {
            return None;
        }
        let (name, qualified) = if self.eat(".") {
            let second = self.next_token()?;
            end = second.end;
            (TableName::new(text, second.text.clone()), true)
        } else {
            (TableName::new(schema, text), false)
        };
        self.names.push(NameAt::Table {
            start,
            end,
            name: name.clone(),
            qualified,
        });
        Some(name)
    }

    /// `a, b, c` as in DROP TABLE.
    fn name_list(&mut self, schema: &str) -> Vec<TableName> {
        let mut out = Vec::new();
        while let Some(n) = self.name(schema) {
            out.push(n);
            if !self.eat(",") {
                break;
            }
        }
        out
    }

    fn find_rename_target(&mut self, schema: &str) -> Option<TableName> {
        while let Some(tok) = self.next() {
            if tok.eq_ignore_ascii_case("RENAME") {
                self.skip_words(&["TO", "AS"]);
                if matches!(self.peek_keyword().as_str(), "COLUMN" | "INDEX" | "KEY") {
                    continue;
                }
                return self.name(schema);
            }
        }
        None
    }
}

/// Words, quoted identifiers (unquoted, backticks undoubled) and single punctuation marks;
/// comments and string literals are dropped. Executable comments `/*!…*/` and `/*M!…*/` keep
/// their content, as the server would run it.
fn tokenize(sql: &str) -> Vec<Token> {
    let indexed: Vec<(usize, char)> = sql.char_indices().collect();
    let chars: Vec<char> = indexed.iter().map(|&(_, c)| c).collect();
    // The byte offset of char `i` (the text's length past the end).
    let byte = |i: usize| indexed.get(i).map_or(sql.len(), |&(b, _)| b);
    let mut out = Vec::new();
    let mut push = |text: String, from: usize, to: usize| {
        out.push(Token {
            text,
            start: byte(from),
            end: byte(to),
        })
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            let executable = chars.get(i + 2) == Some(&'!')
                || (chars.get(i + 2) == Some(&'M') && chars.get(i + 3) == Some(&'!'));
            if executable {
                i += if chars[i + 2] == 'M' { 4 } else { 3 };
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                i += 2;
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
        } else if c == '*' && chars.get(i + 1) == Some(&'/') {
            i += 2;
        } else if c == '#' || (c == '-' && chars.get(i + 1) == Some(&'-')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '`' {
            let mut ident = String::new();
            let from = i;
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        ident.push('`');
                        i += 2;
                        continue;
                    }
                    break;
                }
                ident.push(chars[i]);
                i += 1;
            }
            i += 1;
            push(ident, from, i.min(chars.len()));
        } else if c == '\'' || c == '"' {
            let from = i;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            push(String::from("''"), from, i.min(chars.len()));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            push(chars[start..i].iter().collect(), start, i);
        } else {
            push(c.to_string(), i, i + 1);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(sql: &str) -> Vec<String> {
        match classify(sql, "app") {
            Statement::TableDdl(t) => t.iter().map(TableName::plain).collect(),
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn names_the_tables_of_table_ddl() {
        assert_eq!(
            tables("CREATE TABLE IF NOT EXISTS `s`.`t` (id int)"),
            ["s.t"]
        );
        assert_eq!(tables("create table t like other.x"), ["app.t"]);
        assert_eq!(tables("ALTER TABLE t ADD COLUMN c INT"), ["app.t"]);
        assert_eq!(tables("ALTER TABLE t RENAME TO u"), ["app.t", "app.u"]);
        assert_eq!(tables("ALTER TABLE t RENAME COLUMN a TO b"), ["app.t"]);
        assert_eq!(
            tables("DROP TABLE IF EXISTS `a`,b.`c``d` /* generated by server */"),
            ["app.a", "b.c`d"]
        );
        assert_eq!(
            tables("RENAME TABLE a TO b, x.c TO x.d"),
            ["app.a", "app.b", "x.c", "x.d"]
        );
        assert_eq!(tables("TRUNCATE TABLE s.t"), ["s.t"]);
        assert_eq!(tables("truncate t"), ["app.t"]);
        assert_eq!(tables("CREATE UNIQUE INDEX i ON s.t (a)"), ["s.t"]);
        assert_eq!(tables("DROP INDEX i ON t"), ["app.t"]);
        assert_eq!(
            tables(
                "CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS SELECT 1"
            ),
            ["app.v"]
        );
        assert_eq!(
            tables("/*!40000 ALTER TABLE `t` DISABLE KEYS */"),
            ["app.t"]
        );
    }

    #[test]
    fn routes_rewrite_only_the_names() {
        let routes = Routes::new(&["shop.orders=archive.orders_2026", "shop=shop_v2"]).unwrap();
        let r = |sql: &str, schema: &str| route_statement(sql, schema, &routes);
        assert_eq!(
            r("ALTER TABLE orders ADD COLUMN note varchar(10) DEFAULT 'shop.orders'", "shop"),
            (
                "ALTER TABLE `archive`.`orders_2026` ADD COLUMN note varchar(10) DEFAULT 'shop.orders'"
                    .to_owned(),
                "shop_v2".to_owned()
            )
        );
        // Unqualified names already resolve to the routed database: left as written.
        assert_eq!(r("DROP TABLE items", "shop").0, "DROP TABLE items");
        assert_eq!(
            r("RENAME TABLE `shop`.`a` TO shop.b, other.x TO other.y", "").0,
            "RENAME TABLE `shop_v2`.`a` TO `shop_v2`.`b`, other.x TO other.y"
        );
        assert_eq!(
            r("CREATE TABLE t2 LIKE orders", "shop").0,
            "CREATE TABLE t2 LIKE `archive`.`orders_2026`"
        );
        assert_eq!(
            r(
                "CREATE TABLE shop.c (p int, FOREIGN KEY (p) REFERENCES orders (id))",
                "shop"
            )
            .0,
            "CREATE TABLE `shop_v2`.`c` (p int, FOREIGN KEY (p) REFERENCES `archive`.`orders_2026` (id))"
        );
        assert_eq!(
            r("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop` /*!40100 DEFAULT CHARACTER SET utf8mb4 */", "").0,
            "CREATE DATABASE /*!32312 IF NOT EXISTS*/ `shop_v2` /*!40100 DEFAULT CHARACTER SET utf8mb4 */"
        );
        assert_eq!(
            r("/*!40000 ALTER TABLE `orders` DISABLE KEYS */", "shop").0,
            "/*!40000 ALTER TABLE `archive`.`orders_2026` DISABLE KEYS */"
        );
        assert_eq!(
            r("CREATE INDEX i ON ünï (a)", "x").0,
            "CREATE INDEX i ON ünï (a)"
        );
        let none = Routes::default();
        assert_eq!(
            route_statement("DROP TABLE t", "s", &none).0,
            "DROP TABLE t"
        );
    }

    #[test]
    fn recognises_the_rest() {
        assert_eq!(classify("BEGIN", ""), Statement::Begin);
        assert_eq!(classify("COMMIT", ""), Statement::Commit);
        assert_eq!(
            classify("CREATE DATABASE IF NOT EXISTS `shop`", ""),
            Statement::DatabaseDdl(vec!["shop".into()])
        );
        assert_eq!(classify("GRANT ALL ON *.* TO x", ""), Statement::Other);
        assert_eq!(
            classify("insert into t values (1)", "s"),
            Statement::StatementDml(vec![TableName::new("s", "t")])
        );
        assert_eq!(classify("CREATE USER 'a'@'%'", ""), Statement::Other);
        let f = TableFilter::new(&["shop.*"]).unwrap();
        assert!(classify("DROP TABLE shop.t", "").is_selected(&f));
        assert!(!classify("DROP TABLE other.t", "").is_selected(&f));
        assert!(classify("drop database shop", "").is_selected(&f));
    }
}
