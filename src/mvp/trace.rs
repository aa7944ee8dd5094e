//! Requirement tracing for the PRP evaluation gate: each blueprint requirement is
//! matched to the evidence the build gathered — the names of the tests that ran, the
//! workspace's test files (path and contents) and the build gate's results.
//!
//! The rule (also in `run_prp_workflow`'s description): a requirement's keywords are its
//! words of 3 or more letters, minus common words, lower-cased, with a light suffix
//! strip (a plural `-s`, then one of `-ing`, `-ed`, `-er`, `-e`) and cut to 5 letters. An evidence
//! item traces the requirement when it holds at least half of those keywords (rounded
//! up, at least 1). A requirement with no keywords cannot be traced.
//!
//! Owns the matching rule and the test-file scan (read-only, bounded); runs no
//! processes and knows nothing of gates' severities.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::runtime::workspace::{Beneath, Walk};

/// Test files read at most.
const MAX_FILES: usize = 500;
/// Bytes read per test file at most.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Evidence items listed per requirement.
const MAX_LISTED: usize = 5;
/// Directories never scanned.
const SKIP_DIRS: &[&str] = &[
    "target",
    "node_modules",
    "dist",
    "build",
    "venv",
    "__pycache__",
    "coverage",
];
const SOURCE_EXTS: &[&str] = &[
    "rs", "py", "js", "jsx", "ts", "tsx", "mjs", "cjs", "go", "java", "rb",
];
/// Common words that say nothing about what is being verified.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "not", "can", "all", "any", "its", "has", "was", "but", "you",
    "our", "one", "two", "may", "use", "via", "per", "out", "who", "how", "why", "should", "must",
    "with", "that", "this", "when", "from", "have", "will", "into", "each", "then", "than", "they",
    "them", "their", "there", "been", "were", "does", "also", "only", "what", "which", "while",
    "where", "shall", "able", "more", "most", "some", "such", "over", "under", "after", "before",
    "about", "every", "other", "these", "those", "your", "test", "tests", "testing", "fn", "def",
    "let", "const", "mod", "pub", "self", "true", "false", "assert", "expect", "import", "return",
];

/// How one requirement was traced.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequirementTrace {
    /// 1-based index in the blueprint.
    pub requirement: usize,
    pub text: String,
    /// The requirement's keywords (stems) used for matching.
    pub keywords: Vec<String>,
    pub traced: bool,
    /// Up to 5 evidence items that hold enough keywords, best first
    /// (`test <name>`, `file <path>`, `gate <result>`).
    pub evidence: Vec<String>,
}

/// One thing a requirement can be traced to.
#[derive(Debug, Clone)]
pub struct EvidenceItem {
    pub label: String,
    stems: BTreeSet<String>,
}

impl EvidenceItem {
    pub fn new(label: String, text: &str) -> Self {
        EvidenceItem {
            label,
            stems: stems(text, false),
        }
    }
}

/// Splits identifiers and prose into lower-case words (snake_case, camelCase, paths).
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in text.chars() {
        if (!c.is_alphanumeric() || (c.is_uppercase() && prev_lower)) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        if c.is_alphanumeric() {
            cur.extend(c.to_lowercase());
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Strips a plural `-s`, then one of `-ing`, `-ed`, `-er`, `-e` (`strings` → `str`,
/// `parser` → `pars`), keeping at least 3 letters; then keeps 5 letters.
fn stem(word: &str) -> String {
    let long_enough = |r: &&str| r.chars().count() >= 3;
    let mut w = word;
    if !w.ends_with("ss")
        && let Some(rest) = w.strip_suffix('s').filter(long_enough)
    {
        w = rest;
    }
    if let Some(rest) = ["ing", "ed", "er", "e"]
        .iter()
        .find_map(|s| w.strip_suffix(s).filter(long_enough))
    {
        w = rest;
    }
    w.chars().take(5).collect()
}

fn stems(text: &str, drop_stopwords: bool) -> BTreeSet<String> {
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 3 && w.chars().any(char::is_alphabetic))
        .filter(|w| !drop_stopwords || !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// The keywords of a requirement.
pub fn keywords(requirement: &str) -> BTreeSet<String> {
    stems(requirement, true)
}

/// Matches every requirement against the evidence.
pub fn trace(requirements: &[String], items: &[EvidenceItem]) -> Vec<RequirementTrace> {
    requirements
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let keys = keywords(text);
            let need = keys.len().div_ceil(2).max(1);
            let mut hits: Vec<(usize, usize)> = items
                .iter()
                .enumerate()
                .map(|(j, item)| (keys.intersection(&item.stems).count(), j))
                .filter(|(n, _)| !keys.is_empty() && *n >= need)
                .collect();
            // Most keywords first; ties keep evidence order (tests, files, gates).
            hits.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            RequirementTrace {
                requirement: i + 1,
                text: text.trim().to_string(),
                keywords: keys.into_iter().collect(),
                traced: !hits.is_empty(),
                evidence: hits
                    .iter()
                    .take(MAX_LISTED)
                    .map(|(_, j)| items[*j].label.clone())
                    .collect(),
            }
        })
        .collect()
}

/// Test files under `dir` (sorted by path) as evidence: `file <relative path>` with
/// the file's path and contents as text. Bounded in files and bytes; blocking I/O.
pub fn scan_test_files(dir: &Path) -> Vec<EvidenceItem> {
    // Listed and read through the directory's handle: no symlink out of it is followed,
    // and nothing outside is listed, even when the tree changes during the scan.
    let Ok(handle) = Beneath::open_ambient(dir) else {
        return Vec::new();
    };
    let mut lister = SourceFiles::default();
    handle.walk(&mut lister, 16);
    let mut files = lister.files;
    files.sort();
    files
        .into_iter()
        .take(MAX_FILES)
        .filter_map(|rel| {
            let text = read_capped(&handle, &rel)?;
            let rel = rel.display().to_string();
            if !looks_like_test(&rel, &text) {
                return None;
            }
            Some(EvidenceItem::new(
                format!("file {rel}"),
                &format!("{rel}\n{text}"),
            ))
        })
        .collect()
}

/// Source files by extension, skipping hidden and build directories.
#[derive(Default)]
struct SourceFiles {
    files: Vec<PathBuf>,
}

impl Walk for SourceFiles {
    fn enter(&mut self, _rel: &Path, _dir: &Beneath) -> bool {
        true
    }

    fn keep(&mut self, rel: &Path, is_dir: bool) -> bool {
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with('.') {
            return false;
        }
        if is_dir {
            return !SKIP_DIRS.contains(&name.as_ref());
        }
        Path::new(name.as_ref())
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| SOURCE_EXTS.contains(&x))
    }

    fn file(&mut self, rel: &Path, _len: u64) {
        self.files.push(rel.to_path_buf());
    }

    fn done(&self) -> bool {
        self.files.len() >= MAX_FILES * 4
    }
}

fn read_capped(dir: &Beneath, rel: &Path) -> Option<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    dir.open_regular(rel)
        .ok()??
        .take(MAX_FILE_BYTES)
        .read_to_end(&mut buf)
        .ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// A test file by name (`test_x.py`, `x_test.go`, `x.test.js`, `x.spec.ts`), by folder
/// (`tests/`, `test/`, `__tests__/`) or, for Rust, by a `#[test]` inside.
fn looks_like_test(rel: &str, text: &str) -> bool {
    let lower = rel.to_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let in_test_dir = lower
        .split('/')
        .any(|c| c == "tests" || c == "test" || c == "__tests__");
    name.contains("test")
        || name.contains("spec")
        || in_test_dir
        || (name.ends_with(".rs") && text.contains("#[test]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_files_are_listed_beneath_the_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("tests")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(
            root.join("tests/parser_test.py"),
            "def test_parse(): pass\n",
        )
        .unwrap();
        std::fs::write(outside.join("secret_test.py"), "def test_secret(): pass\n").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linked")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret_test.py"), root.join("l_test.py")).unwrap();
        let labels: Vec<String> = scan_test_files(&root)
            .into_iter()
            .map(|e| e.label)
            .collect();
        assert_eq!(labels, ["file tests/parser_test.py"]);
    }

    #[test]
    fn keywords_split_identifiers_and_drop_common_words() {
        let k = keywords("The parser should reject unterminated strings");
        assert_eq!(
            k.into_iter().collect::<Vec<_>>(),
            vec!["pars", "rejec", "str", "unter"]
        );
        let item = EvidenceItem::new("test t".into(), "parser::rejectsUnterminatedString");
        assert!(item.stems.contains("rejec") && item.stems.contains("unter"));
    }

    #[test]
    fn requirements_trace_to_items_holding_half_their_keywords() {
        let items = vec![
            EvidenceItem::new(
                "test tests::adds_two_numbers".into(),
                "tests::adds_two_numbers",
            ),
            EvidenceItem::new(
                "gate lint (cargo clippy): 0 errors".into(),
                "lint (cargo clippy): 0 errors",
            ),
        ];
        let reqs = vec![
            "adds numbers".to_string(),
            "no lint errors".to_string(),
            "exports a CSV report".to_string(),
            "a b".to_string(),
        ];
        let t = trace(&reqs, &items);
        assert!(t[0].traced);
        assert_eq!(t[0].evidence, vec!["test tests::adds_two_numbers"]);
        assert!(t[1].traced);
        assert!(t[1].evidence[0].starts_with("gate lint"));
        assert!(!t[2].traced);
        assert!(t[2].evidence.is_empty());
        assert!(!t[3].traced, "no keywords: cannot be traced");
    }
}
