//! The binlog reader: registers as a replica, reads events, keeps the 64-bit position, verifies
//! checksums, decodes row events against the schema view and hands whole transactions on.
//!
//! Positions. The offset is counted from event sizes since the last ROTATE; the header's 32-bit
//! `log_pos` (the event's end) only cross-checks the low 32 bits, because it wraps in a file
//! past 4 GiB. Artificial events (flag 0x20, or `log_pos` 0: the ROTATE and FORMAT_DESCRIPTION
//! a server sends first, heartbeats) occupy no bytes of the file. After a GTID start the server
//! skips to the transaction without saying where it is, so the first real event re-bases the
//! offset on its `log_pos`.
//!
//! Reconnects. The reader remembers the mark after the last whole transaction it handed on.
//! When the connection breaks (network, source restart) it drops the transaction it was
//! reading, reconnects with backoff and asks for the binlog from that mark, so nothing is lost
//! and nothing is handed on twice. MariaDB is asked by file and offset while the offset fits
//! COM_BINLOG_DUMP's 32 bits, by GTID (`@slave_connect_state`) beyond.
//!
//! DDL. A DDL on a replicated table is handed on, and the reader waits until it has been
//! applied to the target before it decodes another event: the schema view reads the target.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use mysql_async::BinlogStream;
use mysql_async::binlog::BinlogChecksumAlg;
use mysql_async::binlog::BinlogVersion;
use mysql_async::binlog::events::{Event, EventData, TableMapEvent};
use mysql_common::binlog::EventStreamReader;
use sluice_core::{
    BinlogPosition, Endpoint, Flavor, GtidSet, MariaGtid, Routes, TableFilter, TableName,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::binlog_conn::{OpenError, open_stream};
use crate::cell::{Row, row_literals};
use crate::cursor::{Cursor, advance, rotate_body};
use crate::event::event_type as et;
use crate::relay::{FLAG_COPIED_FDE, Follower, RelayDir};
use crate::schema_view::SchemaView;
use crate::transaction::{ChangeKind, Ddl, Item, Mark, RowChange, Transaction, XaAction, XaStep};
use crate::xa::{self, XaStatement, Xid};
use crate::{StreamError, compressed, mariadb};
use mysql_async::binlog::row::BinlogRow;
use sluice_core::ddl::{Statement, classify, route_statement};

/// No event or heartbeat for this long: the connection is dead.
pub(crate) const SILENCE: Duration = Duration::from_secs(20);
/// How long the reader keeps trying to reach a source that went away.
pub(crate) const RECONNECT_FOR: Duration = Duration::from_secs(600);
/// Header flags.
pub(crate) const LOG_EVENT_ARTIFICIAL_F: u16 = 0x20;
const LOG_EVENT_IGNORABLE_F: u16 = 0x80;

/// Where to stop (`--until`): after the transaction that ends at or past a position, or once
/// a GTID set is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    Position(BinlogPosition),
    Gtid(GtidSet),
}

impl Until {
    pub fn reached(&self, mark: &Mark) -> bool {
        match self {
            Until::Position(p) => {
                mark.position.file > p.file
                    || (mark.position.file == p.file && mark.position.offset >= p.offset)
            }
            Until::Gtid(g) => mark.gtid.contains(g),
        }
    }
}

/// Why the reader ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderEnd {
    Until,
    Stopped,
}

/// What the reader has seen, for status lines.
#[derive(Debug, Default, Clone)]
pub struct ReaderStatus {
    pub events: u64,
    pub bytes: u64,
    pub reconnects: u64,
    /// The source's binlog end as its last heartbeat said (file, low 32 bits of the offset).
    pub source_end: Option<(String, u32)>,
}

impl ReaderStatus {
    /// Bytes of the source's binlog past `applied`, as far as the last heartbeat tells: 0 when
    /// the source has moved to another file since (the count would need every file's size).
    pub fn lag_bytes(&self, applied: &BinlogPosition) -> u64 {
        match &self.source_end {
            Some((file, end)) if *file == applied.file => {
                u64::from(*end).saturating_sub(applied.offset & 0xFFFF_FFFF)
            }
            _ => 0,
        }
    }
}

pub struct ReaderConfig {
    pub source: Endpoint,
    pub flavor: Flavor,
    pub server_id: u32,
    pub filter: TableFilter,
    pub routes: Routes,
    pub until: Option<Until>,
    /// Read the source's events from this relay log instead of a connection of our own.
    pub relay: Option<RelayDir>,
    /// Per source table: changes before this position are in the (resumed) dump already.
    pub skip_before: HashMap<TableName, BinlogPosition>,
}

impl ReaderConfig {
    /// The dump holds the effect of this event on `table` already.
    fn in_dump(&self, table: &TableName, at: &BinlogPosition) -> bool {
        !at.file.is_empty() && self.skip_before.get(table).is_some_and(|p| at < p)
    }
}

/// Where a rows event finds its TABLE_MAP: the network stream's decoder or the relay's.
pub(crate) trait TableMaps {
    fn table_map(&self, table_id: u64) -> Option<&TableMapEvent<'static>>;
}

impl TableMaps for BinlogStream {
    fn table_map(&self, table_id: u64) -> Option<&TableMapEvent<'static>> {
        self.get_tme(table_id)
    }
}

impl TableMaps for EventStreamReader {
    fn table_map(&self, table_id: u64) -> Option<&TableMapEvent<'static>> {
        self.get_tme(table_id)
    }
}

/// A transaction being read.
struct Building {
    gtid: Option<MariaGtid>,
    mysql_gtid: Option<String>,
    standalone: bool,
    timestamp: u32,
    changes: Vec<RowChange>,
}

pub struct Reader {
    cfg: ReaderConfig,
    schema: SchemaView,
    out: mpsc::Sender<Item>,
    stop: watch::Receiver<bool>,
    /// The mark after the last item handed on: where a reconnect resumes.
    boundary: Mark,
    seq: u64,
    status: Arc<Mutex<ReaderStatus>>,
    warned: HashSet<TableName>,
    /// Target table → the source table routed there, to refuse a merge met mid-stream.
    routed_from: HashMap<TableName, TableName>,
    /// A new source to switch to (the control API's update-source), at a transaction boundary.
    sources: watch::Receiver<Endpoint>,
}

/// How one binlog connection ended.
enum Session {
    Ended(ReaderEnd),
    /// Another source was set: reconnect there by GTID.
    Switch,
}

impl Reader {
    pub fn new(
        cfg: ReaderConfig,
        schema: SchemaView,
        start: Mark,
        out: mpsc::Sender<Item>,
        stop: watch::Receiver<bool>,
        status: Arc<Mutex<ReaderStatus>>,
        sources: watch::Receiver<Endpoint>,
    ) -> Reader {
        Reader {
            cfg,
            schema,
            out,
            stop,
            boundary: start,
            seq: 0,
            status,
            warned: HashSet::new(),
            routed_from: HashMap::new(),
            sources,
        }
    }

    fn source_name(&self) -> String {
        self.cfg.source.address()
    }

    /// Reads until `--until`, a stop request, or an error that a reconnect cannot fix.
    pub async fn run(mut self) -> Result<ReaderEnd, StreamError> {
        if self
            .cfg
            .until
            .as_ref()
            .is_some_and(|u| u.reached(&self.boundary))
        {
            return Ok(ReaderEnd::Until);
        }
        let mut failing_since: Option<Instant> = None;
        let mut delay = Duration::from_millis(250);
        loop {
            let before = self.boundary.clone();
            match self.session().await {
                Ok(Session::Ended(end)) => return Ok(end),
                Ok(Session::Switch) => {
                    let next = self.sources.borrow_and_update().clone();
                    tracing::info!(
                        "switching the source from {} to {} at GTID {}",
                        self.cfg.source,
                        next,
                        self.boundary.gtid
                    );
                    self.cfg.source = next;
                    // File names and offsets are the old server's: the new one is asked by GTID.
                    self.boundary.position = BinlogPosition::new("", 0);
                    failing_since = None;
                }
                Err(e) if e.is_transient() => {
                    if self.boundary != before {
                        failing_since = None;
                        delay = Duration::from_millis(250);
                    }
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > RECONNECT_FOR {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                        "binlog connection lost; reconnecting from {}", self.boundary.position);
                    self.lock_status().reconnects += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.stop.changed() => return Ok(ReaderEnd::Stopped),
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, ReaderStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stream_error(&self, cause: mysql_async::Error) -> StreamError {
        StreamError::binlog(self.source_name(), self.boundary.position.clone(), cause)
    }

    /// One binlog connection, from the boundary mark (from the relay log when there is one).
    async fn session(&mut self) -> Result<Session, StreamError> {
        if let Some(relay) = self.cfg.relay.clone() {
            return self.relay_session(&relay).await;
        }
        let (mut stream, mut cursor) = open_stream(
            &self.cfg.source,
            self.cfg.flavor,
            self.cfg.server_id,
            &self.boundary,
        )
        .await
        .map_err(|e| match e {
            OpenError::Server(e) => self.stream_error(e),
            OpenError::Config(e) => e,
        })?;
        let mut building: Option<Building> = None;
        let mut first_event = true;
        loop {
            let next = tokio::select! {
                n = tokio::time::timeout(SILENCE, stream.next()) => n,
                _ = self.stop.changed() => return Ok(Session::Ended(ReaderEnd::Stopped)),
                // Only between transactions: the one being read is read again from the new source.
                _ = self.sources.changed() => return Ok(Session::Switch),
            };
            let ev = match next {
                Err(_) => {
                    return Err(self.stream_error(mysql_async::Error::Io(
                        mysql_async::IoError::Io(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no event or heartbeat for 20 s",
                        )),
                    )));
                }
                Ok(None) => {
                    return Err(self.stream_error(mysql_async::Error::Io(
                        mysql_async::IoError::Io(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the source ended the binlog stream",
                        )),
                    )));
                }
                Ok(Some(Err(e))) => return Err(self.stream_error(e)),
                Ok(Some(Ok(ev))) => ev,
            };
            let done = self
                .handle_event(&stream, &ev, &mut cursor, &mut building, first_event)
                .await?;
            first_event = false;
            if let Some(end) = done {
                return Ok(Session::Ended(end));
            }
        }
    }

    /// Reads the relay log from the boundary mark: the same events the source would send,
    /// each with its upstream position recorded by the puller.
    async fn relay_session(&mut self, relay: &RelayDir) -> Result<Session, StreamError> {
        let start = self.boundary.position.clone();
        let mut follower = tokio::select! {
            f = Follower::open(relay, &start) => f?,
            _ = self.stop.changed() => return Ok(Session::Ended(ReaderEnd::Stopped)),
        };
        let mut decoder = EventStreamReader::new(BinlogVersion::Version4);
        let mut parsed = 0u64;
        let mut building: Option<Building> = None;
        loop {
            let record = tokio::select! {
                r = follower.next() => r?,
                _ = self.stop.changed() => return Ok(Session::Ended(ReaderEnd::Stopped)),
            };
            let file = follower.upstream_file().to_owned();
            let ev = decoder
                .read(&record.event[..])
                .ok()
                .flatten()
                .ok_or_else(|| StreamError::Corrupt {
                    file: file.clone(),
                    offset: record.before,
                    reason: "a relay log record that does not decode as an event".into(),
                })?;
            parsed += 1;
            if record.flags & FLAG_COPIED_FDE != 0
                || (file == start.file && record.before < start.offset)
            {
                continue; // decoded for its format and table maps only
            }
            let mut cursor = Cursor::at(&file, record.before);
            let done = self
                .handle_event(&decoder, &ev, &mut cursor, &mut building, parsed == 1)
                .await?;
            if let Some(end) = done {
                return Ok(Session::Ended(end));
            }
        }
    }

    /// One event; `Some` when the reader is to end.
    async fn handle_event(
        &mut self,
        stream: &(dyn TableMaps + Sync),
        ev: &Event,
        cursor: &mut Cursor,
        building: &mut Option<Building>,
        first_event: bool,
    ) -> Result<Option<ReaderEnd>, StreamError> {
        let h = ev.header();
        let kind = h.event_type_raw();
        let artificial = h.flags_raw() & LOG_EVENT_ARTIFICIAL_F != 0 || h.log_pos() == 0;
        let at = BinlogPosition::new(cursor.file.clone(), cursor.offset);
        {
            let mut s = self.lock_status();
            s.events += 1;
            s.bytes += u64::from(h.event_size());
        }
        if let Some(crc) = ev.checksum()
            && ev.calc_checksum(BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32)
                != u32::from_le_bytes(crc)
        {
            return Err(StreamError::Corrupt {
                file: at.file,
                offset: at.offset,
                reason: format!("CRC32 mismatch in a type {kind} event"),
            });
        }
        if !artificial && kind != et::ROTATE {
            advance(cursor, h.event_size(), h.log_pos());
        }
        if kind != et::ROTATE && cursor.skips(at.offset) {
            return Ok(None); // re-reading a file up to the resume point
        }
        match kind {
            et::ROTATE => {
                let (position, name) = rotate_body(ev, first_event);
                cursor.rotate(name, position);
                // A GTID start names the file, not the offset: re-base on the next event.
                cursor.resync = cursor.resync && artificial;
                let mark = Mark {
                    position: BinlogPosition::new(cursor.file.clone(), cursor.offset),
                    gtid: self.boundary.gtid.clone(),
                };
                if building.is_none() && !cursor.resync && self.until_reached(&mark) {
                    return Ok(Some(ReaderEnd::Until));
                }
            }
            et::GTID_MARIADB => {
                let g = mariadb::gtid(ev.data(), h.server_id()).ok_or_else(|| {
                    StreamError::Corrupt {
                        file: at.file.clone(),
                        offset: at.offset,
                        reason: "a GTID event too short to decode".into(),
                    }
                })?;
                *building = Some(Building {
                    gtid: Some(g.gtid),
                    mysql_gtid: None,
                    standalone: g.is_standalone(),
                    timestamp: h.timestamp(),
                    changes: Vec::new(),
                });
            }
            et::GTID_MYSQL | et::GTID_TAGGED_MYSQL => {
                let gtid = match ev.read_data() {
                    Ok(Some(EventData::GtidEvent(g))) => Some(mysql_gtid_text(&g)),
                    _ => None,
                };
                *building = Some(Building {
                    gtid: None,
                    mysql_gtid: gtid,
                    standalone: false,
                    timestamp: h.timestamp(),
                    changes: Vec::new(),
                });
            }
            et::QUERY_COMPRESSED..=et::DELETE_ROWS_COMPRESSED_V2 => {
                let plain = compressed::inflate(ev).map_err(|reason| StreamError::Corrupt {
                    file: at.file.clone(),
                    offset: at.offset,
                    reason,
                })?;
                if plain.header().event_type_raw() == et::QUERY {
                    return self.handle_query(&plain, &at, cursor, building).await;
                }
                self.handle_rows(stream, &plain, &at, building).await?;
            }
            et::XID => return self.finish(building, cursor).await,
            et::QUERY => return self.handle_query(ev, &at, cursor, building).await,
            et::WRITE_ROWS_V1..=et::DELETE_ROWS_V1
            | et::WRITE_ROWS_V2..=et::DELETE_ROWS_V2
            | et::PARTIAL_UPDATE_ROWS => {
                self.handle_rows(stream, ev, &at, building).await?;
            }
            et::HEARTBEAT => {
                let file = String::from_utf8_lossy(ev.data()).into_owned();
                self.lock_status().source_end = Some((file, h.log_pos()));
            }
            // MySQL ends `XA COMMIT … ONE PHASE` with an XA_PREPARE event whose first byte
            // (one_phase) is 1: an ordinary commit.
            et::XA_PREPARE if ev.data().first().is_some_and(|&one_phase| one_phase != 0) => {
                return self.finish(building, cursor).await;
            }
            et::XA_PREPARE => {
                let xid =
                    Xid::from_prepare_event(ev.data()).ok_or_else(|| StreamError::Corrupt {
                        file: at.file.clone(),
                        offset: at.offset,
                        reason: "an XA_PREPARE event too short to decode".into(),
                    })?;
                let end = self.mark_after(building.as_ref(), cursor);
                let (changes, timestamp) = building
                    .take()
                    .map_or((Vec::new(), h.timestamp()), |b| (b.changes, b.timestamp));
                let step = XaStep {
                    xid,
                    action: XaAction::Prepare(changes),
                    end: end.clone(),
                    timestamp,
                };
                return self.hand_on(Item::Xa(step), end).await;
            }
            k if is_known_without_effect(k) => {
                // Between transactions (a new file's FORMAT_DESCRIPTION, GTID_LIST, and a
                // BINLOG_CHECKPOINT, which MariaDB may write anywhere in a file): the position
                // after them is a checkpoint and an `--until` target. An idle source whose last
                // event is one of them would otherwise leave the task behind it for good.
                if building.is_none() && !artificial && !cursor.resync && ends_nothing_open(k) {
                    let end = self.mark_after(None, cursor);
                    return self.hand_on(Item::Progress(end.clone()), end).await;
                }
            }
            other if h.flags_raw() & LOG_EVENT_IGNORABLE_F != 0 => {
                tracing::warn!(event_type = other, position = %at, "skipped an unknown event marked ignorable");
            }
            other => {
                return Err(StreamError::UnknownEvent {
                    position: at,
                    event_type: other,
                });
            }
        }
        Ok(None)
    }

    fn until_reached(&self, mark: &Mark) -> bool {
        self.cfg.until.as_ref().is_some_and(|u| u.reached(mark))
    }

    async fn handle_query(
        &mut self,
        ev: &Event,
        at: &BinlogPosition,
        cursor: &Cursor,
        building: &mut Option<Building>,
    ) -> Result<Option<ReaderEnd>, StreamError> {
        let Ok(Some(EventData::QueryEvent(q))) = ev.read_data() else {
            return Err(StreamError::Corrupt {
                file: at.file.clone(),
                offset: at.offset,
                reason: "a QUERY event that does not decode".into(),
            });
        };
        let sql = q.query().into_owned();
        let schema = q.schema().into_owned();
        match xa::parse_statement(&sql) {
            Some(XaStatement::Commit(xid)) => {
                return self
                    .xa_end(xid, XaAction::Commit, ev, building, cursor)
                    .await;
            }
            Some(XaStatement::Rollback(xid)) => {
                return self
                    .xa_end(xid, XaAction::Rollback, ev, building, cursor)
                    .await;
            }
            Some(XaStatement::OnePhaseCommit) => return self.finish(building, cursor).await,
            Some(XaStatement::Framing) | None => {}
        }
        let statement = classify(&sql, &schema);
        match &statement {
            Statement::Begin => {
                if building.is_none() {
                    *building = Some(Building {
                        gtid: None,
                        mysql_gtid: None,
                        standalone: false,
                        timestamp: ev.header().timestamp(),
                        changes: Vec::new(),
                    });
                }
                Ok(None)
            }
            Statement::Commit => self.finish(building, cursor).await,
            Statement::Rollback => {
                if let Some(b) = building.as_mut() {
                    b.changes.clear();
                }
                self.finish(building, cursor).await
            }
            Statement::StatementDml(_) if statement.is_selected(&self.cfg.filter) => {
                Err(StreamError::SourceSetup {
                    source_name: self.source_name(),
                    reason: format!(
                        "a row change on a replicated table was logged as a statement at {at} \
                         (a session with binlog_format=STATEMENT): `{}`; Sluice applies only ROW \
                         events exactly: make every session use ROW (SET GLOBAL binlog_format = 'ROW')",
                        shorten(&sql)
                    ),
                })
            }
            Statement::TableDdl(_) | Statement::DatabaseDdl(_) => {
                let end = self.mark_after(building.as_ref(), cursor);
                *building = None;
                let in_dump = match &statement {
                    Statement::TableDdl(t) => {
                        !t.is_empty() && t.iter().all(|n| self.cfg.in_dump(n, at))
                    }
                    _ => false,
                };
                if in_dump || !statement.is_selected(&self.cfg.filter) {
                    return self.hand_on(Item::Progress(end.clone()), end).await;
                }
                let tables = match &statement {
                    Statement::TableDdl(t) => t.iter().map(|n| self.cfg.routes.route(n)).collect(),
                    _ => Vec::new(),
                };
                let (sql, schema) = route_statement(&sql, &schema, &self.cfg.routes);
                self.seq += 1;
                let (applied, wait) = oneshot::channel();
                let ddl = Ddl {
                    seq: self.seq,
                    end: end.clone(),
                    schema,
                    statement: sql,
                    tables,
                    applied,
                };
                let result = self.hand_on(Item::Ddl(ddl), end).await;
                // The schema view reads the target: wait until the DDL is there.
                if wait.await.is_err() {
                    return Ok(Some(ReaderEnd::Stopped));
                }
                self.schema.invalidate();
                result
            }
            _ => {
                if building.as_ref().is_some_and(|b| b.standalone) || building.is_none() {
                    let end = self.mark_after(building.as_ref(), cursor);
                    *building = None;
                    if !matches!(statement, Statement::StatementDml(_)) {
                        tracing::debug!(position = %at, statement = %shorten(&sql), "skipped a statement that changes no replicated table");
                    }
                    return self.hand_on(Item::Progress(end.clone()), end).await;
                }
                Ok(None)
            }
        }
    }

    /// The second phase of an XA transaction prepared earlier: an event group of its own.
    async fn xa_end(
        &mut self,
        xid: Xid,
        action: XaAction,
        ev: &Event,
        building: &mut Option<Building>,
        cursor: &Cursor,
    ) -> Result<Option<ReaderEnd>, StreamError> {
        let end = self.mark_after(building.as_ref(), cursor);
        *building = None;
        let step = XaStep {
            xid,
            action,
            end: end.clone(),
            timestamp: ev.header().timestamp(),
        };
        self.hand_on(Item::Xa(step), end).await
    }

    /// The mark after the current event, with the transaction's GTID counted.
    fn mark_after(&self, building: Option<&Building>, cursor: &Cursor) -> Mark {
        let mut gtid = self.boundary.gtid.clone();
        if let Some(b) = building {
            if let Some(g) = b.gtid {
                let _ = gtid.add_mariadb(g);
            }
            if let Some(text) = &b.mysql_gtid
                && let Ok(one) = text.parse::<GtidSet>()
                && let Ok(u) = gtid.union(&one)
            {
                gtid = u;
            }
        }
        Mark {
            position: BinlogPosition::new(cursor.file.clone(), cursor.offset),
            gtid,
        }
    }

    /// Ends the transaction being read and hands it on.
    async fn finish(
        &mut self,
        building: &mut Option<Building>,
        cursor: &Cursor,
    ) -> Result<Option<ReaderEnd>, StreamError> {
        let end = self.mark_after(building.as_ref(), cursor);
        let Some(b) = building.take() else {
            return self.hand_on(Item::Progress(end.clone()), end).await;
        };
        if b.changes.is_empty() {
            return self.hand_on(Item::Progress(end.clone()), end).await;
        }
        self.seq += 1;
        let t = Transaction {
            seq: self.seq,
            gtid: b.gtid,
            end: end.clone(),
            timestamp: b.timestamp,
            changes: b.changes,
        };
        self.hand_on(Item::Transaction(t), end).await
    }

    async fn hand_on(&mut self, item: Item, end: Mark) -> Result<Option<ReaderEnd>, StreamError> {
        if self.out.send(item).await.is_err() {
            return Ok(Some(ReaderEnd::Stopped));
        }
        self.boundary = end;
        if self.until_reached(&self.boundary) {
            return Ok(Some(ReaderEnd::Until));
        }
        Ok(None)
    }

    async fn handle_rows(
        &mut self,
        stream: &(dyn TableMaps + Sync),
        ev: &Event,
        at: &BinlogPosition,
        building: &mut Option<Building>,
    ) -> Result<(), StreamError> {
        let corrupt = |reason: String| StreamError::Corrupt {
            file: at.file.clone(),
            offset: at.offset,
            reason,
        };
        let Ok(Some(EventData::RowsEvent(data))) = ev.read_data() else {
            return Err(corrupt("a rows event that does not decode".into()));
        };
        let Some(tme) = stream.table_map(data.table_id()) else {
            return Err(corrupt("a rows event without its TABLE_MAP".into()));
        };
        let name = TableName::new(tme.database_name(), tme.table_name());
        if !self.cfg.filter.matches(&name.database, &name.table) || self.cfg.in_dump(&name, at) {
            return Ok(());
        }
        let target = self.cfg.routes.route(&name);
        let schema_error = |reason: String| StreamError::Schema {
            table: if target == name {
                name.plain()
            } else {
                format!("{} (routed to {})", name.plain(), target.plain())
            },
            position: at.clone(),
            reason,
        };
        let first = self
            .routed_from
            .entry(target.clone())
            .or_insert_with(|| name.clone());
        if *first != name {
            return Err(schema_error(format!(
                "{} is routed to the same table; merging tables is not supported",
                first.plain()
            )));
        }
        let Some(def) = self.schema.table(&target).await? else {
            return Err(schema_error(
                "the target has no such table; import the dump (or create it) before streaming"
                    .into(),
            ));
        };
        if tme.columns_count() as usize != def.columns.len() {
            return Err(schema_error(format!(
                "the binlog row has {} columns but the target's table has {}; the target's schema \
                 is not the source's at this position",
                tme.columns_count(),
                def.columns.len()
            )));
        }
        if !def.has_primary_key() && self.warned.insert(name.clone()) {
            tracing::warn!(table = %name.plain(), "no primary key: rows are matched on all columns");
        }
        let kind = ChangeKind::of(&data);
        let b = building.get_or_insert_with(|| Building {
            gtid: None,
            mysql_gtid: None,
            standalone: false,
            timestamp: ev.header().timestamp(),
            changes: Vec::new(),
        });
        for row in data.rows(tme) {
            let (before, after) = row.map_err(|e| corrupt(format!("row image: {e}")))?;
            // An after image's partial JSON update applies to the before image's cell.
            let decode = |r: Option<&BinlogRow>,
                          before: Option<&BinlogRow>|
             -> Result<Option<Row>, StreamError> {
                r.map(|r| row_literals(r, before, &def.columns).map_err(schema_error))
                    .transpose()
            };
            b.changes.push(RowChange {
                table: def.clone(),
                kind,
                before: decode(before.as_ref(), None)?,
                after: decode(after.as_ref(), before.as_ref())?,
            });
        }
        Ok(())
    }
}

fn mysql_gtid_text(g: &mysql_async::binlog::events::GtidEvent) -> String {
    let s = g.sid();
    let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}:{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32],
        g.gno()
    )
}

/// Events that stand between transactions and open none: the position after one is a place
/// to restart from. (An ANONYMOUS_GTID, by contrast, is the first event of a transaction.)
fn ends_nothing_open(kind: u8) -> bool {
    matches!(
        kind,
        et::STOP
            | et::FORMAT_DESCRIPTION
            | et::PREVIOUS_GTIDS
            | et::BINLOG_CHECKPOINT
            | et::GTID_LIST
    )
}

/// Events that change no row and carry nothing the streamer needs.
fn is_known_without_effect(kind: u8) -> bool {
    matches!(
        kind,
        et::STOP
            | et::FORMAT_DESCRIPTION
            | et::TABLE_MAP
            | et::INTVAR
            | et::RAND
            | et::USER_VAR
            | et::ROWS_QUERY
            | et::ANONYMOUS_GTID
            | et::PREVIOUS_GTIDS
            | et::TRANSACTION_PAYLOAD
            | et::ANNOTATE_ROWS
            | et::BINLOG_CHECKPOINT
            | et::GTID_LIST
            | et::START_ENCRYPTION
    )
}

fn shorten(sql: &str) -> String {
    let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        one_line.chars().take(117).collect::<String>() + "…"
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_compares_files_then_offsets() {
        let mark = |f: &str, o| Mark {
            position: BinlogPosition::new(f, o),
            gtid: GtidSet::default(),
        };
        let u = Until::Position(BinlogPosition::new("b.000002", 500));
        assert!(!u.reached(&mark("b.000002", 499)));
        assert!(u.reached(&mark("b.000002", 500)));
        assert!(u.reached(&mark("b.000003", 4)));
        assert!(!u.reached(&mark("b.000001", 9_999)));
        let g = Until::Gtid("0-1-10".parse().unwrap());
        let mut m = mark("b", 4);
        m.gtid = "0-1-9".parse().unwrap();
        assert!(!g.reached(&m));
        m.gtid = "0-1-10".parse().unwrap();
        assert!(g.reached(&m));
    }
}
