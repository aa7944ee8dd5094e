//! The typed store through the seam (`dyn Backend`), on the local backend.

use std::{fs, io::Write, sync::Arc, time::Duration};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Put {
    key: String,
    value: u64,
}

fn put(key: &str, value: u64) -> Put {
    Put {
        key: key.into(),
        value,
    }
}

fn last_per_key() -> Compaction<Put> {
    Compaction::last_per_key(|p: &Put| p.key.clone())
}

fn options(max_segment_bytes: u64) -> StreamOptions {
    StreamOptions::new(Fsync::Batch, max_segment_bytes)
}

async fn open(dir: &std::path::Path, max_segment_bytes: u64) -> (Stream<Put>, Replay<Put>) {
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir));
    Stream::open(&*backend, "kv", options(max_segment_bytes), last_per_key())
        .await
        .unwrap()
}

fn positions(replay: &Replay<Put>) -> Vec<u64> {
    replay.records.iter().map(|(p, _)| p.get()).collect()
}

#[tokio::test]
async fn append_returns_durable_positions_and_replay_reads_from_one() {
    let dir = tempfile::tempdir().unwrap();
    let (s, replay) = open(dir.path(), 1 << 20).await;
    assert!(replay.snapshot.is_none() && replay.records.is_empty());
    assert_eq!(s.append(&put("a", 1)).await.unwrap(), Position(1));
    assert_eq!(
        s.append_many(&[put("b", 2), put("a", 3)]).await.unwrap(),
        Position(2)
    );
    assert_eq!(s.last_position(), Position(3));
    let from_one = s.read_after(Position(1)).await.unwrap();
    assert!(from_one.snapshot.is_none());
    assert_eq!(positions(&from_one), vec![2, 3]);
    assert_eq!(from_one.records[1].1, put("a", 3));
    assert!(s.read_after(Position(3)).await.unwrap().records.is_empty());
    s.close().await;
    assert!(matches!(
        s.append(&put("c", 4)).await,
        Err(StoreError::Closed)
    ));

    let (s, replay) = open(dir.path(), 1 << 20).await;
    assert_eq!(positions(&replay), vec![1, 2, 3]);
    assert_eq!(s.append(&put("c", 4)).await.unwrap(), Position(4));
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_yields_what_is_there_then_each_new_record_and_ends_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path(), 1 << 20).await;
    for i in 1..=3 {
        s.append(&put("k", i)).await.unwrap();
    }
    let mut tail = s.tail(Position(1));
    let mut seen = Vec::new();
    for _ in 0..2 {
        match tail.next().await.unwrap().unwrap() {
            Entry::Record { position, record } => seen.push((position.get(), record.value)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, vec![(2, 2), (3, 3)]);
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 4..=6 {
                s.append(&put("k", i)).await.unwrap();
            }
        })
    };
    for _ in 0..3 {
        match tail.next().await.unwrap().unwrap() {
            Entry::Record { position, record } => seen.push((position.get(), record.value)),
            other => panic!("unexpected {other:?}"),
        }
    }
    writer.await.unwrap();
    assert_eq!(seen.last(), Some(&(6, 6)));
    assert_eq!(seen.len(), 5);
    s.close().await;
    let end = tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("the tail ends when the stream closes");
    assert!(end.is_none());
}

#[tokio::test]
async fn snapshot_and_trim_keep_the_state_and_the_positions() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path(), 1 << 20).await;
    for i in 0..100 {
        s.append(&put(["a", "b", "c"][i % 3], i as u64))
            .await
            .unwrap();
    }
    let segment = dir.path().join("kv.ndjson");
    let before = fs::metadata(&segment).unwrap().len();
    s.compact().await.unwrap();
    assert_eq!(fs::metadata(&segment).unwrap().len(), 0, "trimmed");
    assert_eq!(s.append(&put("d", 100)).await.unwrap(), Position(101));

    // A reader from before the snapshot gets it, then the records after it.
    let all = s.read_after(Position::START).await.unwrap();
    let (at, kept) = all.snapshot.clone().unwrap();
    assert_eq!(at, Position(100));
    assert_eq!(kept, vec![put("b", 97), put("c", 98), put("a", 99)]);
    assert_eq!(positions(&all), vec![101]);
    // A tail that fell behind the snapshot is told to replace what it held.
    let mut tail = s.tail(Position(50));
    assert_eq!(
        tail.next().await.unwrap().unwrap(),
        Entry::Snapshot {
            position: Position(100),
            records: kept.clone()
        }
    );
    s.close().await;

    let (s, replay) = open(dir.path(), 1 << 20).await;
    let total = fs::metadata(&segment).unwrap().len()
        + fs::metadata(dir.path().join("kv.snapshot.json"))
            .unwrap()
            .len();
    assert!(total < before / 10, "{total} bytes left of {before}");
    assert_eq!(
        replay.into_records(),
        vec![put("b", 97), put("c", 98), put("a", 99), put("d", 100)]
    );
    assert_eq!(s.append(&put("e", 0)).await.unwrap(), Position(102));
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_past_the_limit_compact_in_the_background_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path(), 2048).await;
    let tasks: Vec<_> = (0..2000u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.append(&put(&format!("k{}", i % 10), i)).await })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap().unwrap();
    }
    s.close().await;
    assert!(dir.path().join("kv.snapshot.json").exists(), "compacted");
    let (s, replay) = open(dir.path(), 2048).await;
    let records = replay.into_records();
    let mut last = std::collections::HashMap::new();
    for r in &records {
        last.insert(r.key.clone(), r.value);
    }
    assert_eq!(last.len(), 10, "every key is there");
    assert!(records.len() < 2000, "{} records left", records.len());
    assert_eq!(s.last_position(), Position(2000));
    s.close().await;
}

#[tokio::test]
async fn a_damaged_log_is_quarantined_and_undecodable_records_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = open(dir.path(), 1 << 20).await;
    s.append(&put("a", 1)).await.unwrap();
    s.close().await;
    let segment = dir.path().join("kv.ndjson");
    let mut f = fs::OpenOptions::new().append(true).open(&segment).unwrap();
    // A corrupt middle line, a record of another shape, a good one and a torn tail.
    f.write_all(b"not json\n{\"seq\":3,\"rec\":{\"other\":1}}\n{\"seq\":4,\"rec\":{\"key\":\"b\",\"value\":2}}\n{\"seq\":5,\"rec\":")
        .unwrap();
    drop(f);

    let (s, replay) = open(dir.path(), 1 << 20).await;
    assert_eq!(positions(&replay), vec![1, 4]);
    assert_eq!(replay.undecodable.len(), 1);
    assert_eq!(replay.undecodable[0].0, Position(3));
    assert!(fs::read_dir(dir.path()).unwrap().flatten().any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("kv.quarantine-") && fs::read_to_string(e.path()).unwrap() == "not json\n"
    }));
    assert!(
        crate::runtime::damage::reported()
            .iter()
            .any(|d| d.file == segment.display().to_string())
    );
    assert_eq!(s.append(&put("c", 3)).await.unwrap(), Position(5));
    // Compaction keeps what it cannot read.
    s.compact().await.unwrap();
    s.close().await;
    let (s, replay) = open(dir.path(), 1 << 20).await;
    assert_eq!(replay.undecodable.len(), 1);
    assert_eq!(
        replay.into_records(),
        vec![put("a", 1), put("b", 2), put("c", 3)]
    );
    s.close().await;
}

/// What every backend must do, run on each: positions, reads from a position, a tail
/// across a compaction, and reopening.
pub(super) async fn conformance(backend: &dyn Backend) {
    let options = options(1 << 20);
    let (s, replay) = Stream::open(backend, "kv", options, last_per_key())
        .await
        .unwrap();
    assert!(replay.snapshot.is_none() && replay.records.is_empty());
    assert_eq!(s.append(&put("a", 1)).await.unwrap(), Position(1));
    assert_eq!(
        s.append_many(&[put("b", 2), put("a", 3)]).await.unwrap(),
        Position(2)
    );
    assert_eq!(
        positions(&s.read_after(Position(1)).await.unwrap()),
        vec![2, 3]
    );
    let mut tail = s.tail(Position(2));
    assert_eq!(
        tail.next().await.unwrap().unwrap(),
        Entry::Record {
            position: Position(3),
            record: put("a", 3)
        }
    );
    s.compact().await.unwrap();
    assert_eq!(s.append(&put("c", 4)).await.unwrap(), Position(4));
    assert_eq!(
        tail.next().await.unwrap().unwrap(),
        Entry::Record {
            position: Position(4),
            record: put("c", 4)
        }
    );
    let mut behind = s.tail(Position(1));
    assert_eq!(
        behind.next().await.unwrap().unwrap(),
        Entry::Snapshot {
            position: Position(3),
            records: vec![put("b", 2), put("a", 3)]
        }
    );
    s.close().await;
    assert!(tail.next().await.is_none(), "the tail ends on close");

    let (s, replay) = Stream::<Put>::open(backend, "kv", options, last_per_key())
        .await
        .unwrap();
    assert_eq!(
        replay.into_records(),
        vec![put("b", 2), put("a", 3), put("c", 4)]
    );
    assert_eq!(s.append(&put("d", 5)).await.unwrap(), Position(5));
    s.close().await;
}

#[tokio::test]
async fn the_local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&LocalBackend::new(dir.path())).await;
}

#[tokio::test]
async fn the_memory_backend_conforms() {
    conformance(&MemoryBackend::new()).await;
}
