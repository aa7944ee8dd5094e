//! The `health` probe: is the state directory writable, how long an append to the
//! `health` stream of the runtime's store takes to become durable (journal lag; the
//! stream keeps nothing once it passes 64 KiB), the executor lanes and the running
//! processes.
//! Probes are cached for [`CACHE_FOR`] so a busy client cannot turn health checks into
//! disk load.
//!
//! Owns only the probe; it reads lane and process figures, never changes them.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::{
    executor::LaneStats,
    store::{Compaction, Fsync, LocalBackend, StoreError, Stream, StreamOptions},
};

/// Log size past which the probe records are dropped.
const MAX_LOG_BYTES: u64 = 64 * 1024;

/// The record a probe appends: `{"probe":true}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Probe {
    probe: bool,
}

/// How long a probe result is reused.
pub const CACHE_FOR: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Processes {
    /// Child processes running now (exact).
    pub running: usize,
    pub started_total: u64,
    pub max_concurrent: usize,
    pub allow_list: Vec<String>,
    /// How children are confined: landlock | none.
    pub sandbox: String,
    /// Whether children may use the network.
    pub network: bool,
    /// Whether each run has its own PID namespace (no descendant outlives it).
    pub pid_namespace: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// ok | degraded
    pub status: String,
    pub state_dir: String,
    pub state_dir_writable: bool,
    /// Milliseconds for a probe record to become durable in the journal.
    pub journal_lag_ms: Option<f64>,
    pub problems: Vec<String>,
    /// Damaged state found at start (quarantined journal records and files, toolsets
    /// that could not load), each also listed in `problems`; also in `cortex://health`.
    pub damage: Vec<crate::runtime::damage::Damage>,
    pub processes: Processes,
    pub lanes: Vec<LaneStats>,
    pub workspace_roots: Vec<String>,
    pub graphs: usize,
    pub prp_runs: usize,
    pub teaching_examples: usize,
    /// Age of the cached disk probe.
    pub probe_age_ms: u64,
    /// Where event-sourced state lives (`--store`) and whether it answers now.
    pub store: StoreStatus,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    pub backend: String,
    pub ready: bool,
}

#[derive(Clone)]
struct DiskProbe {
    at: Instant,
    writable: bool,
    lag_ms: Option<f64>,
    problems: Vec<String>,
}

pub struct HealthProbe {
    dir: PathBuf,
    stream: Stream<Probe>,
    last: tokio::sync::Mutex<Option<DiskProbe>>,
}

impl HealthProbe {
    pub fn new(dir: &Path, policy: Fsync) -> Result<Self, StoreError> {
        let options = StreamOptions::new(policy, MAX_LOG_BYTES);
        let (stream, _) = Stream::open_local(
            &LocalBackend::new(dir),
            "health",
            options,
            Compaction::discard(),
        )?;
        Ok(HealthProbe {
            dir: dir.to_path_buf(),
            stream,
            last: tokio::sync::Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The disk half of the probe, cached for [`CACHE_FOR`].
    pub async fn disk(&self) -> (bool, Option<f64>, Vec<String>, u64) {
        let mut last = self.last.lock().await;
        if let Some(p) = last.as_ref().filter(|p| p.at.elapsed() < CACHE_FOR) {
            return (
                p.writable,
                p.lag_ms,
                p.problems.clone(),
                p.at.elapsed().as_millis() as u64,
            );
        }
        let mut problems = Vec::new();
        let probe = self.dir.join(".health-probe");
        let writable = match std::fs::write(&probe, b"ok") {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
                true
            }
            Err(e) => {
                problems.push(format!(
                    "state dir {} not writable: {e}",
                    self.dir.display()
                ));
                false
            }
        };
        let t0 = Instant::now();
        let lag_ms = match self.stream.append(&Probe { probe: true }).await {
            Ok(_) => Some(t0.elapsed().as_secs_f64() * 1000.0),
            Err(e) => {
                problems.push(format!("journal append failed: {e}"));
                None
            }
        };
        *last = Some(DiskProbe {
            at: Instant::now(),
            writable,
            lag_ms,
            problems: problems.clone(),
        });
        (writable, lag_ms, problems, 0)
    }
}
