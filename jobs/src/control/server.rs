//! The control API of a running stream over HTTP/1.1 (one request per connection).
//!
//! | request | answer |
//! |---|---|
//! | `GET /status` | the stream's [`Status`] as JSON |
//! | `GET /metrics` | the same figures in Prometheus text format |
//! | `POST /pause` | `{"paused_at": "file:offset"}` once every applier has committed |
//! | `POST /resume`, `POST /stop[?force=true]`, `POST /release` | `{}` |
//! | `POST /update-source?url=mysql://…` | `{}` once the new source is known to serve the current GTID position; 409 `{"refused": …}` naming the gap |
//! | `POST /hold[?at=FILE:OFFSET]` | `{"held_at": …}` once held there (no `at`: where it is), or 409 `{"refused": …}` (sync points) |
//!
//! With a token set, every POST needs `Authorization: Bearer TOKEN` (401 otherwise); the
//! stream refuses to listen on a non-loopback address without one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_core::{BinlogPosition, Secret};
use sluice_streamer::{Control, HoldRefused, Status};

use super::meter::PhaseMeter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Results of scheduled checksums, newest last, shown by `/status` and `/metrics`.
pub type Checks = Arc<Mutex<Vec<serde_json::Value>>>;

/// The job's phase (`dump`, `import`, `stream`, `checksum`); empty for a plain `sluice stream`.
/// Before the stream runs, `/status` answers with the phase alone and the calls that act on
/// the stream are refused.
pub type Phase = Arc<Mutex<String>>;

/// What a job adds to the stream's own status: its phase, the dump's and import's figures,
/// and the scheduled checksums' results. Empty for a plain `sluice stream`.
#[derive(Clone, Default)]
pub struct JobView {
    pub phase: Phase,
    pub meter: Arc<PhaseMeter>,
    pub checks: Checks,
}

/// Requests being answered; see [`drain`].
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Waits (at most `limit`) for the answers being written: a `POST /stop` ends the stream, and
/// the process must not exit before the caller has its answer.
pub async fn drain(limit: Duration) {
    let started = std::time::Instant::now();
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Serves `control` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, control: Control, token: Option<Secret>, job: JobView) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let (control, token, job) = (control.clone(), token.clone(), job.clone());
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                handle(socket, &control, token.as_ref(), &job),
            )
            .await;
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    bearer: Option<String>,
}

async fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_ascii_uppercase();
    let target = first.next()?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let bearer = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .and_then(|(_, v)| v.trim().strip_prefix("Bearer ").map(str::to_owned));
    Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        bearer,
    })
}

async fn handle(mut socket: TcpStream, control: &Control, token: Option<&Secret>, job: &JobView) {
    let Some(req) = read_request(&mut socket).await else {
        return;
    };
    let (code, content_type, body) = answer(&req, control, token, job).await;
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        503 => "Service Unavailable",
        _ => "Bad Request",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

const JSON: &str = "application/json";

fn json(value: serde_json::Value) -> String {
    value.to_string()
}

async fn answer(
    req: &Request,
    control: &Control,
    token: Option<&Secret>,
    job: &JobView,
) -> (u16, &'static str, String) {
    let (checks, phase) = (&job.checks, &job.phase);
    let gone = || {
        (
            503,
            JSON,
            json(serde_json::json!({"error": "the stream is ending"})),
        )
    };
    if req.method == "POST"
        && let Some(t) = token
        && req.bearer.as_deref() != Some(t.expose())
    {
        return (
            401,
            JSON,
            json(serde_json::json!({"error": "a valid Authorization: Bearer token is required"})),
        );
    }
    let current = phase.lock().map(|p| p.clone()).unwrap_or_default();
    if current == "dump" || current == "import" {
        let history = checks.lock().map(|c| c.clone()).unwrap_or_default();
        return match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/status") => {
                let mut map = job.meter.status();
                map.insert("phase".into(), current.clone().into());
                map.insert("checksums".into(), history.into());
                (200, JSON, serde_json::Value::Object(map).to_string())
            }
            ("GET", "/metrics") => (
                200,
                "text/plain; version=0.0.4",
                format!("{}{}", phase_metric(&current), job.meter.metrics()),
            ),
            _ => (
                409,
                JSON,
                json(
                    serde_json::json!({"error": format!("the job is in its {current} phase; the stream is not running yet")}),
                ),
            ),
        };
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/status") => match control.status().await {
            Ok(s) => {
                let mut v = serde_json::to_value(&s).unwrap_or_default();
                if !current.is_empty()
                    && let Some(map) = v.as_object_mut()
                {
                    map.insert("phase".into(), serde_json::Value::String(current.clone()));
                }
                let history = checks.lock().map(|c| c.clone()).unwrap_or_default();
                if let Some(map) = v.as_object_mut() {
                    map.insert("checksums".into(), serde_json::Value::Array(history));
                    map.extend(job.meter.status());
                }
                (200, JSON, v.to_string())
            }
            Err(_) => gone(),
        },
        ("GET", "/metrics") => match control.status().await {
            Ok(s) => {
                let last = checks.lock().ok().and_then(|c| c.last().cloned());
                let mut text = metrics(&s);
                if !current.is_empty() {
                    text.push_str(&phase_metric(&current));
                }
                text.push_str(&job.meter.metrics());
                if let Some(last) = last {
                    let equal = last["equal"].as_bool().map_or(-1, i32::from);
                    text.push_str(&format!(
                        "# HELP sluice_checksum_last_equal 1 when the last scheduled checksum found source and target equal, 0 when not, -1 when it failed.\n\
                         # TYPE sluice_checksum_last_equal gauge\nsluice_checksum_last_equal {equal}\n"
                    ));
                }
                (200, "text/plain; version=0.0.4", text)
            }
            Err(_) => gone(),
        },
        ("POST", "/pause") if req.query.split('&').any(|kv| kv == "force=true") => {
            match control.force_pause().await {
                Ok(at) => (200, JSON, json(serde_json::json!({"paused_at": at}))),
                Err(_) => gone(),
            }
        }
        ("POST", "/pause") => match control.pause().await {
            Ok(at) => (200, JSON, json(serde_json::json!({"paused_at": at}))),
            Err(_) => gone(),
        },
        ("POST", "/resume") => match control.resume().await {
            Ok(()) => (200, JSON, "{}".into()),
            Err(_) => gone(),
        },
        ("POST", "/stop") if req.query.split('&').any(|kv| kv == "force=true") => {
            match control.force_stop().await {
                Ok(()) => (200, JSON, "{}".into()),
                Err(_) => gone(),
            }
        }
        ("POST", "/stop") => match control.stop().await {
            Ok(()) => (200, JSON, "{}".into()),
            Err(_) => gone(),
        },
        ("POST", "/release") => match control.release().await {
            Ok(()) => (200, JSON, "{}".into()),
            Err(_) => gone(),
        },
        ("POST", "/update-source") => {
            let url = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("url="))
                .map(percent_decode);
            let Some(url) = url else {
                return (
                    400,
                    JSON,
                    json(serde_json::json!({"error": "update-source needs ?url=mysql://…"})),
                );
            };
            let endpoint = match url.parse::<sluice_core::Endpoint>() {
                Ok(e) => e,
                Err(e) => return (400, JSON, json(serde_json::json!({"error": e.to_string()}))),
            };
            match control.update_source(endpoint).await {
                Ok(Ok(())) => (200, JSON, "{}".into()),
                Ok(Err(why)) => (409, JSON, json(serde_json::json!({"refused": why}))),
                Err(_) => gone(),
            }
        }
        ("POST", "/hold") => {
            let at = req
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("at="))
                .map(percent_decode);
            let at = match at.map(|p| p.parse::<BinlogPosition>()) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    return (400, JSON, json(serde_json::json!({"error": e.to_string()})));
                }
            };
            match control.hold(at).await {
                Ok(Ok(held)) => (200, JSON, json(serde_json::json!({"held_at": held}))),
                Ok(Err(refused)) => {
                    let why = match refused {
                        HoldRefused::Passed { at } => format!("passed: the stream is at {at}"),
                        HoldRefused::Busy => "busy".to_owned(),
                        HoldRefused::Paused => "paused".to_owned(),
                    };
                    (409, JSON, json(serde_json::json!({"refused": why})))
                }
                Err(_) => gone(),
            }
        }
        _ => (
            404,
            JSON,
            json(serde_json::json!({"error": "unknown request"})),
        ),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn phase_metric(current: &str) -> String {
    format!(
        "# HELP sluice_job_phase 1 for the job's current phase.\n# TYPE sluice_job_phase gauge\nsluice_job_phase{{phase=\"{current}\"}} 1\n"
    )
}

/// The status as Prometheus text.
fn metrics(s: &Status) -> String {
    let state = |name: &str| u8::from(s.state == name);
    format!(
        "# HELP sluice_stream_transactions_total Upstream transactions applied.\n\
         # TYPE sluice_stream_transactions_total counter\nsluice_stream_transactions_total {}\n\
         # HELP sluice_stream_rows_total Row changes applied.\n\
         # TYPE sluice_stream_rows_total counter\nsluice_stream_rows_total {}\n\
         # HELP sluice_stream_binlog_bytes_total Binlog bytes read.\n\
         # TYPE sluice_stream_binlog_bytes_total counter\nsluice_stream_binlog_bytes_total {}\n\
         # HELP sluice_stream_events_total Binlog events read.\n\
         # TYPE sluice_stream_events_total counter\nsluice_stream_events_total {}\n\
         # HELP sluice_stream_lag_seconds Seconds behind the source.\n\
         # TYPE sluice_stream_lag_seconds gauge\nsluice_stream_lag_seconds {}\n\
         # HELP sluice_stream_lag_bytes Source binlog bytes not applied yet (0 across a file change).\n\
         # TYPE sluice_stream_lag_bytes gauge\nsluice_stream_lag_bytes {}\n\
         # HELP sluice_stream_reconnects_total Binlog reconnects.\n\
         # TYPE sluice_stream_reconnects_total counter\nsluice_stream_reconnects_total {}\n\
         # HELP sluice_stream_errors_total Errors recovered from (source and target reconnects).\n\
         # TYPE sluice_stream_errors_total counter\nsluice_stream_errors_total {}\n\
         # HELP sluice_stream_state 1 for the current state.\n\
         # TYPE sluice_stream_state gauge\n\
         sluice_stream_state{{state=\"running\"}} {}\nsluice_stream_state{{state=\"paused\"}} {}\nsluice_stream_state{{state=\"held\"}} {}\n",
        s.transactions,
        s.rows,
        s.binlog_bytes,
        s.events,
        s.lag_seconds,
        s.lag_bytes,
        s.reconnects,
        s.errors,
        state("running"),
        state("paused"),
        state("held"),
    )
}
