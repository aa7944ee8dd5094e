use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::json;

use super::driver::INTERNAL_ERROR;
use super::*;
use crate::config::Fsync;
use crate::runtime::rounds::Ask;

fn askable() -> Askable {
    Askable {
        elicitation: true,
        sampling: false,
        roots: false,
        modern: true,
    }
}

fn new_task(principal: &str) -> NewTask {
    NewTask {
        principal: Principal::oauth(principal),
        askable: askable(),
        cancel: CancellationToken::new(),
        answers: Default::default(),
        state: None,
    }
}

fn finish() -> Finish {
    Box::new(|outcome| match outcome {
        Ok(v) => CallToolResult::success(vec![ContentBlock::text(v.to_string())]),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
    })
}

fn never_rerun() -> Rerun {
    Box::new(|_| Box::pin(async { Err(ToolError::Internal("not re-run".into())) }))
}

/// Asks `first` and `second` until both are answered, then names them.
fn asking(rounds: Rounds) -> Run {
    Box::pin(async move {
        let a = rounds.elicited("first")?;
        let b = rounds.elicited("second")?;
        match (a, b) {
            (Some(_), Some(_)) => Ok(json!("both")),
            _ => Err(ToolError::needs_input(
                Ask::new()
                    .elicit(
                        "first",
                        "1?",
                        json!({"type": "object", "properties": {"v": {"type": "string"}}}),
                    )
                    .elicit(
                        "second",
                        "2?",
                        json!({"type": "object", "properties": {"v": {"type": "string"}}}),
                    ),
            )),
        }
    })
}

/// Starts a task of alice's whose call is `run` (never re-run).
async fn run_once(tasks: &ToolTasks, run: Run) -> Task {
    tasks
        .start(new_task("alice"), run, never_rerun(), finish())
        .await
        .unwrap()
}

/// Starts a task of alice's that asks `first` and `second` (see [`asking`]).
async fn start_asking(tasks: &ToolTasks) -> Task {
    tasks
        .start(
            new_task("alice"),
            asking(Rounds::default()),
            Box::new(asking),
            finish(),
        )
        .await
        .unwrap()
}

async fn settled(tasks: &ToolTasks, who: &Principal, id: &str) -> DetailedTask {
    for _ in 0..200 {
        let task = tasks.get(who, id).unwrap();
        if task.status().is_terminal() {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} did not settle");
}

async fn parked(tasks: &ToolTasks, who: &Principal, id: &str) -> DetailedTask {
    for _ in 0..200 {
        let task = tasks.get(who, id).unwrap();
        if task.status() == TaskStatus::InputRequired {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} did not ask: {:?}", tasks.get(who, id));
}

#[tokio::test]
async fn a_task_is_visible_at_once_and_inlines_its_result() {
    let tasks = ToolTasks::new();
    let who = Principal::oauth("alice");
    let task = run_once(&tasks, Box::pin(async { Ok(json!(42)) })).await;
    assert_eq!(task.ttl_ms, Some(TASK_TTL.as_millis() as u64));
    let done = settled(&tasks, &who, &task.task_id).await;
    match done.payload {
        TaskPayload::Completed { result } => assert_eq!(result["content"][0]["text"], "42"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_tool_error_completes_and_a_server_fault_fails() {
    let tasks = ToolTasks::new();
    let who = Principal::oauth("alice");
    let business = run_once(
        &tasks,
        Box::pin(async { Err(ToolError::business("no such thing")) }),
    )
    .await;
    let fault = run_once(
        &tasks,
        Box::pin(async { Err(ToolError::Internal("disk gone".into())) }),
    )
    .await;
    let done = settled(&tasks, &who, &business.task_id).await;
    assert!(
        matches!(&done.payload, TaskPayload::Completed { result } if result["isError"] == true)
    );
    let done = settled(&tasks, &who, &fault.task_id).await;
    match done.payload {
        TaskPayload::Failed { error } => {
            assert_eq!(error["code"], INTERNAL_ERROR);
            assert!(error["message"].as_str().unwrap().contains("disk gone"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn answers_arrive_in_parts_and_the_call_runs_again_with_all_of_them() {
    let tasks = ToolTasks::new();
    let who = Principal::oauth("alice");
    let task = start_asking(&tasks).await;
    let asked = parked(&tasks, &who, &task.task_id).await;
    let TaskPayload::InputRequired { input_requests } = asked.payload else {
        panic!()
    };
    assert_eq!(input_requests.len(), 2);
    let answer = json!({"action": "accept", "content": {}});
    let first = [("first".to_string(), answer.clone())].into();
    tasks.update(&who, &task.task_id, first).unwrap();
    let still = tasks.get(&who, &task.task_id).unwrap();
    let TaskPayload::InputRequired { input_requests } = still.payload else {
        panic!("{still:?}")
    };
    assert_eq!(input_requests.keys().collect::<Vec<_>>(), ["second"]);
    // Unknown keys are ignored; a non-object answer is refused.
    let odd = [("third".to_string(), answer.clone())].into();
    tasks.update(&who, &task.task_id, odd).unwrap();
    let bad = [("second".to_string(), json!(5))].into();
    assert!(matches!(
        tasks.update(&who, &task.task_id, bad),
        Err(TaskError::BadResponse { .. })
    ));
    let second = [("second".to_string(), answer)].into();
    tasks.update(&who, &task.task_id, second).unwrap();
    let done = settled(&tasks, &who, &task.task_id).await;
    assert!(
        matches!(&done.payload, TaskPayload::Completed { result } if result["content"][0]["text"] == "\"both\"")
    );
}

#[tokio::test]
async fn cancel_settles_as_cancelled_and_is_idempotent() {
    let tasks = ToolTasks::new();
    let who = Principal::oauth("alice");
    let new = new_task("alice");
    let cancel = new.cancel.clone();
    let work: Run = Box::pin(async move {
        cancel.cancelled().await;
        Err(ToolError::Cancelled)
    });
    let task = tasks
        .start(new, work, never_rerun(), finish())
        .await
        .unwrap();
    tasks.cancel(&who, &task.task_id).unwrap();
    let done = settled(&tasks, &who, &task.task_id).await;
    assert_eq!(done.status(), TaskStatus::Cancelled);
    tasks.cancel(&who, &task.task_id).unwrap();
    assert_eq!(tasks.running(), 0);

    // A parked task is cancelled too.
    let task = start_asking(&tasks).await;
    parked(&tasks, &who, &task.task_id).await;
    tasks.cancel(&who, &task.task_id).unwrap();
    assert_eq!(
        settled(&tasks, &who, &task.task_id).await.status(),
        TaskStatus::Cancelled
    );
}

#[tokio::test]
async fn another_principal_cannot_see_touch_or_stop_a_task() {
    let tasks = ToolTasks::new();
    let task = start_asking(&tasks).await;
    let mallory = Principal::oauth("mallory");
    let id = &task.task_id;
    assert!(matches!(
        tasks.get(&mallory, id),
        Err(TaskError::Unknown(_))
    ));
    assert!(matches!(
        tasks.cancel(&mallory, id),
        Err(TaskError::Unknown(_))
    ));
    assert!(matches!(
        tasks.update(&mallory, id, Default::default()),
        Err(TaskError::Unknown(_))
    ));
    assert!(matches!(
        tasks.get(&mallory, "no-such-task"),
        Err(TaskError::Unknown(_))
    ));
    assert_eq!(tasks.running(), 1);
}

#[tokio::test]
async fn one_principal_holds_a_bounded_number_of_running_tasks() {
    let tasks = ToolTasks::new();
    let pending = || -> Run { Box::pin(futures::future::pending()) };
    for _ in 0..MAX_RUNNING_PER_PRINCIPAL {
        tasks
            .start(new_task("alice"), pending(), never_rerun(), finish())
            .await
            .unwrap();
    }
    assert!(matches!(
        tasks
            .start(new_task("alice"), pending(), never_rerun(), finish())
            .await,
        Err(TaskError::TooManyRunning)
    ));
    tasks
        .start(new_task("bob"), pending(), never_rerun(), finish())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_finished_task_survives_a_restart_and_an_interrupted_one_is_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let who = Principal::oauth("alice");
    let (done_id, running_id) = {
        let tasks = ToolTasks::open(dir.path(), Fsync::Always).unwrap();
        let done = run_once(&tasks, Box::pin(async { Ok(json!("kept")) })).await;
        settled(&tasks, &who, &done.task_id).await;
        let running = tasks
            .start(
                new_task("alice"),
                Box::pin(futures::future::pending()),
                never_rerun(),
                finish(),
            )
            .await
            .unwrap();
        (done.task_id, running.task_id)
    };
    let tasks = ToolTasks::open(dir.path(), Fsync::Always).unwrap();
    let done = tasks.get(&who, &done_id).unwrap();
    assert!(
        matches!(&done.payload, TaskPayload::Completed { result } if result["content"][0]["text"] == "\"kept\""),
        "{done:?}"
    );
    let interrupted = tasks.get(&who, &running_id).unwrap();
    match interrupted.payload {
        TaskPayload::Failed { error } => {
            assert!(error["message"].as_str().unwrap().contains("restarted"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        tasks.get(&Principal::oauth("bob"), &done_id),
        Err(TaskError::Unknown(_))
    ));
    // The interruption is recorded: a third start sees the same.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(tasks);
    let tasks = ToolTasks::open(dir.path(), Fsync::Always).unwrap();
    assert_eq!(
        tasks.get(&who, &running_id).unwrap().status(),
        TaskStatus::Failed
    );
}

#[test]
fn past_the_result_budget_the_longest_finished_are_forgotten_first() {
    let entry = |age_secs: u64, bytes: usize, finished: bool| Entry {
        owner: "stdio".into(),
        created: SystemTime::UNIX_EPOCH,
        updated: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 - age_secs),
        expires: Instant::now() + TASK_TTL,
        phase: if finished {
            Phase::Done(TaskPayload::Cancelled)
        } else {
            Phase::Working
        },
        cancel: CancellationToken::new(),
        answers: Default::default(),
        bytes,
    };
    let mut table: HashMap<String, Entry> = [
        ("oldest".to_string(), entry(30, 400, true)),
        ("older".to_string(), entry(20, 400, true)),
        ("newest".to_string(), entry(10, 400, true)),
        ("running".to_string(), entry(40, 0, false)),
    ]
    .into();
    assert!(evict_over_budget(&mut table, None, 1_200).is_empty());
    let gone = evict_over_budget(&mut table, Some("oldest"), 500);
    let gone: Vec<&str> = gone.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(gone, ["older", "newest"], "the kept one is spared");
    assert!(table.contains_key("oldest") && table.contains_key("running"));
}

/// With a replica name, task ids carry it; an unknown id naming another replica says
/// where the task runs (a load balancer sent the request elsewhere) instead of "unknown".
#[tokio::test]
async fn task_ids_name_their_replica_and_another_replica_says_so() {
    let tasks = ToolTasks::new().on_replica(Some("r1"));
    let who = Principal::oauth("alice");
    let task = run_once(&tasks, Box::pin(async { Ok(json!(1)) })).await;
    assert!(task.task_id.ends_with("@r1"), "{}", task.task_id);
    settled(&tasks, &who, &task.task_id).await;
    let elsewhere = tasks.get(&who, "0190-abc@r2").unwrap_err().to_string();
    assert!(
        elsewhere.contains("replica `r2`") && elsewhere.contains("replica `r1`"),
        "{elsewhere}"
    );
    assert!(matches!(
        tasks.cancel(&who, "0190-abc@r2"),
        Err(TaskError::OnAnotherReplica { .. })
    ));
    assert!(matches!(
        tasks.get(&who, "0190-abc@r1"),
        Err(TaskError::Unknown(_))
    ));
    assert!(matches!(
        tasks.get(&who, "0190-abc"),
        Err(TaskError::Unknown(_))
    ));
}
