//! Secret and SAST rule tables ([`Rules`]) and the text engine ([`scan_text`]): regex
//! rules per language, the high-entropy assignment rule, redaction and excerpts.
//! Must not read files or walk directories; secret values never leave unredacted.

use std::path::Path;

use regex::Regex;

use super::{Finding, ScanType, Severity};

struct Rule {
    id: &'static str,
    severity: Severity,
    message: &'static str,
    re: Regex,
    /// For secret rules: the capture group holding the secret (0 = whole match).
    group: usize,
}

fn rule(id: &'static str, severity: Severity, message: &'static str, re: &str) -> Rule {
    Rule {
        id,
        severity,
        message,
        re: Regex::new(re).unwrap_or_else(|e| panic!("rule {id}: {e}")),
        group: 0,
    }
}

fn secret_rules() -> Vec<Rule> {
    use Severity::*;
    let mut rules = vec![
        rule(
            "github-token",
            Critical,
            "GitHub token",
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,})\b",
        ),
        rule(
            "aws-access-key-id",
            High,
            "AWS access key id",
            r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
        ),
        rule(
            "slack-token",
            High,
            "Slack token",
            r"\bxox[baprs]-[0-9A-Za-z-]{10,}",
        ),
        rule(
            "slack-webhook",
            Medium,
            "Slack incoming webhook URL",
            r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
        ),
        rule(
            "stripe-secret-key",
            Critical,
            "Stripe live secret key",
            r"\b[sr]k_live_[0-9A-Za-z]{16,}\b",
        ),
        rule(
            "private-key",
            Critical,
            "private key block",
            r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----",
        ),
        rule(
            "jwt",
            Medium,
            "JSON Web Token",
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        ),
    ];
    let mut aws = rule(
        "aws-secret-access-key",
        Critical,
        "AWS secret access key",
        r#"(?i)aws_?secret_?access_?key\s*[:=]\s*['"]?([A-Za-z0-9/+=]{40})"#,
    );
    aws.group = 1;
    rules.push(aws);
    rules
}

fn entropy_rule() -> Rule {
    let mut r = rule(
        "high-entropy-assignment",
        Severity::Medium,
        "high-entropy value assigned to a secret-looking name",
        r#"(?i)\b[a-z0-9_]*(?:secret|token|passwd|password|api_?key|apikey|credential)s?\b\s*[:=]\s*['"]([^'"\s]{16,})['"]"#,
    );
    r.group = 1;
    r
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Lang {
    Rust,
    Js,
    Python,
    Shell,
}

fn lang_of(path: &Path) -> Option<Lang> {
    let ext = path.extension()?.to_str()?;
    Some(match ext {
        "rs" => Lang::Rust,
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => Lang::Js,
        "py" => Lang::Python,
        "sh" | "bash" | "zsh" => Lang::Shell,
        _ => return None,
    })
}

fn sast_rules() -> Vec<(Lang, Rule)> {
    use Lang::*;
    use Severity::*;
    vec![
        (
            Rust,
            rule(
                "rust-shell-command",
                High,
                "shell invoked through Command; arguments may be injected",
                r#"Command::new\(\s*"(?:/bin/)?(?:ba)?sh"\s*\)"#,
            ),
        ),
        (
            Rust,
            rule(
                "rust-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r"danger_accept_invalid_(?:certs|hostnames)\(\s*true\s*\)",
            ),
        ),
        (
            Rust,
            rule(
                "rust-sql-format",
                Medium,
                "SQL built with format!; use bound parameters",
                r#"format!\(\s*"(?i:\s*(?:select|insert|update|delete)\s)"#,
            ),
        ),
        (
            Rust,
            rule(
                "rust-unsafe",
                Low,
                "unsafe block; check its invariants",
                r"\bunsafe\s*\{",
            ),
        ),
        (
            Js,
            rule(
                "js-eval",
                High,
                "eval of dynamic code",
                r"\beval\s*\(|\bnew\s+Function\s*\(",
            ),
        ),
        (
            Js,
            rule(
                "js-child-process-exec",
                High,
                "shell command built at run time (child_process exec)",
                r"\bexec(?:Sync)?\s*\(\s*(?:`[^`]*\$\{|[^)]*\+)",
            ),
        ),
        (
            Js,
            rule(
                "js-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r#"rejectUnauthorized\s*:\s*false|NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['"]?0"#,
            ),
        ),
        (
            Js,
            rule(
                "js-sql-template",
                Medium,
                "SQL built from a template string; use bound parameters",
                r"(?i)\b(?:query|execute|raw)\s*\(\s*`\s*(?:select|insert|update|delete)\b[^`]*\$\{",
            ),
        ),
        (
            Js,
            rule(
                "js-inner-html",
                Medium,
                "assignment to innerHTML (XSS)",
                r"\.innerHTML\s*=",
            ),
        ),
        (
            Python,
            rule(
                "py-eval",
                High,
                "eval/exec of dynamic code",
                r"(?:^|[^.\w])(?:eval|exec)\s*\(",
            ),
        ),
        (
            Python,
            rule(
                "py-shell-true",
                High,
                "subprocess with shell=True",
                r"subprocess\.\w+\([^)]*shell\s*=\s*True",
            ),
        ),
        (
            Python,
            rule(
                "py-os-system",
                High,
                "os.system runs a shell",
                r"\bos\.(?:system|popen)\s*\(",
            ),
        ),
        (
            Python,
            rule(
                "py-pickle",
                High,
                "unsafe deserialisation (pickle)",
                r"\b(?:c?[pP]ickle|dill)\.loads?\s*\(",
            ),
        ),
        (
            Python,
            rule(
                "py-yaml-load",
                High,
                "yaml.load without SafeLoader",
                r"\byaml\.load\s*\((?:[^)S]|S[^a])*\)",
            ),
        ),
        (
            Python,
            rule(
                "py-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r"\bverify\s*=\s*False\b",
            ),
        ),
        (
            Python,
            rule(
                "py-sql-format",
                Medium,
                "SQL built from strings; use bound parameters",
                r#"(?i)\.execute\s*\(\s*(?:f["']\s*(?:select|insert|update|delete)\b|["']\s*(?:select|insert|update|delete)\b[^"']*["']\s*(?:%|\+|\.format))"#,
            ),
        ),
        (
            Shell,
            rule(
                "sh-eval",
                High,
                "eval of a dynamic string",
                r"(?m)(?:^|[;&|]\s*)eval\s",
            ),
        ),
        (
            Shell,
            rule(
                "sh-curl-pipe",
                High,
                "downloaded script piped into a shell",
                r"\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z)?sh\b",
            ),
        ),
        (
            Shell,
            rule(
                "sh-tls-disabled",
                High,
                "TLS certificate checks disabled",
                r"\bcurl\b[^\n]*\s(?:-k|--insecure)\b|\bwget\b[^\n]*--no-check-certificate",
            ),
        ),
        (
            Shell,
            rule(
                "sh-chmod-777",
                Medium,
                "world-writable permissions",
                r"\bchmod\s+(?:-R\s+)?777\b",
            ),
        ),
    ]
}

/// The compiled rule set (built once per scanner).
pub struct Rules {
    secrets: Vec<Rule>,
    entropy: Rule,
    sast: Vec<(Lang, Rule)>,
}

impl Rules {
    pub fn new() -> Self {
        Rules {
            secrets: secret_rules(),
            entropy: entropy_rule(),
            sast: sast_rules(),
        }
    }
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

fn shannon(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn redact(secret: &str) -> String {
    let keep: String = secret.chars().take(4).collect();
    format!("{keep}…[redacted {} chars]", secret.chars().count())
}

/// Line number (1-based) of byte `at`, using a running cursor for speed.
pub(super) struct Lines<'a> {
    text: &'a str,
    pos: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            line: 1,
        }
    }
    pub(super) fn line_of(&mut self, at: usize) -> u64 {
        if at < self.pos {
            self.pos = 0;
            self.line = 1;
        }
        self.line += memchr_count(&self.text.as_bytes()[self.pos..at]);
        self.pos = at;
        self.line
    }
    pub(super) fn excerpt(&self, at: usize) -> &'a str {
        let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i);
        &self.text[start..end]
    }
}

fn memchr_count(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn cap_excerpt(s: &str) -> String {
    let s = s.trim();
    if s.len() <= 200 {
        return s.to_string();
    }
    let mut end = 200;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Scans one file's text with the selected rules.
pub fn scan_text(
    rules: &Rules,
    scan: ScanType,
    file: &str,
    path: &Path,
    text: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut lines = Lines::new(text);
    if scan.includes(ScanType::Secrets) {
        for r in rules.secrets.iter().chain(std::iter::once(&rules.entropy)) {
            for caps in r.re.captures_iter(text) {
                let Some(m) = caps.get(r.group) else { continue };
                if r.id == "high-entropy-assignment" && shannon(m.as_str()) < 3.5 {
                    continue;
                }
                let whole = caps.get(0).expect("group 0");
                let line = lines.line_of(whole.start());
                let excerpt = lines
                    .excerpt(whole.start())
                    .replace(m.as_str(), &redact(m.as_str()));
                out.push(Finding {
                    rule: r.id.to_string(),
                    r#type: "secrets".into(),
                    severity: r.severity,
                    file: file.to_string(),
                    line,
                    message: format!("{} found", r.message),
                    excerpt: cap_excerpt(&excerpt),
                });
            }
        }
    }
    if scan.includes(ScanType::Sast)
        && let Some(lang) = lang_of(path)
    {
        for (_, r) in rules.sast.iter().filter(|(l, _)| *l == lang) {
            for m in r.re.find_iter(text) {
                let line = lines.line_of(m.start());
                out.push(Finding {
                    rule: r.id.to_string(),
                    r#type: "sast".into(),
                    severity: r.severity,
                    file: file.to_string(),
                    line,
                    message: r.message.to_string(),
                    excerpt: cap_excerpt(lines.excerpt(m.start())),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_found_and_redacted() {
        let rules = Rules::new();
        let text = "let t = \"ghp_abcdefghijklmnopqrstuvwxyz0123456789\";\nAKIAABCDEFGHIJKLMNOP\napi_key = \"Zx9!kQ2#mW7$pL4vR8tY\"\nname = \"aaaaaaaaaaaaaaaaaaaa\"\n";
        let f = scan_text(&rules, ScanType::Secrets, "a.txt", Path::new("a.txt"), text);
        let rules_hit: Vec<&str> = f.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules_hit.contains(&"github-token"), "{rules_hit:?}");
        assert!(rules_hit.contains(&"aws-access-key-id"));
        assert!(rules_hit.contains(&"high-entropy-assignment"));
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().all(|f| !f.excerpt.contains("abcdefghijklmnop")));
        assert_eq!(f[1].line, 2);
    }
}
