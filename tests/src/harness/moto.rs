//! A throwaway S3 endpoint: `moto_server` on a free loopback port, with one bucket created.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sluice_core::{S3Options, Secret, Storage};

use super::process::{find_program, free_port, is_alive, kill, spawn_watchdog};

/// The bucket every test shares; tests isolate themselves by prefix.
pub const BUCKET: &str = "sluice-test";
const ACCESS_KEY: &str = "testing";
const SECRET_KEY: &str = "testing";
const REGION: &str = "us-east-1";

/// A running moto S3 endpoint with [`BUCKET`] created.
#[derive(Debug)]
pub struct S3Endpoint {
    pub port: u16,
    pub pid: u32,
}

/// The shared S3 endpoint of this test process, started on first use.
pub fn s3() -> &'static S3Endpoint {
    static S3: OnceLock<S3Endpoint> = OnceLock::new();
    S3.get_or_init(S3Endpoint::start)
}

impl S3Endpoint {
    fn start() -> S3Endpoint {
        let moto = find_program(
            "moto_server",
            &["~/.local/bin", "~/.pyenv/shims", "/usr/local/bin"],
        );
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("sluice-moto-")
            .tempdir()
            .expect("temporary folder")
            .keep();
        let log = std::fs::File::create(dir.join("moto.log")).expect("moto log file");
        use std::os::unix::process::CommandExt;
        let child = Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}; see ci/setup.sh", moto.display()));
        let pid = child.id();
        spawn_watchdog(pid, &dir);
        drop(child);

        let started = Instant::now();
        loop {
            if http(port, "PUT", &format!("/{BUCKET}")).is_ok_and(|status| status == 200) {
                return S3Endpoint { port, pid };
            }
            if !is_alive(pid) || started.elapsed() > Duration::from_secs(60) {
                kill(pid);
                let text = std::fs::read_to_string(dir.join("moto.log")).unwrap_or_default();
                panic!("moto_server did not start on port {port}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `s3://sluice-test/<prefix>`
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// Settings for [`Storage::open_with`].
    pub fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint_url()),
            region: Some(REGION.to_owned()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(Secret::new(SECRET_KEY)),
            session_token: None,
            allow_http: true,
        }
    }

    /// Storage rooted at `s3://sluice-test/<prefix>`.
    pub fn storage(&self, prefix: &str) -> Storage {
        Storage::open_with(&self.url(prefix), &self.options()).expect("open S3 storage")
    }

    /// The environment a `sluice` process needs to reach this endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint_url()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }
}

/// One bare HTTP/1.1 request with an empty body; returns the status code. Enough to create a
/// bucket, which object_store cannot do.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:.80}")))
}
