//! GTID sets of both flavors, parsed, printed, compared and unioned.
//!
//! * MariaDB: a GTID is `domain-server-sequence`; a position (`@@gtid_binlog_pos`,
//!   `@slave_connect_state`) is a comma list with at most one GTID per domain, and within a
//!   domain sequence numbers only grow. `A` contains `B` when every domain of `B` is in `A` with a
//!   sequence at least as high.
//! * MySQL: `uuid:interval[:interval…]` comma lists (`3E11FA47-…:1-5:7`), optionally with a tag
//!   (`uuid:tag:1-5`, MySQL 8.3+). Intervals are kept sorted and merged, so two spellings of the
//!   same set compare equal and print the same.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::CoreError;

/// One MariaDB GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariaGtid {
    pub domain: u32,
    pub server: u32,
    pub sequence: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.sequence)
    }
}

impl FromStr for MariaGtid {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| CoreError::invalid("MariaDB GTID", s, reason);
        let mut parts = s.trim().splitn(3, '-');
        let mut next = |name: &str| {
            parts
                .next()
                .ok_or_else(|| bad(&format!("missing {name}: expected domain-server-sequence")))
        };
        let domain = next("domain")?;
        let server = next("server id")?;
        let sequence = next("sequence")?;
        Ok(MariaGtid {
            domain: domain
                .parse()
                .map_err(|_| bad("the domain is not a number"))?,
            server: server
                .parse()
                .map_err(|_| bad("the server id is not a number"))?,
            sequence: sequence
                .parse()
                .map_err(|_| bad("the sequence is not a number"))?,
        })
    }
}

/// A set of executed transactions, in the flavor of the server that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GtidSet {
    /// Highest GTID per replication domain.
    MariaDb(BTreeMap<u32, MariaGtid>),
    /// Source id (`uuid` or `uuid:tag`, lower case) to sorted, merged, inclusive intervals.
    MySql(BTreeMap<String, Vec<(u64, u64)>>),
}

impl Default for GtidSet {
    fn default() -> Self {
        GtidSet::MariaDb(BTreeMap::new())
    }
}

impl GtidSet {
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::MariaDb(m) => m.is_empty(),
            GtidSet::MySql(m) => m.is_empty(),
        }
    }

    /// Adds one MariaDB GTID (the newest of its domain wins). On a MySQL set this is an error.
    pub fn add_mariadb(&mut self, gtid: MariaGtid) -> Result<(), CoreError> {
        if let GtidSet::MySql(m) = self {
            if !m.is_empty() {
                return Err(CoreError::invalid(
                    "GTID",
                    gtid,
                    "a MariaDB GTID cannot join a MySQL GTID set",
                ));
            }
            *self = GtidSet::default();
        }
        if let GtidSet::MariaDb(m) = self {
            let slot = m.entry(gtid.domain).or_insert(gtid);
            if gtid.sequence >= slot.sequence {
                *slot = gtid;
            }
        }
        Ok(())
    }

    /// True when every transaction of `other` is in `self`.
    pub fn contains(&self, other: &GtidSet) -> bool {
        if other.is_empty() {
            return true;
        }
        match (self, other) {
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => b.values().all(|g| {
                a.get(&g.domain)
                    .is_some_and(|mine| mine.sequence >= g.sequence)
            }),
            (GtidSet::MySql(a), GtidSet::MySql(b)) => b.iter().all(|(sid, theirs)| {
                let Some(mine) = a.get(sid) else { return false };
                theirs
                    .iter()
                    .all(|&(s, e)| mine.iter().any(|&(ms, me)| ms <= s && e <= me))
            }),
            _ => false,
        }
    }

    /// The union of two sets of the same flavor (an empty set unions with either flavor).
    pub fn union(&self, other: &GtidSet) -> Result<GtidSet, CoreError> {
        if other.is_empty() {
            return Ok(self.clone());
        }
        if self.is_empty() {
            return Ok(other.clone());
        }
        match (self, other) {
            (GtidSet::MariaDb(_), GtidSet::MariaDb(b)) => {
                let mut out = self.clone();
                for g in b.values() {
                    out.add_mariadb(*g)?;
                }
                Ok(out)
            }
            (GtidSet::MySql(a), GtidSet::MySql(b)) => {
                let mut out = a.clone();
                for (sid, ivs) in b {
                    let slot = out.entry(sid.clone()).or_default();
                    slot.extend_from_slice(ivs);
                    merge_intervals(slot);
                }
                Ok(GtidSet::MySql(out))
            }
            _ => Err(CoreError::invalid(
                "GTID set",
                format!("{self} + {other}"),
                "cannot mix MariaDB and MySQL GTIDs",
            )),
        }
    }
}

fn merge_intervals(ivs: &mut Vec<(u64, u64)>) {
    ivs.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ivs.len());
    for &(s, e) in ivs.iter() {
        match merged.last_mut() {
            Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    *ivs = merged;
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::MariaDb(m) => {
                for (i, g) in m.values().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{g}")?;
                }
            }
            GtidSet::MySql(m) => {
                for (i, (sid, ivs)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(sid)?;
                    for &(s, e) in ivs {
                        if s == e {
                            write!(f, ":{s}")?;
                        } else {
                            write!(f, ":{s}-{e}")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

impl FromStr for GtidSet {
    type Err = CoreError;

    /// Parses either flavor: a set with `:` is MySQL's, otherwise MariaDB's. Whitespace and
    /// newlines (as `SELECT @@gtid_executed` prints them) are ignored; an empty string is the
    /// empty set.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if cleaned.is_empty() {
            return Ok(GtidSet::default());
        }
        if cleaned.contains(':') {
            parse_mysql(&cleaned, s)
        } else {
            let mut set = GtidSet::default();
            for item in cleaned.split(',').filter(|i| !i.is_empty()) {
                let gtid: MariaGtid = item.parse()?;
                if let GtidSet::MariaDb(m) = &set
                    && m.contains_key(&gtid.domain)
                {
                    return Err(CoreError::invalid(
                        "GTID set",
                        s,
                        format!("domain {} appears twice", gtid.domain),
                    ));
                }
                set.add_mariadb(gtid)?;
            }
            Ok(set)
        }
    }
}

fn parse_mysql(cleaned: &str, original: &str) -> Result<GtidSet, CoreError> {
    let bad = |reason: String| CoreError::invalid("GTID set", original, reason);
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for item in cleaned.split(',').filter(|i| !i.is_empty()) {
        let mut parts = item.split(':');
        let uuid = parts.next().unwrap_or_default().to_ascii_lowercase();
        if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(bad(format!("`{uuid}` is not a server uuid")));
        }
        let mut sid = uuid;
        let mut intervals = Vec::new();
        for part in parts {
            if part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                sid = format!("{sid}:{}", part.to_ascii_lowercase());
                continue;
            }
            let (s, e) = match part.split_once('-') {
                Some((s, e)) => (s, e),
                None => (part, part),
            };
            let s: u64 = s
                .parse()
                .map_err(|_| bad(format!("bad interval `{part}`")))?;
            let e: u64 = e
                .parse()
                .map_err(|_| bad(format!("bad interval `{part}`")))?;
            if s == 0 || e < s {
                return Err(bad(format!("bad interval `{part}`")));
            }
            intervals.push((s, e));
        }
        if intervals.is_empty() {
            return Err(bad(format!("`{item}` has no interval")));
        }
        let slot = out.entry(sid).or_default();
        slot.extend(intervals);
        merge_intervals(slot);
    }
    Ok(GtidSet::MySql(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4e11fa47-71ca-11e1-9e33-c80aa9429562";

    fn set(s: &str) -> GtidSet {
        s.parse().unwrap()
    }

    #[test]
    fn mariadb_round_trip_and_order() {
        let s = set("1-7-99, 0-1-3");
        assert_eq!(s.to_string(), "0-1-3,1-7-99");
        assert!(set("0-1-5,1-7-99").contains(&s));
        assert!(!set("0-1-2,1-7-99").contains(&s));
        assert!(!set("0-1-5").contains(&s));
        assert_eq!(
            set("0-1-3").union(&set("0-2-9,2-1-1")).unwrap().to_string(),
            "0-2-9,2-1-1"
        );
    }

    #[test]
    fn mysql_intervals_merge_and_compare() {
        let s = set(&format!("{}:1-5:6-9:12,\n{U2}:3", U1.to_uppercase()));
        assert_eq!(s.to_string(), format!("{U1}:1-9:12,{U2}:3"));
        assert!(s.contains(&set(&format!("{U1}:2-4"))));
        assert!(!s.contains(&set(&format!("{U1}:9-12"))));
        let u = s.union(&set(&format!("{U1}:10-11"))).unwrap();
        assert_eq!(u.to_string(), format!("{U1}:1-12,{U2}:3"));
        assert_eq!(
            set(&format!("{U1}:tag_a:1-2")).to_string(),
            format!("{U1}:tag_a:1-2")
        );
    }

    #[test]
    fn empty_is_contained_and_unions_with_either_flavor() {
        let e = set("");
        assert!(e.is_empty());
        assert!(set("0-1-1").contains(&e));
        assert_eq!(
            e.union(&set(&format!("{U1}:1"))).unwrap(),
            set(&format!("{U1}:1"))
        );
        assert!(set("0-1-1").union(&set(&format!("{U1}:1"))).is_err());
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "0-1",
            "a-b-c",
            "0-1-2,0-3-4",
            "nope:1",
            &format!("{U1}:0"),
            &format!("{U1}:5-3"),
            U1,
        ] {
            assert!(bad.parse::<GtidSet>().is_err(), "{bad} parsed");
        }
    }
}
