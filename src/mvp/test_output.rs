//! Parsers of test runners' output as it streams: libtest lines and cargo JSON
//! messages, nextest status lines (with the captured output of failures), pytest
//! verbose lines, jest `--verbose` and vitest `verbose` reporter lines (progress only),
//! and the jest/vitest JSON reports read at the end. Pure text in, counts and failures
//! out: this module runs nothing and touches no files except the report it is handed.

use std::path::Path;

use serde_json::Value;

use super::{
    exec::Stream,
    runners::{Framework, TestFailure, Totals},
};

/// Most failures listed in a result.
pub(super) const MAX_FAILURES: usize = 100;
/// Bytes of a failure's captured output kept.
pub(super) const MAX_FAILURE_OUTPUT: usize = 4096;
/// Names of finished tests kept (for the PRP evaluation gate's tracing).
pub(super) const MAX_TEST_NAMES: usize = 5000;

/// Incremental parse state shared with the line sink.
#[derive(Default)]
pub(super) struct LiveTests {
    pub(super) totals: Totals,
    pub(super) failures: Vec<TestFailure>,
    pub(super) build_errors: Vec<String>,
    /// cargo and nextest: the failure output being collected (test name, text).
    pub(super) section: Option<(String, String)>,
    /// cargo: names of failed tests, in order.
    failed_names: Vec<String>,
    /// nextest: the final summary started (its FAIL lines repeat earlier ones).
    summary_seen: bool,
    /// Names of the tests that finished, in order (capped).
    pub(super) names: Vec<String>,
}

impl LiveTests {
    /// Feeds one line; returns the name of a test that just finished, if any.
    pub(super) fn feed(
        &mut self,
        framework: Framework,
        stream: Stream,
        line: &str,
    ) -> Option<String> {
        let name = match framework {
            Framework::Cargo | Framework::Auto => self.feed_cargo(stream, line),
            Framework::Nextest => self.feed_nextest(line),
            Framework::Pytest => self.feed_pytest(line),
            Framework::Jest | Framework::Vitest => self.feed_js(line),
        }?;
        if self.names.len() < MAX_TEST_NAMES {
            self.names.push(name.clone());
        }
        Some(name)
    }

    /// Closes a failure section still open when the output ended.
    pub(super) fn close_section(&mut self) {
        if let Some((name, body)) = self.section.take()
            && let Some(f) = self.failures.iter_mut().find(|f| f.name == name)
        {
            f.message = cap_text(body.trim_end(), MAX_FAILURE_OUTPUT);
        }
    }

    /// jest `--verbose` (`✓ name (3 ms)`, `✕ name`, `○ skipped name`, printed as each
    /// test file finishes) and vitest's `verbose` reporter (`✓ file > name 1ms`,
    /// `× file > name`, `↓ file > name`, printed as each test finishes). These lines
    /// drive progress; totals and failures are replaced by the JSON report at the end.
    fn feed_js(&mut self, line: &str) -> Option<String> {
        let t = line.trim();
        let mut chars = t.chars();
        let mark = chars.next()?;
        let rest = chars.as_str().strip_prefix(' ')?.trim();
        if rest.is_empty() {
            return None;
        }
        let name = strip_js_duration(rest).to_string();
        match mark {
            '✓' | '√' => self.totals.passed += 1,
            '✕' | '×' => {
                self.totals.failed += 1;
                if self.failures.len() < MAX_FAILURES {
                    self.failures.push(TestFailure {
                        name: name.clone(),
                        message: String::new(),
                    });
                }
            }
            '○' | '↓' => self.totals.ignored += 1,
            _ => return None,
        }
        self.totals.total += 1;
        Some(name)
    }

    fn feed_cargo(&mut self, stream: Stream, line: &str) -> Option<String> {
        if stream == Stream::Stdout && line.starts_with('{') {
            if let Ok(msg) = serde_json::from_str::<Value>(line)
                && msg["reason"] == "compiler-message"
                && msg["message"]["level"] == "error"
            {
                let rendered = msg["message"]["rendered"]
                    .as_str()
                    .or(msg["message"]["message"].as_str())
                    .unwrap_or("compile error");
                self.build_errors
                    .push(cap_text(rendered, MAX_FAILURE_OUTPUT));
            }
            return None;
        }
        if let Some((name, body)) = &mut self.section {
            if line.starts_with("---- ") || line == "failures:" || line.starts_with("test result:")
            {
                let (name, body) = (name.clone(), body.clone());
                self.section = None;
                if let Some(f) = self.failures.iter_mut().find(|f| f.name == name) {
                    f.message = cap_text(body.trim_end(), MAX_FAILURE_OUTPUT);
                }
            } else {
                if body.len() < MAX_FAILURE_OUTPUT {
                    body.push_str(line);
                    body.push('\n');
                }
                return None;
            }
        }
        if let Some(rest) = line.strip_prefix("---- ")
            && let Some(name) = rest.strip_suffix(" stdout ----")
        {
            self.section = Some((name.to_string(), String::new()));
            return None;
        }
        let rest = line.strip_prefix("test ")?;
        let (name, outcome) = rest.rsplit_once(" ... ")?;
        let name = name.trim().to_string();
        match outcome.trim() {
            "ok" => self.totals.passed += 1,
            "FAILED" => {
                self.totals.failed += 1;
                self.failed_names.push(name.clone());
                if self.failures.len() < MAX_FAILURES {
                    self.failures.push(TestFailure {
                        name: name.clone(),
                        message: String::new(),
                    });
                }
            }
            o if o.starts_with("ignored") => self.totals.ignored += 1,
            _ => return None,
        }
        self.totals.total += 1;
        Some(name)
    }

    /// nextest status lines (`PASS [   0.004s] (1/2) crate tests::name`) on stderr; the
    /// indented output under a FAIL line becomes that failure's message; the final
    /// summary's repeated FAIL lines are not counted again.
    fn feed_nextest(&mut self, line: &str) -> Option<String> {
        let t = line.trim_start();
        if t.starts_with("Summary [") {
            self.close_section();
            self.summary_seen = true;
            return None;
        }
        let Some((status, name)) = nextest_status(t) else {
            if t.starts_with('─') {
                self.close_section();
            } else if let Some((_, body)) = &mut self.section
                && body.len() < MAX_FAILURE_OUTPUT
            {
                body.push_str(t);
                body.push('\n');
            }
            return None;
        };
        self.close_section();
        if self.summary_seen {
            return None;
        }
        self.totals.total += 1;
        if status == "PASS" {
            self.totals.passed += 1;
        } else {
            self.totals.failed += 1;
            if self.failures.len() < MAX_FAILURES {
                self.failures.push(TestFailure {
                    name: name.clone(),
                    message: status.to_string(),
                });
                self.section = Some((name.clone(), format!("{status}\n")));
            }
        }
        Some(name)
    }

    fn feed_pytest(&mut self, line: &str) -> Option<String> {
        // Verbose lines: "tests/test_x.py::test_y PASSED    [ 50%]".
        if line.starts_with("FAILED ") || line.starts_with("ERROR ") {
            return None; // short summary lines repeat what was seen
        }
        let (name, rest) = line.split_once(' ')?;
        if !name.contains("::") {
            return None;
        }
        let outcome = rest.split_whitespace().next()?;
        match outcome {
            "PASSED" | "XPASS" => self.totals.passed += 1,
            "FAILED" | "ERROR" => {
                self.totals.failed += 1;
                if self.failures.len() < MAX_FAILURES {
                    self.failures.push(TestFailure {
                        name: name.to_string(),
                        message: String::new(),
                    });
                }
            }
            "SKIPPED" | "XFAIL" => self.totals.ignored += 1,
            _ => return None,
        }
        self.totals.total += 1;
        Some(name.to_string())
    }
}

pub(super) fn cap_text(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Fills pytest failure messages from the `____ test_name ____` sections of stdout.
pub(super) fn pytest_failure_details(stdout: &str, failures: &mut [TestFailure]) {
    let mut current: Option<(String, String)> = None;
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in stdout.lines() {
        let t = line.trim();
        if t.starts_with("___") && t.ends_with("___") {
            if let Some(s) = current.take() {
                sections.push(s);
            }
            let name = t.trim_matches('_').trim().to_string();
            current = Some((name, String::new()));
        } else if t.starts_with("===") {
            if let Some(s) = current.take() {
                sections.push(s);
            }
        } else if let Some((_, body)) = &mut current
            && body.len() < MAX_FAILURE_OUTPUT
        {
            body.push_str(line);
            body.push('\n');
        }
    }
    for f in failures.iter_mut() {
        let short = f.name.rsplit("::").next().unwrap_or(&f.name);
        if let Some((_, body)) = sections
            .iter()
            .find(|(n, _)| n == short || n.ends_with(short))
        {
            f.message = cap_text(body.trim_end(), MAX_FAILURE_OUTPUT);
        }
    }
}

/// Parses jest/vitest `--json` reports (same top-level shape).
/// A jest/vitest JSON report: totals, failures and the names of all tests.
pub(super) struct JsReport {
    pub totals: Totals,
    pub failures: Vec<TestFailure>,
    pub names: Vec<String>,
}

/// Reads the report `path` (in the scratch directory that sandboxed children may write)
/// through a handle of its directory: a symlink put in its place is not followed.
pub(super) fn parse_js_report(path: &Path) -> Option<JsReport> {
    let dir = crate::runtime::workspace::Beneath::open_ambient(path.parent()?).ok()?;
    let bytes = dir.read(Path::new(path.file_name()?)).ok()??;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let totals = Totals {
        passed: n("numPassedTests"),
        failed: n("numFailedTests"),
        total: n("numTotalTests"),
        ignored: n("numPendingTests") + n("numTodoTests"),
    };
    let mut failures = Vec::new();
    let mut names = Vec::new();
    for file in v["testResults"].as_array().into_iter().flatten() {
        for a in file["assertionResults"].as_array().into_iter().flatten() {
            if names.len() < MAX_TEST_NAMES {
                names.push(a["fullName"].as_str().unwrap_or("?").to_string());
            }
            if a["status"] == "failed" && failures.len() < MAX_FAILURES {
                let msg = a["failureMessages"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                failures.push(TestFailure {
                    name: a["fullName"].as_str().unwrap_or("?").to_string(),
                    message: cap_text(&msg, MAX_FAILURE_OUTPUT),
                });
            }
        }
    }
    Some(JsReport {
        totals,
        failures,
        names,
    })
}

/// Splits a nextest status line into (status, test name).
fn nextest_status(t: &str) -> Option<(&str, String)> {
    let (status, rest) = t.split_once(' ')?;
    if !matches!(
        status,
        "PASS" | "FAIL" | "SIGSEGV" | "SIGABRT" | "TIMEOUT" | "LEAK-FAIL"
    ) {
        return None;
    }
    // "[   0.004s] (1/2) crate::bin tests::name"
    let after = rest
        .trim_start()
        .strip_prefix('[')?
        .split_once(']')?
        .1
        .trim();
    Some((status, after.split_whitespace().last()?.to_string()))
}

/// `name (3 ms)` (jest) or `file > name 12ms` (vitest) → the name.
fn strip_js_duration(s: &str) -> &str {
    if let Some(open) = s.rfind(" (")
        && s.ends_with("ms)")
    {
        return &s[..open];
    }
    match s.rsplit_once(' ') {
        Some((head, last))
            if last.ends_with("ms")
                && last
                    .trim_end_matches("ms")
                    .chars()
                    .all(|c| c.is_ascii_digit()) =>
        {
            head
        }
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_reports_are_read_but_a_symlink_in_their_place_is_not_followed() {
        let base = tempfile::tempdir().unwrap();
        let scratch = base.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        let report =
            r#"{"numPassedTests":2,"numFailedTests":0,"numTotalTests":2,"testResults":[]}"#;
        std::fs::write(scratch.join("report.json"), report).unwrap();
        let got = parse_js_report(&scratch.join("report.json")).unwrap();
        assert_eq!(got.totals.passed, 2);
        std::fs::write(base.path().join("outside.json"), report).unwrap();
        std::os::unix::fs::symlink(base.path().join("outside.json"), scratch.join("link.json"))
            .unwrap();
        assert!(parse_js_report(&scratch.join("link.json")).is_none());
    }

    #[test]
    fn cargo_lines_are_parsed_as_they_come() {
        let mut l = LiveTests::default();
        let f = Framework::Cargo;
        assert_eq!(
            l.feed(f, Stream::Stdout, "test a::ok_one ... ok")
                .as_deref(),
            Some("a::ok_one")
        );
        l.feed(f, Stream::Stdout, "test a::bad ... FAILED");
        l.feed(f, Stream::Stdout, "test a::skip ... ignored, slow");
        l.feed(f, Stream::Stdout, "failures:");
        l.feed(f, Stream::Stdout, "---- a::bad stdout ----");
        l.feed(f, Stream::Stdout, "assertion failed: 1 == 2");
        l.feed(f, Stream::Stdout, "failures:");
        assert_eq!(
            l.totals,
            Totals {
                passed: 1,
                failed: 1,
                total: 3,
                ignored: 1
            }
        );
        assert_eq!(l.failures[0].name, "a::bad");
        assert!(l.failures[0].message.contains("assertion failed"));
    }

    #[test]
    fn pytest_and_nextest_lines_are_parsed() {
        let mut l = LiveTests::default();
        l.feed(
            Framework::Pytest,
            Stream::Stdout,
            "tests/test_a.py::test_ok PASSED      [ 50%]",
        );
        l.feed(
            Framework::Pytest,
            Stream::Stdout,
            "tests/test_a.py::test_bad FAILED     [100%]",
        );
        l.feed(
            Framework::Pytest,
            Stream::Stdout,
            "FAILED tests/test_a.py::test_bad - assert 1 == 2",
        );
        assert_eq!(l.totals.total, 2);
        assert_eq!(l.failures[0].name, "tests/test_a.py::test_bad");
        let mut n = LiveTests::default();
        n.feed(
            Framework::Nextest,
            Stream::Stderr,
            "        PASS [   0.004s] fx tests::a",
        );
        n.feed(
            Framework::Nextest,
            Stream::Stderr,
            "        FAIL [   0.004s] fx tests::b",
        );
        assert_eq!(
            n.totals,
            Totals {
                passed: 1,
                failed: 1,
                total: 2,
                ignored: 0
            }
        );
    }

    #[test]
    fn nextest_failure_output_is_kept_and_the_summary_not_recounted() {
        let mut n = LiveTests::default();
        for line in [
            "        PASS [   0.100s] (1/2) fx tests::adds",
            "        FAIL [   0.199s] (2/2) fx tests::subtracts_wrongly",
            "  stderr ───",
            "    assertion `left == right` failed: planted failure",
            "────────────",
            "     Summary [   0.200s] 2 tests run: 1 passed, 1 failed, 0 skipped",
            "        FAIL [   0.199s] (2/2) fx tests::subtracts_wrongly",
        ] {
            n.feed(Framework::Nextest, Stream::Stderr, line);
        }
        n.close_section();
        assert_eq!((n.totals.total, n.totals.failed), (2, 1));
        assert_eq!(n.failures.len(), 1);
        assert!(n.failures[0].message.contains("planted failure"));
    }

    #[test]
    fn jest_and_vitest_progress_lines_are_parsed() {
        let mut j = LiveTests::default();
        assert_eq!(
            j.feed(Framework::Jest, Stream::Stderr, "  ✓ adds (3 ms)")
                .as_deref(),
            Some("adds")
        );
        j.feed(
            Framework::Jest,
            Stream::Stderr,
            "  ✕ subtracts wrongly (3 ms)",
        );
        j.feed(Framework::Jest, Stream::Stderr, "FAIL ./math.test.js");
        assert_eq!((j.totals.passed, j.totals.failed), (1, 1));
        assert_eq!(j.failures[0].name, "subtracts wrongly");
        let mut v = LiveTests::default();
        assert_eq!(
            v.feed(
                Framework::Vitest,
                Stream::Stdout,
                " ✓ math.test.js > adds 1ms"
            )
            .as_deref(),
            Some("math.test.js > adds")
        );
        v.feed(
            Framework::Vitest,
            Stream::Stdout,
            " × math.test.js > subtracts wrongly 8ms",
        );
        v.feed(
            Framework::Vitest,
            Stream::Stdout,
            " Test Files  1 failed (1)",
        );
        assert_eq!(
            (v.totals.passed, v.totals.failed, v.totals.total),
            (1, 1, 2)
        );
    }
}
