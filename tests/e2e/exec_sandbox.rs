//! The child-process sandbox and descendant tracking through a real MCP client (rmcp over
//! stdio) against the real binary: every exfiltration attempt from `run_command` fails
//! (the server's `/proc/<pid>/environ`, the integrations' credential file, the state
//! directory, a `git -c alias.x=!…` shell, rot13/base64 of a secret, the network),
//! configured and registered secrets are redacted verbatim, a `setsid()` grandchild dies
//! with its run and writes nothing after, a command whose parent exits at once does not
//! wait for it, health's running count is exact, and closing stdin or SIGKILLing the
//! server kills running children.

use crate::common;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "ghp_sandboxPlantedToken0123456789abcd";
const SIGNING_KEY: &str = "sigkey-planted-7d41c09e55";
const VAULT_SECRET: &str = "vault-planted-9c1e77ab30";
const CREATED_SECRET: &str = "created-planted-4b8812fe";

struct Setup {
    client: Client,
    work: tempfile::TempDir,
    state: tempfile::TempDir,
}

async fn setup(extra: &[&str]) -> Setup {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A credential file as the integrations toolset keeps it, and a file beside it.
    std::fs::create_dir_all(state.path().join("integrations")).unwrap();
    std::fs::write(
        state.path().join("integrations/credentials.json"),
        json!({"int-planted": {"token": VAULT_SECRET}}).to_string(),
    )
    .unwrap();
    std::fs::write(state.path().join("planted.txt"), VAULT_SECRET).unwrap();
    let roots = work.path().display().to_string();
    let mut args = vec![
        "--toolsets",
        "mvp,integrations",
        "--workspace-roots",
        roots.as_str(),
        "--exec-allow",
        "python3,git,sh,sleep",
    ];
    args.extend_from_slice(extra);
    let client = stdio_client_env(
        state.path(),
        &args,
        &[
            ("GITHUB_TOKEN", TOKEN),
            ("CONNECTORS_SIGNATURE_KEY", SIGNING_KEY),
        ],
    )
    .await;
    Setup {
        client,
        work,
        state,
    }
}

/// Pids of the processes whose command line contains `marker` (scans /proc).
fn pids_with(marker: &str) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
        })
        .collect();
    pids.sort();
    pids
}

/// The server's pid: the cortex-mcp process started with this test's state dir.
fn server_pid(state: &Path) -> u32 {
    let marker = state.display().to_string();
    *pids_with(&marker)
        .iter()
        .find(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .is_ok_and(|e| e.to_string_lossy().contains("cortex-mcp"))
        })
        .expect("the server is running")
}

async fn python(s: &Setup, code: &str) -> Value {
    ok(
        &s.client,
        "run_command",
        json!({"program": "python3", "args": ["-c", code], "timeoutMs": 20000}),
    )
    .await
}

fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            c => c,
        })
        .collect()
}

fn base64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// No form of any planted secret anywhere in `out`.
fn assert_no_secret(out: &Value) {
    let all = out.to_string();
    for secret in [TOKEN, SIGNING_KEY, VAULT_SECRET] {
        for form in [secret.to_string(), rot13(secret), base64(secret)] {
            assert!(!all.contains(&form), "`{form}` leaked: {all}");
        }
    }
}

#[tokio::test]
async fn exfiltration_attempts_fail_inside_the_sandbox() {
    let s = setup(&[]).await;
    let pid = server_pid(s.state.path());
    let state = s.state.path().display().to_string();
    let targets = [
        format!("/proc/{pid}/environ"),
        format!("/proc/{pid}/cmdline"),
        format!("/proc/{pid}/mem"),
        format!("{state}/integrations/credentials.json"),
        format!("{state}/planted.txt"),
    ];
    for target in &targets {
        // Reads the target and prints it as is, rot13'd and base64'd: if the read worked,
        // one of the three would survive redaction.
        let code = format!(
            "import base64,codecs,sys\n\
             try:\n    d=open({target:?},'rb').read(65536).decode('latin-1')\n\
             except Exception as e:\n    print('denied', type(e).__name__); sys.exit(3)\n\
             print('read', len(d)); print(d); print(codecs.encode(d,'rot13')); print(base64.b64encode(d.encode('latin-1')).decode())"
        );
        let out = python(&s, &code).await;
        assert_no_secret(&out);
        let stdout = out["stdout"].as_str().unwrap();
        if target.ends_with("cmdline") {
            // The command line holds no secret (they come from the environment only).
            continue;
        }
        assert!(stdout.contains("denied"), "{target}: {out:#}");
        assert_eq!(out["exitCode"], 3, "{target}: {out:#}");
    }
    // Listing the state directory fails too.
    let out = python(&s, &format!("import os\nprint(os.listdir({state:?}))")).await;
    assert_ne!(out["exitCode"], 0, "{out:#}");
    assert!(
        out["stderr"].as_str().unwrap().contains("PermissionError"),
        "{out:#}"
    );

    // git's `!` aliases run a shell: it is confined like everything else.
    let shell = format!(
        "cat /proc/{pid}/environ {state}/integrations/credentials.json | base64; cat /proc/{pid}/environ | tr A-Za-z N-ZA-Mn-za-m"
    );
    let out = ok(
        &s.client,
        "run_command",
        json!({"program": "git", "args": ["-c", format!("alias.x=!{shell}"), "x"]}),
    )
    .await;
    assert_no_secret(&out);
    assert!(
        out["stderr"]
            .as_str()
            .unwrap()
            .contains("Permission denied"),
        "{out:#}"
    );

    // No network: a TCP listener of the test's host is unreachable.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let out = python(
        &s,
        &format!(
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1',{port}),timeout=3); print('connected')\nexcept OSError as e:\n    print('refused', e)"
        ),
    )
    .await;
    assert!(
        out["stdout"].as_str().unwrap().contains("refused"),
        "{out:#}"
    );
    assert!(listener.accept().is_err(), "the child reached the host");

    // Ordinary work still works: the workspace is writable, TMPDIR is private and
    // writable, the system is readable, and the children's environment has no secret.
    let out = python(
        &s,
        "import os,tempfile\nopen('made.txt','w').write('ok')\n\
         f=tempfile.NamedTemporaryFile(delete=False); f.write(b'x'); f.close()\n\
         print('tmp', os.path.dirname(f.name))\nprint('passwd', len(open('/etc/passwd').read())>0)\n\
         print('env', sorted(os.environ))",
    )
    .await;
    assert_eq!(out["exitCode"], 0, "{out:#}");
    assert_eq!(
        std::fs::read_to_string(s.work.path().join("made.txt")).unwrap(),
        "ok"
    );
    let stdout = out["stdout"].as_str().unwrap();
    assert!(stdout.contains("passwd True"), "{out:#}");
    assert!(stdout.contains("cortex-mcp-exec-"), "{out:#}");
    assert!(
        !stdout.contains("GITHUB_TOKEN") && !stdout.contains("CONNECTORS"),
        "{out:#}"
    );
    // The workspace is the only place outside TMPDIR it may write.
    let out = python(&s, "open('/etc/cortex-sandbox-probe','w')").await;
    assert_ne!(out["exitCode"], 0, "{out:#}");
    assert!(!Path::new("/etc/cortex-sandbox-probe").exists());
    s.client.cancel().await.unwrap();
}

#[tokio::test]
async fn configured_and_registered_secrets_are_redacted_verbatim() {
    let s = setup(&[]).await;
    // A credential created through the integrations toolset is registered for redaction.
    ok(
        &s.client,
        "create_integration",
        json!({"name": "planted", "type": "api", "config": {
            "endpoint": "http://127.0.0.1:9/",
            "credentials": {"token": CREATED_SECRET},
        }}),
    )
    .await;
    for secret in [TOKEN, SIGNING_KEY, VAULT_SECRET, CREATED_SECRET] {
        let out = ok(
            &s.client,
            "run_command",
            json!({"program": "python3", "args": ["-c", format!("print('x {secret} y')")]}),
        )
        .await;
        let all = out.to_string();
        assert!(!all.contains(secret), "{secret}: {all}");
        assert!(
            out["stdout"].as_str().unwrap().contains("x [REDACTED] y"),
            "{all}"
        );
    }
    s.client.cancel().await.unwrap();
}

/// A python program that forks a grandchild which leaves the process group (setsid) and
/// appends to `file` every 100 ms for 60 s; the parent then runs `parent`.
fn escaping_grandchild(file: &Path, marker: &str, parent: &str) -> String {
    format!(
        "import os,sys,time\n# {marker}\n\
         if os.fork()==0:\n    os.setsid()\n    for i in range(600):\n        open({file:?},'a').write('x'); time.sleep(0.1)\n    os._exit(0)\n\
         {parent}"
    )
}

/// Whether the escaped grandchild has written to `file` (it is running).
fn has_written(file: &Path) -> bool {
    std::fs::metadata(file).is_ok_and(|m| m.len() > 0)
}

async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn setsid_grandchildren_die_with_their_run() {
    let s = setup(&[]).await;
    let file = s.work.path().join("escaped.txt");
    // 1. Timeout: the parent sleeps; the grandchild is killed with it.
    let marker = "sandbox-marker-timeout";
    let code = escaping_grandchild(&file, marker, "time.sleep(60)");
    let out = ok(
        &s.client,
        "run_command",
        json!({"program": "python3", "args": ["-c", code], "timeoutMs": 1500}),
    )
    .await;
    assert_eq!(out["timedOut"], true, "{out:#}");
    assert!(pids_with(marker).is_empty(), "{:?}", pids_with(marker));
    let written = std::fs::read(&file).map(|b| b.len()).unwrap_or(0);
    assert!(written > 0, "the grandchild ran");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        std::fs::read(&file).map(|b| b.len()).unwrap_or(0),
        written,
        "the grandchild kept writing after the timeout"
    );
    let h = ok(&s.client, "health", json!({})).await;
    assert_eq!(h["processes"]["running"], 0, "{h:#}");

    // 2. The parent exits at once: the run ends with it (no timeout), and the escaped
    //    grandchild, which holds the output pipes, is gone.
    let marker = "sandbox-marker-quick";
    let code = escaping_grandchild(&file, marker, "time.sleep(0.3)\nprint('parent done')");
    let out = ok(
        &s.client,
        "run_command",
        json!({"program": "python3", "args": ["-c", code], "timeoutMs": 30000}),
    )
    .await;
    assert_eq!(out["timedOut"], false, "{out:#}");
    assert_eq!(out["exitCode"], 0, "{out:#}");
    assert!(out["stdout"].as_str().unwrap().contains("parent done"));
    assert!(pids_with(marker).is_empty(), "{:?}", pids_with(marker));

    // 3. health counts a running command exactly, and 0 after it is cancelled.
    let marker = "sandbox-marker-health";
    let health_file = s.work.path().join("health.txt");
    let code = escaping_grandchild(&health_file, marker, "time.sleep(60)");
    let peer = s.client.peer().clone();
    let call = tokio::spawn(async move {
        try_ok(
            &peer,
            "run_command",
            json!({"program": "python3", "args": ["-c", code], "timeoutMs": 2500}),
        )
        .await
    });
    assert!(wait_until(|| has_written(&health_file)).await);
    let h = ok(&s.client, "health", json!({})).await;
    assert_eq!(h["processes"]["running"], 1, "{h:#}");
    let _ = call.await;
    assert!(pids_with(marker).is_empty(), "{:?}", pids_with(marker));
    let h = ok(&s.client, "health", json!({})).await;
    assert_eq!(h["processes"]["running"], 0, "{h:#}");
    s.client.cancel().await.unwrap();
}

#[tokio::test]
async fn closing_stdin_kills_running_children() {
    let s = setup(&[]).await;
    let pid = server_pid(s.state.path());
    let marker = "sandbox-marker-eof";
    let file = s.work.path().join("eof.txt");
    let code = escaping_grandchild(&file, marker, "time.sleep(60)");
    let peer = s.client.peer().clone();
    tokio::spawn(async move {
        let _ = try_ok(
            &peer,
            "run_command",
            json!({"program": "python3", "args": ["-c", code], "timeoutMs": 60000}),
        )
        .await;
    });
    assert!(wait_until(|| has_written(&file)).await);
    assert_eq!(
        pids_with(marker).len(),
        2,
        "the command and its grandchild run"
    );
    // Dropping the client closes the server's stdin.
    s.client.cancel().await.unwrap();
    assert!(
        wait_until(|| pids_with(marker).is_empty()).await,
        "children outlived stdin EOF: {:?}",
        pids_with(marker)
    );
    assert!(
        wait_until(|| !PathBuf::from(format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .await,
        "the server exited"
    );
}

#[tokio::test]
async fn killing_the_server_kills_running_children() {
    let s = setup(&[]).await;
    let pid = server_pid(s.state.path());
    let marker = "sandbox-marker-sigkill";
    let file = s.work.path().join("kill.txt");
    let code = escaping_grandchild(&file, marker, "time.sleep(60)");
    let peer = s.client.peer().clone();
    tokio::spawn(async move {
        let _ = try_ok(
            &peer,
            "run_command",
            json!({"program": "python3", "args": ["-c", code], "timeoutMs": 60000}),
        )
        .await;
    });
    assert!(wait_until(|| has_written(&file)).await);
    assert_eq!(
        pids_with(marker).len(),
        2,
        "the command and its grandchild run"
    );
    // SAFETY: kill only sends a signal to the server this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    assert!(
        wait_until(|| pids_with(marker).is_empty()).await,
        "children outlived the server: {:?}",
        pids_with(marker)
    );
}
