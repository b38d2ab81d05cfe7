//! Where dumps, relay logs and spill manifests live: one URL, local disk or S3.
//!
//! * a plain path or `file:///dir`: the local file system (the folder is created);
//! * `s3://bucket/prefix`: S3 or any S3-compatible endpoint, configured from the usual
//!   `AWS_*` environment variables ([`S3Options::from_env`]).
//!
//! Writes are atomic to a reader: an object appears whole or not at all. Locally
//! `object_store` writes a staging file and renames it; on S3 a single PUT or a multipart upload
//! only becomes visible when completed. [`StorageWriter`] streams any size with bounded memory
//! (multipart above its buffer size) and makes the object visible only in
//! [`StorageWriter::finish`]: a writer dropped on an error leaves nothing behind that a reader
//! could take for complete.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::direct_file::DirectFile;
use crate::{CoreError, Secret};

/// Bytes a [`StorageWriter`] buffers before it switches to a multipart upload; also the part size.
const WRITER_BUFFER_BYTES: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const WRITER_CONCURRENCY: usize = 4;

/// S3 connection settings. [`S3Options::from_env`] reads them the way the AWS tools do.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`): an S3-compatible endpoint such as MinIO or moto.
    pub endpoint: Option<String>,
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`); `us-east-1` when unset.
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Plain-HTTP endpoints are refused unless this is set (`AWS_ALLOW_HTTP=true`) or the
    /// endpoint itself is written `http://`.
    pub allow_http: bool,
}

impl S3Options {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let endpoint = var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT"));
        let allow_http = var("AWS_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1")
            || endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://"));
        S3Options {
            endpoint,
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY").map(Secret::new),
            session_token: var("AWS_SESSION_TOKEN").map(Secret::new),
            allow_http,
        }
    }
}

/// One object as listed: its name relative to the storage root, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// A storage root: a folder or a bucket prefix. Names passed to its methods are relative to it
/// and use `/` as separator.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
    /// The folder, for local storage: writers go straight to files there (see [`StorageWriter`]).
    local_root: Option<PathBuf>,
    /// Buffers of local reads, handed back by [`Storage::recycle`].
    read_buffers: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

/// Read buffers kept for reuse, and the largest kept: about the files in flight at once.
const KEPT_READ_BUFFERS: usize = 8;
const KEPT_READ_BUFFER_BYTES: usize = 64 << 20;

impl Storage {
    /// Opens a storage URL, taking S3 settings from the environment.
    pub fn open(url: &str) -> Result<Storage, CoreError> {
        Storage::open_with(url, &S3Options::from_env())
    }

    pub fn open_with(url: &str, s3: &S3Options) -> Result<Storage, CoreError> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(CoreError::invalid(
                    "storage URL",
                    url,
                    "no bucket after s3://",
                ));
            }
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(s3.region.clone().unwrap_or_else(|| "us-east-1".to_owned()))
                .with_allow_http(s3.allow_http);
            if let Some(endpoint) = &s3.endpoint {
                // Path-style requests: an explicit endpoint is usually an IP or a plain host
                // without per-bucket DNS names.
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(key) = &s3.access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = &s3.secret_access_key {
                builder = builder.with_secret_access_key(secret.expose());
            }
            if let Some(token) = &s3.session_token {
                builder = builder.with_token(token.expose());
            }
            let store = builder.build().map_err(|e| CoreError::Storage {
                location: url.to_owned(),
                action: "configure S3",
                source: e,
            })?;
            return Ok(Storage {
                store: Arc::new(store),
                prefix: Path::from(prefix.trim_matches('/')),
                url: url.to_owned(),
                local_root: None,
                read_buffers: Default::default(),
            });
        }
        let local = match url.strip_prefix("file://") {
            Some(path) => path,
            None if url.contains("://") => {
                return Err(CoreError::invalid(
                    "storage URL",
                    url,
                    "expected a path, file:///dir or s3://bucket/prefix",
                ));
            }
            None => url,
        };
        if local.is_empty() {
            return Err(CoreError::invalid("storage URL", url, "the path is empty"));
        }
        std::fs::create_dir_all(local).map_err(|source| CoreError::Io {
            path: local.to_owned(),
            action: "create the storage folder",
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(local).map_err(|e| CoreError::Storage {
            location: url.to_owned(),
            action: "open the folder",
            source: e,
        })?;
        Ok(Storage {
            store: Arc::new(store),
            prefix: Path::default(),
            url: url.to_owned(),
            local_root: Some(PathBuf::from(local)),
            read_buffers: Default::default(),
        })
    }

    /// The URL this storage was opened with, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn location(&self, name: &str) -> Path {
        let mut path = self.prefix.clone();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            path = path.clone().join(part);
        }
        path
    }

    fn error(&self, name: &str, action: &'static str, source: object_store::Error) -> CoreError {
        CoreError::Storage {
            location: format!("{}/{}", self.url.trim_end_matches('/'), name),
            action,
            source,
        }
    }

    /// Writes a whole object at once (small files: schemas, metadata).
    pub async fn put(&self, name: &str, data: impl Into<Bytes>) -> Result<(), CoreError> {
        if self.local_root.is_some() {
            // The same synced staging file and rename as streamed files.
            let mut writer = self.writer(name);
            let data: Bytes = data.into();
            let written = writer.write_all(&data).await;
            written.map_err(|source| CoreError::Io {
                path: writer.location.clone(),
                action: "write",
                source,
            })?;
            return writer.finish().await.map(|_| ());
        }
        self.store
            .put(&self.location(name), PutPayload::from_bytes(data.into()))
            .await
            .map(|_| ())
            .map_err(|e| self.error(name, "write", e))
    }

    /// Reads a whole object. A local file is read into a recycled buffer (see
    /// [`Storage::recycle`]): object_store reads each file into a fresh zeroed vector, and
    /// zeroing and faulting in those pages was a tenth of the importer's CPU (perf, sysbench).
    pub async fn get(&self, name: &str) -> Result<Bytes, CoreError> {
        let plain = !name.starts_with('/') && name.split('/').all(|p| p != ".." && p != ".");
        if let Some(root) = self.local_root.as_ref().filter(|_| plain) {
            let path = root.join(name);
            let buffer = self
                .read_buffers
                .lock()
                .ok()
                .and_then(|mut kept| kept.pop())
                .unwrap_or_default();
            let read = tokio::task::spawn_blocking(move || read_into(&path, buffer)).await;
            return match read {
                Ok(Ok(data)) => Ok(Bytes::from(data)),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(self.error(
                    name,
                    "read",
                    object_store::Error::NotFound {
                        path: name.to_owned(),
                        source: Box::new(e),
                    },
                )),
                Ok(Err(source)) => Err(CoreError::Io {
                    path: format!("{}/{}", self.url.trim_end_matches('/'), name),
                    action: "read",
                    source,
                }),
                Err(e) => Err(CoreError::Io {
                    path: name.to_owned(),
                    action: "read",
                    source: std::io::Error::other(e.to_string()),
                }),
            };
        }
        let result = self
            .store
            .get(&self.location(name))
            .await
            .map_err(|e| self.error(name, "read", e))?;
        result
            .bytes()
            .await
            .map_err(|e| self.error(name, "read", e))
    }

    /// Hands back what [`Storage::get`] returned, once read: its buffer serves the next local
    /// read if nothing else holds it.
    pub fn recycle(&self, data: Bytes) {
        let Ok(data) = data.try_into_mut() else {
            return;
        };
        let mut buffer = Vec::from(data);
        if buffer.capacity() > KEPT_READ_BUFFER_BYTES {
            return;
        }
        buffer.clear();
        if let Ok(mut kept) = self.read_buffers.lock()
            && kept.len() < KEPT_READ_BUFFERS
        {
            kept.push(buffer);
        }
    }

    /// Reads a whole object, or `None` when it does not exist.
    pub async fn get_if_exists(&self, name: &str) -> Result<Option<Bytes>, CoreError> {
        match self.get(name).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(CoreError::Storage {
                source: object_store::Error::NotFound { .. },
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every object under `prefix` (relative; `""` for all), sorted by name.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, CoreError> {
        let root = if prefix.is_empty() {
            self.prefix.clone()
        } else {
            self.location(prefix)
        };
        let strip = self.prefix.as_ref().len();
        let metas: Vec<_> = self
            .store
            .list(Some(&root))
            .try_collect()
            .await
            .map_err(|e| self.error(prefix, "list", e))?;
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| ObjectInfo {
                name: m.location.as_ref()[strip..]
                    .trim_start_matches('/')
                    .to_owned(),
                size: m.size,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes an object; deleting what is not there is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), CoreError> {
        match self.store.delete(&self.location(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(name, "delete", e)),
        }
    }

    /// A streaming writer for one object; see [`StorageWriter`].
    pub fn writer(&self, name: &str) -> StorageWriter {
        let location = format!("{}/{}", self.url.trim_end_matches('/'), name);
        let inner = match &self.local_root {
            Some(root) => WriterInner::Local(LocalFile::new(root.join(name))),
            None => WriterInner::Object(
                BufWriter::with_capacity(
                    self.store.clone(),
                    self.location(name),
                    WRITER_BUFFER_BYTES,
                )
                .with_max_concurrency(WRITER_CONCURRENCY),
            ),
        };
        StorageWriter {
            inner,
            location,
            bytes: 0,
        }
    }
}

/// Reads the file at `path` into `buffer` (emptied first).
fn read_into(path: &std::path::Path, mut buffer: Vec<u8>) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    buffer.clear();
    buffer.reserve(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut buffer)?;
    Ok(buffer)
}

/// Streams one object to storage. Nothing is visible to readers until [`finish`](Self::finish)
/// returns. On S3 large objects go up as a multipart upload with bounded memory. Locally the
/// bytes go straight into a hidden staging file (`name#<digits>`, which listings skip, as
/// object_store's own staging files), which `finish` syncs to disk and renames into place: one
/// copy fewer than object_store's buffered path, which matters on a dump's hot path.
pub struct StorageWriter {
    inner: WriterInner,
    location: String,
    bytes: u64,
}

enum WriterInner {
    Object(BufWriter),
    Local(LocalFile),
}

/// A local staging file, opened on the first write, written around the page cache (see
/// `direct_file.rs`).
struct LocalFile {
    target: PathBuf,
    staging: PathBuf,
    file: Option<DirectFile>,
}

impl LocalFile {
    fn new(target: PathBuf) -> LocalFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut staging = target.clone().into_os_string();
        staging.push(format!("#{}{n:06}", std::process::id()));
        LocalFile {
            target,
            staging: PathBuf::from(staging),
            file: None,
        }
    }

    fn file(&mut self) -> std::io::Result<&mut DirectFile> {
        if self.file.is_none() {
            if let Some(dir) = self.staging.parent() {
                std::fs::create_dir_all(dir)?;
            }
            self.file = Some(DirectFile::create(&self.staging)?);
        }
        self.file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("staging file not open"))
    }

    /// A stand-in left behind when the real file moves to the thread that commits it.
    fn detached() -> LocalFile {
        LocalFile {
            target: PathBuf::new(),
            staging: PathBuf::new(),
            file: None,
        }
    }

    /// Syncs the data, then renames: after a crash the name holds the whole file or nothing.
    fn commit(&mut self) -> std::io::Result<()> {
        self.file()?.finish()?;
        self.file = None;
        std::fs::rename(&self.staging, &self.target)
    }

    fn discard(&mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.staging);
    }
}

impl StorageWriter {
    /// Commits the object and returns its size in bytes.
    pub async fn finish(mut self) -> Result<u64, CoreError> {
        let result = match &mut self.inner {
            WriterInner::Object(w) => w.shutdown().await,
            // The sync waits for the disk: off the async threads, so that other tasks (a dump
            // worker reading its next chunk) go on meanwhile.
            WriterInner::Local(f) => {
                let mut file = std::mem::replace(f, LocalFile::detached());
                tokio::task::spawn_blocking(move || file.commit())
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            }
        };
        result.map_err(|source| CoreError::Io {
            path: self.location.clone(),
            action: "finish the upload",
            source,
        })?;
        Ok(self.bytes)
    }

    /// Gives up on the object: any multipart upload is aborted and nothing becomes visible.
    pub async fn abort(mut self) {
        match &mut self.inner {
            WriterInner::Object(w) => {
                if let Err(e) = w.abort().await {
                    tracing::warn!(object = %self.location, error = %e, "abort of a partial upload failed");
                }
            }
            WriterInner::Local(f) => f.discard(),
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        // Dropped without commit (an error or an interrupt): leave no staging file behind.
        if self.file.is_some() {
            self.discard();
        }
    }
}

impl AsyncWrite for StorageWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = match &mut self.inner {
            WriterInner::Object(w) => Pin::new(w).poll_write(cx, buf),
            // A copy into the file's buffer, and at most one 1 MiB write to disk: short enough
            // to do in place.
            WriterInner::Local(f) => Poll::Ready(
                f.file()
                    .and_then(|file| file.write_all(buf))
                    .map(|()| buf.len()),
            ),
        };
        if let Poll::Ready(Ok(n)) = &poll {
            self.bytes += *n as u64;
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.inner {
            WriterInner::Object(w) => Pin::new(w).poll_flush(cx),
            WriterInner::Local(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.inner {
            WriterInner::Object(w) => Pin::new(w).poll_shutdown(cx),
            WriterInner::Local(f) => Poll::Ready(f.commit()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_put_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("dump");
        let storage = Storage::open(root.to_str().unwrap()).unwrap();
        storage.put("b.sql", "b").await.unwrap();
        let mut odd = storage.writer("we%2Fird name.sql");
        odd.write_all(b"x").await.unwrap();
        odd.finish().await.unwrap();
        let mut dropped = storage.writer("never.sql");
        dropped.write_all(b"half").await.unwrap();
        drop(dropped);
        let mut w = storage.writer("a/x.csv");
        w.write_all(b"1,2\n").await.unwrap();
        assert_eq!(
            storage.get_if_exists("a/x.csv").await.unwrap(),
            None,
            "visible before finish"
        );
        assert_eq!(w.finish().await.unwrap(), 4);
        let names: Vec<_> = storage
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["a/x.csv", "b.sql", "we%2Fird name.sql"]);
        let on_disk = std::fs::read_dir(&root).unwrap().count();
        assert_eq!(on_disk, 3, "a dropped writer left its staging file");
        assert_eq!(storage.get("a/x.csv").await.unwrap().as_ref(), b"1,2\n");
        storage.delete("b.sql").await.unwrap();
        storage.delete("b.sql").await.unwrap();
        assert!(storage.get("b.sql").await.is_err());
    }

    #[tokio::test]
    async fn a_recycled_read_buffer_holds_only_the_next_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path().to_str().unwrap()).unwrap();
        storage.put("long.sql", vec![b'x'; 100_000]).await.unwrap();
        storage.put("short.sql", "abc").await.unwrap();
        let long = storage.get("long.sql").await.unwrap();
        storage.recycle(long.clone());
        assert!(
            storage.read_buffers.lock().unwrap().is_empty(),
            "a held buffer was kept"
        );
        storage.recycle(long);
        assert_eq!(storage.read_buffers.lock().unwrap().len(), 1);
        assert_eq!(storage.get("short.sql").await.unwrap().as_ref(), b"abc");
        assert!(storage.read_buffers.lock().unwrap().is_empty());
        assert!(storage.get_if_exists("gone.sql").await.unwrap().is_none());
        assert!(storage.get("../escape.sql").await.is_err());
    }

    #[test]
    fn rejects_unknown_schemes() {
        let err = Storage::open("gs://bucket/x").unwrap_err().to_string();
        assert!(err.contains("s3://"), "{err}");
        assert!(Storage::open("s3://").is_err());
    }
}
