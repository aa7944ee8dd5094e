//! Tests of the task store: rebuilds from the bus and the snapshot, compaction, and
//! journals of older formats.

use serde_json::Value;

use super::*;

fn input(scopes: &[&str]) -> TaskInput {
    TaskInput {
        title: "t".into(),
        brief: "b".into(),
        inputs: vec![TaskInputItem::Text { value: "x".into() }],
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        deadlines: None,
        a11y_profile_id: None,
        preferences: None,
    }
}

fn p() -> Principal {
    Principal::stdio()
}

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn open(dir: &Path) -> (EventBus, TaskStore) {
    let bus = EventBus::new(Some(dir.join("events")), Fsync::Never).unwrap();
    let store = TaskStore::open(&dir.join("asbr"), bus.clone(), Fsync::Never).unwrap();
    (bus, store)
}

async fn close(bus: EventBus, store: TaskStore) {
    store.close().await;
    bus.close().await;
}

async fn step(store: &TaskStore, id: &str, kind: AgentEventKind, step: &str, data: Value) -> Task {
    let step = Some(step.to_string());
    store
        .transition(id, &p(), TP.into(), |t| {
            apply_agent_event(t, kind, step, Some(data))
        })
        .await
        .unwrap()
}

/// Creates a fresh task with `scope` as its only scope (distinct scopes, distinct tasks).
async fn create(store: &TaskStore, scope: &str) -> Task {
    let created = store
        .create(input(&[scope]), None, TP.into(), &p(), false)
        .await
        .unwrap();
    assert!(!created.reused, "a task with scope {scope} already existed");
    created.task
}

/// `task` after twelve `StepCompleted` events.
async fn twelve_steps(store: &TaskStore, mut task: Task) -> Task {
    for i in 0..12 {
        let data = serde_json::json!(i);
        task = step(store, &task.id, AgentEventKind::StepCompleted, "s", data).await;
    }
    task
}

async fn event_count(store: &TaskStore, id: &str) -> usize {
    let (events, _) = store
        .watch(&p(), Some(id), &[], 0, 100, Duration::ZERO)
        .await
        .unwrap();
    events.len()
}

#[tokio::test]
async fn tasks_rebuilt_from_their_events_equal_the_acknowledged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, store) = open(dir.path());
    let a = create(&store, "a").await;
    let ids = serde_json::json!({"artifacts": ["art-1"], "evidenceIds": ["ev-1"]});
    step(&store, &a.id, AgentEventKind::StepCompleted, "plan", ids).await;
    step(
        &store,
        &a.id,
        AgentEventKind::AwaitingApproval,
        "deploy",
        Value::Null,
    )
    .await;
    let a_approved = store
        .transition(&a.id, &p(), TP.into(), |t| {
            apply_approval(t, "deploy", Approver::User, "stdio")
        })
        .await
        .unwrap();
    let b = create(&store, "b").await;
    let b_canceled = store
        .transition(&b.id, &p(), TP.into(), apply_cancel)
        .await
        .unwrap();
    close(bus, store).await;

    // First restart: everything comes from the bus journal; a snapshot is written.
    let (bus, store) = open(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a_approved);
    assert_eq!(store.get(&b.id, &p()).unwrap(), b_canceled);
    assert_eq!(event_count(&store, &a.id).await, 4);
    let c = create(&store, "c").await;
    let more = serde_json::json!({"artifacts": ["art-2", "art-1"]});
    let a_done = step(
        &store,
        &a.id,
        AgentEventKind::DeliverableReady,
        "ship",
        more,
    )
    .await;
    close(bus, store).await;

    assert!(dir.path().join("asbr/tasks.snapshot.json").exists());

    // Second restart: the snapshot plus the events published after it.
    let (bus, store) = open(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a_done);
    assert_eq!(store.get(&c.id, &p()).unwrap().status, TaskStatus::Queued);
    assert_eq!(a_done.artifacts, vec!["art-1", "art-2"]);
    assert_eq!(a_done.evidence_ids, vec!["ev-1"]);
    assert_eq!(a_done.approvals.len(), 1);
    assert_eq!(a_done.status, TaskStatus::Succeeded);
    assert_eq!(event_count(&store, &a.id).await, 5);
    let reused = store
        .create(input(&["c"]), None, TP.into(), &p(), false)
        .await
        .unwrap();
    assert!(reused.reused, "idempotency survives restarts");
    close(bus, store).await;
}

/// Like `open`, with a bus that compacts its streams past 2 KiB and keeps one
/// event per type in its rings.
fn open_compacting(dir: &Path) -> (EventBus, TaskStore) {
    let options = crate::runtime::events::BusOptions {
        ring_capacity: 1,
        max_segment_bytes: 2048,
        ..crate::runtime::events::BusOptions::new(Fsync::Never)
    };
    let bus = EventBus::with_options(Some(dir.join("events")), options).unwrap();
    let store = TaskStore::open(&dir.join("asbr"), bus.clone(), Fsync::Never).unwrap();
    (bus, store)
}

#[tokio::test]
async fn tasks_rebuilt_after_the_bus_compacts_equal_the_acknowledged_ones() {
    let dir = tempfile::tempdir().unwrap();
    let compacted = dir.path().join("events/asbr.snapshot.json");
    let (bus, store) = open_compacting(dir.path());
    let a = twelve_steps(&store, create(&store, "a").await).await;
    let b = create(&store, "b").await;
    close(bus, store).await;
    assert!(
        !compacted.exists(),
        "no task snapshot yet: the bus keeps all"
    );

    // Restart: the task snapshot is written, then new events make the bus compact.
    let (bus, store) = open_compacting(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a);
    let snapshot = store.snapshot.lock().take().unwrap();
    snapshot.await.unwrap();
    let c = twelve_steps(&store, create(&store, "c").await).await;
    let b = store
        .transition(&b.id, &p(), TP.into(), apply_cancel)
        .await
        .unwrap();
    close(bus, store).await;
    assert!(compacted.exists(), "the asbr stream was compacted");
    let bus = EventBus::new(Some(dir.path().join("events")), Fsync::Never).unwrap();
    let kept = bus.history(BUS_STREAM, 0).unwrap();
    assert!(kept.len() < 28, "events the snapshot covers were dropped");
    bus.close().await;

    // Second restart: the task snapshot plus the events kept above its watermark.
    let (bus, store) = open_compacting(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a);
    assert_eq!(store.get(&b.id, &p()).unwrap(), b);
    assert_eq!(store.get(&c.id, &p()).unwrap(), c);
    assert_eq!(event_count(&store, &c.id).await, 13);
    close(bus, store).await;
}

#[tokio::test]
async fn journals_of_the_per_transition_format_still_load_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, store) = open(dir.path());
    let a = create(&store, "a").await;
    let a = step(
        &store,
        &a.id,
        AgentEventKind::StepCompleted,
        "one",
        Value::Null,
    )
    .await;
    let (events, _) = store
        .watch(&p(), Some(&a.id), &[], 0, 100, Duration::ZERO)
        .await
        .unwrap();
    close(bus, store).await;
    let asbr = dir.path().join("asbr");
    std::fs::remove_dir_all(&asbr).unwrap();
    let (old, _) = Stream::<Value>::open_local(
        &LocalBackend::new(&asbr),
        STREAM,
        StreamOptions::new(Fsync::Never, MAX_LOG_BYTES),
        crate::runtime::store::Compaction::new(|records| records),
    )
    .unwrap();
    for event in &events {
        old.append(&serde_json::json!({"task": a, "event": event}))
            .await
            .unwrap();
    }
    old.close().await;

    let (bus, store) = open(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a);
    assert_eq!(event_count(&store, &a.id).await, 2);
    close(bus, store).await;
}

fn stored_bytes(dir: &Path) -> u64 {
    ["tasks.ndjson", "tasks.snapshot.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// A long per-transition log (a task record per event) is compacted at start-up to
/// the task and its events once, and the task survives the next restart.
#[tokio::test]
async fn a_long_transition_log_is_compacted_at_start_up_and_the_state_survives() {
    let dir = tempfile::tempdir().unwrap();
    let (bus, store) = open(dir.path());
    let mut a = create(&store, "a").await;
    for _ in 0..10 {
        a = twelve_steps(&store, a).await;
    }
    let (events, _) = store
        .watch(&p(), Some(&a.id), &[], 0, 1000, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(events.len(), 121);
    close(bus, store).await;
    let asbr = dir.path().join("asbr");
    std::fs::remove_dir_all(&asbr).unwrap();
    let (old, _) = Stream::<Value>::open_local(
        &LocalBackend::new(&asbr),
        STREAM,
        StreamOptions::new(Fsync::Never, MAX_LOG_BYTES),
        crate::runtime::store::Compaction::new(|records| records),
    )
    .unwrap();
    for event in &events {
        old.append(&serde_json::json!({"task": a, "event": event}))
            .await
            .unwrap();
    }
    old.close().await;
    let appended = stored_bytes(&asbr);

    let (bus, store) = open(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a);
    close(bus, store).await;
    let stored = stored_bytes(&asbr);
    assert!(
        stored < appended * 3 / 5,
        "{stored} bytes stored for {appended} bytes of transitions"
    );
    assert_eq!(
        std::fs::metadata(asbr.join("tasks.ndjson")).unwrap().len(),
        0
    );

    let (bus, store) = open(dir.path());
    assert_eq!(store.get(&a.id, &p()).unwrap(), a);
    assert_eq!(event_count(&store, &a.id).await, 100);
    let (events, _) = store
        .watch(&p(), Some(&a.id), &[], 0, 1000, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(events.len(), 121);
    close(bus, store).await;
}
