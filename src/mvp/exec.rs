//! The secure executor: the only way the mvp toolset starts a process.
//!
//! Owns program allow-listing (bare names resolved on the reduced PATH; an allow-listed
//! interpreter can still run anything, so the boundary is the sandbox of
//! [`super::sandbox`], which every child runs in), argument checks (each ≤ 1,000 bytes), the reduced environment (PATH, HOME and an
//! allow-list), the working directory check (inside the workspace roots, via
//! [`super::workspace::Roots`]), admission through the runtime's `exec` lane (a bounded
//! queue that waits within the request deadline instead of failing at the process cap),
//! the timeout that kills every descendant (the run's PID namespace, else its process
//! group), stopping every run when the server stops serving, stdout/stderr caps with a truncation
//! marker, and line-by-line redaction of secrets while output streams. The count of
//! running processes is kept by a guard, so it is exact on every exit path (normal exit,
//! timeout, cancellation, spawn failure, panic).
//!
//! Redaction lives in `exec/redact.rs`, reading output in `exec/output.rs`. It must not
//! know what the processes are for (test runners and linters live in `runners.rs`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

mod output;
mod redact;

use output::collect;
pub use redact::{REDACTED, Redactor};

use super::sandbox::Sandbox;
use crate::{
    config::MvpSettings,
    runtime::executor::{Executor, Lane, LaneConfig},
};

/// Longest single argument, in bytes.
pub const MAX_ARG_BYTES: usize = 1000;
/// Most arguments in one command.
pub const MAX_ARGS: usize = 256;
/// Default cap of each of stdout and stderr, in bytes.
pub const DEFAULT_OUTPUT_CAP: usize = 1024 * 1024;
/// Appended once to a stream whose output passed its cap.
pub const TRUNCATION_MARKER: &str = "\n[output truncated]\n";

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ExecError {
    #[error(
        "program `{0}` is not allow-listed; allowed: {1}. Ask the operator to add it with --exec-allow"
    )]
    NotAllowed(String, String),
    #[error("program `{0}` is not installed (not found on PATH)")]
    NotFound(String),
    #[error("program must be a bare name such as `cargo`, not a path: `{0}`")]
    PathProgram(String),
    #[error("argument {index} is {len} bytes; the limit is {MAX_ARG_BYTES}")]
    ArgTooLong { index: usize, len: usize },
    #[error("too many arguments ({0}); the limit is {MAX_ARGS}")]
    TooManyArgs(usize),
    #[error("argument {0} contains a NUL byte")]
    NulByte(usize),
    #[error("environment variable `{0}` is not allow-listed (--exec-env-allow)")]
    EnvNotAllowed(String),
    #[error("{0}")]
    Cwd(String),
    #[error("could not start `{program}`: {reason}")]
    Spawn { program: String, reason: String },
    #[error("{0}")]
    Queue(String),
    #[error("cancelled by the client; the process group was killed")]
    Cancelled,
    #[error("the server is shutting down; the process was killed")]
    Stopping,
    #[error("child processes are refused: {0}")]
    Sandbox(String),
}

/// One process to run.
#[derive(Debug, Clone)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    /// Already checked to be inside the roots (see `workspace::Roots::dir`).
    pub cwd: PathBuf,
    pub timeout: Duration,
    /// Extra variables; each name must be allow-listed.
    pub env: BTreeMap<String, String>,
    /// Cap of each of stdout and stderr.
    pub output_cap: usize,
}

impl Command {
    pub fn new(program: &str, args: &[&str], cwd: &Path, timeout: Duration) -> Self {
        Command {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            cwd: cwd.to_path_buf(),
            timeout,
            env: BTreeMap::new(),
            output_cap: DEFAULT_OUTPUT_CAP,
        }
    }

    /// The command line as shown to users (arguments joined by spaces, no quoting).
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Called with every (already redacted) line as it arrives.
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// What a finished (or killed) process left.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub command: String,
    /// Exit code; absent when a signal ended the process.
    pub exit_code: Option<i32>,
    /// The signal that ended the process, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The timeout ran out and the process group was killed.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    pub duration_ms: u64,
    /// Time spent waiting for a process slot.
    pub queued_ms: u64,
}

impl Output {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// The executor shared by every mvp tool.
#[derive(Clone)]
pub struct SecureExec {
    allow: Arc<Vec<String>>,
    env_allow: Arc<Vec<String>>,
    path: Arc<String>,
    home: Arc<String>,
    lane: Arc<Lane>,
    running: Arc<AtomicUsize>,
    started_total: Arc<AtomicU64>,
    /// Numbers runs (their private TMPDIR).
    runs: Arc<AtomicU64>,
    pub default_timeout: Duration,
    pub redactor: Redactor,
    sandbox: Arc<Sandbox>,
    /// Cancelled when the server stops serving: every run is killed.
    stopping: CancellationToken,
}

/// Decrements the running count exactly once and kills every descendant if the run may
/// still be alive (timeout, cancellation, early return), and removes its temporary
/// directory.
struct RunningGuard {
    running: Arc<AtomicUsize>,
    /// The relay's pid, which is also the run's process group.
    relay: Option<i32>,
    /// The run has its own PID namespace: stopping the relay's command kills them all.
    namespaced: bool,
    reaped: bool,
    tmp: Option<PathBuf>,
}

impl RunningGuard {
    fn kill_group(&mut self) {
        if let Some(relay) = self.relay
            && !self.reaped
        {
            // SAFETY: kill/killpg only send signals; the relay is our unreaped child, so
            // its pid (and group id) cannot have been reused.
            unsafe {
                // The relay's handler SIGKILLs the command, which takes its PID namespace
                // down; the relay then exits with the command's status.
                libc::kill(relay, libc::SIGTERM);
                if !self.namespaced {
                    libc::killpg(relay, libc::SIGKILL);
                }
            }
        }
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.kill_group();
        if let Some(tmp) = self.tmp.take() {
            std::thread::spawn(move || std::fs::remove_dir_all(tmp));
        }
        let now = self.running.fetch_sub(1, Ordering::AcqRel) - 1;
        metrics::gauge!("cortex_mvp_processes_running").set(now as f64);
    }
}

impl SecureExec {
    pub fn new(
        settings: &MvpSettings,
        executor: &Executor,
        redactor: Redactor,
        sandbox: Arc<Sandbox>,
    ) -> Self {
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
        let max = settings.exec_max_processes;
        let lane = executor.lane("exec", || LaneConfig::concurrency(max).queue(1024));
        SecureExec {
            allow: Arc::new(settings.exec_allow.clone()),
            env_allow: Arc::new(settings.exec_env_allow.clone()),
            path: Arc::new(path),
            home: Arc::new(home),
            lane,
            running: Arc::default(),
            started_total: Arc::default(),
            runs: Arc::default(),
            default_timeout: settings.exec_timeout,
            redactor,
            sandbox,
            stopping: CancellationToken::new(),
        }
    }

    /// Kills every run when `token` is cancelled (the server stopped serving).
    pub fn stop_on(mut self, token: CancellationToken) -> Self {
        self.stopping = token;
        self
    }

    /// The sandbox children run in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// A directory children may write and the server reads back (report files).
    pub fn scratch(&self) -> &Path {
        self.sandbox.scratch()
    }

    /// Processes running right now (exact).
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Processes started since the server started.
    pub fn started_total(&self) -> u64 {
        self.started_total.load(Ordering::Relaxed)
    }

    pub fn allow_list(&self) -> &[String] {
        &self.allow
    }

    /// Whether `program` is allow-listed and found on PATH.
    pub fn available(&self, program: &str) -> bool {
        self.allow.iter().any(|a| a == program) && self.resolve(program).is_ok()
    }

    /// Finds a program on the children's PATH without the allow-list check: for helpers
    /// an allow-listed program starts itself (cargo runs `cargo-nextest`).
    pub fn on_path(&self, program: &str) -> Option<PathBuf> {
        if program.contains('/') || program.is_empty() {
            return None;
        }
        std::env::split_paths(self.path.as_str())
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))
    }

    /// Checks the program name and resolves it on the reduced PATH.
    pub fn resolve(&self, program: &str) -> Result<PathBuf, ExecError> {
        if program.contains('/') || program.contains('\\') || program.is_empty() {
            return Err(ExecError::PathProgram(program.to_string()));
        }
        if !self.allow.iter().any(|a| a == program) {
            return Err(ExecError::NotAllowed(
                program.to_string(),
                self.allow.join(", "),
            ));
        }
        std::env::split_paths(self.path.as_str())
            .map(|dir| dir.join(program))
            .find(|p| is_executable(p))
            .ok_or_else(|| ExecError::NotFound(program.to_string()))
    }

    /// Checks everything about `cmd` that can be checked before running it.
    pub fn check(&self, cmd: &Command) -> Result<PathBuf, ExecError> {
        let exe = self.resolve(&cmd.program)?;
        if cmd.args.len() > MAX_ARGS {
            return Err(ExecError::TooManyArgs(cmd.args.len()));
        }
        for (index, arg) in cmd.args.iter().enumerate() {
            if arg.len() > MAX_ARG_BYTES {
                return Err(ExecError::ArgTooLong {
                    index,
                    len: arg.len(),
                });
            }
            if arg.contains('\0') {
                return Err(ExecError::NulByte(index));
            }
        }
        for name in cmd.env.keys() {
            if !self.env_allow.iter().any(|a| a == name) {
                return Err(ExecError::EnvNotAllowed(name.clone()));
            }
        }
        if !cmd.cwd.is_dir() {
            return Err(ExecError::Cwd(format!(
                "working directory {} is not a directory",
                cmd.cwd.display()
            )));
        }
        Ok(exe)
    }

    fn environment(&self, cmd: &Command) -> Vec<(String, String)> {
        let mut env = vec![
            ("PATH".to_string(), self.path.to_string()),
            ("HOME".to_string(), self.home.to_string()),
        ];
        for name in self.env_allow.iter() {
            let value = cmd
                .env
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok());
            // A secret never reaches a child, whatever name it hides under.
            if let Some(v) = value.filter(|v| !self.redactor.holds_secret(v)) {
                env.push((name.clone(), v));
            }
        }
        env
    }

    /// Runs `cmd` once a process slot is free (waiting at most until `deadline`),
    /// streaming redacted lines to `sink`. The process group is killed on timeout,
    /// on cancellation and when this future is dropped.
    pub async fn run(
        &self,
        cmd: &Command,
        deadline: Instant,
        cancel: &CancellationToken,
        sink: Option<LineSink>,
    ) -> Result<Output, ExecError> {
        let exe = self.check(cmd)?;
        if let Some(why) = self.sandbox.refused() {
            return Err(ExecError::Sandbox(why.to_string()));
        }
        if self.stopping.is_cancelled() {
            return Err(ExecError::Stopping);
        }
        let asked = Instant::now();
        let work = self.spawn_and_wait(cmd, exe, asked, cancel, sink);
        match self.lane.run(deadline, cancel, work).await {
            Ok(result) => result,
            Err(crate::runtime::executor::ExecError::Cancelled { .. }) => Err(ExecError::Cancelled),
            Err(e) => Err(ExecError::Queue(e.to_string())),
        }
    }

    async fn spawn_and_wait(
        &self,
        cmd: &Command,
        exe: PathBuf,
        asked: Instant,
        cancel: &CancellationToken,
        sink: Option<LineSink>,
    ) -> Result<Output, ExecError> {
        let queued_ms = asked.elapsed().as_millis() as u64;
        let now = self.running.fetch_add(1, Ordering::AcqRel) + 1;
        metrics::gauge!("cortex_mvp_processes_running").set(now as f64);
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let mut guard = RunningGuard {
            running: self.running.clone(),
            relay: None,
            namespaced: self.sandbox.namespaced(),
            reaped: false,
            tmp: None,
        };
        let tmp = self.sandbox.run_tmp(run).map_err(|e| ExecError::Spawn {
            program: cmd.program.clone(),
            reason: format!("creating its private TMPDIR: {e}"),
        })?;
        guard.tmp = Some(tmp.clone());
        let mut command = tokio::process::Command::new(&exe);
        command
            .args(&cmd.args)
            .current_dir(&cmd.cwd)
            .env_clear()
            .envs(self.environment(cmd))
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // The guard stops the run through its relay; a SIGKILL of the relay alone
            // would leave its command to the parent-death signal.
            .kill_on_drop(false)
            .process_group(0);
        self.sandbox.prepare(&mut command);
        let mut child = command.spawn().map_err(|e| ExecError::Spawn {
            program: cmd.program.clone(),
            reason: e.to_string(),
        })?;
        self.started_total.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("cortex_mvp_processes_started_total").increment(1);
        guard.relay = child.id().map(|p| p as i32);
        let started = Instant::now();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let out_task = collect(
            stdout,
            Stream::Stdout,
            cmd.output_cap,
            self.redactor.clone(),
            sink.clone(),
        );
        let err_task = collect(
            stderr,
            Stream::Stderr,
            cmd.output_cap,
            self.redactor.clone(),
            sink,
        );
        let streams = async { tokio::join!(out_task, err_task) };
        let timeout = tokio::time::sleep(cmd.timeout);
        tokio::pin!(streams, timeout);
        let mut timed_out = false;
        // Wait for both pipes to close and the child to exit, or for the timeout.
        let ((stdout, stdout_truncated), (stderr, stderr_truncated)) = tokio::select! {
            s = &mut streams => s,
            _ = &mut timeout => {
                timed_out = true;
                guard.kill_group();
                // A process that left the group may still hold a pipe: do not wait forever.
                tokio::time::timeout(Duration::from_secs(2), &mut streams)
                    .await
                    .unwrap_or_else(|_| {
                        let lost = "[output lost: a process outside the group kept the pipe open]\n";
                        ((lost.to_string(), true), (String::new(), false))
                    })
            }
            _ = cancel.cancelled() => {
                guard.kill_group();
                return Err(ExecError::Cancelled);
            }
            _ = self.stopping.cancelled() => {
                guard.kill_group();
                return Err(ExecError::Stopping);
            }
        };
        let status = tokio::select! {
            s = child.wait() => s,
            _ = &mut timeout, if !timed_out => {
                timed_out = true;
                guard.kill_group();
                child.wait().await
            }
            _ = cancel.cancelled() => {
                guard.kill_group();
                return Err(ExecError::Cancelled);
            }
            _ = self.stopping.cancelled() => {
                guard.kill_group();
                return Err(ExecError::Stopping);
            }
        }
        .map_err(|e| ExecError::Spawn {
            program: cmd.program.clone(),
            reason: format!("waiting: {e}"),
        })?;
        // Children left behind in the group go too (without a PID namespace; with one,
        // they died with the command).
        if !guard.namespaced
            && let Some(pgid) = guard.relay
        {
            // SAFETY: killpg only sends a signal.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
        guard.reaped = true;
        use std::os::unix::process::ExitStatusExt;
        let duration_ms = started.elapsed().as_millis() as u64;
        metrics::histogram!("cortex_mvp_process_seconds").record(duration_ms as f64 / 1000.0);
        Ok(Output {
            command: self.redactor.line(&cmd.display()),
            exit_code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            duration_ms,
            queued_ms,
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
