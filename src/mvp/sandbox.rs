//! The child-process sandbox of the secure executor: what a child may see and how all of
//! a run's descendants die with it.
//!
//! Owns the Landlock ruleset (built once at start: workspace roots read-write, a private
//! temporary directory read-write, system and toolchain directories read-only, a few
//! device files, no TCP unless `--exec-network`, signals and abstract UNIX sockets
//! scoped to the sandbox), the per-run PID (and, without network, network) namespace,
//! and the code that runs between `fork` and `exec`.
//!
//! How a run is laid out: the server forks a *relay* (its own child, unconfined, in the
//! server's namespaces); the relay enters new PID and network namespaces and forks the
//! *command*, which is PID 1 of the new PID namespace. The command drops every
//! capability, sets `PR_SET_NO_NEW_PRIVS`, applies the Landlock ruleset and `exec`s.
//! When the command exits the kernel kills everything else in its namespace, so a
//! `setsid()` grandchild cannot outlive it; the relay reports the command's status as its
//! own. To stop a run the server sends SIGTERM to the relay, whose handler SIGKILLs the
//! command. Both have `PR_SET_PDEATHSIG(SIGKILL)`, so the whole tree dies with the server.
//! The relay stays outside the Landlock domain on purpose: a confined process cannot
//! ptrace (and so cannot read `/proc/<pid>/environ` or `mem` of) a process outside its
//! domain, and the relay is a copy of the server's memory.
//!
//! Everything after `fork` is async-signal-safe: raw syscalls on values prepared before
//! the fork, no allocation, no locks.
//!
//! It must not decide which programs run or what their output means (`exec.rs` and the
//! runners do); it never touches the state directory.

use std::{
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::process::CommandExt,
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicI32, Ordering},
};

use landlock::{
    ABI, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope,
    path_beneath_rules,
};

use crate::config::{ExecSandbox, MvpSettings};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "--exec-sandbox landlock was asked for but this kernel has no Landlock; use auto or none"
    )]
    NoLandlock,
    #[error("building the Landlock ruleset: {0}")]
    Ruleset(String),
    #[error("creating the children's temporary directory {path}: {reason}")]
    Tmp { path: String, reason: String },
}

/// The mechanism in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Landlock { abi: i32 },
    None,
}

impl Mechanism {
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Landlock { .. } => "landlock",
            Mechanism::None => "none",
        }
    }
}

/// The sandbox shared by every run (cheap to share behind an `Arc`).
pub struct Sandbox {
    mechanism: Mechanism,
    /// Why children are refused (auto mode on a kernel without Landlock).
    refused: Option<String>,
    ruleset: Option<OwnedFd>,
    namespaces: libc::c_int,
    network: bool,
    tmp_base: PathBuf,
    scratch: PathBuf,
    /// Paths children may read (for the start-up overlap check and the README's claims).
    readable: Vec<PathBuf>,
}

/// Landlock ABI of the running kernel (0 when absent).
pub fn landlock_abi() -> i32 {
    // SAFETY: the documented version query: NULL attributes, size 0, the VERSION flag.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    if v < 0 { 0 } else { v as i32 }
}

/// What the ruleset is built from.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Read-write (the workspace roots).
    pub roots: Vec<PathBuf>,
    /// Must stay unreadable (the state directory, the config file): a warning names any
    /// that lies under a path children may read.
    pub protected: Vec<PathBuf>,
}

const SYSTEM_READ: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc", "/sys",
];
/// Device files children may read and write (never a whole `/dev`: a root child could
/// read a block device and with it every file).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];
/// Directories under HOME that hold toolchains (read-only).
const HOME_TOOLCHAINS: &[&str] = &[
    ".cargo",
    ".rustup",
    ".pyenv",
    ".nvm",
    ".volta",
    ".bun",
    ".deno",
    ".local/bin",
    ".local/lib",
    ".gitconfig",
    ".config/git",
];
/// Caches under HOME that package tools write (read-write).
const HOME_CACHES: &[&str] = &[".npm", ".cache"];

impl Sandbox {
    /// Builds the sandbox for `settings.exec_sandbox`. Logs a warning when children run
    /// unconfined or when a protected path is readable by them.
    pub fn new(settings: &MvpSettings, layout: &Layout) -> Result<Self, SandboxError> {
        let abi = landlock_abi();
        let tmp_base = private_tmp()?;
        let network = settings.exec_network;
        let (mechanism, refused) = match (settings.exec_sandbox, abi) {
            (ExecSandbox::None, _) => {
                tracing::warn!(
                    "--exec-sandbox none: child processes run unconfined and can read every file this server can, including its state directory and /proc"
                );
                (Mechanism::None, None)
            }
            (ExecSandbox::Landlock, 0) => return Err(SandboxError::NoLandlock),
            (ExecSandbox::Auto, 0) => {
                let why = "this kernel has no Landlock, so children cannot be confined; the operator may pass --exec-sandbox none to run them unconfined".to_string();
                tracing::error!("{why}");
                (Mechanism::None, Some(why))
            }
            (_, abi) => (Mechanism::Landlock { abi }, None),
        };
        let scratch = tmp_base.join("reports");
        std::fs::create_dir_all(&scratch).map_err(|e| SandboxError::Tmp {
            path: scratch.display().to_string(),
            reason: e.to_string(),
        })?;
        let mut sandbox = Sandbox {
            mechanism,
            refused,
            ruleset: None,
            namespaces: 0,
            network,
            scratch,
            tmp_base,
            readable: Vec::new(),
        };
        if let Mechanism::Landlock { abi } = mechanism {
            sandbox.build_ruleset(layout, abi)?;
            if !network && abi < 4 {
                tracing::warn!(
                    abi,
                    "Landlock ABI < 4 cannot deny TCP; children are cut off by a network namespace only"
                );
            }
            for p in &layout.protected {
                if let Some(r) = sandbox.readable.iter().find(|r| p.starts_with(r)) {
                    tracing::warn!(
                        "{} lies under {}, which child processes may read; move it out of the workspace roots and toolchain directories",
                        p.display(),
                        r.display()
                    );
                }
            }
        }
        let confined = matches!(mechanism, Mechanism::Landlock { .. });
        let wanted = libc::CLONE_NEWPID
            | if network || !confined {
                0
            } else {
                libc::CLONE_NEWNET
            };
        sandbox.namespaces = probe_namespaces(wanted);
        if sandbox.namespaces == 0 {
            tracing::warn!(
                "PID namespaces are not available: a child's descendants that leave its process group (setsid) may outlive its run"
            );
        }
        // The server's own /proc/<pid> files are readable only by root (and by nobody
        // from inside a Landlock domain); core dumps of its memory are off.
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        }
        Ok(sandbox)
    }

    fn build_ruleset(&mut self, layout: &Layout, abi: i32) -> Result<(), SandboxError> {
        let target = ABI::V6;
        let err = |e: landlock::RulesetError| SandboxError::Ruleset(e.to_string());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let env_path = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        let mut write: Vec<PathBuf> = layout.roots.clone();
        write.push(self.tmp_base.clone());
        // Toolchains: explicit homes, well-known HOME dirs, and every PATH entry.
        for k in [
            "CARGO_HOME",
            "RUSTUP_HOME",
            "PYENV_ROOT",
            "VIRTUAL_ENV",
            "NVM_DIR",
            "VOLTA_HOME",
        ] {
            read.extend(env_path(k));
        }
        if let Some(home) = &home {
            read.extend(HOME_TOOLCHAINS.iter().map(|d| home.join(d)));
            write.extend(HOME_CACHES.iter().map(|d| home.join(d)));
        }
        // A shared build directory the operator set for every child.
        write.extend(env_path("CARGO_TARGET_DIR").filter(|p| p.is_absolute()));
        let cargo_home = env_path("CARGO_HOME").or_else(|| home.as_ref().map(|h| h.join(".cargo")));
        if let Some(c) = cargo_home {
            write.extend([c.join("registry"), c.join("git")]);
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                read.push(toolchain_dir(&dir, home.as_deref(), &layout.protected));
            }
        }
        // Never HOME itself (credentials and the default state dir live there), never a
        // protected path's ancestor, never `/`.
        let safe = |p: &PathBuf| {
            p.is_absolute()
                && p.parent().is_some()
                && home.as_ref().is_none_or(|h| p != h)
                && !layout
                    .protected
                    .iter()
                    .any(|x| x.starts_with(p) && !layout.roots.contains(p))
        };
        read.retain(safe);
        write.retain(|p| layout.roots.contains(p) || safe(p));
        let mut created = Ruleset::default()
            .handle_access(AccessFs::from_all(target))
            .map_err(err)?;
        if !self.network {
            created = created
                .handle_access(AccessNet::from_all(target))
                .map_err(err)?;
        }
        let created = created
            .scope(Scope::from_all(target))
            .map_err(err)?
            .create()
            .map_err(err)?
            .add_rules(path_beneath_rules(&read, AccessFs::from_read(target)))
            .map_err(err)?
            .add_rules(path_beneath_rules(
                DEVICES,
                AccessFs::from_read(target) | AccessFs::from_file(target),
            ))
            .map_err(err)?
            .add_rules(path_beneath_rules(&write, AccessFs::from_all(target)))
            .map_err(err)?;
        let fd: Option<OwnedFd> = created.into();
        let Some(fd) = fd else {
            return Err(SandboxError::Ruleset(format!(
                "the kernel reports Landlock ABI {abi} but refused a ruleset"
            )));
        };
        self.readable = read.into_iter().chain(write).collect();
        self.ruleset = Some(fd);
        Ok(())
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    pub fn network(&self) -> bool {
        self.network
    }

    /// Why children are refused, if they are.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// Whether a run's descendants live in their own PID namespace (killed with it).
    pub fn namespaced(&self) -> bool {
        self.namespaces & libc::CLONE_NEWPID != 0
    }

    /// Where report files children write for the server go (inside the writable base).
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// A fresh private temporary directory for one run (under the sandbox's base).
    pub fn run_tmp(&self, run: u64) -> std::io::Result<PathBuf> {
        let dir = self.tmp_base.join(format!("run-{run}"));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Sets up `command` so the process it starts is the relay described in the module
    /// docs. Call once per spawn.
    pub fn prepare(&self, command: &mut tokio::process::Command) {
        let plan = Plan {
            ruleset: self.ruleset.as_ref().map_or(-1, |f| f.as_raw_fd()),
            namespaces: self.namespaces,
            server: std::process::id() as libc::pid_t,
            confine: self.ruleset.is_some(),
        };
        // SAFETY: `child_side` only makes async-signal-safe system calls on the copied
        // plan (no allocation, no locks) and never returns in the relay.
        unsafe {
            command.pre_exec(move || child_side(plan));
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.tmp_base);
    }
}

/// The directory to grant for one PATH entry: the toolchain's top directory under HOME
/// (`~/.cargo/bin` → `~/.cargo`), else the installation prefix of a `bin` directory (a
/// virtualenv's `venv/bin` → `venv`, whose `lib` holds its packages), else the entry
/// itself; never one that would expose HOME, `/` or a protected path.
fn toolchain_dir(dir: &Path, home: Option<&Path>, protected: &[PathBuf]) -> PathBuf {
    let exposes = |p: &Path| {
        p.parent().is_none()
            || home.is_some_and(|h| p == h)
            || protected.iter().any(|x| x.starts_with(p))
    };
    if let Some(home) = home
        && let Ok(rest) = dir.strip_prefix(home)
        && let Some(first) = rest.components().next()
    {
        let top = home.join(first);
        if !exposes(&top) {
            return top;
        }
    }
    if dir.file_name().is_some_and(|n| n == "bin")
        && let Some(prefix) = dir.parent()
        && !exposes(prefix)
    {
        return prefix.to_path_buf();
    }
    dir.to_path_buf()
}

/// `<tmp>/cortex-mcp-exec-<pid>-<n>`, mode 0700. Directories that servers no longer
/// running left behind are removed first.
fn private_tmp() -> Result<PathBuf, SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("cortex-mcp-exec-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            if let Some(pid) = pid
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = tmp.join(format!("cortex-mcp-exec-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&path)
        .map_err(|e| SandboxError::Tmp {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(path)
}

/// What the forked side needs, copied before the fork.
#[derive(Clone, Copy)]
struct Plan {
    ruleset: libc::c_int,
    namespaces: libc::c_int,
    server: libc::pid_t,
    confine: bool,
}

/// The command's pid, as seen by the relay (set only in the relay's copy of memory).
static COMMAND: AtomicI32 = AtomicI32::new(0);
/// A stop request that arrived before the command existed.
static STOP_PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn relay_stop(_: libc::c_int) {
    let pid = COMMAND.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    } else {
        STOP_PENDING.store(1, Ordering::SeqCst);
    }
}

/// Runs in the forked child before `exec`: becomes the relay (never returns) or the
/// confined command (returns to let std `exec`).
///
/// # Safety
/// Only async-signal-safe calls; called once, in a freshly forked child.
unsafe fn child_side(plan: Plan) -> std::io::Result<()> {
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != plan.server {
            libc::_exit(137);
        }
        // Stop requests before the command exists are remembered, not lost.
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = relay_stop as *const () as usize;
        libc::sigemptyset(&mut act.sa_mask);
        for sig in STOP_SIGNALS {
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
        if plan.namespaces != 0 && libc::unshare(plan.namespaces) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let pid = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid > 0 {
            relay(pid as libc::pid_t);
        }
        // The command (PID 1 of the new namespace when there is one); dies with the relay.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let dfl: libc::sigaction = std::mem::zeroed();
        for sig in STOP_SIGNALS {
            libc::sigaction(sig, &dfl, std::ptr::null_mut());
        }
        if plan.confine {
            confine(plan.ruleset)?;
        }
        Ok(())
    }
}

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Which `unshare` flags work here for `wanted` (tried in a throw-away child): as they
/// are (root), with a user namespace (unprivileged), or none.
fn probe_namespaces(wanted: libc::c_int) -> libc::c_int {
    if wanted == 0 {
        return 0;
    }
    for flags in [wanted, wanted | libc::CLONE_NEWUSER] {
        let mut probe = std::process::Command::new("/bin/true");
        // SAFETY: unshare and _exit are async-signal-safe.
        unsafe {
            probe.pre_exec(move || {
                libc::_exit(if libc::unshare(flags) == 0 { 0 } else { 1 });
            });
        }
        let ok = probe
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return flags;
        }
    }
    0
}

/// Drops every capability (a root child keeps its uid but not its powers: no raw
/// devices, no module loading, no mounts), then applies the Landlock ruleset.
unsafe fn confine(ruleset: libc::c_int) -> std::io::Result<()> {
    unsafe {
        for cap in 0..64 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The relay: waits for the command and leaves with its status.
unsafe fn relay(command: libc::pid_t) -> ! {
    unsafe {
        COMMAND.store(command, Ordering::SeqCst);
        if STOP_PENDING.load(Ordering::SeqCst) != 0 {
            libc::kill(command, libc::SIGKILL);
        }
        // Hold nothing of the server's: no sockets, journals, nor std's exec-error pipe
        // (the command keeps its own copy until it execs).
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..4096 {
                libc::close(fd);
            }
        }
        let mut status: libc::c_int = 0;
        loop {
            let r = libc::waitpid(command, &mut status, 0);
            if r == command {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        let sig = libc::WTERMSIG(status);
        let dfl: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_entries_grant_their_prefix_but_never_home_root_or_a_protected_path() {
        let home = Path::new("/home/u");
        let state = PathBuf::from("/home/u/.local/state/cortex-mcp");
        let p = |d: &str| toolchain_dir(Path::new(d), Some(home), std::slice::from_ref(&state));
        assert_eq!(p("/home/u/.cargo/bin"), PathBuf::from("/home/u/.cargo"));
        assert_eq!(p("/home/u/.local/bin"), PathBuf::from("/home/u/.local/bin"));
        assert_eq!(
            p("/repo/target/venv/bin"),
            PathBuf::from("/repo/target/venv")
        );
        assert_eq!(p("/usr/local/bin"), PathBuf::from("/usr/local"));
        assert_eq!(p("/bin"), PathBuf::from("/bin"));
        assert_eq!(p("/home/u/bin"), PathBuf::from("/home/u/bin"));
        assert_eq!(p("/usr/sbin"), PathBuf::from("/usr/sbin"));
    }
}
