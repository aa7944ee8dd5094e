//! Unit tests of the secure executor: allow-listing and argument checks, the timeout that
//! kills the process group (and the running count returning to zero), output caps and
//! redaction while streaming.

use super::*;

fn exec(allow: &[&str]) -> SecureExec {
    let settings = MvpSettings {
        exec_allow: allow.iter().map(|s| s.to_string()).collect(),
        exec_max_processes: 2,
        ..Default::default()
    };
    let layout = super::super::sandbox::Layout {
        roots: vec![std::env::temp_dir().canonicalize().unwrap()],
        protected: Vec::new(),
    };
    let sandbox = Sandbox::new(&settings, &layout).unwrap();
    SecureExec::new(
        &settings,
        &Executor::default(),
        Redactor::new(vec!["planted-secret-value".into()]),
        Arc::new(sandbox),
    )
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(30)
}
#[test]
fn refuses_unlisted_programs_paths_and_long_args() {
    let ex = exec(&["sh"]);
    let cwd = std::env::temp_dir();
    let err = ex
        .check(&Command::new("rm", &[], &cwd, Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, ExecError::NotAllowed(..)), "{err}");
    let err = ex
        .check(&Command::new("/bin/sh", &[], &cwd, Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, ExecError::PathProgram(_)));
    let long = "a".repeat(MAX_ARG_BYTES + 1);
    let err = ex
        .check(&Command::new("sh", &[&long], &cwd, Duration::from_secs(1)))
        .unwrap_err();
    assert!(matches!(err, ExecError::ArgTooLong { .. }));
}

#[tokio::test]
async fn timeout_kills_the_group_and_count_returns_to_zero() {
    let ex = exec(&["sh"]);
    let cwd = std::env::temp_dir();
    let cmd = Command::new(
        "sh",
        &["-c", "sleep 30 & sleep 30; echo never"],
        &cwd,
        Duration::from_millis(200),
    );
    let t0 = Instant::now();
    let out = ex
        .run(&cmd, far(), &CancellationToken::new(), None)
        .await
        .unwrap();
    assert!(out.timed_out);
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(ex.running(), 0);
}

#[tokio::test]
async fn output_is_capped_and_redacted_while_streaming() {
    let ex = exec(&["sh"]);
    let cwd = std::env::temp_dir();
    let mut cmd = Command::new(
        "sh",
        &[
            "-c",
            "echo token planted-secret-value; yes line | head -n 10000",
        ],
        &cwd,
        Duration::from_secs(10),
    );
    cmd.output_cap = 1000;
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let sink: LineSink = Arc::new(move |_, l| s2.lock().push(l.to_string()));
    let out = ex
        .run(&cmd, far(), &CancellationToken::new(), Some(sink))
        .await
        .unwrap();
    assert!(out.stdout_truncated);
    assert!(out.stdout.ends_with(TRUNCATION_MARKER));
    assert!(!out.stdout.contains("planted-secret-value"));
    assert!(seen.lock()[0].contains(REDACTED));
    assert_eq!(ex.running(), 0);
}
