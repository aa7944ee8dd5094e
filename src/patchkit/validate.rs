//! Commit validators of a spool session: file size, forbidden path globs, and JSON/TOML
//! files that must parse. They run over the changed files before anything is committed.
//!
//! Owns the rules only; it must not read the disk (the caller hands over contents).

use regex::Regex;

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("forbiddenGlobs: `{glob}` is not a valid glob: {reason}")]
    BadGlob { glob: String, reason: String },
}

/// Globs over session-relative paths: `*` and `?` stay inside one segment, `**` crosses
/// segments. A glob without `/` matches the file name in any directory.
pub struct Globs {
    compiled: Vec<(String, Regex, bool)>,
}

fn glob_regex(glob: &str) -> String {
    let mut re = String::from("^");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re.push('$');
    re
}

impl Globs {
    pub fn new(globs: &[String]) -> Result<Globs, ValidateError> {
        let compiled = globs
            .iter()
            .map(|g| {
                let re = Regex::new(&glob_regex(g)).map_err(|e| ValidateError::BadGlob {
                    glob: g.clone(),
                    reason: e.to_string(),
                })?;
                Ok((g.clone(), re, !g.contains('/')))
            })
            .collect::<Result<_, ValidateError>>()?;
        Ok(Globs { compiled })
    }

    /// The first glob matching `path`.
    pub fn matching(&self, path: &str) -> Option<&str> {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.compiled
            .iter()
            .find(|(_, re, name_only)| re.is_match(if *name_only { name } else { path }))
            .map(|(g, _, _)| g.as_str())
    }
}

/// What a commit must respect.
pub struct Rules {
    pub max_file_bytes: usize,
    pub forbidden: Globs,
}

/// One changed file as the validators see it (`None`: deleted).
pub struct Candidate<'a> {
    pub path: &'a str,
    pub content: Option<&'a [u8]>,
}

/// Every violation, one message per problem, naming the file.
pub fn check(rules: &Rules, files: &[Candidate<'_>]) -> Vec<String> {
    let mut problems = Vec::new();
    for f in files {
        if let Some(glob) = rules.forbidden.matching(f.path) {
            problems.push(format!("{}: matches forbidden glob `{glob}`", f.path));
        }
        let Some(bytes) = f.content else { continue };
        if bytes.len() > rules.max_file_bytes {
            problems.push(format!(
                "{}: {} bytes exceeds maxFileBytes {}",
                f.path,
                bytes.len(),
                rules.max_file_bytes
            ));
        }
        if let Some(problem) = parse_check(f.path, bytes) {
            problems.push(problem);
        }
    }
    problems
}

/// A short digest of `findings` (in order): what a confirmation to commit despite them
/// is bound to, so it does not cover findings the user was not shown.
pub fn digest(findings: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for f in findings {
        hash.update(f.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(&hash.finalize()[..16])
}

fn parse_check(path: &str, bytes: &[u8]) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        return serde_json::from_slice::<serde_json::Value>(bytes)
            .err()
            .map(|e| format!("{path}: not valid JSON: {e}"));
    }
    if lower.ends_with(".toml") {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return Some(format!("{path}: TOML file is not UTF-8")),
        };
        return toml::from_str::<toml::Table>(text)
            .err()
            .map(|e| format!("{path}: not valid TOML: {}", e.message()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_names_and_paths() {
        let g = Globs::new(&["*.pem".into(), ".git/**".into(), "secrets/**/*.txt".into()]).unwrap();
        assert_eq!(g.matching("a/b/key.pem"), Some("*.pem"));
        assert_eq!(g.matching(".git/config"), Some(".git/**"));
        assert_eq!(g.matching("secrets/x/y/z.txt"), Some("secrets/**/*.txt"));
        assert_eq!(g.matching("secrets/z.txt"), Some("secrets/**/*.txt"));
        assert_eq!(g.matching("src/main.rs"), None);
    }

    #[test]
    fn parse_validators() {
        let rules = Rules {
            max_file_bytes: 10,
            forbidden: Globs::new(&[]).unwrap(),
        };
        let bad = check(
            &rules,
            &[
                Candidate {
                    path: "a.json",
                    content: Some(b"{"),
                },
                Candidate {
                    path: "b.toml",
                    content: Some(b"x = "),
                },
                Candidate {
                    path: "c.txt",
                    content: Some(b"01234567890"),
                },
                Candidate {
                    path: "d.json",
                    content: None,
                },
            ],
        );
        assert_eq!(bad.len(), 3, "{bad:?}");
    }
}
