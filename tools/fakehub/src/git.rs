//! Tiny git model helpers: history walks, merge base, tree diffs, unified patches.

use crate::data::{Commit, Repo, Tree};
use std::collections::{HashSet, VecDeque};

#[derive(Clone, Debug)]
pub struct FileDiff {
    pub sha: String,
    pub filename: String,
    pub status: &'static str,
    pub additions: usize,
    pub deletions: usize,
    pub patch: String,
}

/// Resolve a branch name, `refs/heads/x`, `heads/x`, a full sha or a unique prefix (≥ 7).
pub fn resolve(r: &Repo, name: &str) -> Option<String> {
    let short = name
        .strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("heads/"))
        .unwrap_or(name);
    if let Some(s) = r.branches.get(short) {
        return Some(s.clone());
    }
    if r.commits.contains_key(name) {
        return Some(name.to_string());
    }
    if name.len() >= 7 && name.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut hits = r.commits.keys().filter(|k| k.starts_with(name));
        if let (Some(h), None) = (hits.next(), hits.next()) {
            return Some(h.clone());
        }
    }
    None
}

pub fn ancestors(r: &Repo, sha: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([sha.to_string()]);
    while let Some(s) = queue.pop_front() {
        if let Some(c) = r.commits.get(&s)
            && seen.insert(s)
        {
            queue.extend(c.parents.iter().cloned());
        }
    }
    seen
}

/// History reachable from `sha`, newest first.
pub fn log<'a>(r: &'a Repo, sha: &str) -> Vec<&'a Commit> {
    let mut v: Vec<&Commit> = ancestors(r, sha)
        .iter()
        .filter_map(|s| r.commits.get(s))
        .collect();
    v.sort_by(|a, b| b.date.cmp(&a.date).then(b.sha.cmp(&a.sha)));
    v
}

/// Commits reachable from `head` but not from `base`, oldest first.
pub fn range<'a>(r: &'a Repo, base: &str, head: &str) -> Vec<&'a Commit> {
    let exclude = ancestors(r, base);
    let mut v: Vec<&Commit> = log(r, head)
        .into_iter()
        .filter(|c| !exclude.contains(&c.sha))
        .collect();
    v.reverse();
    v
}

pub fn merge_base(r: &Repo, a: &str, b: &str) -> Option<String> {
    let anc = ancestors(r, b);
    log(r, a)
        .into_iter()
        .find(|c| anc.contains(&c.sha))
        .map(|c| c.sha.clone())
}

pub fn diff_trees(old: &Tree, new: &Tree) -> Vec<FileDiff> {
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for p in paths {
        let (o, n) = (old.get(p), new.get(p));
        let (status, sha, before, after) = match (o, n) {
            (Some(o), Some(n)) if o.sha == n.sha => continue,
            (Some(o), Some(n)) => ("modified", &n.sha, o.content.as_str(), n.content.as_str()),
            (None, Some(n)) => ("added", &n.sha, "", n.content.as_str()),
            (Some(o), None) => ("removed", &o.sha, o.content.as_str(), ""),
            (None, None) => continue,
        };
        let (patch, additions, deletions) = diff_text(before, after);
        out.push(FileDiff {
            sha: sha.clone(),
            filename: p.clone(),
            status,
            additions,
            deletions,
            patch,
        });
    }
    out
}

/// One-hunk unified diff (common prefix/suffix trimmed, 3 lines of context).
pub fn diff_text(old: &str, new: &str) -> (String, usize, usize) {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut pre = 0;
    while pre < a.len() && pre < b.len() && a[pre] == b[pre] {
        pre += 1;
    }
    let mut suf = 0;
    while suf < a.len() - pre && suf < b.len() - pre && a[a.len() - 1 - suf] == b[b.len() - 1 - suf]
    {
        suf += 1;
    }
    let (del, add) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    if del.is_empty() && add.is_empty() {
        return (String::new(), 0, 0);
    }
    let start = pre.saturating_sub(3);
    let tail = (a.len() - suf + 3).min(a.len());
    let old_count = tail - start;
    let new_count = old_count - del.len() + add.len();
    let line_no = |count: usize| if count == 0 { start } else { start + 1 };
    let mut p = format!(
        "@@ -{},{} +{},{} @@",
        line_no(old_count),
        old_count,
        line_no(new_count),
        new_count
    );
    for l in &a[start..pre] {
        p.push_str(&format!("\n {l}"));
    }
    for l in del {
        p.push_str(&format!("\n-{l}"));
    }
    for l in add {
        p.push_str(&format!("\n+{l}"));
    }
    for l in &a[a.len() - suf..tail] {
        p.push_str(&format!("\n {l}"));
    }
    (p, add.len(), del.len())
}

/// Git-style text diff (`Accept: application/vnd.github.diff`).
pub fn unified(files: &[FileDiff]) -> String {
    let mut out = String::new();
    for f in files {
        let name = &f.filename;
        out.push_str(&format!("diff --git a/{name} b/{name}\n"));
        let (from, to) = match f.status {
            "added" => {
                out.push_str("new file mode 100644\n");
                ("/dev/null".to_string(), format!("b/{name}"))
            }
            "removed" => {
                out.push_str("deleted file mode 100644\n");
                (format!("a/{name}"), "/dev/null".to_string())
            }
            _ => (format!("a/{name}"), format!("b/{name}")),
        };
        out.push_str(&format!(
            "index 0000000..{}\n--- {from}\n+++ {to}\n",
            &f.sha[..7]
        ));
        out.push_str(&f.patch);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nX\nf\ng\nh\n";
        let (p, add, del) = diff_text(old, new);
        assert_eq!((add, del), (1, 1));
        assert_eq!(p, "@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+X\n f\n g\n h");
    }

    #[test]
    fn added_file() {
        let (p, add, del) = diff_text("", "x\ny\n");
        assert_eq!((add, del), (2, 0));
        assert_eq!(p, "@@ -0,0 +1,2 @@\n+x\n+y");
    }
}
