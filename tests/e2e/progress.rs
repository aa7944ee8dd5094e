//! Progress notifications through a real client: strictly increasing and rate-limited
//! (~20/s). (The rmcp client attaches a progress token to every request, so the
//! "no token, no notifications" rule is covered by the unit tests of `runtime::progress`.)

use crate::common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::*;
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, NumberOrString, ProgressNotificationParam, ProgressToken,
        RequestMetaObject,
    },
    service::NotificationContext,
};
use serde_json::json;

#[derive(Clone, Default)]
struct Progress(Arc<Mutex<Vec<f64>>>);

impl ClientHandler for Progress {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params.progress);
    }
}

#[tokio::test]
async fn progress_is_increasing_and_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--toolsets", "all", "serve", "--conformance-fixtures"];
    let seen = Progress::default();
    let client = stdio_client_with(seen.clone(), dir.path(), &args, &[]).await;

    // 100 steps of 5 ms = 0.5 s of work: at most ~20/s means about 10, never 100.
    let args = json!({"steps": 100, "delay_ms": 5})
        .as_object()
        .cloned()
        .unwrap();
    let token = ProgressToken(NumberOrString::String("p1".into()));
    let mut call =
        CallToolRequestParams::new("test_tool_with_progress").with_arguments(args.clone());
    call.meta = Some(RequestMetaObject::with_progress_token(token));
    let started = std::time::Instant::now();
    let result = client.call_tool(call).await.unwrap();
    let took = started.elapsed();
    assert_eq!(result.is_error, Some(false));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let values = seen.0.lock().unwrap().clone();
    assert!(values.len() >= 3, "some progress was reported: {values:?}");
    // The limit is a rate: a loaded machine stretches the 0.5 s, never past 20 per second.
    let allowed = (took.as_secs_f64() * 20.0).ceil() as usize + 2;
    assert!(
        values.len() <= allowed.min(50),
        "rate-limited to ~20/s: {} notifications in {took:?}",
        values.len()
    );
    assert!(
        values.windows(2).all(|w| w[1] > w[0]),
        "strictly increasing: {values:?}"
    );

    client.cancel().await.unwrap();
}
