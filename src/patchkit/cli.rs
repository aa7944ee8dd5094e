//! The `cortex-mcp diff OLD NEW` command: the one seam `main` uses into patchkit, so
//! the binary never reaches into the toolset's diff and apply internals. It diffs two
//! files exactly as the `create_diff` tool does (git-style unified text) and, in bench
//! mode (`tools/bench-patch.sh`), times diffing and applying the diff back.
//!
//! Owns the command's reading, output and exit codes; it holds no state and touches no
//! other toolset.

use std::{io::Write, path::Path};

use super::{
    apply,
    diff::{ChangeType, DiffAlgorithm, DiffOptions, Names, unified_text},
};

/// What `cortex-mcp diff` was asked to do.
pub struct DiffCommand<'a> {
    pub old: &'a Path,
    pub new: &'a Path,
    /// Unchanged lines around each change.
    pub context: usize,
    /// `myers`, `patience` or `histogram`.
    pub algorithm: &'a str,
    /// Bench mode: diff and re-apply this many times, print mean times to stderr.
    pub bench: Option<u32>,
}

/// Runs the command; the exit code is 0 when the files are the same, 1 when they
/// differ (the diff is on stdout), 2 on trouble (said on stderr).
pub fn diff(cmd: &DiffCommand<'_>) -> u8 {
    let algorithm = match cmd.algorithm {
        "myers" => DiffAlgorithm::Myers,
        "patience" => DiffAlgorithm::Patience,
        "histogram" => DiffAlgorithm::Histogram,
        other => {
            eprintln!(
                "cortex-mcp diff: --algorithm `{other}` is not one of myers|patience|histogram"
            );
            return 2;
        }
    };
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| eprintln!("cortex-mcp diff: {}: {e}", p.display()));
    let (Ok(old), Ok(new)) = (read(cmd.old), read(cmd.new)) else {
        return 2;
    };
    if old == new {
        return 0;
    }
    let old = String::from_utf8_lossy(&old);
    let new = String::from_utf8_lossy(&new);
    let name = |p: &Path| p.display().to_string().trim_start_matches('/').to_string();
    let names = Names::git_pair(&name(cmd.old), &name(cmd.new), ChangeType::Modified);
    let opts = DiffOptions {
        context: cmd.context,
        algorithm,
        timeout: std::time::Duration::from_secs(3600),
        ..DiffOptions::default()
    };
    if let Some(n) = cmd.bench {
        return bench(&names, &old, &new, &opts, n.max(1));
    }
    let out = unified_text(&names, &old, &new, &opts);
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(out.diff.as_bytes()).is_err() {
        return 2;
    }
    1
}

/// Mean in-process time of diffing and of applying the diff back, over `n` runs.
fn bench(names: &Names, old: &str, new: &str, opts: &DiffOptions, n: u32) -> u8 {
    let started = std::time::Instant::now();
    let mut text = String::new();
    for _ in 0..n {
        text = unified_text(names, old, new, opts).diff;
    }
    let diff_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let Ok(files) = apply::parse_patch(&text) else {
        eprintln!("cortex-mcp diff --bench: our own diff did not parse");
        return 2;
    };
    let started = std::time::Instant::now();
    let mut ok = true;
    for _ in 0..n {
        let files = apply::parse_patch(&text).unwrap_or_else(|_| files.clone());
        ok &= apply::apply(old, &files[0], 0).content == new;
    }
    let apply_ms = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    eprintln!("diff_ms={diff_ms:.3} apply_ms={apply_ms:.3} roundtrip_ok={ok}");
    if ok { 1 } else { 2 }
}
