//! Opening a binlog stream on a source as a replica would (`open_stream`, used by the reader
//! and the relay puller), and asking a candidate source whether it can serve a position
//! (`probe_source`, before an online switch).

use std::time::Duration;

use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, OptsBuilder};
use mysql_common::packets::{GnoInterval, Sid, Tag};
use sluice_core::{Endpoint, Flavor, GtidSet, MariaGtid};

use crate::StreamError;
use crate::cursor::Cursor;
use crate::event::event_type as et;
use crate::transaction::Mark;

/// Seconds between the source's heartbeats on an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Whether `source` can serve the binlog that follows `gtid` (MariaDB): it is asked for it as a
/// replica would ask, and must send its FORMAT_DESCRIPTION rather than refuse (a server that
/// lacks transactions of `gtid`, or purged what follows, refuses with its reason).
pub async fn probe_source(source: &Endpoint, gtid: &GtidSet, server_id: u32) -> Result<(), String> {
    let mut conn = source.connect().await.map_err(|e| e.to_string())?;
    crate::stream::check_source(&mut conn, source)
        .await
        .map_err(|e| e.to_string())?;
    // A server may accept a GTID request for a domain it has never seen (it waits for it), so
    // first the new source's own binlog state must hold every transaction of `gtid`.
    let state: Option<String> = conn
        .query_first("SELECT @@gtid_binlog_state")
        .await
        .map_err(|e| source.error("read @@gtid_binlog_state", e).to_string())?;
    let theirs: Vec<MariaGtid> = state
        .unwrap_or_default()
        .split(',')
        .filter_map(|g| g.trim().parse().ok())
        .collect();
    if let GtidSet::MariaDb(ours) = gtid {
        for g in ours.values() {
            let best = theirs
                .iter()
                .filter(|t| t.domain == g.domain)
                .map(|t| t.sequence)
                .max();
            match best {
                None => {
                    return Err(format!(
                        "its binlog has no transaction of domain {} (the stream is at {g})",
                        g.domain
                    ));
                }
                Some(seq) if seq < g.sequence => {
                    return Err(format!(
                        "it lacks domain {} transactions {}..{} (its binlog ends at sequence {seq})",
                        g.domain,
                        seq + 1,
                        g.sequence
                    ));
                }
                Some(_) => {}
            }
        }
    }
    conn.query_drop(format!(
        "SET @mariadb_slave_capability = 4; SET @slave_connect_state = '{gtid}'; SET @master_heartbeat_period = {}",
        HEARTBEAT.as_nanos()
    ))
    .await
    .map_err(|e| source.error("ask for the binlog by GTID", e).to_string())?;
    let mut stream = conn
        .get_binlog_stream(BinlogStreamRequest::new(server_id))
        .await
        .map_err(|e| source.error("register as a replica", e).to_string())?;
    let verdict = loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Err(_) => break Err(format!("{source} sent nothing within 10 s")),
            Ok(None) => break Err(format!("{source} ended the binlog stream")),
            Ok(Some(Err(mysql_async::Error::Server(e)))) => break Err(e.message),
            Ok(Some(Err(e))) => break Err(e.to_string()),
            Ok(Some(Ok(ev))) if ev.header().event_type_raw() == et::FORMAT_DESCRIPTION => {
                break Ok(());
            }
            Ok(Some(Ok(_))) => {}
        }
    };
    let _ = stream.close().await;
    verdict
}

/// Why a binlog stream could not be opened.
pub(crate) enum OpenError {
    Server(mysql_async::Error),
    Config(StreamError),
}

/// Connects to `source` as replica `server_id` and asks for the binlog from `mark`, returning
/// the stream and the cursor to read it with.
///
/// COM_BINLOG_DUMP takes a 32-bit offset, so a mark past 4 GiB of its file is asked for, in
/// order of preference: by GTID (MariaDB, when the mark has a GTID set; the first real event
/// re-bases the offset, its high bits from the mark), else from the start of the file, reading
/// over everything before the mark (MySQL, or a mark without GTIDs such as the relay log's).
/// A mark with no file is asked for by GTID.
pub(crate) async fn open_stream(
    source: &Endpoint,
    flavor: Flavor,
    server_id: u32,
    mark: &Mark,
) -> Result<(BinlogStream, Cursor), OpenError> {
    let opts = OptsBuilder::from_opts(source.opts())
        // Row events of big rows exceed the server's max_allowed_packet (see notes).
        .max_allowed_packet(Some(1 << 30));
    let mut conn =
        match tokio::time::timeout(Duration::from_secs(30), mysql_async::Conn::new(opts)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(OpenError::Server(e)),
            Err(_) => {
                return Err(OpenError::Server(mysql_async::Error::Io(
                    mysql_async::IoError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer within 30 s",
                    )),
                )));
            }
        };
    let past_4gib = mark.position.offset > u64::from(u32::MAX);
    let by_gtid = mark.position.file.is_empty()
        || (past_4gib && flavor == Flavor::MariaDb && !mark.gtid.is_empty());
    let from_file_start = past_4gib && !by_gtid;
    let mut setup = vec![format!(
        "SET @master_heartbeat_period = {}",
        HEARTBEAT.as_nanos()
    )];
    if flavor == Flavor::MariaDb {
        // Capability 4: real GTID events instead of BEGIN/dummy replacements (see notes).
        setup.push("SET @mariadb_slave_capability = 4".into());
        if by_gtid {
            setup.push(format!("SET @slave_connect_state = '{}'", mark.gtid));
        }
    }
    for sql in &setup {
        conn.query_drop(sql).await.map_err(OpenError::Server)?;
    }
    let file = mark.position.file.clone().into_bytes();
    let mut request = BinlogStreamRequest::new(server_id);
    let mut cursor = Cursor::at(&mark.position.file, mark.position.offset);
    if by_gtid {
        cursor.resync = true;
        cursor.floor = mark.position.offset;
        if flavor != Flavor::MariaDb {
            // COM_BINLOG_DUMP_GTID: the server skips every transaction of the set.
            let sids = mysql_sids(&mark.gtid).map_err(|e| {
                OpenError::Config(StreamError::Config(format!(
                    "the GTID set {} cannot be sent to MySQL: {e}",
                    mark.gtid
                )))
            })?;
            request = request.with_gtid().with_gtid_set(sids);
        }
    } else if from_file_start {
        tracing::warn!(position = %mark.position, "past 4 GiB without a GTID position: reading the file again from its start up to there");
        cursor.offset = 4;
        cursor.skip_to = mark.position.offset;
        request = request.with_filename(&file).with_pos(4u64);
    } else {
        request = request.with_filename(&file).with_pos(mark.position.offset);
    }
    let stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(OpenError::Server)?;
    Ok((stream, cursor))
}

/// A MySQL GTID set (`uuid[:tag]` → inclusive intervals) as the source ids of
/// COM_BINLOG_DUMP_GTID, whose intervals end one past their last transaction.
pub(crate) fn mysql_sids(set: &GtidSet) -> Result<Vec<Sid<'static>>, String> {
    let GtidSet::MySql(sources) = set else {
        return Err("not a MySQL GTID set".into());
    };
    sources
        .iter()
        .map(|(source, intervals)| {
            let (uuid, tag) = match source.split_once(':') {
                Some((uuid, tag)) => (uuid, Some(tag)),
                None => (source.as_str(), None),
            };
            let hex: String = uuid.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 {
                return Err(format!("`{uuid}` is not a UUID"));
            }
            let mut bytes = [0u8; 16];
            for (i, byte) in bytes.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                    .map_err(|_| format!("`{uuid}` is not a UUID"))?;
            }
            let intervals = intervals
                .iter()
                .map(|&(first, last)| GnoInterval::new(first, last + 1))
                .collect();
            let sid = Sid::new(bytes).with_intervals(intervals);
            Ok(match tag {
                Some(tag) => sid.with_tag(
                    Tag::new(tag.to_owned()).map_err(|_| format!("`{tag}` is not a GTID tag"))?,
                ),
                None => sid,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_gtid_sets_become_half_open_source_intervals() {
        let set: GtidSet = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7,3e11fa47-71ca-11e1-9e33-c80aa9429563:tag1:3"
            .parse()
            .unwrap_or_default();
        let sids = mysql_sids(&set).unwrap_or_default();
        assert_eq!(sids.len(), 2);
        assert_eq!(sids[0].uuid()[..2], [0x3e, 0x11]);
        let spans: Vec<(u64, u64)> = sids[0]
            .intervals()
            .iter()
            .map(|i| (i.start(), i.end()))
            .collect();
        assert_eq!(spans, [(1, 6), (7, 8)]);
        assert_eq!(
            sids[1].tag().map(|t| t.to_string()).as_deref(),
            Some("tag1")
        );
        assert!(mysql_sids(&GtidSet::default()).is_err());
    }
}
