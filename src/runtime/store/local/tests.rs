//! The local journal's own tests: replay, torn tails, quarantine, compaction, crashes.

use super::format::Snapshot;
use super::*;
use serde_json::json;
use std::collections::HashSet;
use std::io::Write;

#[tokio::test]
async fn replay_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (j, replay) = Journal::open(dir.path(), "s", Fsync::Batch).unwrap();
    assert!(replay.is_empty());
    assert_eq!(j.append(&json!({"a": 1})).await.unwrap(), 1);
    assert_eq!(
        j.append_many(&[json!({"a": 2}), json!({"a": 3})])
            .await
            .unwrap(),
        vec![2, 3]
    );
    j.close().await;
    assert!(matches!(j.append(&json!(1)).await, Err(StoreError::Closed)));

    let (j, replay) = Journal::open(dir.path(), "s", Fsync::Always).unwrap();
    assert_eq!(replay, vec![json!({"a":1}), json!({"a":2}), json!({"a":3})]);
    assert_eq!(j.append(&json!({"a": 4})).await.unwrap(), 4);
    j.close().await;
}

#[tokio::test]
async fn torn_last_line_is_dropped_and_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), "s", Fsync::Never).unwrap();
    j.append(&json!("x")).await.unwrap();
    j.close().await;
    let path = dir.path().join("s.ndjson");
    let good_len = fs::metadata(&path).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"{\"seq\":2,\"rec\":").unwrap();
    drop(f);

    let (j, replay) = Journal::open(dir.path(), "s", Fsync::Never).unwrap();
    assert_eq!(replay, vec![json!("x")]);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(j.append(&json!("y")).await.unwrap(), 2);
    j.close().await;

    // Unparseable but newline-terminated last line is torn too.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"garbage\n").unwrap();
    drop(f);
    let (j, replay) = Journal::open(dir.path(), "s", Fsync::Never).unwrap();
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
    let (j, replay) = Journal::open(dir.path(), "s", Fsync::Batch).unwrap();
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
    let (j, replay) = Journal::open(dir.path(), "s", Fsync::Batch).unwrap();
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
    let (j, _) = Journal::open(dir.path(), "q", Fsync::Batch).unwrap();
    j.append(&json!(1)).await.unwrap();
    j.compact_retained(Box::new(|_| vec![json!("s")]))
        .await
        .unwrap();
    j.append(&json!(2)).await.unwrap();
    j.close().await;
    fs::write(
        dir.path().join("q.snapshot.json"),
        b"{\"version\":1,garbage",
    )
    .unwrap();
    let (j, replay) = Journal::open(dir.path(), "q", Fsync::Batch).unwrap();
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
        Journal::open(dir.path(), "../x", Fsync::Batch),
        Err(StoreError::InvalidStream(_))
    ));
    assert_eq!("always".parse::<Fsync>().unwrap(), Fsync::Always);
    assert!("sometimes".parse::<Fsync>().is_err());
    assert_eq!(serde_json::to_string(&Fsync::Never).unwrap(), "\"never\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), "c", Fsync::Batch).unwrap();
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

    let (_j, replay) = Journal::open(dir.path(), "c", Fsync::Batch).unwrap();
    let ids: HashSet<u64> = replay.iter().map(|v| v["i"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 10_000);
}

#[tokio::test]
async fn compact_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StreamOptions {
        max_segment_bytes: 10,
        policy: Fsync::Batch,
    };
    let (j, _) = Journal::open_with(dir.path(), "k", opts).unwrap();
    for i in 0..5 {
        j.append(&json!(i)).await.unwrap();
    }
    assert!(j.needs_compaction());
    j.compact_retained(Box::new(|_| vec![json!("snap")]))
        .await
        .unwrap();
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
    let opts = StreamOptions {
        max_segment_bytes: 256,
        policy: Fsync::Never,
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
    let opts = StreamOptions {
        max_segment_bytes: 512,
        policy: Fsync::Never,
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
    let opts = StreamOptions {
        max_segment_bytes: 1024,
        policy: Fsync::Never,
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
    let (j, _) = Journal::open(dir.path(), "t", Fsync::Batch).unwrap();
    j.append(&json!(1)).await.unwrap();
    j.compact_retained(Box::new(|_| vec![json!("s")]))
        .await
        .unwrap();
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
    let (j, replay) = Journal::open(dir.path(), "t", Fsync::Batch).unwrap();
    assert_eq!(replay, vec![json!("s"), json!(2)]);
    assert!(!tmp.exists() && !retain_tmp.exists() && !segment_tmp.exists());
    assert_eq!(j.append(&json!(3)).await.unwrap(), 3);
    j.close().await;
}

#[tokio::test]
async fn crash_between_snapshot_and_truncate_does_not_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (j, _) = Journal::open(dir.path(), "d", Fsync::Batch).unwrap();
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
    let (j, replay) = Journal::open(dir.path(), "d", Fsync::Batch).unwrap();
    assert_eq!(replay, vec![json!("s")]);
    assert_eq!(j.append(&json!(3)).await.unwrap(), 3);
    j.close().await;
}
