//! Identifiers and string literals quoted for SQL. Every statement Sluice builds takes names
//! through here: a name is never pasted into SQL unquoted.

use std::fmt;

/// Quotes an identifier with backticks, doubling any backtick inside it.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// Quotes a string as a SQL literal that means the same under any `sql_mode`
/// (backslashes are escaped too, so `NO_BACKSLASH_ESCAPES` off or on reads it the same way
/// only when the server has it off, which Sluice's sessions ensure).
pub fn quote_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A table named by database and table. `Display` gives the quoted SQL form
/// `` `db`.`table` ``; [`TableName::plain`] gives `db.table` for messages and file names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub database: String,
    pub table: String,
}

impl TableName {
    pub fn new(database: impl Into<String>, table: impl Into<String>) -> Self {
        TableName {
            database: database.into(),
            table: table.into(),
        }
    }

    /// `db.table`, unquoted: for messages and logs, never for SQL.
    pub fn plain(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            quote_ident(&self.database),
            quote_ident(&self.table)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_quoted() {
        assert_eq!(quote_ident("plain"), "`plain`");
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_ident("`;drop`"), "```;drop```");
        let t = TableName::new("shop`", "x; DROP TABLE y");
        assert_eq!(t.to_string(), "`shop```.`x; DROP TABLE y`");
        assert_eq!(t.plain(), "shop`.x; DROP TABLE y");
    }

    #[test]
    fn string_literals_escape_quotes_backslashes_and_nul() {
        assert_eq!(quote_string("it's"), "'it''s'");
        assert_eq!(quote_string("a\\b"), "'a\\\\b'");
        assert_eq!(quote_string("\0"), "'\\0'");
    }
}
