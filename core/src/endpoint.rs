//! How a MySQL-protocol server is named and reached.
//!
//! A source or target is written `mysql://user:password@host:port[/database]`. The password may
//! instead come from a file or an environment variable ([`Endpoint::with_password`]); it is kept
//! in a [`Secret`] whose `Debug` and `Display` print `***`, and [`Endpoint`]'s `Display` never
//! shows it, so an endpoint can go into any log line or error.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};

use crate::CoreError;

/// What every Sluice connection runs first. Exact values everywhere: no silent truncation, no
/// zero-date rewriting, and backslash escapes on so that literals built by `quote_string` read
/// back the same.
pub(crate) const SESSION_SETUP: &[&str] = &[
    "SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'",
    "SET NAMES utf8mb4",
    "SET SESSION time_zone = '+00:00'",
];

/// A string that must never be printed: passwords, secret keys.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for handing to a driver. Never log what this returns.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A MySQL-protocol server and the account used on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub database: Option<String>,
}

impl Endpoint {
    /// Replaces the password (from `--password-file` or an environment variable).
    pub fn with_password(mut self, password: Secret) -> Self {
        self.password = Some(password);
        self
    }

    /// `host:port`, for messages.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Driver options: TCP only (never a local socket that could be another server),
    /// a connect timeout, and the session settings every Sluice connection relies on.
    pub fn opts(&self) -> Opts {
        let builder = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.as_ref().map(|p| p.expose().to_owned()))
            .db_name(self.database.clone())
            .prefer_socket(false)
            .tcp_nodelay(true)
            .conn_ttl(None)
            .wait_timeout(Some(28_800))
            .setup(SESSION_SETUP.iter().map(|s| (*s).to_owned()).collect());
        Opts::from(builder)
    }

    /// A pool of up to `max` connections.
    pub fn pool(&self, max: usize) -> Pool {
        let constraints = PoolConstraints::new(0, max.max(1)).unwrap_or_default();
        let opts = OptsBuilder::from_opts(self.opts())
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        Pool::new(opts)
    }

    /// One connection, with a bounded wait, and an error that names the server.
    pub async fn connect(&self) -> Result<Conn, CoreError> {
        let attempt = tokio::time::timeout(Duration::from_secs(30), Conn::new(self.opts()));
        match attempt.await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(source)) => Err(self.error("connect", source)),
            Err(_) => Err(self.error(
                "connect",
                mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within 30 s",
                ))),
            )),
        }
    }

    /// Wraps a driver error with this endpoint and what was being done.
    pub fn error(&self, action: impl Into<String>, source: mysql_async::Error) -> CoreError {
        CoreError::Server {
            endpoint: self.to_string(),
            action: action.into(),
            source,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mysql://{}@{}:{}", self.user, self.host, self.port)?;
        if let Some(db) = &self.database {
            write!(f, "/{db}")?;
        }
        Ok(())
    }
}

impl FromStr for Endpoint {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Never echo the password back: errors show the URL with it masked.
        let shown = mask_password(s);
        let bad = |reason: &str| CoreError::invalid("server URL", &shown, reason);
        let url = url::Url::parse(s).map_err(|e| bad(&e.to_string()))?;
        if url.scheme() != "mysql" {
            return Err(bad("the scheme must be mysql://"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |part: &str| {
            url::form_urlencoded::parse(format!("x={part}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let user = if url.username().is_empty() {
            "root".to_owned()
        } else {
            decode(url.username())
        };
        let password = url.password().map(|p| Secret::new(decode(p)));
        let database = url
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .filter(|d| !d.is_empty())
            .map(decode);
        if url.query().is_some() {
            return Err(bad("options after `?` are not supported; use the job file"));
        }
        Ok(Endpoint {
            host,
            port: url.port().unwrap_or(3306),
            user,
            password,
            database,
        })
    }
}

/// `mysql://user:secret@host` → `mysql://user:***@host`, for error messages.
fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => url.to_owned(),
    }
}

/// Which server family a connection talks to; they differ in GTIDs, snapshot locks and binlog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    MySql,
    MariaDb,
    TiDb,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::MySql => "MySQL",
            Flavor::MariaDb => "MariaDB",
            Flavor::TiDb => "TiDB",
        })
    }
}

/// Flavor and version of a server, read once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    pub flavor: Flavor,
    /// Major, minor, patch.
    pub version: (u16, u16, u16),
    /// What `SELECT VERSION()` printed, e.g. `10.11.19-MariaDB-0+deb12u1-log`.
    pub version_string: String,
}

impl ServerInfo {
    /// Reads `VERSION()` on an open connection.
    pub async fn detect(conn: &mut Conn, endpoint: &Endpoint) -> Result<ServerInfo, CoreError> {
        let version: Option<String> = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| endpoint.error("read VERSION()", e))?;
        Ok(ServerInfo::from_version_string(
            &version.unwrap_or_default(),
        ))
    }

    pub fn from_version_string(v: &str) -> ServerInfo {
        let flavor = if v.contains("TiDB") {
            Flavor::TiDb
        } else if v.contains("MariaDB") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        };
        // MariaDB 10.x may prefix "5.5.5-" for old clients; TiDB says "8.0.11-TiDB-v7.5.0".
        let v_clean = v.strip_prefix("5.5.5-").unwrap_or(v);
        let mut nums = v_clean
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|n| n.parse::<u16>().unwrap_or(0));
        let version = (
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
        );
        ServerInfo {
            flavor,
            version,
            version_string: v.to_owned(),
        }
    }
}

impl fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.version;
        write!(f, "{} {a}.{b}.{c}", self.flavor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_url_and_hides_password() {
        let e: Endpoint = "mysql://app:p%40ss@127.0.0.1:3407/shop".parse().unwrap();
        assert_eq!(e.host, "127.0.0.1");
        assert_eq!(e.port, 3407);
        assert_eq!(e.user, "app");
        assert_eq!(e.password.as_ref().unwrap().expose(), "p@ss");
        assert_eq!(e.database.as_deref(), Some("shop"));
        assert_eq!(e.to_string(), "mysql://app@127.0.0.1:3407/shop");
        assert!(!format!("{e:?}").contains("p@ss"));
    }

    #[test]
    fn defaults_user_and_port() {
        let e: Endpoint = "mysql://db.internal".parse().unwrap();
        assert_eq!((e.user.as_str(), e.port, e.password), ("root", 3306, None));
    }

    #[test]
    fn errors_never_echo_the_password() {
        let err = "postgres://u:hunter2@h:1"
            .parse::<Endpoint>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!("mysql://u:hunter2@:1".parse::<Endpoint>().is_err());
    }

    #[test]
    fn detects_flavors() {
        let m = ServerInfo::from_version_string("10.11.19-MariaDB-0+deb12u1-log");
        assert_eq!((m.flavor, m.version), (Flavor::MariaDb, (10, 11, 19)));
        let m = ServerInfo::from_version_string("5.5.5-10.6.3-MariaDB");
        assert_eq!((m.flavor, m.version), (Flavor::MariaDb, (10, 6, 3)));
        let m = ServerInfo::from_version_string("8.0.36");
        assert_eq!((m.flavor, m.version), (Flavor::MySql, (8, 0, 36)));
        let t = ServerInfo::from_version_string("8.0.11-TiDB-v7.5.0");
        assert_eq!(t.flavor, Flavor::TiDb);
    }
}
