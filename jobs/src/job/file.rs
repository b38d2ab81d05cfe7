//! The job file: a strict TOML document, checked whole before anything runs.
//!
//! Every key is known to a schema ([`SECTIONS`]); an unknown key, a value of the wrong type,
//! a bad URL, size, duration or choice is reported with its `file:line:column`, and every
//! problem of the file is reported at once (not the first only), with the closest known key
//! suggested for a misspelt one. Secrets never sit in the file: passwords come from
//! `password_file` or `password_env`.

use std::path::Path;
use std::time::Duration;

use sluice_core::{Endpoint, Routes, Secret, TableFilter};
use toml::de::{DeTable, DeValue};

use super::cron::Cron;

/// What a value must be.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Count,
    StrList,
    /// `"64MiB"`, `"2GiB"`, or a plain number of bytes.
    Size,
    /// `"30s"`, `"5m"`, `"1h"`, `"250ms"`.
    Duration,
    Choice(&'static [&'static str]),
    /// `[[checksum.schedule]]` entries: `cron = "…"` each.
    Schedules,
}

type Keys = &'static [(&'static str, Kind)];

const SERVER: Keys = &[
    ("url", Kind::Text),
    ("password_file", Kind::Text),
    ("password_env", Kind::Text),
];

/// Every section and its keys; `""` is the top level.
const SECTIONS: &[(&str, Keys)] = &[
    (
        "",
        &[
            ("name", Kind::Text),
            ("mode", Kind::Choice(&["one-shot", "continuous"])),
        ],
    ),
    ("source", SERVER),
    ("target", SERVER),
    ("storage", &[("url", Kind::Text)]),
    (
        "filter",
        &[("include", Kind::StrList), ("exclude", Kind::StrList)],
    ),
    (
        "dump",
        &[
            ("threads", Kind::Count),
            ("format", Kind::Choice(&["sql", "csv", "parquet"])),
            ("compress", Kind::Choice(&["none", "gzip", "zstd"])),
            ("chunk_rows", Kind::Count),
            ("file_size", Kind::Size),
        ],
    ),
    (
        "import",
        &[
            ("threads", Kind::Count),
            ("sort_dir", Kind::Text),
            ("sort_memory", Kind::Size),
            (
                "load_method",
                Kind::Choice(&["auto", "bulk-insert", "load-data"]),
            ),
        ],
    ),
    (
        "stream",
        &[
            ("workers", Kind::Count),
            ("server_id", Kind::Count),
            ("status_every", Kind::Duration),
            ("relay_dir", Kind::Text),
            ("relay_retention", Kind::Duration),
            ("relay_max_size", Kind::Size),
        ],
    ),
    (
        "checksum",
        &[
            ("threads", Kind::Count),
            ("chunk_rows", Kind::Count),
            ("schedule", Kind::Schedules),
        ],
    ),
    (
        "control",
        &[("listen", Kind::Text), ("token_file", Kind::Text)],
    ),
];

/// A job, checked and typed.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub continuous: bool,
    pub source: Endpoint,
    pub target: Endpoint,
    pub storage: String,
    pub filter: TableFilter,
    /// `[[route]]` rules, in file order (the first that matches a table wins).
    pub routes: Routes,
    pub dump_threads: Option<usize>,
    pub dump_format: Option<String>,
    pub dump_compress: Option<String>,
    pub dump_chunk_rows: Option<u64>,
    pub dump_file_size: Option<u64>,
    pub import_threads: Option<usize>,
    pub sort_dir: Option<String>,
    pub sort_memory: Option<u64>,
    /// `[import] load_method`, as `sluice import --load-method`.
    pub load_method: Option<String>,
    pub stream_workers: usize,
    pub server_id: Option<u32>,
    pub status_every: Option<Duration>,
    /// Keep the source's binlog in a relay log here from the dump's position on.
    pub relay_dir: Option<std::path::PathBuf>,
    pub relay_retention: Option<Duration>,
    pub relay_max_bytes: Option<u64>,
    pub checksum_threads: Option<usize>,
    pub checksum_chunk_rows: Option<u64>,
    pub control_listen: Option<std::net::SocketAddr>,
    pub control_token: Option<Secret>,
    /// Online checksums while a continuous job streams.
    pub schedules: Vec<Cron>,
}

/// All the problems of one file, one per line.
#[derive(Debug)]
pub struct JobFileErrors(pub Vec<String>);

impl std::fmt::Display for JobFileErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

struct Reader<'a> {
    file: String,
    text: &'a str,
    errors: Vec<String>,
}

impl Reader<'_> {
    fn at(&self, offset: usize) -> String {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{}:{line}:{column}", self.file)
    }

    fn error(&mut self, offset: usize, message: impl std::fmt::Display) {
        let at = self.at(offset);
        self.errors.push(format!("{message} at {at}"));
    }
}

fn section_name(s: &str) -> String {
    if s.is_empty() {
        "the top level".to_owned()
    } else {
        format!("[{s}]")
    }
}

/// Reads and checks a job file.
pub fn load(path: &Path) -> Result<Job, JobFileErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| JobFileErrors(vec![format!("{}: {e}", path.display())]))?;
    parse(&text, &path.display().to_string())
}

/// Checks a job document; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Job, JobFileErrors> {
    let mut r = Reader {
        file: file.to_owned(),
        text,
        errors: Vec::new(),
    };
    let doc = match DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let at = r.at(e.span().map_or(0, |s| s.start));
            return Err(JobFileErrors(vec![format!(
                "{} at {at}",
                e.message().trim()
            )]));
        }
    };
    let top = doc.get_ref();
    let mut values: Vec<(String, String, toml::de::DeValue<'_>, usize)> = Vec::new();
    walk(&mut r, "", top, &mut values);
    for (section, required) in [
        ("", "name"),
        ("source", "url"),
        ("target", "url"),
        ("storage", "url"),
    ] {
        let present = values
            .iter()
            .any(|(s, k, _, _)| s == section && k == required);
        if !present {
            r.errors.push(format!(
                "missing `{required}` in {} of {file}",
                section_name(section)
            ));
        }
    }
    let job = build(&mut r, &values);
    if r.errors.is_empty() {
        job.ok_or_else(|| JobFileErrors(vec![format!("{file}: incomplete job")]))
    } else {
        Err(JobFileErrors(r.errors))
    }
}

fn walk<'i>(
    r: &mut Reader<'_>,
    section: &str,
    table: &DeTable<'i>,
    out: &mut Vec<(String, String, DeValue<'i>, usize)>,
) {
    let keys = SECTIONS
        .iter()
        .find(|(s, _)| *s == section)
        .map(|(_, k)| *k)
        .unwrap_or(&[]);
    for (key, value) in table {
        let name = key.get_ref().as_ref();
        let offset = key.span().start;
        if section.is_empty()
            && let DeValue::Table(inner) = value.get_ref()
        {
            if SECTIONS.iter().any(|(s, _)| *s == name && !s.is_empty()) {
                walk(r, name, inner, out);
            } else {
                let known: Vec<&str> = SECTIONS
                    .iter()
                    .map(|(s, _)| *s)
                    .filter(|s| !s.is_empty())
                    .collect();
                r.error(
                    offset,
                    format!("unknown section [{name}]{}", suggest(name, &known)),
                );
            }
            continue;
        }
        if section.is_empty() && name == "route" {
            if matches!(value.get_ref(), DeValue::Array(_)) {
                out.push((
                    String::new(),
                    name.to_owned(),
                    value.get_ref().clone(),
                    offset,
                ));
            } else {
                r.error(
                    offset,
                    "`route` must be [[route]] tables with `from` and `to`",
                );
            }
            continue;
        }
        let Some((_, kind)) = keys.iter().find(|(k, _)| *k == name) else {
            let known: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            r.error(
                offset,
                format!(
                    "unknown key `{name}` in {}{}",
                    section_name(section),
                    suggest(name, &known)
                ),
            );
            continue;
        };
        let v = value.get_ref();
        let at = value.span().start;
        let bad = |want: &str| {
            format!(
                "`{name}` in {} must be {want}, not {}",
                section_name(section),
                v.type_str()
            )
        };
        if let Kind::Schedules = kind {
            let DeValue::Array(entries) = v else {
                r.error(
                    at,
                    format!(
                        "`{name}` in [{section}] must be [[{section}.{name}]] tables, not {}",
                        v.type_str()
                    ),
                );
                continue;
            };
            for entry in entries {
                let DeValue::Table(t) = entry.get_ref() else {
                    r.error(
                        entry.span().start,
                        "each [[checksum.schedule]] is a table with `cron`",
                    );
                    continue;
                };
                let mut cron = false;
                for (k, val) in t {
                    match (k.get_ref().as_ref(), val.get_ref()) {
                        ("cron", DeValue::String(text)) => {
                            cron = true;
                            if let Err(e) = Cron::parse(text) {
                                r.error(
                                    val.span().start,
                                    format!("[[checksum.schedule]] cron: {e}"),
                                );
                            }
                        }
                        ("cron", other) => r.error(
                            val.span().start,
                            format!("`cron` must be a string, not {}", other.type_str()),
                        ),
                        (other, _) => r.error(
                            k.span().start,
                            format!(
                                "unknown key `{other}` in [[checksum.schedule]]{}",
                                suggest(other, &["cron"])
                            ),
                        ),
                    }
                }
                if !cron {
                    r.error(entry.span().start, "[[checksum.schedule]] needs `cron = \"…\"` (minute hour day month weekday)");
                }
            }
            out.push((section.to_owned(), name.to_owned(), v.clone(), at));
            continue;
        }
        match (kind, v) {
            (Kind::Text | Kind::Size | Kind::Duration | Kind::Choice(_), DeValue::String(_)) => {}
            (Kind::Count | Kind::Size, DeValue::Integer(_)) => {}
            (Kind::StrList, DeValue::Array(items))
                if items.iter().all(|i| i.get_ref().is_str()) => {}
            (Kind::Text, _) => {
                r.error(at, bad("a string"));
                continue;
            }
            (Kind::Count, _) => {
                r.error(at, bad("a whole number"));
                continue;
            }
            (Kind::StrList, _) => {
                r.error(at, bad("a list of strings"));
                continue;
            }
            (Kind::Size, _) => {
                r.error(at, bad("a size such as \"64MiB\""));
                continue;
            }
            (Kind::Duration, _) => {
                r.error(at, bad("a duration such as \"30s\""));
                continue;
            }
            (Kind::Choice(c), _) => {
                r.error(at, bad(&format!("one of {}", c.join(", "))));
                continue;
            }
            (Kind::Schedules, _) => continue,
        }
        out.push((section.to_owned(), name.to_owned(), v.clone(), at));
    }
}

/// `[[route]]` entries: `from` and `to` each, no `from` twice. Problems go to `r`.
fn routes(r: &mut Reader<'_>, value: &DeValue<'_>) -> Routes {
    let mut routes = Routes::default();
    let DeValue::Array(entries) = value else {
        return routes;
    };
    let mut seen: Vec<String> = Vec::new();
    for entry in entries {
        let at = entry.span().start;
        let DeValue::Table(t) = entry.get_ref() else {
            r.error(at, "each [[route]] is a table with `from` and `to`");
            continue;
        };
        let (mut from, mut to) = (None, None);
        for (k, val) in t {
            let key = k.get_ref().as_ref();
            match (key, val.get_ref()) {
                ("from", DeValue::String(text)) => {
                    from = Some((text.to_string(), val.span().start))
                }
                ("to", DeValue::String(text)) => to = Some(text.to_string()),
                ("from" | "to", other) => r.error(
                    val.span().start,
                    format!(
                        "`{key}` in [[route]] must be a string, not {}",
                        other.type_str()
                    ),
                ),
                (other, _) => r.error(
                    k.span().start,
                    format!(
                        "unknown key `{other}` in [[route]]{}",
                        suggest(other, &["from", "to"])
                    ),
                ),
            }
        }
        let (Some((from, from_at)), Some(to)) = (from, to) else {
            r.error(
                at,
                "[[route]] needs `from = \"db.table\"` and `to = \"db.table\"`",
            );
            continue;
        };
        if seen.contains(&from) {
            r.error(
                from_at,
                format!("duplicate route: `from = \"{from}\"` is routed twice"),
            );
            continue;
        }
        seen.push(from.clone());
        if let Err(e) = routes.push(&from, &to) {
            r.error(from_at, format!("[[route]]: {e}"));
        }
    }
    routes
}

/// ` ; did you mean `x`?` when a known word is close.
fn suggest(word: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

fn build(r: &mut Reader<'_>, values: &[(String, String, DeValue<'_>, usize)]) -> Option<Job> {
    let get = |s: &str, k: &str| {
        values
            .iter()
            .find(|(vs, vk, _, _)| vs == s && vk == k)
            .map(|(_, _, v, at)| (v, *at))
    };
    let text = |s: &str, k: &str| get(s, k).and_then(|(v, _)| v.as_str().map(str::to_owned));
    let count = |r: &mut Reader<'_>, s: &str, k: &str| -> Option<u64> {
        let (v, at) = get(s, k)?;
        let i = v.as_integer()?;
        match i64::from_str_radix(
            i.as_str().replace('_', "").trim_start_matches("+"),
            i.radix(),
        ) {
            Ok(n) if n > 0 => Some(n as u64),
            _ => {
                r.error(
                    at,
                    format!("`{k}` in [{s}] must be a whole number of at least 1"),
                );
                None
            }
        }
    };
    let choice = |s: &str, k: &str, r: &mut Reader<'_>| -> Option<String> {
        let (v, at) = get(s, k)?;
        let text = v.as_str()?.to_owned();
        let choices = SECTIONS
            .iter()
            .find(|(n, _)| *n == s)?
            .1
            .iter()
            .find(|(n, _)| *n == k)?
            .1;
        if let Kind::Choice(c) = choices
            && !c.contains(&text.as_str())
        {
            r.error(
                at,
                format!(
                    "`{k}` must be one of {}, not `{text}`{}",
                    c.join(", "),
                    suggest(&text, c)
                ),
            );
            return None;
        }
        Some(text)
    };
    let endpoint = |s: &str, r: &mut Reader<'_>| -> Option<Endpoint> {
        let (v, at) = get(s, "url")?;
        let url = v.as_str()?;
        let mut e: Endpoint = match url.parse() {
            Ok(e) => e,
            Err(err) => {
                r.error(at, format!("[{s}] url: {err}"));
                return None;
            }
        };
        if let Some((v, at)) = get(s, "password_file") {
            let path = v.as_str().unwrap_or_default();
            match std::fs::read_to_string(path) {
                Ok(p) => e = e.with_password(Secret::new(p.lines().next().unwrap_or_default())),
                Err(err) => r.error(at, format!("[{s}] password_file {path}: {err}")),
            }
        } else if let Some((v, at)) = get(s, "password_env") {
            let name = v.as_str().unwrap_or_default();
            match std::env::var(name) {
                Ok(p) => e = e.with_password(Secret::new(p)),
                Err(_) => r.error(
                    at,
                    format!("[{s}] password_env: the variable {name} is not set"),
                ),
            }
        }
        Some(e)
    };
    let name = text("", "name");
    if let (Some(n), Some((_, at))) = (&name, get("", "name"))
        && (n.is_empty()
            || n.len() > 100
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        r.error(
            at,
            format!("name `{n}`: use 1 to 100 letters, digits, `-`, `_` or `.`"),
        );
    }
    let continuous = choice("", "mode", r).is_some_and(|m| m == "continuous");
    let source = endpoint("source", r);
    let target = endpoint("target", r);
    let list = |k: &str| -> Vec<String> {
        get("filter", k)
            .and_then(|(v, _)| {
                v.as_array().map(|a| {
                    a.iter()
                        .filter_map(|i| i.get_ref().as_str().map(str::to_owned))
                        .collect()
                })
            })
            .unwrap_or_default()
    };
    let mut patterns = list("include");
    patterns.extend(
        list("exclude")
            .into_iter()
            .map(|p| format!("!{}", p.trim_start_matches('!'))),
    );
    let filter = match TableFilter::new(&patterns) {
        Ok(f) => Some(f),
        Err(e) => {
            let at = get("filter", "include").map_or(0, |(_, a)| a);
            r.error(at, format!("[filter]: {e}"));
            None
        }
    };
    let routes = get("", "route").map_or_else(Routes::default, |(v, _)| routes(r, v));
    let size = |r: &mut Reader<'_>, s: &str, k: &str| -> Option<u64> {
        let (v, at) = get(s, k)?;
        if let Some(i) = v.as_integer() {
            return i.as_str().parse().ok();
        }
        match parse_size(v.as_str()?) {
            Ok(n) => Some(n),
            Err(e) => {
                r.error(at, format!("`{k}` in [{s}]: {e}"));
                None
            }
        }
    };
    let duration = |r: &mut Reader<'_>, s: &str, k: &str| -> Option<Duration> {
        let (v, at) = get(s, k)?;
        match parse_duration(v.as_str()?) {
            Ok(d) => Some(d),
            Err(e) => {
                r.error(at, format!("`{k}` in [{s}]: {e}"));
                None
            }
        }
    };
    let control_listen = get("control", "listen").and_then(|(v, at)| {
        let t = v.as_str()?;
        match t.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                r.error(
                    at,
                    format!("[control] listen `{t}`: expected IP:PORT, e.g. 127.0.0.1:7300"),
                );
                None
            }
        }
    });
    let control_token = get("control", "token_file").and_then(|(v, at)| {
        let path = v.as_str()?;
        match std::fs::read_to_string(path) {
            Ok(t) => Some(Secret::new(t.lines().next().unwrap_or_default())),
            Err(e) => {
                r.error(at, format!("[control] token_file {path}: {e}"));
                None
            }
        }
    });
    if let Some(addr) = control_listen
        && !addr.ip().is_loopback()
        && control_token.is_none()
    {
        let at = get("control", "listen").map_or(0, |(_, a)| a);
        r.error(
            at,
            "[control] listen is not a loopback address: set token_file too",
        );
    }
    let dump_threads = count(r, "dump", "threads").map(|n| n as usize);
    let dump_chunk_rows = count(r, "dump", "chunk_rows");
    let import_threads = count(r, "import", "threads").map(|n| n as usize);
    let stream_workers = count(r, "stream", "workers").unwrap_or(1) as usize;
    let server_id = count(r, "stream", "server_id").map(|n| n.min(u64::from(u32::MAX)) as u32);
    let checksum_threads = count(r, "checksum", "threads").map(|n| n as usize);
    let checksum_chunk_rows = count(r, "checksum", "chunk_rows");
    let sort_memory = size(r, "import", "sort_memory");
    let dump_file_size = size(r, "dump", "file_size");
    let status_every = duration(r, "stream", "status_every");
    let relay_retention = duration(r, "stream", "relay_retention");
    let relay_max_bytes = size(r, "stream", "relay_max_size");
    let schedules: Vec<Cron> = get("checksum", "schedule")
        .and_then(|(v, _)| v.as_array())
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| {
                    e.get_ref()
                        .as_table()?
                        .get("cron")?
                        .get_ref()
                        .as_str()
                        .map(Cron::parse)
                })
                .filter_map(Result::ok)
                .collect()
        })
        .unwrap_or_default();
    if !schedules.is_empty() && !continuous {
        let at = get("checksum", "schedule").map_or(0, |(_, a)| a);
        r.error(at, "[[checksum.schedule]] needs mode = \"continuous\" (a one-shot job checks once at its end)");
    }
    let dump_format = choice("dump", "format", r);
    let dump_compress = choice("dump", "compress", r);
    Some(Job {
        name: name?,
        continuous,
        source: source?,
        target: target?,
        storage: text("storage", "url")?,
        filter: filter?,
        routes,
        dump_threads,
        dump_format,
        dump_compress,
        dump_chunk_rows,
        dump_file_size,
        import_threads,
        sort_dir: text("import", "sort_dir"),
        sort_memory,
        load_method: choice("import", "load_method", r),
        stream_workers,
        server_id,
        status_every,
        relay_dir: text("stream", "relay_dir").map(std::path::PathBuf::from),
        relay_retention,
        relay_max_bytes,
        checksum_threads,
        checksum_chunk_rows,
        control_listen,
        control_token,
        schedules,
    })
}

/// `"64MiB"`, `"2GiB"`, `"500kB"`, `"1024"` → bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as \"64MiB\""))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" | "k" => 1024.0,
        "mib" | "m" => 1024.0 * 1024.0,
        "gib" | "g" => 1024.0 * 1024.0 * 1024.0,
        "tib" | "t" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (B, KiB, MiB, GiB, TiB, kB, MB, GB)"
            ));
        }
    };
    Ok((n * factor) as u64)
}

/// `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"` → a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as \"30s\""))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86_400.0,
        "" => return Err(format!("`{text}` needs a unit: ms, s, m, h or d")),
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (ms, s, m, h, d)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// `sluice config example`: every setting, commented.
pub const EXAMPLE: &str = r#"# A Sluice job: dump → import → stream (→ final checksum in one-shot mode).
# Run it with `sluice run job.toml`; rerun the same command after any crash to continue.

name = "shop-migration"       # names the job's state and checkpoints on the target
mode = "one-shot"             # "one-shot": dump, import, catch up, checksum, exit
                              # "continuous": keep streaming until stopped (SIGTERM, `sluice stop`)

[source]                      # MySQL/MariaDB with log_bin, binlog_format=ROW, binlog_row_image=FULL
url = "mysql://root@127.0.0.1:3407"
# password_file = "/run/secrets/source"   # first line is the password
# password_env = "SOURCE_PASSWORD"        # or an environment variable

[target]                      # MySQL-protocol target (MySQL: local_infile=1 for the import)
url = "mysql://root@127.0.0.1:3408"
# password_file = "/run/secrets/target"

[storage]                     # where the dump goes: a path, file:///dir or s3://bucket/prefix
url = "/var/tmp/sluice/shop"  # (S3: AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, …)

[filter]
include = ["shop.*"]          # db.*, db.table, globs with * and ?
# exclude = ["shop.tmp_*"]

# [[route]]                   # where tables land on the target; first match wins, repeatable
# from = "shop.*"             # source tables, as in [filter]
# to = "shop_v2.*"            # db.table or db; `*` keeps the source's name (merges refused)

[dump]
# threads = 4                 # default: number of cores
# format = "sql"              # sql, csv or parquet
# compress = "none"           # none, gzip or zstd
# chunk_rows = 100000
# file_size = "256MiB"        # split a chunk's output into files of about this size

[import]
# threads = 4
# sort_dir = "/var/tmp/sluice-sort"
# sort_memory = "512MiB"
# load_method = "auto"        # auto (MariaDB: bulk INSERT; MySQL: LOAD DATA), bulk-insert or load-data

[stream]
# workers = 1                 # parallel appliers (key causality keeps order per row)
# server_id = 1234567         # replica id; default derived from the job name
# status_every = "30s"        # a status line this often
# relay_dir = "/var/lib/sluice/relay"   # keep the source's binlog on local disk from the dump's
                              # position on (pulled during the import; survives a purge)
# relay_retention = "7d"      # purge relay segments older than this that no task needs
# relay_max_size = "50GiB"    # and keep the relay below this size

[checksum]                    # the final check of a one-shot job (online, at sync points)
# threads = 2
# chunk_rows = 100000
# [[checksum.schedule]]       # continuous jobs: online checks while streaming (UTC cron)
# cron = "*/30 * * * *"       # minute hour day-of-month month day-of-week

[control]                     # the control API while the job streams
# listen = "127.0.0.1:7300"   # sluice status|pause|resume|stop --control http://127.0.0.1:7300
# token_file = "/run/secrets/sluice-token"   # required for a non-loopback address
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(text, "job.toml")
            .map(|_| Vec::new())
            .unwrap_or_else(|e| e.0)
    }

    const MINIMAL: &str = "name = \"shop-migration\"\nmode = \"one-shot\"\n\n[source]\nurl = \"mysql://root@127.0.0.1:3407\"\n\n[target]\nurl = \"mysql://root@127.0.0.1:3408\"\n\n[storage]\nurl = \"/var/tmp/sluice/shop\"\n\n[filter]\ninclude = [\"shop.*\"]\n";

    #[test]
    fn the_minimal_job_and_the_example_parse() {
        let job = parse(MINIMAL, "job.toml").unwrap();
        assert_eq!(job.name, "shop-migration");
        assert!(!job.continuous);
        assert!(job.filter.matches("shop", "orders"));
        assert!(
            parse(EXAMPLE, "example.toml").is_ok(),
            "{:?}",
            errors(EXAMPLE)
        );
    }

    #[test]
    fn routes_are_read_in_order() {
        let text = MINIMAL.to_owned()
            + "\n[[route]]\nfrom = \"shop.orders\"\nto = \"archive.orders\"\n\n[[route]]\nfrom = \"shop\"\nto = \"shop_v2\"\n";
        let job = parse(&text, "job.toml").unwrap();
        let t = |d: &str, n: &str| sluice_core::TableName::new(d, n);
        assert_eq!(
            job.routes.route(&t("shop", "orders")),
            t("archive", "orders")
        );
        assert_eq!(job.routes.route(&t("shop", "items")), t("shop_v2", "items"));
    }

    #[test]
    fn every_error_is_reported_with_its_place() {
        let text = MINIMAL.to_owned()
            + "\n[dump]\nthread = 4\nformat = \"xml\"\nchunk_rows = -5\n\n[import]\nsort_memory = \"12 parsecs\"\nload_method = \"fast\"\n";
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|m| m
                    == "unknown key `thread` in [dump]; did you mean `threads`? at job.toml:17:1"),
            "{e:?}"
        );
        assert!(
            e.iter().any(
                |m| m.contains("`format` must be one of sql, csv, parquet, not `xml`")
                    && m.contains("job.toml:18:10")
            ),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("chunk_rows") && m.contains("at least 1")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("unknown size unit `parsecs`")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m
                .contains("`load_method` must be one of auto, bulk-insert, load-data, not `fast`")),
            "{e:?}"
        );
        assert_eq!(e.len(), 5, "{e:?}");
    }

    #[test]
    fn malformed_files_each_get_their_message() {
        let cases: &[(&str, &str)] = &[
            (
                "name = \"x\"\n[source]\nurl = \"mysql://h:1\"\n[target]\nurl = \"mysql://h:2\"\n",
                "missing `url` in [storage]",
            ),
            (
                "name = 5\n",
                "`name` in the top level must be a string, not integer",
            ),
            (
                "name = \"x\"\n[sorce]\nurl = \"mysql://h:1\"\n",
                "unknown section [sorce]; did you mean `source`?",
            ),
            (
                "name = \"x\"\n[source]\nurl = \"postgres://h:1\"\n",
                "the scheme must be mysql://",
            ),
            (
                "name = \"x\"\n[source]\nurl = \"mysql://h:1\"\npassword_file = \"/nonexistent/pw\"\n",
                "password_file /nonexistent/pw",
            ),
            (
                "name = \"x\"\n[[route]]\nfrom = \"a.*\"\n",
                "[[route]] needs `from",
            ),
            (
                "name = \"x\"\n[[route]]\nfrom = \"a\"\nto = \"b\"\n[[route]]\nfrom = \"a\"\nto = \"c\"\n",
                "duplicate route: `from = \"a\"` is routed twice at job.toml:6:8",
            ),
            (
                "name = \"x\"\n[[route]]\nfrom = \"a\"\nto = \"b*\"\ntoo = 1\n",
                "unknown key `too` in [[route]]; did you mean `to`?",
            ),
            (
                "name = \"x\"\n[[route]]\nfrom = \"a\"\nto = \"b.c*\"\n",
                "not a glob at job.toml:3:8",
            ),
            (
                "name = \"x\"\n[stream]\nstatus_every = \"10\"\n",
                "needs a unit",
            ),
            (
                "name = \"x\"\n[control]\nlisten = \"0.0.0.0:7300\"\n",
                "not a loopback address",
            ),
            (
                "name = \"x\"\nmode = \"forever\"\n",
                "`mode` must be one of one-shot, continuous",
            ),
            (
                "name = \"x\"\n[filter]\ninclude = [\".t\"]\n",
                "[filter]: invalid filter",
            ),
            ("name = \"x\"\n[source\n", "at job.toml:2:"),
            (
                "name = \"x\"\nmode = \"continuous\"\n[[checksum.schedule]]\ncron = \"61 * * * *\"\n",
                "minute `61` is outside 0-59",
            ),
            (
                "name = \"x\"\n[[checksum.schedule]]\ncron = \"0 * * * *\"\n",
                "needs mode = \"continuous\"",
            ),
        ];
        for (text, want) in cases {
            let e = errors(text);
            assert!(
                e.iter().any(|m| m.contains(want)),
                "{text:?}: {e:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("-5MiB").is_err());
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 fortnights").is_err());
    }
}
