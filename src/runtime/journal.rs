//! Append-only NDJSON journal, one segment file per stream.
//!
//! Owns: the on-disk format of `<dir>/<stream>.ndjson` (segment) and
//! `<dir>/<stream>.snapshot.json` (snapshot), replay on open, the single
//! writer thread that batches appends and fsyncs according to [`FsyncPolicy`],
//! and snapshot-based compaction.
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
//! snapshot and truncating the segment never duplicates records).
//!
//! # Rotation / compaction
//!
//! The journal cannot know how to compact an owner's records, so it never
//! rotates on its own. Owners check [`Journal::segment_bytes`] (or
//! [`Journal::needs_compaction`], which compares against
//! [`JournalOptions::max_segment_bytes`]) and call [`Journal::compact`] with
//! the records that summarise the state so far. `compact` atomically replaces
//! the snapshot (temp file + fsync + rename + directory fsync) and then
//! truncates the segment. Sequence numbers keep increasing across compaction
//! and reopen.
//!
//! An owner whose records summarise themselves (an event log that keeps a window) can
//! instead queue [`Journal::compact_retaining`]: the writer notes a cut (the appends
//! queued before it), a helper thread reads every record up to the cut back, keeps what
//! the owner's function returns and writes that as the next snapshot, and the writer,
//! between two batches, installs it and keeps the segment's records after the cut, so
//! appends wait only for the install and nothing appended meanwhile is lost.
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
//! damage to [`super::damage`]; an unreadable snapshot is moved aside the same way
//! (`<stream>.snapshot.quarantine-<UTC time>`) and the segment replayed in full.
//! Readers ([`Journal::read_each`], compaction) skip such lines.
//!
//! Each stream has one writer thread of its own, blocked on the request queue when idle:
//! appends reach it with one wake-up and are acknowledged straight from it, with no
//! hand-off through the async workers or the blocking pool.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

const CHANNEL_CAPACITY: usize = 8192;
/// The writer thread's stack: it only encodes lines and makes file system calls.
const WRITER_STACK: usize = 256 * 1024;
const MAX_BATCH: usize = 8192;
const SNAPSHOT_VERSION: u32 = 1;
/// The writer keeps its batch buffer between batches up to this capacity.
const MAX_KEPT_BUFFER: usize = 4 * 1024 * 1024;

/// Errors produced by the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt journal {file}:{line}: {reason}")]
    Corrupt {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("failed to serialize journal record: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("journal write failed: {0}")]
    WriteFailed(String),
    #[error("journal is closed")]
    Closed,
    #[error("invalid journal stream name {0:?}")]
    InvalidStream(String),
    #[error("invalid fsync policy {0:?} (expected always, batch or never)")]
    InvalidPolicy(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// When appended data is fsynced before an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// `sync_data` after every record.
    Always,
    /// One `sync_data` per writer batch.
    #[default]
    Batch,
    /// Never fsync (the OS decides).
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = JournalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(Self::Always),
            "batch" => Ok(Self::Batch),
            "never" => Ok(Self::Never),
            _ => Err(JournalError::InvalidPolicy(s.to_string())),
        }
    }
}

/// Options for [`Journal::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// Size after which [`Journal::needs_compaction`] reports `true`.
    pub max_segment_bytes: u64,
    pub policy: FsyncPolicy,
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: 64 * 1024 * 1024,
            policy: FsyncPolicy::Batch,
        }
    }
}

type AppendAck = oneshot::Sender<Result<u64, JournalError>>;

/// Chooses, from every record of a stream in journal order, the records a compaction
/// keeps (see [`Journal::compact_retaining`]).
pub type Retain = Box<dyn FnOnce(Vec<Value>) -> Vec<Value> + Send>;

enum Request {
    /// Pre-serialized records (no trailing newline); acked with the first seq.
    Append {
        records: Vec<Vec<u8>>,
        ack: AppendAck,
    },
    Compact {
        records: Vec<Value>,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    /// Compact to what `retain` keeps of every record, if the segment is still over size.
    Retain {
        retain: Retain,
    },
    /// Compact to what `retain` keeps of every record, now.
    RetainNow {
        retain: Retain,
        ack: oneshot::Sender<Result<(), JournalError>>,
    },
    Close {
        ack: oneshot::Sender<()>,
    },
    /// From a [`Request::Retain`]'s helper thread: its snapshot is written.
    Written,
}

struct Shared {
    stream: String,
    segment_bytes: AtomicU64,
    last_seq: AtomicU64,
    max_segment_bytes: u64,
    /// A [`Request::Retain`] is queued and not yet handled.
    retain_queued: AtomicBool,
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
        policy: FsyncPolicy,
    ) -> Result<(Journal, Vec<Value>), JournalError> {
        let options = JournalOptions {
            policy,
            ..JournalOptions::default()
        };
        Self::open_with(dir, stream, options)
    }

    /// Open (or create) `stream` in `dir` with explicit options.
    pub fn open_with(
        dir: &Path,
        stream: &str,
        options: JournalOptions,
    ) -> Result<(Journal, Vec<Value>), JournalError> {
        validate_stream(stream)?;
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let paths = StreamPaths::new(dir, stream);
        for tmp in [&paths.snapshot_tmp, &paths.retain_tmp, &paths.segment_tmp] {
            let _ = fs::remove_file(tmp);
        }
        let (snapshot_seq, mut records) = match read_snapshot(&paths.snapshot) {
            Err(JournalError::Corrupt { reason, .. }) => {
                quarantine_snapshot(&paths, stream, &reason)?;
                (0, Vec::new())
            }
            other => other?,
        };
        let mut bad = Vec::new();
        let mut segment = replay_segment(
            &paths.segment,
            snapshot_seq,
            TornTail::Truncate,
            &mut bad,
            &mut |record| records.push(record),
        )?;
        if !bad.is_empty() {
            segment.len = quarantine_lines(&paths, stream, &bad, segment.len)?;
        }
        let last_seq = segment.last_seq.max(snapshot_seq);

        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&paths.segment)
            .map_err(io_err(&paths.segment))?;
        let shared = Arc::new(Shared {
            stream: stream.to_string(),
            segment_bytes: AtomicU64::new(segment.len),
            last_seq: AtomicU64::new(last_seq),
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
        Ok((Journal { tx, shared }, records))
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
    ) -> Result<(), JournalError> {
        validate_stream(stream)?;
        let paths = StreamPaths::new(dir, stream);
        loop {
            let before = file_identity(&paths.snapshot);
            let (snapshot_seq, mut records) = read_snapshot(&paths.snapshot)?;
            replay_segment(
                &paths.segment,
                snapshot_seq,
                TornTail::Keep,
                &mut Vec::new(),
                &mut |record| records.push(record),
            )?;
            if file_identity(&paths.snapshot) == before {
                records.into_iter().for_each(&mut *each);
                return Ok(());
            }
        }
    }

    /// Stream name.
    pub fn stream(&self) -> &str {
        &self.shared.stream
    }

    /// Append one record; resolves with its sequence number once durable
    /// under the journal's [`FsyncPolicy`].
    pub async fn append(&self, record: &impl Serialize) -> Result<u64, JournalError> {
        let line = serde_json::to_vec(record)?;
        self.submit(vec![line]).await
    }

    /// Append several records contiguously; returns their sequence numbers.
    pub async fn append_many<T: Serialize>(&self, records: &[T]) -> Result<Vec<u64>, JournalError> {
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

    async fn submit(&self, records: Vec<Vec<u8>>) -> Result<u64, JournalError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::Append { records, ack })
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Atomically replace the snapshot with `snapshot_records` and truncate
    /// the segment. Appends queued before this call land before the snapshot
    /// is taken (and are discarded with the segment).
    pub async fn compact(&self, snapshot_records: Vec<Value>) -> Result<(), JournalError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::Compact {
                records: snapshot_records,
                ack,
            })
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Queues a compaction that keeps what `retain` returns of every record (snapshot
    /// records, then segment records, in journal order) up to the appends queued before
    /// it, if the segment is then still over [`JournalOptions::max_segment_bytes`];
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
    pub async fn compact_retained(&self, retain: Retain) -> Result<(), JournalError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Request::RetainNow { retain, ack })
            .await
            .map_err(|_| JournalError::Closed)?;
        rx.await.map_err(|_| JournalError::Closed)?
    }

    /// Whether a [`Journal::compact_retaining`] is queued or running.
    pub fn compaction_pending(&self) -> bool {
        self.shared.retain_queued.load(Ordering::Acquire)
    }

    /// Current size of the segment file in bytes.
    pub fn segment_bytes(&self) -> u64 {
        self.shared.segment_bytes.load(Ordering::Acquire)
    }

    /// Whether the segment exceeds [`JournalOptions::max_segment_bytes`].
    pub fn needs_compaction(&self) -> bool {
        self.segment_bytes() > self.shared.max_segment_bytes
    }

    /// Highest sequence number durably written (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::Acquire)
    }

    /// Flush queued appends and stop the writer. Later appends fail with
    /// [`JournalError::Closed`]. Idempotent.
    pub async fn close(&self) {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(Request::Close { ack }).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn validate_stream(stream: &str) -> Result<(), JournalError> {
    let ok = !stream.is_empty()
        && stream.len() <= 128
        && !stream.starts_with('.')
        && stream
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(JournalError::InvalidStream(stream.to_string()))
    }
}

struct StreamPaths {
    dir: PathBuf,
    segment: PathBuf,
    snapshot: PathBuf,
    snapshot_tmp: PathBuf,
    /// The snapshot a [`Request::Retain`]'s helper thread writes.
    retain_tmp: PathBuf,
    /// The segment's tail being written when a retained snapshot is installed.
    segment_tmp: PathBuf,
}

impl StreamPaths {
    fn new(dir: &Path, stream: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            segment: dir.join(format!("{stream}.ndjson")),
            snapshot: dir.join(format!("{stream}.snapshot.json")),
            snapshot_tmp: dir.join(format!("{stream}.snapshot.json.tmp")),
            retain_tmp: dir.join(format!("{stream}.snapshot.json.retain.tmp")),
            segment_tmp: dir.join(format!("{stream}.ndjson.tmp")),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    last_seq: u64,
    records: Vec<Value>,
}

/// What [`Writer::compact`] writes: a [`Snapshot`] that borrows its records.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u32,
    last_seq: u64,
    records: &'a [Value],
}

#[derive(Deserialize)]
struct Line {
    seq: u64,
    rec: Value,
}

/// Tells a snapshot file from the one that replaces it (compaction renames a new file
/// over it); `None` when there is none.
fn file_identity(path: &Path) -> Option<(u64, u64, Option<std::time::SystemTime>)> {
    let meta = fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((inode, meta.len(), meta.modified().ok()))
}

fn read_snapshot(path: &Path) -> Result<(u64, Vec<Value>), JournalError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, Vec::new())),
        Err(e) => return Err(io_err(path)(e)),
    };
    let snap: Snapshot = serde_json::from_slice(&bytes).map_err(|e| JournalError::Corrupt {
        file: path.to_path_buf(),
        line: e.line(),
        reason: e.to_string(),
    })?;
    Ok((snap.last_seq, snap.records))
}

struct SegmentReplay {
    last_seq: u64,
    /// Valid length of the segment after dropping a torn tail.
    len: u64,
}

/// What replay does with a torn last line: the writer truncates it, readers stop before it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TornTail {
    Truncate,
    Keep,
}

/// A corrupt segment line before the last one: skipped by replay.
struct BadLine {
    /// 1-based line number.
    line: usize,
    /// Byte range of the line, its newline included.
    range: std::ops::Range<usize>,
    reason: String,
}

fn replay_segment(
    path: &Path,
    snapshot_seq: u64,
    torn: TornTail,
    bad: &mut Vec<BadLine>,
    each: &mut dyn FnMut(Value),
) -> Result<SegmentReplay, JournalError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(path)(e)),
    };
    replay_bytes(path, &bytes, snapshot_seq, torn, bad, each)
}

/// [`replay_segment`] over the segment's bytes (`path` names it in errors). Corrupt
/// lines before the last one are skipped and listed in `bad`.
fn replay_bytes(
    path: &Path,
    bytes: &[u8],
    snapshot_seq: u64,
    torn: TornTail,
    bad: &mut Vec<BadLine>,
    each: &mut dyn FnMut(Value),
) -> Result<SegmentReplay, JournalError> {
    let mut out = SegmentReplay {
        last_seq: snapshot_seq,
        len: 0,
    };
    let mut offset = 0usize;
    let mut line_no = 0usize;
    let mut segment_seq = 0u64;
    while offset < bytes.len() {
        line_no += 1;
        let rest = &bytes[offset..];
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            return drop_torn_tail(path, out, line_no, "missing trailing newline", torn);
        };
        let raw = &rest[..nl];
        let is_last = offset + nl + 1 == bytes.len();
        match parse_line(raw, segment_seq) {
            Ok(Some(line)) => {
                segment_seq = line.seq;
                out.last_seq = out.last_seq.max(line.seq);
                if line.seq > snapshot_seq {
                    each(line.rec);
                }
            }
            Ok(None) => {}
            Err(reason) if is_last => return drop_torn_tail(path, out, line_no, &reason, torn),
            Err(reason) => bad.push(BadLine {
                line: line_no,
                range: offset..offset + nl + 1,
                reason,
            }),
        }
        offset += nl + 1;
        out.len = offset as u64;
    }
    Ok(out)
}

/// Parse one segment line; `Ok(None)` for blank lines.
fn parse_line(raw: &[u8], prev_seq: u64) -> Result<Option<Line>, String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let line: Line = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    // Sequence numbers must strictly increase within a segment.
    if line.seq <= prev_seq {
        return Err(format!("sequence {} not after {prev_seq}", line.seq));
    }
    Ok(Some(line))
}

fn drop_torn_tail(
    path: &Path,
    out: SegmentReplay,
    line: usize,
    reason: &str,
    torn: TornTail,
) -> Result<SegmentReplay, JournalError> {
    if torn == TornTail::Keep {
        return Ok(out);
    }
    tracing::warn!(
        file = %path.display(),
        line,
        reason,
        "dropping torn last journal line"
    );
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    file.set_len(out.len).map_err(io_err(path))?;
    file.sync_data().map_err(io_err(path))?;
    Ok(out)
}

/// Moves the `bad` lines of the segment's first `len` bytes to a quarantine file next to
/// it (fsynced first), then replaces the segment with the other lines (temp file, fsync,
/// rename, directory fsync) and reports the damage. Returns the segment's new length.
fn quarantine_lines(
    paths: &StreamPaths,
    stream: &str,
    bad: &[BadLine],
    len: u64,
) -> Result<u64, JournalError> {
    let seg = &paths.segment;
    let mut bytes = fs::read(seg).map_err(io_err(seg))?;
    bytes.truncate(len as usize);
    let mut moved = Vec::new();
    let mut kept = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for line in bad {
        kept.extend_from_slice(&bytes[at..line.range.start]);
        moved.extend_from_slice(&bytes[line.range.clone()]);
        at = line.range.end;
    }
    kept.extend_from_slice(&bytes[at..]);
    let quarantine = super::damage::quarantine_path(&paths.dir, stream);
    write_synced(&quarantine, &moved).map_err(io_err(&quarantine))?;
    write_synced(&paths.segment_tmp, &kept).map_err(io_err(&paths.segment_tmp))?;
    fs::rename(&paths.segment_tmp, seg).map_err(io_err(seg))?;
    sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
    let lines: Vec<String> = bad.iter().take(5).map(|b| b.line.to_string()).collect();
    let reason = format!(
        "corrupt line(s) {}{} (first: {}); every other record was kept",
        lines.join(", "),
        if bad.len() > 5 { ", ..." } else { "" },
        bad[0].reason
    );
    super::damage::report(
        super::damage::Damage::new(format!("journal {stream}"), seg, reason).quarantined(
            &quarantine,
            bad.len() as u64,
            moved.len() as u64,
        ),
    );
    Ok(kept.len() as u64)
}

/// Moves an unreadable snapshot aside (renamed, so nothing is lost) and reports it; the
/// stream then replays from its segment alone.
fn quarantine_snapshot(
    paths: &StreamPaths,
    stream: &str,
    reason: &str,
) -> Result<(), JournalError> {
    let snap = &paths.snapshot;
    let bytes = fs::metadata(snap).map(|m| m.len()).unwrap_or(0);
    let quarantine = super::damage::quarantine_path(&paths.dir, &format!("{stream}.snapshot"));
    fs::rename(snap, &quarantine).map_err(io_err(snap))?;
    sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
    super::damage::report(
        super::damage::Damage::new(
            format!("journal {stream}"),
            snap,
            format!(
                "unreadable snapshot ({reason}); the records it summarised are missing, the segment's records were kept"
            ),
        )
        .quarantined(&quarantine, 0, bytes),
    );
    Ok(())
}

struct Writer {
    file: File,
    /// Batch encoding buffer, reused so a batch costs no large allocation.
    buf: Vec<u8>,
    paths: StreamPaths,
    len: u64,
    next_seq: u64,
    policy: FsyncPolicy,
    shared: Arc<Shared>,
    /// `cortex_journal_appends_total` for this stream, registered on the first batch.
    appends: Option<metrics::Counter>,
    /// The [`Request::Retain`] whose snapshot a helper thread is writing.
    retaining: Option<Retaining>,
    /// The writer's own queue, for that helper thread to report it is done (weak, so
    /// the writer still ends when every [`Journal`] is gone).
    wake: mpsc::WeakSender<Request>,
}

/// A retained snapshot being chosen and written off the writer thread.
struct Retaining {
    /// The last seq and the segment length (a line boundary) the snapshot accounts for.
    last_seq: u64,
    cut: u64,
    thread: std::thread::JoinHandle<Result<(), JournalError>>,
}

/// The writer thread: takes whatever requests are queued, writes the appends as one
/// batch (one fsync under `batch`), acknowledges them, and repeats. It ends on `Close`
/// or when every [`Journal`] handle is gone; if it panics, pending and later callers
/// see the journal closed.
fn run_writer(mut writer: Writer, mut rx: mpsc::Receiver<Request>) {
    let mut pending: Vec<(Vec<Vec<u8>>, AppendAck)> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        writer.install_if_written();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        for req in batch {
            match req {
                Request::Append { records, ack } => pending.push((records, ack)),
                Request::Compact { records, ack } => {
                    writer.flush(&mut pending);
                    writer.finish_retaining(false);
                    let _ = ack.send(writer.compact(&records));
                }
                Request::Retain { retain } => {
                    writer.flush(&mut pending);
                    writer.retain(retain);
                }
                // Sent as the helper's last act (and before any later Retain can be
                // queued), so this waits for it to return, not for a newer one.
                Request::Written => writer.finish_retaining(true),
                Request::RetainNow { retain, ack } => {
                    writer.flush(&mut pending);
                    writer.finish_retaining(true);
                    let _ = ack.send(writer.retain_now(retain));
                }
                Request::Close { ack } => {
                    writer.flush(&mut pending);
                    writer.finish_retaining(true);
                    let _ = ack.send(());
                    return;
                }
            }
        }
        writer.flush(&mut pending);
    }
    writer.finish_retaining(true);
}

impl Writer {
    /// Writes the pending appends as one batch and acknowledges each with its first seq
    /// (or the failure).
    fn flush(&mut self, pending: &mut Vec<(Vec<Vec<u8>>, AppendAck)>) {
        if pending.is_empty() {
            return;
        }
        let batch = std::mem::take(pending);
        let counts: Vec<usize> = batch.iter().map(|(r, _)| r.len()).collect();
        let (acks, records): (Vec<_>, Vec<_>) = batch.into_iter().map(|(r, a)| (a, r)).unzip();
        let total: usize = counts.iter().sum();
        match self.write_batch(records) {
            Ok(first) => {
                self.appends
                    .get_or_insert_with(|| {
                        metrics::counter!("cortex_journal_appends_total", "stream" => self.shared.stream.clone())
                    })
                    .increment(total as u64);
                metrics::histogram!("cortex_journal_batch_size").record(total as f64);
                let mut seq = first;
                for (ack, count) in acks.into_iter().zip(counts) {
                    let _ = ack.send(Ok(seq));
                    seq += count as u64;
                }
            }
            Err(reason) => {
                tracing::error!(stream = %self.shared.stream, %reason, "journal batch write failed");
                for ack in acks {
                    let _ = ack.send(Err(JournalError::WriteFailed(reason.clone())));
                }
            }
        }
    }

    /// Write all records; returns the first assigned seq. On failure the
    /// segment is truncated back and no seq is consumed.
    fn write_batch(&mut self, requests: Vec<Vec<Vec<u8>>>) -> Result<u64, String> {
        let first = self.next_seq;
        let mut seq = first;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(requests.iter().flatten().map(|r| r.len() + 32).sum());
        let mut result = Ok(());
        for rec in requests.iter().flatten() {
            encode_line(&mut buf, seq, rec);
            seq += 1;
            if self.policy == FsyncPolicy::Always {
                result = self.write_and_sync(&buf, true);
                buf.clear();
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() && !buf.is_empty() {
            result = self.write_and_sync(&buf, self.policy == FsyncPolicy::Batch);
        }
        if buf.capacity() <= MAX_KEPT_BUFFER {
            self.buf = buf;
        }
        match result {
            Ok(()) => {
                self.next_seq = seq;
                self.shared.last_seq.store(seq - 1, Ordering::Release);
                self.shared.segment_bytes.store(self.len, Ordering::Release);
                Ok(first)
            }
            Err(e) => {
                self.rollback();
                Err(e.to_string())
            }
        }
    }

    fn write_and_sync(&mut self, buf: &[u8], sync: bool) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    fn rollback(&mut self) {
        let committed = self.shared.segment_bytes.load(Ordering::Acquire);
        if let Err(e) = self.file.set_len(committed) {
            tracing::error!(error = %e, "journal rollback truncate failed");
        }
        self.len = committed;
    }

    /// Handles a [`Request::Retain`]: when the segment is over size, a helper thread
    /// writes the snapshot of what `retain` keeps of everything written so far.
    fn retain(&mut self, retain: Retain) {
        if self.retaining.is_some() {
            return;
        }
        if self.len <= self.shared.max_segment_bytes {
            self.shared.retain_queued.store(false, Ordering::Release);
            return;
        }
        let (last_seq, cut) = (self.next_seq - 1, self.len);
        let snapshot = self.paths.snapshot.clone();
        let segment = self.paths.segment.clone();
        let tmp = self.paths.retain_tmp.clone();
        let wake = self.wake.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("journal-{}-compact", self.shared.stream))
            .spawn(move || {
                let written = write_retained(&snapshot, &segment, &tmp, last_seq, cut, retain);
                // A full queue wakes the writer anyway; blocking here could deadlock
                // with a writer waiting for this thread.
                if let Some(tx) = wake.upgrade() {
                    let _ = tx.try_send(Request::Written);
                }
                written
            });
        match spawned {
            Ok(thread) => {
                self.retaining = Some(Retaining {
                    last_seq,
                    cut,
                    thread,
                })
            }
            Err(e) => {
                self.shared.retain_queued.store(false, Ordering::Release);
                tracing::error!(stream = %self.shared.stream, error = %e, "journal compaction not started");
            }
        }
    }

    /// Handles a [`Request::RetainNow`] on the writer thread.
    fn retain_now(&mut self, retain: Retain) -> Result<(), JournalError> {
        let (last_seq, cut) = (self.next_seq - 1, self.len);
        let paths = &self.paths;
        let written = write_retained(
            &paths.snapshot,
            &paths.segment,
            &paths.retain_tmp,
            last_seq,
            cut,
            retain,
        );
        let result = written.and_then(|()| self.install(last_seq, cut));
        if result.is_err() {
            let _ = fs::remove_file(&self.paths.retain_tmp);
        }
        result
    }

    /// Installs the retained snapshot if its helper thread is done.
    fn install_if_written(&mut self) {
        if self
            .retaining
            .as_ref()
            .is_some_and(|r| r.thread.is_finished())
        {
            self.finish_retaining(true);
        }
    }

    /// Waits for the retained snapshot being written, then installs it (or, when
    /// `install` is false because the snapshot was replaced since, discards it).
    fn finish_retaining(&mut self, install: bool) {
        let Some(retaining) = self.retaining.take() else {
            return;
        };
        let written = retaining.thread.join().unwrap_or_else(|_| {
            Err(JournalError::WriteFailed(
                "compaction thread panicked".into(),
            ))
        });
        let result = match written {
            Ok(()) if install => self.install(retaining.last_seq, retaining.cut),
            other => other,
        };
        if !install || result.is_err() {
            let _ = fs::remove_file(&self.paths.retain_tmp);
        }
        self.shared.retain_queued.store(false, Ordering::Release);
        match result {
            Ok(()) if install => {
                metrics::counter!("cortex_journal_compactions_total", "stream" => self.shared.stream.clone())
                    .increment(1);
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!(stream = %self.shared.stream, error = %e, "journal compaction failed")
            }
        }
    }

    /// Makes the retained snapshot (accounting for every record up to `last_seq`, the
    /// first `cut` bytes of the segment) the stream's snapshot, then shrinks the segment
    /// to the records after the cut.
    fn install(&mut self, last_seq: u64, cut: u64) -> Result<(), JournalError> {
        let paths = &self.paths;
        fs::rename(&paths.retain_tmp, &paths.snapshot).map_err(io_err(&paths.snapshot))?;
        // The segment may only shrink once the rename is durable.
        sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
        debug_assert!(last_seq < self.next_seq);
        let seg = &paths.segment;
        let tail_len = self.len - cut;
        if tail_len == 0 {
            self.file.set_len(0).map_err(io_err(seg))?;
            self.file.sync_data().map_err(io_err(seg))?;
        } else {
            let mut tail = vec![0; tail_len as usize];
            let mut file = File::open(seg).map_err(io_err(seg))?;
            io::Seek::seek(&mut file, io::SeekFrom::Start(cut)).map_err(io_err(seg))?;
            io::Read::read_exact(&mut file, &mut tail).map_err(io_err(seg))?;
            let tmp = &paths.segment_tmp;
            write_synced(tmp, &tail).map_err(io_err(tmp))?;
            fs::rename(tmp, seg).map_err(io_err(seg))?;
            sync_dir(&paths.dir).map_err(io_err(&paths.dir))?;
            self.file = OpenOptions::new()
                .append(true)
                .open(seg)
                .map_err(io_err(seg))?;
        }
        self.len = tail_len;
        self.shared.segment_bytes.store(tail_len, Ordering::Release);
        Ok(())
    }

    fn compact(&mut self, records: &[Value]) -> Result<(), JournalError> {
        let snapshot = SnapshotRef {
            version: SNAPSHOT_VERSION,
            last_seq: self.next_seq - 1,
            records,
        };
        let bytes = serde_json::to_vec(&snapshot)?;
        let tmp = &self.paths.snapshot_tmp;
        write_synced(tmp, &bytes).map_err(io_err(tmp))?;
        fs::rename(tmp, &self.paths.snapshot).map_err(io_err(&self.paths.snapshot))?;
        // The segment may only shrink once the rename is durable.
        sync_dir(&self.paths.dir).map_err(io_err(&self.paths.dir))?;
        let seg = &self.paths.segment;
        self.file.set_len(0).map_err(io_err(seg))?;
        self.file.sync_data().map_err(io_err(seg))?;
        self.len = 0;
        self.shared.segment_bytes.store(0, Ordering::Release);
        Ok(())
    }
}

/// The helper thread of a [`Request::Retain`]: reads the snapshot and the first `cut`
/// bytes of the segment, and writes what `retain` keeps of them to `tmp` (fsynced) as a
/// snapshot accounting for every record up to `last_seq`.
fn write_retained(
    snapshot: &Path,
    segment: &Path,
    tmp: &Path,
    last_seq: u64,
    cut: u64,
    retain: Retain,
) -> Result<(), JournalError> {
    let (snapshot_seq, mut records) = read_snapshot(snapshot)?;
    let mut bytes = fs::read(segment).map_err(io_err(segment))?;
    bytes.truncate(cut as usize);
    replay_bytes(
        segment,
        &bytes,
        snapshot_seq,
        TornTail::Keep,
        &mut Vec::new(),
        &mut |record| records.push(record),
    )?;
    drop(bytes);
    let kept = retain(records);
    let body = serde_json::to_vec(&SnapshotRef {
        version: SNAPSHOT_VERSION,
        last_seq,
        records: &kept,
    })?;
    write_synced(tmp, &body).map_err(io_err(tmp))
}

fn encode_line(buf: &mut Vec<u8>, seq: u64, rec: &[u8]) {
    buf.extend_from_slice(b"{\"seq\":");
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{seq}");
    buf.extend_from_slice(b",\"rec\":");
    buf.extend_from_slice(rec);
    buf.extend_from_slice(b"}\n");
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    #[tokio::test]
    async fn replay_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (j, replay) = Journal::open(dir.path(), "s", FsyncPolicy::Batch).unwrap();
        assert!(replay.is_empty());
        assert_eq!(j.append(&json!({"a": 1})).await.unwrap(), 1);
        assert_eq!(
            j.append_many(&[json!({"a": 2}), json!({"a": 3})])
                .await
                .unwrap(),
            vec![2, 3]
        );
        j.close().await;
        assert!(matches!(
            j.append(&json!(1)).await,
            Err(JournalError::Closed)
        ));

        let (j, replay) = Journal::open(dir.path(), "s", FsyncPolicy::Always).unwrap();
        assert_eq!(replay, vec![json!({"a":1}), json!({"a":2}), json!({"a":3})]);
        assert_eq!(j.append(&json!({"a": 4})).await.unwrap(), 4);
        j.close().await;
    }

    #[tokio::test]
    async fn torn_last_line_is_dropped_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), "s", FsyncPolicy::Never).unwrap();
        j.append(&json!("x")).await.unwrap();
        j.close().await;
        let path = dir.path().join("s.ndjson");
        let good_len = fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":2,\"rec\":").unwrap();
        drop(f);

        let (j, replay) = Journal::open(dir.path(), "s", FsyncPolicy::Never).unwrap();
        assert_eq!(replay, vec![json!("x")]);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(j.append(&json!("y")).await.unwrap(), 2);
        j.close().await;

        // Unparseable but newline-terminated last line is torn too.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"garbage\n").unwrap();
        drop(f);
        let (j, replay) = Journal::open(dir.path(), "s", FsyncPolicy::Never).unwrap();
        assert_eq!(replay, vec![json!("x"), json!("y")]);
        j.close().await;
    }

    #[tokio::test]
    async fn corrupt_middle_lines_are_quarantined_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.ndjson");
        fs::write(
            &path,
            "{\"seq\":1,\"rec\":1}\nnot json\n{\"seq\":3,\"rec\":3}\n{\"seq\":2,\"rec\":2}\n{\"seq\":4,\"rec\":4}\n",
        )
        .unwrap();
        let (j, replay) = Journal::open(dir.path(), "s", FsyncPolicy::Batch).unwrap();
        assert_eq!(replay, vec![json!(1), json!(3), json!(4)]);
        assert_eq!(j.append(&json!(5)).await.unwrap(), 5);
        j.close().await;
        let quarantined: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("s.quarantine-"))
            .collect();
        assert_eq!(quarantined.len(), 1);
        assert_eq!(
            fs::read_to_string(quarantined[0].path()).unwrap(),
            "not json\n{\"seq\":2,\"rec\":2}\n"
        );
        let report = crate::runtime::damage::reported();
        let d = report
            .iter()
            .find(|d| d.file == path.display().to_string())
            .expect("reported");
        assert_eq!((d.records, d.bytes), (2, 27));
        // Reopening finds a clean segment: nothing more is quarantined.
        let (j, replay) = Journal::open(dir.path(), "s", FsyncPolicy::Batch).unwrap();
        assert_eq!(replay, vec![json!(1), json!(3), json!(4), json!(5)]);
        j.close().await;
        let again = crate::runtime::damage::reported();
        assert_eq!(
            again
                .iter()
                .filter(|d| d.file == path.display().to_string())
                .count(),
            1
        );
    }

    #[tokio::test]
    async fn an_unreadable_snapshot_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), "q", FsyncPolicy::Batch).unwrap();
        j.append(&json!(1)).await.unwrap();
        j.compact(vec![json!("s")]).await.unwrap();
        j.append(&json!(2)).await.unwrap();
        j.close().await;
        fs::write(
            dir.path().join("q.snapshot.json"),
            b"{\"version\":1,garbage",
        )
        .unwrap();
        let (j, replay) = Journal::open(dir.path(), "q", FsyncPolicy::Batch).unwrap();
        assert_eq!(replay, vec![json!(2)]);
        j.close().await;
        assert!(!dir.path().join("q.snapshot.json").exists());
        assert!(fs::read_dir(dir.path()).unwrap().flatten().any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("q.snapshot.quarantine-")
        }));
    }

    #[tokio::test]
    async fn invalid_stream_and_policy() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Journal::open(dir.path(), "../x", FsyncPolicy::Batch),
            Err(JournalError::InvalidStream(_))
        ));
        assert_eq!(
            "Always".parse::<FsyncPolicy>().unwrap(),
            FsyncPolicy::Always
        );
        assert!("sometimes".parse::<FsyncPolicy>().is_err());
        assert_eq!(
            serde_json::to_string(&FsyncPolicy::Never).unwrap(),
            "\"never\""
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_all_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), "c", FsyncPolicy::Batch).unwrap();
        let tasks: Vec<_> = (0..10_000u64)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move { j.append(&json!({ "i": i })).await.unwrap() })
            })
            .collect();
        let mut seqs = HashSet::new();
        for t in futures::future::join_all(tasks).await {
            assert!(seqs.insert(t.unwrap()));
        }
        assert_eq!(seqs.len(), 10_000);
        assert_eq!(*seqs.iter().max().unwrap(), 10_000);
        j.close().await;

        let (_j, replay) = Journal::open(dir.path(), "c", FsyncPolicy::Batch).unwrap();
        let ids: HashSet<u64> = replay.iter().map(|v| v["i"].as_u64().unwrap()).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[tokio::test]
    async fn compact_then_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            max_segment_bytes: 10,
            policy: FsyncPolicy::Batch,
        };
        let (j, _) = Journal::open_with(dir.path(), "k", opts).unwrap();
        for i in 0..5 {
            j.append(&json!(i)).await.unwrap();
        }
        assert!(j.needs_compaction());
        j.compact(vec![json!("snap")]).await.unwrap();
        assert_eq!(j.segment_bytes(), 0);
        assert_eq!(j.append(&json!("after")).await.unwrap(), 6);
        j.close().await;

        let (j, replay) = Journal::open_with(dir.path(), "k", opts).unwrap();
        assert_eq!(replay, vec![json!("snap"), json!("after")]);
        assert_eq!(j.append(&json!("next")).await.unwrap(), 7);
        j.close().await;
    }

    fn odd(records: Vec<Value>) -> Vec<Value> {
        records
            .into_iter()
            .filter(|r| r["i"].as_u64().is_none_or(|i| i % 2 == 1))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compact_retaining_loses_no_concurrent_append() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            max_segment_bytes: 256,
            policy: FsyncPolicy::Never,
        };
        let (j, _) = Journal::open_with(dir.path(), "r", opts).unwrap();
        let tasks: Vec<_> = (0..4000u64)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move {
                    let seq = j.append(&json!({ "i": i })).await.unwrap();
                    if j.needs_compaction() {
                        j.compact_retaining(Box::new(odd));
                    }
                    seq
                })
            })
            .collect();
        for t in futures::future::join_all(tasks).await {
            t.unwrap();
        }
        j.close().await;

        let (j, replay) = Journal::open_with(dir.path(), "r", opts).unwrap();
        let ids: Vec<u64> = replay.iter().map(|v| v["i"].as_u64().unwrap()).collect();
        let odd_ids: HashSet<u64> = ids.iter().copied().filter(|i| i % 2 == 1).collect();
        assert_eq!(
            odd_ids.len(),
            2000,
            "every record compaction keeps is there"
        );
        assert_eq!(
            ids.len(),
            HashSet::<&u64>::from_iter(&ids).len(),
            "no duplicates"
        );
        assert!(ids.len() < 4000, "compaction ran: {} records", ids.len());
        assert!(dir.path().join("r.snapshot.json").exists());
        assert_eq!(j.last_seq(), 4000);
        assert_eq!(j.append(&json!({"i": 1})).await.unwrap(), 4001);
        j.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_during_compactions_see_every_acknowledged_record() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            max_segment_bytes: 512,
            policy: FsyncPolicy::Never,
        };
        let (j, _) = Journal::open_with(dir.path(), "v", opts).unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let writer = {
            let (j, acked) = (j.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0..3000u64 {
                    j.append(&json!({ "i": i })).await.unwrap();
                    acked.store(i + 1, Ordering::Release);
                    if j.needs_compaction() {
                        j.compact_retaining(Box::new(|all| all));
                    }
                }
            })
        };
        let path = dir.path().to_path_buf();
        let reader = tokio::task::spawn_blocking(move || {
            let mut reads = 0;
            loop {
                let before = acked.load(Ordering::Acquire);
                let mut ids = HashSet::new();
                Journal::read_each(&path, "v", &mut |r| {
                    assert!(ids.insert(r["i"].as_u64().unwrap()), "duplicate {r}");
                })
                .unwrap();
                assert!(ids.len() as u64 >= before, "read {} of {before}", ids.len());
                reads += 1;
                if before == 3000 {
                    return reads;
                }
            }
        });
        writer.await.unwrap();
        assert!(reader.await.unwrap() > 1);
        j.close().await;
    }

    #[tokio::test]
    async fn compact_retaining_only_runs_over_size() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions {
            max_segment_bytes: 1024,
            policy: FsyncPolicy::Never,
        };
        let (j, _) = Journal::open_with(dir.path(), "u", opts).unwrap();
        for i in 0..4 {
            j.append(&json!({ "i": i })).await.unwrap();
        }
        assert!(j.compact_retaining(Box::new(odd)));
        j.close().await;
        let (j, replay) = Journal::open_with(dir.path(), "u", opts).unwrap();
        assert_eq!(replay.len(), 4);
        assert!(!dir.path().join("u.snapshot.json").exists());
        j.close().await;
    }

    #[tokio::test]
    async fn a_snapshot_torn_before_its_rename_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), "t", FsyncPolicy::Batch).unwrap();
        j.append(&json!(1)).await.unwrap();
        j.compact(vec![json!("s")]).await.unwrap();
        j.append(&json!(2)).await.unwrap();
        j.close().await;
        // A crash while the next snapshot was being written leaves a partial temp file.
        let tmp = dir.path().join("t.snapshot.json.tmp");
        fs::write(&tmp, b"{\"version\":1,\"last_seq\":2,\"rec").unwrap();
        // ... or while a retained snapshot, or a segment's tail, was being written.
        let retain_tmp = dir.path().join("t.snapshot.json.retain.tmp");
        fs::write(
            &retain_tmp,
            b"{\"version\":1,\"last_seq\":2,\"records\":[\"x\"]}",
        )
        .unwrap();
        let segment_tmp = dir.path().join("t.ndjson.tmp");
        fs::write(&segment_tmp, b"{\"seq\":9,\"rec\":9}\n").unwrap();
        let (j, replay) = Journal::open(dir.path(), "t", FsyncPolicy::Batch).unwrap();
        assert_eq!(replay, vec![json!("s"), json!(2)]);
        assert!(!tmp.exists() && !retain_tmp.exists() && !segment_tmp.exists());
        assert_eq!(j.append(&json!(3)).await.unwrap(), 3);
        j.close().await;
    }

    #[tokio::test]
    async fn crash_between_snapshot_and_truncate_does_not_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let (j, _) = Journal::open(dir.path(), "d", FsyncPolicy::Batch).unwrap();
        j.append(&json!(1)).await.unwrap();
        j.append(&json!(2)).await.unwrap();
        j.close().await;
        let snap = Snapshot {
            version: 1,
            last_seq: 2,
            records: vec![json!("s")],
        };
        fs::write(
            dir.path().join("d.snapshot.json"),
            serde_json::to_vec(&snap).unwrap(),
        )
        .unwrap();
        let (j, replay) = Journal::open(dir.path(), "d", FsyncPolicy::Batch).unwrap();
        assert_eq!(replay, vec![json!("s")]);
        assert_eq!(j.append(&json!(3)).await.unwrap(), 3);
        j.close().await;
    }
}
