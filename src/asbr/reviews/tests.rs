//! Unit tests of the review store: memory bounded by bytes as well as by count, journal
//! compaction after many updates, and the state surviving a restart.

use super::*;
use crate::runtime::store::LocalBackend;

fn finished_review(id: &str, findings: usize) -> Review {
    let finding = ReviewFinding {
        reviewer: ReviewerKind::Style,
        rule: "style-todo".into(),
        severity: Severity::Low,
        file: "src/lib.rs".into(),
        line: 1,
        message: "m".repeat(200),
        excerpt: "e".repeat(200),
    };
    Review {
        summary: ReviewSummary {
            id: id.into(),
            repository_path: "/repo".into(),
            scope: ScopeMode::Full,
            paths: Vec::new(),
            incremental_since: None,
            pull_request: None,
            reviewers: vec![ReviewerKind::Style],
            status: ReviewStatus::Completed,
            task_id: None,
            findings: FindingSummary::default(),
            verdict: None,
            feedback_count: 0,
            error: None,
            created_at: now(),
            updated_at: now(),
            owner: None,
        },
        details: vec![finding; findings],
        feedback: Vec::new(),
    }
}

#[tokio::test]
async fn memory_is_bounded_by_bytes_not_only_by_count() {
    let dir = tempfile::tempdir().unwrap();
    // room for about two reviews of 100 findings (~48 KB each), however many fit by count
    let store = ReviewStore::open_with_limits(
        &LocalBackend::new(dir.path()),
        Fsync::Never,
        (1_000, 100_000),
    )
    .unwrap();
    for id in ["r1", "r2", "r3", "r4"] {
        store.put(finished_review(id, 100)).await.unwrap();
    }
    assert!(
        store.get("r1", &Principal::stdio()).is_err()
            && store.get("r2", &Principal::stdio()).is_err()
    );
    assert!(
        store.get("r3", &Principal::stdio()).is_ok()
            && store.get("r4", &Principal::stdio()).is_ok()
    );
    // small reviews are bounded by count as before (the journal replays r1..r4)
    drop(store);
    let store =
        ReviewStore::open_with_limits(&LocalBackend::new(dir.path()), Fsync::Never, (2, 1 << 30))
            .unwrap();
    store.put(finished_review("r5", 0)).await.unwrap();
    assert_eq!(
        store
            .list(&Principal::stdio(), None, None, None, 10)
            .0
            .len(),
        2
    );
}

fn stored_bytes(dir: &std::path::Path) -> u64 {
    ["reviews.ndjson", "reviews.snapshot.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn many_updates_compact_the_journal_and_the_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = StreamOptions::new(Fsync::Never, 32 * 1024);
    let limits = (3, 1 << 30);
    let me = Principal::stdio();
    let store = ReviewStore::open_with(&LocalBackend::new(dir.path()), options, limits).unwrap();
    for id in ["r1", "r2", "r3", "r4", "r5"] {
        store.put(finished_review(id, 2)).await.unwrap();
    }
    let mut appended = 0;
    let mut last = HashMap::new();
    for n in 0..400 {
        let id = ["r4", "r5"][n % 2];
        let r = store
            .update(id, &me, |r| {
                r.summary.error = Some(format!("note {n}"));
                Ok(())
            })
            .await
            .unwrap();
        appended += serde_json::to_vec(&r).unwrap().len() as u64;
        last.insert(id, r);
    }
    store.close().await;
    let stored = stored_bytes(dir.path());
    assert!(
        stored < appended / 10,
        "{stored} bytes stored for {appended} bytes of updates"
    );
    let snapshot = std::fs::read_to_string(dir.path().join("reviews.snapshot.json")).unwrap();
    assert!(!snapshot.contains("\"r1\""), "an evicted review was kept");

    let store = ReviewStore::open_with(&LocalBackend::new(dir.path()), options, limits).unwrap();
    assert_eq!(store.get("r4", &me).unwrap(), last["r4"]);
    assert_eq!(store.get("r5", &me).unwrap(), last["r5"]);
    assert!(store.get("r3", &me).is_ok());
    assert!(store.get("r1", &me).is_err() && store.get("r2", &me).is_err());
    store.close().await;
}
