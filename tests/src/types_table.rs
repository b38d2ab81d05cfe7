//! A table with every MySQL column type (and MariaDB's INET4, INET6, UUID) and hostile values (extremes, zero dates, quotes,
//! backslashes, NUL, every byte value, unicode), shared by the dump and import round-trip tests.

use mysql_async::prelude::Queryable;

use crate::{source, unique_name};

pub const CREATE: &str = "CREATE TABLE t (
    id INT PRIMARY KEY,
    ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
    i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
    dec1 DECIMAL(65,30), dec2 DECIMAL(5,0) UNSIGNED, f FLOAT, d DOUBLE,
    bit1 BIT(1), bit9 BIT(9), bit64 BIT(64),
    dt DATETIME(6), dt0 DATETIME, ts TIMESTAMP(6) NULL, dd DATE, tm TIME(3), yr YEAR,
    c CHAR(10), vc VARCHAR(100), tx TEXT, ltx LONGTEXT,
    bn BINARY(4), vb VARBINARY(300), bl BLOB,
    en ENUM('a','b','c''q'), st SET('x','y','z'), js JSON,
    lat VARCHAR(20) CHARACTER SET latin1, geo POINT NULL,
    gen INT AS (id * 2) VIRTUAL,
    ip6 INET6, ip4 INET4, uu UUID
) DEFAULT CHARSET=utf8mb4";

/// MariaDB's types without a charset that are not numbers or temporals (set after the rows
/// above; the other rows keep NULL). `2001:db8:0:0::1f` is 16 characters: sent as a binary
/// string it would be taken as the packed address, silently.
pub const MARIADB_TYPES: &str = "UPDATE t SET ip6 = CASE id WHEN 1 THEN '2001:db8:0:0::1f' WHEN 2 THEN '::' ELSE 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' END,
    ip4 = CASE id WHEN 1 THEN '10.1.2.3' WHEN 2 THEN '0.0.0.0' ELSE '255.255.255.255' END,
    uu = CASE id WHEN 1 THEN '123e4567-e89b-12d3-a456-426655440000' WHEN 2 THEN '00000000-0000-0000-0000-000000000000' ELSE 'ffffffff-ffff-ffff-ffff-ffffffffffff' END
    WHERE id IN (1, 2, 4)";

pub const ROWS: &[&str] = &[
    "(1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1.5, 12345, 0.1, 0.1, 1, 5, 42,
      '2024-02-29 23:59:59.999999', '2024-01-01 00:00:00', '2024-06-01 12:00:00.5', '2024-02-29', '12:34:56.789', 2024,
      'abc', 'hello world', 'some text', 'long text', 0x01020304, 0xDEADBEEF, 0x00FF,
      'b', 'x,z', '{\"k\": [1, 2.5, \"s\"], \"u\": \"é😀\"}', 'café', ST_GeomFromText('POINT(1.5 -2.25)'))",
    "(2, -128, 255, -32768, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615,
      -99999999999999999999999999999999999.999999999999999999999999999999, 99999, 3.4028235e38, 1.7976931348623157e308,
      0, 511, 18446744073709551615,
      '0000-00-00 00:00:00', '1000-01-01 00:00:00', '1970-01-01 00:00:01', '0000-00-00', '-838:59:59.000', 0,
      '', '', '', '', 0x00000000, '', '',
      'c''q', '', '[]', '', NULL)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(4, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0.000000000000000000000000000001, 0, 1.2345678, 2.2250738585072014e-308,
      1, 0, 1, '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', '2038-01-19 03:14:07.999999', '9999-12-31',
      '838:59:59.999', 2155,
      'q''uo\"te', 'back\\\\slash \\\\N NULL \\0 nul', CONCAT('line1\\nline2\\r\\n', CHAR(26), '\\ttab,comma'), REPEAT('x', 70000),
      0xFFFFFFFF, 0x5C4E, 0x000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9FA0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBFC0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDFE0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF,
      'a', 'x,y,z', '{\"esc\": \"quote \\\\\" backslash \\\\\\\\ nl \\\\n\"}', 'Ü', ST_GeomFromText('POINT(0 0)'))",
    "(5, 1, 1, 1, 1, 1, 1, 1, 1, 1, -0.5, 1, -1.17549435e-38, -4.9e-324, 0, 256, 9223372036854775808,
      '2000-01-01 00:00:00.000001', '2000-01-01 00:00:00', NULL, '2000-01-01', '00:00:00.001', 1901,
      '\\\\N', 'NULL', '\"\"', '', 0x5C000000, 0x0D0A, 0x1A,
      NULL, 'y', 'null', NULL, NULL)",
];

/// Creates a fresh database on SOURCE holding table `t` with [`ROWS`]; returns its name.
pub async fn seed_types_table(prefix: &str) -> String {
    let db = unique_name(prefix);
    let mut conn = source().conn().await;
    conn.query_drop(format!("CREATE DATABASE `{db}`"))
        .await
        .expect("create database");
    conn.query_drop(format!("USE `{db}`"))
        .await
        .expect("use database");
    conn.query_drop(CREATE)
        .await
        .expect("create the types table");
    for row in ROWS {
        conn.query_drop(format!(
            "INSERT INTO t (id, ti, tiu, si, mi, miu, i, iu, bi, biu, dec1, dec2, f, d, bit1, bit9, bit64, dt, dt0, ts, dd, tm, yr, \
             c, vc, tx, ltx, bn, vb, bl, en, st, js, lat, geo) VALUES {row}"
        ))
        .await
        .unwrap_or_else(|e| panic!("seed row {row}: {e}"));
    }
    conn.query_drop(MARIADB_TYPES)
        .await
        .expect("set the MariaDB-only types");
    db
}
