//! The local journal's writer thread: the request queue, group commit (one write and,
//! under `batch`, one fsync per batch), rollback of a failed batch, and compaction
//! (snapshot install, the background retained compaction and its helper thread).
//!
//! Owns every write to a stream's files after open; must not touch replay on open or
//! quarantine (`mod.rs`, `quarantine.rs`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::format::{
    SNAPSHOT_VERSION, SnapshotRef, StreamPaths, TornTail, encode_line, read_snapshot, replay_bytes,
    sync_dir, write_synced,
};
use super::{Shared, io_err};
use crate::runtime::store::{Fsync, Retain, StoreError};

const MAX_BATCH: usize = 8192;
/// The writer keeps its batch buffer between batches up to this capacity.
const MAX_KEPT_BUFFER: usize = 4 * 1024 * 1024;

pub(super) type AppendAck = oneshot::Sender<Result<u64, StoreError>>;

pub(super) enum Request {
    /// Pre-serialized records (no trailing newline); acked with the first seq.
    Append {
        records: Vec<Vec<u8>>,
        ack: AppendAck,
    },
    /// Compact to what `retain` keeps of every record, if the segment is still over size.
    Retain {
        retain: Retain,
    },
    /// Compact to what `retain` keeps of every record, now.
    RetainNow {
        retain: Retain,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    Close {
        ack: oneshot::Sender<()>,
    },
    /// From a [`Request::Retain`]'s helper thread: its snapshot is written.
    Written,
}

pub(super) struct Writer {
    pub(super) file: File,
    /// Batch encoding buffer, reused so a batch costs no large allocation.
    pub(super) buf: Vec<u8>,
    pub(super) paths: StreamPaths,
    pub(super) len: u64,
    pub(super) next_seq: u64,
    pub(super) policy: Fsync,
    pub(super) shared: Arc<Shared>,
    /// `cortex_journal_appends_total` for this stream, registered on the first batch.
    pub(super) appends: Option<metrics::Counter>,
    /// The [`Request::Retain`] whose snapshot a helper thread is writing.
    pub(super) retaining: Option<Retaining>,
    /// The writer's own queue, for that helper thread to report it is done (weak, so
    /// the writer still ends when every [`Journal`] is gone).
    pub(super) wake: mpsc::WeakSender<Request>,
}

/// A retained snapshot being chosen and written off the writer thread.
pub(super) struct Retaining {
    /// The last seq and the segment length (a line boundary) the snapshot accounts for.
    last_seq: u64,
    cut: u64,
    thread: std::thread::JoinHandle<Result<(), StoreError>>,
}

/// The writer thread: takes whatever requests are queued, writes the appends as one
/// batch (one fsync under `batch`), acknowledges them, and repeats. It ends on `Close`
/// or when every [`Journal`] handle is gone; if it panics, pending and later callers
/// see the journal closed.
pub(super) fn run_writer(mut writer: Writer, mut rx: mpsc::Receiver<Request>) {
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
                Request::Retain { retain } => {
                    writer.flush(&mut pending);
                    writer.retain(retain);
                }
                // Sent as the helper's last act (and before any later Retain can be
                // queued), so this waits for it to return, not for a newer one.
                Request::Written => writer.finish_retaining(),
                Request::RetainNow { retain, ack } => {
                    writer.flush(&mut pending);
                    writer.finish_retaining();
                    let _ = ack.send(writer.retain_now(retain));
                }
                Request::Close { ack } => {
                    writer.flush(&mut pending);
                    writer.finish_retaining();
                    writer.shared.close();
                    let _ = ack.send(());
                    return;
                }
            }
        }
        writer.flush(&mut pending);
    }
    writer.finish_retaining();
    writer.shared.close();
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
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(stream = %self.shared.stream, %reason, "journal batch write failed");
                for ack in acks {
                    let _ = ack.send(Err(StoreError::WriteFailed(reason.clone())));
                }
            }
        }
    }

    /// Write all records; returns the first assigned seq. On failure the
    /// segment is truncated back and no seq is consumed.
    fn write_batch(&mut self, requests: Vec<Vec<Vec<u8>>>) -> io::Result<u64> {
        let first = self.next_seq;
        let mut seq = first;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(requests.iter().flatten().map(|r| r.len() + 32).sum());
        let mut result = Ok(());
        for rec in requests.iter().flatten() {
            encode_line(&mut buf, seq, rec);
            seq += 1;
            if self.policy == Fsync::Always {
                result = self.write_and_sync(&buf, true);
                buf.clear();
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() && !buf.is_empty() {
            result = self.write_and_sync(&buf, self.policy == Fsync::Batch);
        }
        if buf.capacity() <= MAX_KEPT_BUFFER {
            self.buf = buf;
        }
        match result {
            Ok(()) => {
                self.next_seq = seq;
                self.shared.last_seq.store(seq - 1, Ordering::Release);
                self.shared.durable.send_replace(seq - 1);
                self.shared.segment_bytes.store(self.len, Ordering::Release);
                Ok(first)
            }
            Err(e) => {
                self.rollback();
                Err(e)
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
    fn retain_now(&mut self, retain: Retain) -> Result<(), StoreError> {
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
            self.finish_retaining();
        }
    }

    /// Waits for the retained snapshot being written, then installs it.
    fn finish_retaining(&mut self) {
        let Some(retaining) = self.retaining.take() else {
            return;
        };
        let written = retaining
            .thread
            .join()
            .unwrap_or_else(|_| Err(StoreError::WriteFailed("compaction thread panicked".into())));
        let result = written.and_then(|()| self.install(retaining.last_seq, retaining.cut));
        if result.is_err() {
            let _ = fs::remove_file(&self.paths.retain_tmp);
        }
        self.shared.retain_queued.store(false, Ordering::Release);
        match result {
            Ok(()) => {
                metrics::counter!("cortex_journal_compactions_total", "stream" => self.shared.stream.clone())
                    .increment(1);
            }
            Err(e) => {
                tracing::error!(stream = %self.shared.stream, error = %e, "journal compaction failed")
            }
        }
    }

    /// Makes the retained snapshot (accounting for every record up to `last_seq`, the
    /// first `cut` bytes of the segment) the stream's snapshot, then shrinks the segment
    /// to the records after the cut.
    fn install(&mut self, last_seq: u64, cut: u64) -> Result<(), StoreError> {
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
) -> Result<(), StoreError> {
    let (snapshot_seq, mut records) = read_snapshot(snapshot)?;
    let mut bytes = fs::read(segment).map_err(io_err(segment))?;
    bytes.truncate(cut as usize);
    replay_bytes(
        segment,
        &bytes,
        snapshot_seq,
        TornTail::Keep,
        &mut Vec::new(),
        &mut |_, record| records.push(record),
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
