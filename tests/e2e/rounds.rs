//! Multi-round tool calls (MCP 2026-07-28 `input_required`) through rmcp's 2026-07-28
//! client, whose `call_tool` answers each question through its `ClientHandler` (the
//! "user" here) and calls again with the answer and the `requestState`:
//! `delete_integration` confirms before deleting stored credentials, `spool_commit`
//! before committing despite validator findings, `merge_pull_request` (no
//! `mergeMethod`) asks which method among those the repository allows. Each: accepted
//! (done), declined (nothing done, an `isError` result saying so), and retried with an
//! altered `requestState` (refused with -32602, nothing done); a 2025-11-25 client is
//! never asked and gets today's behaviour.
#![allow(deprecated)] // sampling and roots types appear in rmcp's client handler

use std::sync::{Arc, Mutex};

use fakehub::FakeConfig;
use rmcp::{
    ClientHandler, ErrorData as McpError, RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientInfo,
        ElicitRequestParams, ElicitResult, ElicitationAction, Implementation, InputResponses,
    },
    service::{RequestContext, RunningService, ServiceError},
};
use serde_json::{Value, json};

use crate::common::*;

/// How the user answers the next questions.
#[derive(Clone)]
enum Answer {
    Accept(Value),
    Decline,
    Cancel,
}

/// A client user: answers every elicitation with the current [`Answer`] and records
/// each question (its message and requested schema).
#[derive(Clone)]
struct User {
    answer: Arc<Mutex<Answer>>,
    asked: Arc<Mutex<Vec<Value>>>,
}

impl User {
    fn new(answer: Answer) -> Self {
        User {
            answer: Arc::new(Mutex::new(answer)),
            asked: Arc::default(),
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn questions(&self) -> Vec<Value> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for User {
    fn get_info(&self) -> ClientInfo {
        let caps: ClientCapabilities =
            serde_json::from_value(json!({"elicitation": {"form": {}}})).unwrap();
        ClientInfo::new(caps, Implementation::new("e2e-user", "0.0.0"))
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, McpError> {
        self.asked
            .lock()
            .unwrap()
            .push(serde_json::to_value(&request).unwrap());
        Ok(match self.answer.lock().unwrap().clone() {
            Answer::Accept(content) => {
                ElicitResult::new(ElicitationAction::Accept).with_content(content)
            }
            Answer::Decline => ElicitResult::new(ElicitationAction::Decline),
            Answer::Cancel => ElicitResult::new(ElicitationAction::Cancel),
        })
    }
}

type Modern = RunningService<RoleClient, User>;

fn params(tool: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_string())
        .with_arguments(args.as_object().cloned().unwrap_or_default())
}

/// A call that runs every round through the user.
async fn ask_call(client: &Modern, tool: &str, args: Value) -> CallToolResult {
    client
        .call_tool(params(tool, args))
        .await
        .unwrap_or_else(|e| panic!("tools/call {tool}: {e}"))
}

/// The first round of a call that must ask, then the retry with `answer` under `key`
/// and the round's `requestState` with a character changed: refused with -32602.
async fn altered_state_is_refused(client: &Modern, tool: &str, args: Value, key: &str) {
    let first = client.call_tool_once(params(tool, args.clone())).await;
    let Ok(CallToolResponse::InputRequired(asked)) = first else {
        panic!("{tool} did not ask: {first:?}");
    };
    let state = asked.request_state.expect("a requestState");
    let mut altered = state.into_bytes();
    let mid = altered.len() / 2;
    altered[mid] = if altered[mid] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let responses: InputResponses = serde_json::from_value(json!({
        key: {"action": "accept", "content": {"confirm": true, "mergeMethod": "squash"}}
    }))
    .unwrap();
    let retry = params(tool, args)
        .with_input_responses(responses)
        .with_request_state(altered);
    match client.call_tool_once(retry).await {
        Err(ServiceError::McpError(e)) => {
            assert_eq!(e.code.0, -32602, "{e:?}");
            assert!(e.message.contains("requestState"), "{}", e.message);
        }
        other => panic!("an altered requestState was not refused: {other:?}"),
    }
}

// ---------------------------------------------------------------- delete_integration

fn hook(name: &str) -> Value {
    json!({"name": name, "type": "webhook",
           "config": {"credentials": {"webhookSecret": "whsec-do-not-show-42"}}})
}

async fn integration_ids(client: &Modern) -> Vec<String> {
    let listed = structured(&ask_call(client, "list_integrations", json!({})).await);
    listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_integration_asks_before_deleting_stored_credentials() {
    let state = tempfile::tempdir().unwrap();
    let user = User::new(Answer::Decline);
    let client = modern_stdio_client_with(
        user.clone(),
        state.path(),
        &["--toolsets", "integrations"],
        &[],
    )
    .await;
    let made = structured(&ask_call(&client, "create_integration", hook("kept")).await);
    let id = made["id"].as_str().unwrap().to_string();

    let declined = ask_call(&client, "delete_integration", json!({"integrationId": id})).await;
    assert_eq!(declined.is_error, Some(true));
    let said = text(&declined);
    assert!(
        said.contains("Nothing was deleted") && said.contains("declined"),
        "{said}"
    );
    let questions = user.questions();
    assert_eq!(questions.len(), 1);
    let message = questions[0]["message"].as_str().unwrap();
    assert!(
        message.contains("webhookSecret") && message.contains("kept"),
        "{message}"
    );
    assert!(!questions[0].to_string().contains("whsec-do-not-show-42"));
    assert!(integration_ids(&client).await.contains(&id));

    user.answer(Answer::Cancel);
    let dismissed = ask_call(&client, "delete_integration", json!({"integrationId": id})).await;
    assert_eq!(dismissed.is_error, Some(true), "{}", text(&dismissed));
    assert!(integration_ids(&client).await.contains(&id));

    altered_state_is_refused(
        &client,
        "delete_integration",
        json!({"integrationId": id}),
        "confirm_delete",
    )
    .await;
    assert!(integration_ids(&client).await.contains(&id));

    user.answer(Answer::Accept(json!({"confirm": true})));
    let deleted =
        structured(&ask_call(&client, "delete_integration", json!({"integrationId": id})).await);
    assert_eq!(deleted["deleted"]["id"], id.as_str());
    assert!(!integration_ids(&client).await.contains(&id));

    // Without stored credentials there is nothing to confirm.
    let asked_before = user.questions().len();
    let plain = structured(
        &ask_call(
            &client,
            "create_integration",
            json!({"name": "plain", "type": "webhook"}),
        )
        .await,
    );
    let plain_id = plain["id"].as_str().unwrap();
    let gone = structured(
        &ask_call(
            &client,
            "delete_integration",
            json!({"integrationId": plain_id}),
        )
        .await,
    );
    assert_eq!(gone["deleted"]["id"], plain_id);
    assert_eq!(user.questions().len(), asked_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_client_deletes_an_integration_with_credentials_without_a_question() {
    let state = tempfile::tempdir().unwrap();
    let client = stdio_client(state.path(), &["--toolsets", "integrations"]).await;
    let made = ok(&client, "create_integration", hook("old-client")).await;
    let id = made["id"].as_str().unwrap();
    let deleted = ok(&client, "delete_integration", json!({"integrationId": id})).await;
    assert_eq!(deleted["deleted"]["id"], id);
}

// ---------------------------------------------------------------- spool_commit

async fn spool_with_bad_json(client: &Modern, ws: &std::path::Path) -> String {
    let open = structured(&ask_call(client, "spool_open", json!({"root": ws})).await);
    let session = open["session"].as_str().unwrap().to_string();
    let wrote = ask_call(
        client,
        "spool_write",
        json!({"session": session, "path": "conf/bad.json", "content": "{\"a\": "}),
    )
    .await;
    assert_ne!(wrote.is_error, Some(true), "{}", text(&wrote));
    session
}

async fn changed(client: &Modern, session: &str) -> u64 {
    let status = structured(&ask_call(client, "spool_status", json!({"session": session})).await);
    status["changed"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_commit_asks_before_committing_despite_validator_findings() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let ws_arg = ws.display().to_string();
    let user = User::new(Answer::Decline);
    let client = modern_stdio_client_with(
        user.clone(),
        state.path(),
        &["--toolsets", "patchkit", "--workspace-roots", &ws_arg],
        &[],
    )
    .await;
    let session = spool_with_bad_json(&client, &ws).await;

    let declined = ask_call(&client, "spool_commit", json!({"session": session})).await;
    assert_eq!(declined.is_error, Some(true));
    assert!(
        text(&declined).contains("Nothing was committed"),
        "{}",
        text(&declined)
    );
    let message = user.questions()[0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("conf/bad.json: not valid JSON") && message.contains("Commit anyway?"),
        "{message}"
    );
    assert_eq!(changed(&client, &session).await, 1, "committed on a no");

    altered_state_is_refused(
        &client,
        "spool_commit",
        json!({"session": session}),
        "commit_anyway",
    )
    .await;
    assert_eq!(changed(&client, &session).await, 1);

    user.answer(Answer::Accept(json!({"confirm": false})));
    let said_no = ask_call(&client, "spool_commit", json!({"session": session})).await;
    assert_eq!(said_no.is_error, Some(true), "{}", text(&said_no));
    assert_eq!(changed(&client, &session).await, 1);

    user.answer(Answer::Accept(json!({"confirm": true})));
    let committed =
        structured(&ask_call(&client, "spool_commit", json!({"session": session})).await);
    assert_eq!(committed["committed"].as_array().unwrap().len(), 1);
    let overridden = committed["overridden"].to_string();
    assert!(overridden.contains("conf/bad.json"), "{overridden}");
    assert_eq!(changed(&client, &session).await, 0);

    // Nothing to confirm when the validators find nothing.
    let asked_before = user.questions().len();
    ask_call(
        &client,
        "spool_write",
        json!({"session": session, "path": "conf/good.json", "content": "{}"}),
    )
    .await;
    let clean = structured(&ask_call(&client, "spool_commit", json!({"session": session})).await);
    assert!(clean.get("overridden").is_none(), "{clean}");
    assert_eq!(user.questions().len(), asked_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_client_gets_the_commit_refusal_as_before() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let ws_arg = ws.display().to_string();
    let client = stdio_client(
        state.path(),
        &["--toolsets", "patchkit", "--workspace-roots", &ws_arg],
    )
    .await;
    let session = ok(&client, "spool_open", json!({"root": ws})).await["session"]
        .as_str()
        .unwrap()
        .to_string();
    ok(
        &client,
        "spool_write",
        json!({"session": session, "path": "bad.json", "content": "{"}),
    )
    .await;
    let refused = err(&client, "spool_commit", json!({"session": session})).await;
    assert!(
        refused.starts_with("commit refused, nothing was committed: bad.json: not valid JSON"),
        "{refused}"
    );
}

// ---------------------------------------------------------------- merge_pull_request

const TOKEN: &str = "tok-rounds-0001";
const REPO: &str = "octo/hello";

async fn fake_json(hub: &fakehub::FakeHub, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}/repos/{REPO}/{path}", hub.base_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The number of parents of pull request `number`'s merge commit (1: squashed).
async fn merge_parents(hub: &fakehub::FakeHub, number: u64) -> usize {
    let pull = fake_json(hub, &format!("pulls/{number}")).await;
    assert_eq!(pull["merged"], true, "{pull}");
    let sha = pull["merge_commit_sha"].as_str().unwrap();
    let commit = fake_json(hub, &format!("commits/{sha}")).await;
    commit["parents"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_pull_request_asks_which_method_among_those_the_repository_allows() {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    hub.set_merge_methods(REPO, false, true, true);
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let env = [("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let user = User::new(Answer::Decline);
    let client =
        modern_stdio_client_with(user.clone(), state.path(), &["--toolsets", "github"], &env).await;

    let declined = ask_call(
        &client,
        "merge_pull_request",
        json!({"repository": REPO, "number": 252}),
    )
    .await;
    assert_eq!(declined.is_error, Some(true));
    assert!(
        text(&declined).contains("Nothing was merged"),
        "{}",
        text(&declined)
    );
    let offered: Vec<Value> =
        user.questions()[0]["requestedSchema"]["properties"]["mergeMethod"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["const"].clone())
            .collect();
    assert_eq!(offered, vec![json!("squash"), json!("rebase")]);
    assert_eq!(
        fake_json(&hub, "pulls/252").await["merged"],
        false,
        "merged on a no"
    );

    altered_state_is_refused(
        &client,
        "merge_pull_request",
        json!({"repository": REPO, "number": 252}),
        "merge_method",
    )
    .await;
    assert_eq!(fake_json(&hub, "pulls/252").await["merged"], false);

    user.answer(Answer::Accept(json!({"mergeMethod": "squash"})));
    let merged = structured(
        &ask_call(
            &client,
            "merge_pull_request",
            json!({"repository": REPO, "number": 252}),
        )
        .await,
    );
    assert_eq!(merged["merged"], true);
    assert_eq!(merge_parents(&hub, 252).await, 1, "not squashed");

    // An explicit method is never asked about.
    let asked_before = user.questions().len();
    let rebased = structured(
        &ask_call(
            &client,
            "merge_pull_request",
            json!({"repository": REPO, "number": 253, "mergeMethod": "rebase"}),
        )
        .await,
    );
    assert_eq!(rebased["merged"], true);
    assert_eq!(user.questions().len(), asked_before);

    // One method allowed: nothing to ask.
    hub.set_merge_methods(REPO, false, true, false);
    let only = structured(
        &ask_call(
            &client,
            "merge_pull_request",
            json!({"repository": REPO, "number": 254}),
        )
        .await,
    );
    assert_eq!(only["merged"], true);
    assert_eq!(merge_parents(&hub, 254).await, 1);
    assert_eq!(user.questions().len(), asked_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_client_merges_with_a_merge_commit_without_a_question() {
    let hub = fakehub::spawn(FakeConfig::default(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("fake GitHub starts");
    let state = tempfile::tempdir().unwrap();
    let base = hub.base_url();
    let env = [("GITHUB_API_URL", base.as_str()), ("GITHUB_TOKEN", TOKEN)];
    let client = stdio_client_env(state.path(), &["--toolsets", "github"], &env).await;
    let merged = ok(
        &client,
        "merge_pull_request",
        json!({"repository": REPO, "number": 255}),
    )
    .await;
    assert_eq!(merged["merged"], true);
    assert_eq!(merge_parents(&hub, 255).await, 2, "not a merge commit");
}
