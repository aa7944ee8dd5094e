//! The deterministic rule packs behind review reviewers other than `security` (which
//! reuses the security scan): `performance` (nested loops, queries and requests inside
//! loops, unbounded reads), `architecture` (large modules, functions with many
//! parameters, deep nesting, wildcard imports) and `style` (long lines, long functions,
//! TODO/FIXME markers, trailing whitespace) for Rust, JavaScript/TypeScript and Python.
//!
//! Pure functions over one file's text; the walk and scope filtering live in
//! `reviews.rs`. Must not touch journals, tasks or tool wiring.

use std::path::Path;

use regex::Regex;

use super::scan::Severity;

/// Lines longer than this (in characters) are reported by `style`.
pub const MAX_LINE_CHARS: usize = 120;
/// Functions longer than this (in lines) are reported by `style`.
pub const MAX_FUNCTION_LINES: usize = 80;
/// Files longer than this (in lines) are reported by `architecture`.
pub const MAX_MODULE_LINES: usize = 800;
/// Functions taking more parameters than this are reported by `architecture`.
pub const MAX_PARAMETERS: usize = 6;
/// Blocks nested deeper than this inside a function are reported by `architecture`.
pub const MAX_NESTING: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Lang {
    Rust,
    Js,
    Python,
}

pub fn lang_of(path: &Path) -> Option<Lang> {
    Some(match path.extension()?.to_str()? {
        "rs" => Lang::Rust,
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => Lang::Js,
        "py" => Lang::Python,
        _ => return None,
    })
}

/// One raw finding of a rule pack (the reviewer and file are added by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rule: &'static str,
    pub severity: Severity,
    pub line: u64,
    pub message: String,
    pub excerpt: String,
}

/// Compiled patterns, built once per server.
pub struct ReviewRules {
    loop_brace: Regex,
    loop_py: Regex,
    call_in_loop: Regex,
    unbounded_read: [Regex; 3],
    fn_brace: Regex,
    fn_py: Regex,
    todo: Regex,
    wildcard_import: [Regex; 2],
}

impl Default for ReviewRules {
    fn default() -> Self {
        Self::new()
    }
}

fn re(s: &str) -> Regex {
    Regex::new(s).unwrap_or_else(|e| panic!("review rule {s}: {e}"))
}

fn excerpt(line: &str) -> String {
    let t = line.trim();
    if t.chars().count() > 200 {
        t.chars().take(200).collect::<String>() + "…"
    } else {
        t.to_string()
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Brace depth change of a line, ignoring braces inside simple string literals and
/// line comments.
fn brace_delta(line: &str) -> i64 {
    let mut d = 0;
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for c in line.chars() {
        match quote {
            Some(q) => {
                if c == q && prev != '\\' {
                    quote = None;
                }
            }
            None => match c {
                '"' | '`' => quote = Some(c),
                '/' if prev == '/' => break,
                '{' => d += 1,
                '}' => d -= 1,
                _ => {}
            },
        }
        prev = if prev == '\\' && c == '\\' { ' ' } else { c };
    }
    d
}

impl ReviewRules {
    pub fn new() -> Self {
        ReviewRules {
            loop_brace: re(
                r"^\s*(?:(?:'\w+:\s*)?(?:for|while|loop)\b|.*\.(?:forEach|map|filter|reduce|some|every|flatMap|for_each|iter\(\)\.map)\s*\()",
            ),
            loop_py: re(r"^\s*(?:async\s+)?(?:for|while)\b.*:\s*(?:#.*)?$"),
            call_in_loop: re(
                r"(?i)\b(?:query|execute|executemany|fetchone|fetchall|find_one|findOne|findById|findUnique|findFirst|get_object_or_404|objects\.get)\s*\(|\brequests\.(?:get|post|put|delete)\s*\(|\bfetch\s*\(|\breqwest::get\s*\(|\.send\(\)\s*\.await",
            ),
            unbounded_read: [
                re(r"\b(?:read_to_string|read_to_end)\s*\(|\bfs::read(?:_to_string)?\s*\("),
                re(r"\breadFileSync\s*\(|\bfs\.readFile\s*\("),
                re(r"\.read\(\s*\)|\.readlines\(\s*\)"),
            ],
            fn_brace: re(
                r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:unsafe\s+)?(?:fn\s+\w+|(?:export\s+)?(?:default\s+)?(?:async\s+)?function\b)",
            ),
            fn_py: re(r"^\s*(?:async\s+)?def\s+\w+"),
            todo: re(r"(?://|#|/\*|\*)\s*(TODO|FIXME|XXX|HACK)\b"),
            wildcard_import: [
                re(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([\w:]+)::\*\s*;"),
                re(r"^\s*from\s+\S+\s+import\s+\*"),
            ],
        }
    }

    /// The `architecture` pack over one file.
    pub fn architecture(&self, lang: Lang, text: &str) -> Vec<Hit> {
        let lines: Vec<&str> = text.lines().collect();
        let mut hits = Vec::new();
        if lines.len() > MAX_MODULE_LINES {
            hits.push(Hit {
                rule: "arch-large-module",
                severity: Severity::Medium,
                line: 1,
                message: format!(
                    "file is {} lines long (limit {MAX_MODULE_LINES}); split it into modules with one responsibility each",
                    lines.len()
                ),
                excerpt: excerpt(lines[0]),
            });
        }
        hits.extend(self.wildcard_imports(lang, &lines));
        for (start, len, header) in self.functions(lang, text) {
            let first = start as usize - 1;
            let body = &lines[first..(first + len).min(lines.len())];
            let params = parameter_count(lang, body);
            if params > MAX_PARAMETERS {
                hits.push(Hit {
                    rule: "arch-many-parameters",
                    severity: Severity::Medium,
                    line: start,
                    message: format!(
                        "function takes {params} parameters (limit {MAX_PARAMETERS}); group related ones into a struct or object"
                    ),
                    excerpt: header.clone(),
                });
            }
            let (depth, at) = deepest_nesting(lang, body);
            if depth > MAX_NESTING {
                hits.push(Hit {
                    rule: "arch-deep-nesting",
                    severity: Severity::Medium,
                    line: start + at as u64,
                    message: format!(
                        "blocks nested {depth} deep in this function (limit {MAX_NESTING}); return early or extract the inner part"
                    ),
                    excerpt: excerpt(body[at]),
                });
            }
        }
        hits.sort_by_key(|h| h.line);
        hits
    }

    fn wildcard_imports(&self, lang: Lang, lines: &[&str]) -> Vec<Hit> {
        let re = match lang {
            Lang::Rust => &self.wildcard_import[0],
            Lang::Python => &self.wildcard_import[1],
            Lang::Js => return Vec::new(),
        };
        let mut hits = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(c) = re.captures(line) else { continue };
            // `use super::*` in test modules and preludes are the idiom, not a smell.
            let module = c.get(1).map_or("", |m| m.as_str());
            if module == "super" || module.ends_with("prelude") {
                continue;
            }
            hits.push(Hit {
                rule: "arch-wildcard-import",
                severity: Severity::Low,
                line: i as u64 + 1,
                message: "wildcard import hides where names come from and couples the modules; import the names used".into(),
                excerpt: excerpt(line),
            });
        }
        hits
    }

    /// The `performance` pack over one file.
    pub fn performance(&self, lang: Lang, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        let read = match lang {
            Lang::Rust => &self.unbounded_read[0],
            Lang::Js => &self.unbounded_read[1],
            Lang::Python => &self.unbounded_read[2],
        };
        // loop bodies: brace depth of the body (brace languages) or indent of the header
        let mut loops: Vec<i64> = Vec::new();
        let mut depth: i64 = 0;
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with("//") || trimmed.starts_with('#') {
                continue;
            }
            let is_loop = match lang {
                Lang::Python => {
                    let ind = indent(line) as i64;
                    while loops.last().is_some_and(|&l| ind <= l) {
                        loops.pop();
                    }
                    self.loop_py.is_match(line).then_some(ind)
                }
                _ => {
                    while loops.last().is_some_and(|&l| depth < l) {
                        loops.pop();
                    }
                    self.loop_brace.is_match(line).then_some(depth + 1)
                }
            };
            let in_loop = !loops.is_empty();
            if in_loop && is_loop.is_some() {
                hits.push(Hit {
                    rule: "perf-nested-loop",
                    severity: Severity::Medium,
                    line: n,
                    message: "loop nested inside another loop (quadratic over collections); consider a map/set lookup or a join".into(),
                    excerpt: excerpt(line),
                });
            }
            if (in_loop || is_loop.is_some()) && self.call_in_loop.is_match(line) {
                hits.push(Hit {
                    rule: "perf-query-in-loop",
                    severity: Severity::High,
                    line: n,
                    message: "query or request issued once per loop iteration (N+1); batch it or fetch once before the loop".into(),
                    excerpt: excerpt(line),
                });
            }
            if read.is_match(line) {
                hits.push(Hit {
                    rule: "perf-unbounded-read",
                    severity: Severity::Low,
                    line: n,
                    message: "whole input read into memory without a size limit; stream it or cap the size".into(),
                    excerpt: excerpt(line),
                });
            }
            if let Some(l) = is_loop {
                loops.push(l);
            }
            if lang != Lang::Python {
                depth += brace_delta(line);
            }
        }
        hits
    }

    /// The `style` pack over one file. Long lines and trailing whitespace are reported
    /// once per file (first line, with a count).
    pub fn style(&self, lang: Lang, text: &str) -> Vec<Hit> {
        let mut hits = Vec::new();
        let (mut long, mut trailing) = ((0u64, 0u64, String::new()), (0u64, 0u64, String::new()));
        for (i, line) in text.lines().enumerate() {
            let n = i as u64 + 1;
            if line.chars().count() > MAX_LINE_CHARS {
                if long.0 == 0 {
                    long = (0, n, excerpt(line));
                }
                long.0 += 1;
            }
            if line.ends_with(' ') || line.ends_with('\t') {
                if trailing.0 == 0 {
                    trailing = (0, n, excerpt(line));
                }
                trailing.0 += 1;
            }
            if let Some(c) = self.todo.captures(line) {
                hits.push(Hit {
                    rule: "style-todo",
                    severity: Severity::Low,
                    line: n,
                    message: format!(
                        "{} marker left in the code; resolve it or track it in an issue",
                        &c[1]
                    ),
                    excerpt: excerpt(line),
                });
            }
        }
        if long.0 > 0 {
            hits.push(Hit {
                rule: "style-long-line",
                severity: Severity::Low,
                line: long.1,
                message: format!(
                    "{} line(s) longer than {MAX_LINE_CHARS} characters (first here)",
                    long.0
                ),
                excerpt: long.2,
            });
        }
        if trailing.0 > 0 {
            hits.push(Hit {
                rule: "style-trailing-whitespace",
                severity: Severity::Low,
                line: trailing.1,
                message: format!("{} line(s) end with whitespace (first here)", trailing.0),
                excerpt: trailing.2,
            });
        }
        for (start, len, header) in self.functions(lang, text) {
            if len > MAX_FUNCTION_LINES {
                hits.push(Hit {
                    rule: "style-long-function",
                    severity: Severity::Medium,
                    line: start,
                    message: format!(
                        "function is {len} lines long (limit {MAX_FUNCTION_LINES}); split it into smaller functions"
                    ),
                    excerpt: header,
                });
            }
        }
        hits.sort_by_key(|h| h.line);
        hits
    }

    /// (first line, length in lines, header excerpt) of each function.
    fn functions(&self, lang: Lang, text: &str) -> Vec<(u64, usize, String)> {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if lang == Lang::Python {
                if !self.fn_py.is_match(line) {
                    continue;
                }
                let ind = indent(line);
                let mut end = i;
                for (j, l) in lines.iter().enumerate().skip(i + 1) {
                    if l.trim().is_empty() {
                        continue;
                    }
                    if indent(l) <= ind {
                        break;
                    }
                    end = j;
                }
                out.push((i as u64 + 1, end - i + 1, excerpt(line)));
            } else {
                if !self.fn_brace.is_match(line) {
                    continue;
                }
                let mut depth = 0i64;
                let mut opened = false;
                let mut end = None;
                for (j, l) in lines.iter().enumerate().skip(i) {
                    if !opened && j > i && l.trim_end().ends_with(';') && depth == 0 {
                        break; // a declaration without a body
                    }
                    let d = brace_delta(l);
                    if l.contains('{') {
                        opened = true;
                    }
                    depth += d;
                    if opened && depth <= 0 {
                        end = Some(j);
                        break;
                    }
                }
                if let Some(end) = end {
                    out.push((i as u64 + 1, end - i + 1, excerpt(line)));
                }
            }
        }
        out
    }
}

/// Parameters of the function whose header starts `body` (receivers `self` and `cls`
/// not counted): top-level commas inside the first parenthesised list.
fn parameter_count(lang: Lang, body: &[&str]) -> usize {
    let mut depth = 0i32;
    let mut params: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in body.iter().take(30) {
        for c in line.chars() {
            match c {
                '(' | '[' | '{' | '<' if depth > 0 || c == '(' => {
                    if depth > 0 {
                        current.push(c);
                    }
                    depth += 1;
                }
                ')' | ']' | '}' | '>' if depth > 1 => {
                    depth -= 1;
                    current.push(c);
                }
                ')' if depth == 1 => {
                    params.push(std::mem::take(&mut current));
                    return count_params(lang, &params);
                }
                ',' if depth == 1 => params.push(std::mem::take(&mut current)),
                _ if depth > 0 => current.push(c),
                _ => {}
            }
        }
    }
    0
}

fn count_params(lang: Lang, params: &[String]) -> usize {
    params
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let receiver = p.trim_start_matches('&').trim_start_matches("mut ").trim();
            !(matches!(lang, Lang::Rust | Lang::Python)
                && (receiver == "self"
                    || receiver.starts_with("self:")
                    || receiver.starts_with("'") && receiver.ends_with("self")
                    || (lang == Lang::Python && receiver == "cls")))
        })
        .count()
}

/// The deepest block nesting inside the function `body` (its own block is level 0), and
/// the index of the first line reaching it.
fn deepest_nesting(lang: Lang, body: &[&str]) -> (usize, usize) {
    let mut best = (0usize, 0usize);
    if lang == Lang::Python {
        let base = body.first().map_or(0, |l| indent(l));
        let unit = body
            .iter()
            .skip(1)
            .map(|l| indent(l))
            .find(|&i| i > base)
            .map_or(4, |i| i - base)
            .max(1);
        for (i, line) in body.iter().enumerate().skip(1) {
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let level = (indent(line).saturating_sub(base) / unit).saturating_sub(1);
            if level > best.0 {
                best = (level, i);
            }
        }
        return best;
    }
    let mut depth = 0i64;
    for (i, line) in body.iter().enumerate() {
        depth += brace_delta(line);
        let level = (depth - 1).max(0) as usize;
        if level > best.0 {
            best = (level, i);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn architecture_finds_parameters_nesting_wildcards_and_large_modules() {
        let r = ReviewRules::new();
        let rust = "use std::collections::*;\nuse super::*;\nfn wide(&self, a: u8, b: u8, c: Vec<(u8, u8)>, d: u8, e: u8, f: u8, g: u8) {}\nfn deep(x: u8) {\n    if a {\n        for b in c {\n            while d {\n                if e {\n                    if f {\n                        g();\n                    }\n                }\n            }\n        }\n    }\n}\nfn fine(&mut self, a: HashMap<u8, (u8, u8)>) {}\n";
        let h = r.architecture(Lang::Rust, rust);
        assert_eq!(
            rules_of(&h),
            [
                "arch-wildcard-import",
                "arch-many-parameters",
                "arch-deep-nesting"
            ],
            "{h:?}"
        );
        assert!(h[1].message.contains("takes 7 parameters"), "{h:?}");
        assert_eq!(h[2].line, 9, "{h:?}");
        let py = "from os import *\ndef f(self, a, b, c, d, e, f, g):\n    return a\n";
        let h = r.architecture(Lang::Python, py);
        assert_eq!(
            rules_of(&h),
            ["arch-wildcard-import", "arch-many-parameters"],
            "{h:?}"
        );
        let big = "x = 1\n".repeat(MAX_MODULE_LINES + 1);
        assert_eq!(
            rules_of(&r.architecture(Lang::Python, &big)),
            ["arch-large-module"]
        );
        assert!(
            r.architecture(Lang::Js, "function f(a, b) {\n  return a + b;\n}\n")
                .is_empty()
        );
    }

    fn rules_of(h: &[Hit]) -> Vec<&'static str> {
        h.iter().map(|h| h.rule).collect()
    }

    #[test]
    fn performance_finds_nested_loops_queries_and_reads() {
        let r = ReviewRules::new();
        let rust = "fn f(a: &[u32], b: &[u32]) {\n    for x in a {\n        for y in b {\n            if x == y {}\n        }\n    }\n    for x in a {\n        println!(\"{x}\");\n    }\n    let s = std::fs::read_to_string(p);\n}\n";
        let h = r.performance(Lang::Rust, rust);
        assert_eq!(
            rules_of(&h),
            ["perf-nested-loop", "perf-unbounded-read"],
            "{h:?}"
        );
        assert_eq!(h[0].line, 3);
        let py = "def f(ids):\n    for i in ids:\n        cur.execute(\"select 1\")\n    for i in ids:\n        pass\n    for j in ids:\n        pass\n    data = fh.read()\n";
        let h = r.performance(Lang::Python, py);
        assert_eq!(
            rules_of(&h),
            ["perf-query-in-loop", "perf-unbounded-read"],
            "{h:?}"
        );
        let js = "for (const u of users) {\n  const o = await db.query(`select`);\n}\nusers.forEach(u => {\n  items.forEach(i => {});\n});\n";
        let h = r.performance(Lang::Js, js);
        assert_eq!(
            rules_of(&h),
            ["perf-query-in-loop", "perf-nested-loop"],
            "{h:?}"
        );
    }

    #[test]
    fn style_finds_long_lines_todos_trailing_space_and_long_functions() {
        let r = ReviewRules::new();
        let mut rust = String::from("// TODO: remove\nfn big() {\n");
        for i in 0..90 {
            rust.push_str(&format!("    let x{i} = {i};\n"));
        }
        rust.push_str("}\nfn small() { }  \n");
        rust.push_str(&format!("const X: &str = \"{}\";\n", "a".repeat(130)));
        let h = r.style(Lang::Rust, &rust);
        assert_eq!(
            rules_of(&h),
            [
                "style-todo",
                "style-long-function",
                "style-trailing-whitespace",
                "style-long-line"
            ],
            "{h:?}"
        );
        let clean = "def f(x):\n    return x + 1\n";
        assert!(r.style(Lang::Python, clean).is_empty());
        assert!(r.performance(Lang::Python, clean).is_empty());
    }
}
