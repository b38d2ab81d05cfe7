//! How a column's values are written as text: the one classification every writer and reader
//! of dump files shares.

/// The text treatment a column needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    /// Integers, DECIMAL, YEAR: the server's text is a valid unquoted SQL literal.
    Integer,
    Decimal,
    /// FLOAT and DOUBLE: read as DOUBLE text so that a FLOAT keeps all its bits (the server
    /// prints FLOAT with 6 digits, which does not round-trip).
    Float,
    /// BIT(n): bytes on the wire, written as a number.
    Bit,
    /// Binary strings, BLOBs and spatial values: raw bytes.
    Binary,
    /// Everything else (character strings, ENUM, SET, JSON, temporal types): quoted text.
    Text,
}

impl ColumnKind {
    /// Classifies `information_schema.COLUMNS.DATA_TYPE`.
    pub fn from_data_type(data_type: &str) -> ColumnKind {
        match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "year" => {
                ColumnKind::Integer
            }
            "decimal" | "numeric" => ColumnKind::Decimal,
            "float" | "double" | "real" | "double precision" => ColumnKind::Float,
            "bit" => ColumnKind::Bit,
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
            | "geometry" | "point" | "linestring" | "polygon" | "multipoint"
            | "multilinestring" | "multipolygon" | "geometrycollection" => ColumnKind::Binary,
            _ => ColumnKind::Text,
        }
    }

    /// True when the server's text for this kind is a bare SQL number.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnKind::Integer | ColumnKind::Decimal | ColumnKind::Float | ColumnKind::Bit
        )
    }
}

/// BIT bytes (big-endian, at most 8) as the number they hold.
pub fn bit_value(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_types() {
        assert_eq!(ColumnKind::from_data_type("BIGINT"), ColumnKind::Integer);
        assert_eq!(ColumnKind::from_data_type("longblob"), ColumnKind::Binary);
        assert_eq!(ColumnKind::from_data_type("json"), ColumnKind::Text);
        assert_eq!(ColumnKind::from_data_type("float"), ColumnKind::Float);
        assert_eq!(bit_value(&[0x01, 0x02]), 258);
        assert_eq!(bit_value(&[]), 0);
    }
}
