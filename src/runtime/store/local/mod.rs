//! The local backend: an append-only NDJSON journal, one segment file per stream.
//!
//! Owns: the on-disk format of `<dir>/<stream>.ndjson` (segment) and
//! `<dir>/<stream>.snapshot.json` (snapshot) ([`format`]), replay on open, the single
//! writer thread that batches appends and fsyncs according to [`Fsync`] ([`writer`]),
//! snapshot-based compaction, and the quarantine of damaged lines and snapshots
//! ([`quarantine`]). [`LocalBackend`] puts it behind the store seam ([`super::Backend`]);
//! [`Journal`] is the untyped handle the stores not yet on [`super::Stream`] use.
//!
//! Must not touch: any toolset, server or transport module. It knows nothing
//! about what the records mean.
//!
//! # Format
//!
//! Each segment line is `{"seq":N,"rec":<record>}` followed by `\n`. The
//! snapshot is `{"version":1,"last_seq":N,"records":[...]}`. Replay returns
//! the snapshot records first, then every segment record whose `seq` is
//! greater than the snapshot's `last_seq` (so a crash between writing the
//! snapshot and truncating the segment never duplicates records). A record's
//! `seq` is its [`Position`].
//!
//! # Rotation / compaction
//!
//! The journal cannot know how to compact an owner's records, so it never
//! rotates on its own. Owners check [`Journal::segment_bytes`] (or
//! [`Journal::needs_compaction`], which compares against
//! [`StreamOptions::max_segment_bytes`]) and compact with a function that keeps, of
//! every record so far, those that rebuild the same state (the typed layer's
//! [`super::Compaction`] rules). Sequence numbers keep increasing across compaction
//! and reopen.
//!
//! [`Journal::compact_retaining`] queues one: the writer notes a cut (the appends
//! queued before it), a helper thread reads every record up to the cut back, keeps what
//! the owner's function returns and writes that as the next snapshot, and the writer,
//! between two batches, installs it and keeps the segment's records after the cut, so
//! appends wait only for the install and nothing appended meanwhile is lost. This is
//! the only compaction the seam offers ([`super::Log::compact`]).
//!
//! Crash safety: a snapshot is written to a temp file, fsynced and renamed over the old
//! one, and the directory is fsynced before the segment shrinks (truncated, or replaced
//! by its tail the same way); a snapshot's `last_seq` hides the segment records it
//! holds. So a kill at any point leaves the old snapshot with the old segment, or the
//! new snapshot with the old or the new segment: never a partial file. Temp files left
//! by a crash are removed on open.
//!
//! Damage: a corrupt line before the last one (not JSON, or a sequence number that does
//! not increase) is not fatal. Opening a stream for writing moves each such line, as it
//! was, to `<stream>.quarantine-<UTC time>` next to the segment (fsynced), rewrites the
//! segment without them (temp file + rename), keeps every good record and reports the
//! damage to [`crate::runtime::damage`]; an unreadable snapshot is moved aside the same way
//! (`<stream>.snapshot.quarantine-<UTC time>`) and the segment replayed in full.
//! Readers ([`Journal::read_each`], [`super::Log::read_after`], compaction) skip such lines.
//!
//! Each stream has one writer thread of its own, blocked on the request queue when idle:
//! appends reach it with one wake-up and are acknowledged straight from it, with no
//! hand-off through the async workers or the blocking pool.

mod format;
mod quarantine;
#[cfg(test)]
mod tests;
mod writer;

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::{BoxFuture, Fsync, Log, Opened, Position, Read, Retain, StoreError, StreamOptions};
use format::{StreamPaths, TornTail, file_identity, read_snapshot, replay_segment};
use writer::{Request, Writer, run_writer};

const CHANNEL_CAPACITY: usize = 8192;
/// The writer thread's stack: it only encodes lines and makes file system calls.
const WRITER_STACK: usize = 256 * 1024;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) struct Shared {
    stream: String,
    /// The directory the stream's files are in.
    dir: PathBuf,
    segment_bytes: AtomicU64,
    last_seq: AtomicU64,
    /// The last durable seq, for [`Log::durable`] waiters.
    durable: watch::Sender<u64>,
    /// The writer has stopped.
    closed: AtomicBool,
    max_segment_bytes: u64,
    /// A [`Request::Retain`] is queued and not yet handled.
    retain_queued: AtomicBool,
}

impl Shared {
    /// Marks the stream closed and wakes every [`Log::durable`] waiter.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.durable.send_modify(|_| {});
    }
}

/// Handle to one journal stream. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Request>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("stream", &self.shared.stream)
            .field("last_seq", &self.last_seq())
            .finish()
    }
}

impl Journal {
    /// Open (or create) `stream` in `dir` with default options and `policy`,
    /// returning the handle and the replayed records.
    pub fn open(
        dir: &Path,
        stream: &str,
        policy: Fsync,
    ) -> Result<(Journal, Vec<Value>), StoreError> {
        let options = StreamOptions {
            policy,
            ..StreamOptions::default()
        };
        Self::open_with(dir, stream, options)
    }

    /// Open (or create) `stream` in `dir` with explicit options.
    pub fn open_with(
        dir: &Path,
        stream: &str,
        options: StreamOptions,
    ) -> Result<(Journal, Vec<Value>), StoreError> {
        let (journal, read) = Self::open_read(dir, stream, options)?;
        Ok((journal, read.into_values()))
    }

    /// [`Journal::open_with`], returning what it replayed with positions.
    pub fn open_read(
        dir: &Path,
        stream: &str,
        options: StreamOptions,
    ) -> Result<(Journal, Read), StoreError> {
        validate_stream(stream)?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let paths = StreamPaths::new(dir, stream);
        for tmp in [&paths.snapshot_tmp, &paths.retain_tmp, &paths.segment_tmp] {
            let _ = fs::remove_file(tmp);
        }
        let (snapshot_seq, snapshot) = match read_snapshot(&paths.snapshot) {
            Err(StoreError::Corrupt { reason, .. }) => {
                quarantine::quarantine_snapshot(&paths, stream, &reason)?;
                (0, Vec::new())
            }
            other => other?,
        };
        let mut read = Read {
            snapshot: (snapshot_seq > 0 || !snapshot.is_empty())
                .then_some((Position(snapshot_seq), snapshot)),
            records: Vec::new(),
        };
        let mut bad = Vec::new();
        let mut segment = replay_segment(
            &paths.segment,
            snapshot_seq,
            TornTail::Truncate,
            &mut bad,
            &mut |seq, record| read.records.push((Position(seq), record)),
        )?;
        if !bad.is_empty() {
            segment.len = quarantine::quarantine_lines(&paths, stream, &bad, segment.len)?;
        }
        let last_seq = segment.last_seq.max(snapshot_seq);

        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.segment)
            .map_err(io_err(&paths.segment))?;
        let shared = Arc::new(Shared {
            stream: stream.to_string(),
            dir: dir.to_path_buf(),
            segment_bytes: AtomicU64::new(segment.len),
            last_seq: AtomicU64::new(last_seq),
            durable: watch::Sender::new(last_seq),
            closed: AtomicBool::new(false),
            max_segment_bytes: options.max_segment_bytes,
            retain_queued: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let writer = Writer {
            wake: tx.downgrade(),
            file,
            buf: Vec::new(),
            paths,
            len: segment.len,
            next_seq: last_seq + 1,
            policy: options.policy,
            shared: shared.clone(),
            appends: None,
            retaining: None,
        };
        std::thread::Builder::new()
            .name(format!("journal-{stream}"))
            .stack_size(WRITER_STACK)
            .spawn(move || run_writer(writer, rx))
            .map_err(io_err(dir))?;
        Ok((Journal { tx, shared }, read))
    }

    /// Hands every record of `stream` in `dir` (snapshot, then segment) to `each`, one
    /// at a time, without opening the stream for writing: a torn last line ends the read
    /// and is left in place for the writer's [`Journal::open`] to drop. Nothing when the
    /// stream does not exist. A compaction that replaces the snapshot during the read
    /// makes it start over, so the records handed out are one consistent view.
    pub fn read_each(
        dir: &Path,
        stream: &str,
        each: &mut dyn FnMut(Value),
    ) -> Result<(), StoreError> {
        let read = read_consistent(dir, stream, Position::START, None)?;
        read.into_values().into_iter().for_each(&mut *each);
        Ok(())
    }

    /// Stream name.
    pub fn stream(&self) -> &str {
        &self.shared.stream
    }

    /// Append one record; resolves with its sequence number once durable
    /// under the journal's [`Fsync`].
    pub async fn append(&self, record: &impl Serialize) -> Result<u64, StoreError> {
        let line = serde_json::to_vec(record)?;
        self.submit(vec![line]).await
    }

    /// Append several records contiguously; returns their sequence numbers.
    pub async fn append_many<T: Serialize>(&self, records: &[T]) -> Result<Vec<u64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let lines = records
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        let count = lines.len() as u64;
        let first = self.submit(lines).await?;
        Ok((first..first + count).collect())
    }

    async fn submit(&self, records: Vec<Vec<u8>>) -> Result<u64, StoreError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::Append { records, ack })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues a compaction that keeps what `retain` returns of every record (snapshot
    /// records, then segment records, in journal order) up to the appends queued before
    /// it, if the segment is then still over [`StreamOptions::max_segment_bytes`];
    /// records appended later stay in the segment. `retain` runs on a helper thread.
    /// Does not wait: returns `false` (and drops `retain`) when one is already queued or
    /// running, or the queue is full. Failures are logged; the journal stays as it was.
    pub fn compact_retaining(&self, retain: Retain) -> bool {
        if self.shared.retain_queued.swap(true, Ordering::AcqRel) {
            return false;
        }
        if self.tx.try_send(Request::Retain { retain }).is_err() {
            self.shared.retain_queued.store(false, Ordering::Release);
            return false;
        }
        true
    }

    /// Compacts now, whatever the segment's size, to what `retain` keeps of every record
    /// appended before this call (after finishing a [`Journal::compact_retaining`] in
    /// progress); appends wait meanwhile.
    pub async fn compact_retained(&self, retain: Retain) -> Result<(), StoreError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::RetainNow { retain, ack })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Whether a [`Journal::compact_retaining`] is queued or running.
    pub fn compaction_pending(&self) -> bool {
        self.shared.retain_queued.load(Ordering::Acquire)
    }

    /// Current size of the segment file in bytes.
    pub fn segment_bytes(&self) -> u64 {
        self.shared.segment_bytes.load(Ordering::Acquire)
    }

    /// Whether the segment exceeds [`StreamOptions::max_segment_bytes`].
    pub fn needs_compaction(&self) -> bool {
        self.segment_bytes() > self.shared.max_segment_bytes
    }

    /// Highest sequence number durably written (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::Acquire)
    }

    /// Flush queued appends and stop the writer. Later appends fail with
    /// [`StoreError::Closed`]. Idempotent.
    pub async fn close(&self) {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Request::Close { ack }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

pub(super) fn validate_stream(stream: &str) -> Result<(), StoreError> {
    let ok = !stream.is_empty()
        && stream.len() <= 128
        && !stream.starts_with('.')
        && stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidStream(stream.to_string()))
    }
}

/// Every record of `stream` in `dir` after `after` and up to `upto` (all when `None`),
/// with the snapshot when `after` is before it, without opening the stream for writing:
/// a torn last line ends the read and is left for the writer's open to drop. A
/// compaction that replaces the snapshot during the read makes it start over, so the
/// records handed out are one consistent view. Empty when the stream does not exist.
fn read_consistent(
    dir: &Path,
    stream: &str,
    after: Position,
    upto: Option<u64>,
) -> Result<Read, StoreError> {
    validate_stream(stream)?;
    let paths = StreamPaths::new(dir, stream);
    let upto = upto.unwrap_or(u64::MAX);
    loop {
        let before = file_identity(&paths.snapshot);
        let (snapshot_seq, snapshot) = read_snapshot(&paths.snapshot)?;
        let from = after.0.max(snapshot_seq);
        let mut records = Vec::new();
        replay_segment(
            &paths.segment,
            snapshot_seq,
            TornTail::Keep,
            &mut Vec::new(),
            &mut |seq, record| {
                if seq > from && seq <= upto {
                    records.push((Position(seq), record));
                }
            },
        )?;
        if file_identity(&paths.snapshot) == before {
            let with_snapshot = after.0 < snapshot_seq || (after.0 == 0 && !snapshot.is_empty());
            return Ok(Read {
                snapshot: with_snapshot.then_some((Position(snapshot_seq), snapshot)),
                records,
            });
        }
    }
}

impl Log for Journal {
    fn name(&self) -> &str {
        self.stream()
    }

    fn append(&self, records: Vec<Vec<u8>>) -> BoxFuture<'_, Result<Position, StoreError>> {
        Box::pin(async move {
            if records.is_empty() {
                return Ok(Position(self.last_seq() + 1));
            }
            self.submit(records).await.map(Position)
        })
    }

    fn last_position(&self) -> Position {
        Position(self.last_seq())
    }

    fn durable(&self, after: Position) -> BoxFuture<'_, Result<Position, StoreError>> {
        let mut rx = self.shared.durable.subscribe();
        Box::pin(async move {
            loop {
                let last = *rx.borrow_and_update();
                if last > after.0 {
                    return Ok(Position(last));
                }
                if self.shared.closed.load(Ordering::Acquire) {
                    return Err(StoreError::Closed);
                }
                rx.changed().await.map_err(|_| StoreError::Closed)?;
            }
        })
    }

    fn read_after(&self, after: Position) -> BoxFuture<'_, Result<Read, StoreError>> {
        let (dir, stream) = (self.shared.dir.clone(), self.shared.stream.clone());
        let upto = self.last_seq();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || read_consistent(&dir, &stream, after, Some(upto)))
                .await
                .map_err(|e| StoreError::Backend(format!("journal read task: {e}")))?
        })
    }

    fn needs_compaction(&self) -> bool {
        Journal::needs_compaction(self)
    }

    fn compact(&self, retain: Retain) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.compact_retained(retain))
    }

    fn compact_in_background(&self, retain: Retain) -> bool {
        self.compact_retaining(retain)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(Journal::close(self))
    }
}

/// The local backend: streams are journals in one directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    dir: PathBuf,
}

impl LocalBackend {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalBackend { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// [`super::Backend::open`] without the future: opening a local stream only touches
    /// local files, so constructors that are not async can open one.
    pub fn open_now(&self, stream: &str, options: StreamOptions) -> Result<Opened, StoreError> {
        let (journal, read) = Journal::open_read(&self.dir, stream, options)?;
        Ok((Arc::new(journal), read))
    }

    /// [`super::Backend::streams`] without the future: every name with a segment or a
    /// snapshot in the directory (none when it does not exist).
    pub fn streams_now(&self) -> Result<Vec<String>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut streams = std::collections::BTreeSet::new();
        for entry in entries {
            let name = entry.map_err(io_err(&self.dir))?.file_name();
            let name = name.to_string_lossy();
            let stream = name
                .strip_suffix(".snapshot.json")
                .or_else(|| name.strip_suffix(".ndjson"));
            match stream {
                Some(s) if validate_stream(s).is_ok() => {
                    streams.insert(s.to_string());
                }
                Some(s) => {
                    tracing::warn!(stream = s, dir = %self.dir.display(), "ignoring unexpected journal file")
                }
                None => {}
            }
        }
        Ok(streams.into_iter().collect())
    }

    /// [`super::Log::read_after`] without the future, for readers that are not async:
    /// the records of `stream` after `after`, read from its files (see
    /// [`Journal::read_each`] for how it meets a concurrent compaction).
    pub fn read_now(&self, stream: &str, after: Position) -> Result<Read, StoreError> {
        read_consistent(&self.dir, stream, after, None)
    }
}

impl super::Backend for LocalBackend {
    fn streams(&self) -> BoxFuture<'_, Result<Vec<String>, StoreError>> {
        Box::pin(async move { self.streams_now() })
    }

    fn open<'a>(
        &'a self,
        stream: &'a str,
        options: StreamOptions,
    ) -> BoxFuture<'a, Result<Opened, StoreError>> {
        Box::pin(async move { self.open_now(stream, options) })
    }

    fn open_now(&self, stream: &str, options: StreamOptions) -> Result<Opened, StoreError> {
        LocalBackend::open_now(self, stream, options)
    }

    fn streams_now(&self) -> Result<Vec<String>, StoreError> {
        LocalBackend::streams_now(self)
    }
}
