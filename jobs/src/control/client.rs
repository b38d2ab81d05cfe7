//! A client of the control API: `sluice status|pause|resume|stop --control URL`, and the sync
//! points `sluice checksum --sync-with URL` takes from a running stream.

use std::time::Duration;

use sluice_checksum::{Hold, SyncPoints, sync::BoxFuture};
use sluice_core::BinlogPosition;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where a running stream serves its control API, and the token for mutating calls.
#[derive(Debug, Clone)]
pub struct ControlClient {
    address: String,
    token: Option<String>,
}

impl ControlClient {
    /// `http://host:port` (or just `host:port`).
    pub fn new(url: &str, token: Option<String>) -> Result<ControlClient, String> {
        let address = url
            .strip_prefix("http://")
            .unwrap_or(url)
            .trim_end_matches('/')
            .to_owned();
        if address.is_empty() || !address.contains(':') || address.contains('/') {
            return Err(format!("--control {url}: expected http://HOST:PORT"));
        }
        Ok(ControlClient { address, token })
    }

    /// One request; the status code and the body.
    pub async fn call(&self, method: &str, path: &str) -> Result<(u16, String), String> {
        let work = async {
            let mut socket = TcpStream::connect(&self.address)
                .await
                .map_err(|e| format!("control API at {}: {e}", self.address))?;
            let auth = self
                .token
                .as_ref()
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n",
                self.address
            );
            socket
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("control API at {}: {e}", self.address))?;
            let mut raw = Vec::new();
            socket
                .read_to_end(&mut raw)
                .await
                .map_err(|e| format!("control API at {}: {e}", self.address))?;
            let text = String::from_utf8_lossy(&raw);
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let code = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("control API at {}: not an HTTP answer", self.address))?;
            Ok((code, body.to_owned()))
        };
        tokio::time::timeout(Duration::from_secs(120), work)
            .await
            .map_err(|_| format!("control API at {}: no answer within 120 s", self.address))?
    }
}

impl SyncPoints for ControlClient {
    fn hold<'a>(&'a self, at: Option<&'a BinlogPosition>) -> BoxFuture<'a, Result<Hold, String>> {
        Box::pin(async move {
            let path = match at {
                Some(at) => format!("/hold?at={}", encode(&at.to_string())),
                None => "/hold".to_owned(),
            };
            let at = at.map_or("here".to_owned(), ToString::to_string);
            match self.call("POST", &path).await? {
                (200, _) => Ok(Hold::Held),
                (409, _) => Ok(Hold::Retry),
                (code, body) => Err(format!("hold at {at}: HTTP {code}: {body}")),
            }
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match self.call("POST", "/release").await? {
                (200, _) => Ok(()),
                (code, body) => Err(format!("release: HTTP {code}: {body}")),
            }
        })
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
