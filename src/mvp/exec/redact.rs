//! Redaction of secrets in child output: known values (configured tokens), the values
//! registered at run time in `runtime::secrets` and well-known token shapes.
//!
//! Owns only the patterns and the per-line replacement; the executor applies it while
//! output streams.

use std::sync::Arc;

use regex::Regex;

use crate::runtime::secrets;

/// What a redacted secret becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Redacts secrets: known values (configured tokens), the values registered at run time
/// in [`crate::runtime::secrets`] (integration credentials, webhook secrets) and
/// well-known token shapes.
#[derive(Clone)]
pub struct Redactor {
    patterns: Arc<Vec<Regex>>,
    known: Arc<Vec<String>>,
    /// The registry's values as of a generation.
    registered: Arc<parking_lot::Mutex<(u64, Arc<Vec<String>>)>>,
}

impl Redactor {
    /// `known` are literal secret values (at least 8 bytes) that must never be shown.
    pub fn new(known: Vec<String>) -> Self {
        let sources = [
            // GitHub tokens (classic, fine-grained, app, oauth, refresh).
            r"\b(?:gh[pousr]_[A-Za-z0-9]{20,255}|github_pat_[A-Za-z0-9_]{20,255})\b",
            // AWS access key ids.
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
            // Slack tokens.
            r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b",
            // OpenAI / Anthropic style keys.
            r"\bsk-(?:ant-)?[A-Za-z0-9_-]{20,}\b",
            // PEM private keys (the header line; bodies are caught by the known values).
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            // Authorization headers.
            r"(?i)\b(?:bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{16,}",
            // key=value / key: value assignments of secret-looking names.
            r#"(?i)\b[A-Za-z0-9_]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key)[A-Za-z0-9_]*\s*[=:]\s*["']?[^\s"',;]{6,}"#,
        ];
        let patterns = sources
            .iter()
            .map(|s| Regex::new(s).expect("static redaction patterns compile"))
            .collect();
        let mut known: Vec<String> = known.into_iter().filter(|k| k.len() >= 8).collect();
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
        known.dedup();
        Redactor {
            patterns: Arc::new(patterns),
            known: Arc::new(known),
            registered: Arc::new(parking_lot::Mutex::new((u64::MAX, Arc::default()))),
        }
    }

    fn registered(&self) -> Arc<Vec<String>> {
        let generation = secrets::generation();
        let mut cached = self.registered.lock();
        if cached.0 != generation {
            *cached = (generation, Arc::new(secrets::snapshot()));
        }
        cached.1.clone()
    }

    /// Whether `value` contains a secret this redactor knows by value.
    pub fn holds_secret(&self, value: &str) -> bool {
        self.known
            .iter()
            .chain(self.registered().iter())
            .any(|k| value.contains(k.as_str()))
    }

    /// One line with every secret replaced by [`REDACTED`].
    pub fn line(&self, line: &str) -> String {
        let mut out = line.to_string();
        let registered = self.registered();
        for k in self.known.iter().chain(registered.iter()) {
            if out.contains(k.as_str()) {
                out = out.replace(k.as_str(), REDACTED);
            }
        }
        for re in self.patterns.iter() {
            if re.is_match(&out) {
                out = re.replace_all(&out, REDACTED).into_owned();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_known_values_and_token_shapes() {
        let r = Redactor::new(vec!["planted-secret-value".into()]);
        let line = r.line(
            "x planted-secret-value ghp_abcdefghijklmnopqrstuvwxyz0123 API_KEY=abcdef123456 ok",
        );
        assert!(!line.contains("planted-secret"), "{line}");
        assert!(!line.contains("ghp_"), "{line}");
        assert!(!line.contains("abcdef123456"), "{line}");
        assert!(line.ends_with(" ok"), "{line}");
    }
}
