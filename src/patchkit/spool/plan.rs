//! Planning a batch in memory: the planned new state of each file ([`Plan`], held
//! against the call's budget and polling its stop flag) and the bounded text
//! replacement (`replace`, `unique`) the `replace` operation runs.
//!
//! Owns planning only; it must not write files (the session does, in `mod.rs`).

use std::collections::BTreeMap;

use regex::Regex;

use crate::runtime::{
    budget::Held,
    stop::{Stop, Ticker},
    workspace::Beneath,
};

use super::{SpoolError, read};

/// Planned new state: path → new bytes (None = deleted), plus the bytes before; `held`
/// counts both against the call's budget.
pub(super) struct Plan {
    pub(super) next: BTreeMap<String, Option<Vec<u8>>>,
    pub(super) before: BTreeMap<String, Option<Vec<u8>>>,
    pub(super) last_op: BTreeMap<String, usize>,
    pub(super) held: Held,
    pub(super) stop: Stop,
}

pub(super) fn len_of(v: &Option<Vec<u8>>) -> u64 {
    v.as_ref().map_or(0, |b| b.len() as u64)
}

impl Plan {
    pub(super) fn current(
        &mut self,
        dir: &Beneath,
        rel: &str,
    ) -> Result<Option<Vec<u8>>, SpoolError> {
        self.stop.check()?;
        if let Some(v) = self.next.get(rel) {
            return Ok(v.clone());
        }
        if !self.before.contains_key(rel) {
            let bytes = read(dir, rel)?;
            // Held twice: the plan keeps it, and each operation works on a copy.
            self.held
                .grow(2 * len_of(&bytes), "the files a spool plan reads")?;
            self.before.insert(rel.to_string(), bytes);
        }
        Ok(self.before[rel].clone())
    }
    pub(super) fn set(
        &mut self,
        rel: &str,
        value: Option<Vec<u8>>,
        index: usize,
    ) -> Result<(), SpoolError> {
        self.held
            .grow(len_of(&value), "the new contents a spool plan holds")?;
        if let Some(old) = self.next.insert(rel.to_string(), value) {
            self.held.shrink(len_of(&old));
        }
        self.last_op.insert(rel.to_string(), index);
        Ok(())
    }
}

pub(super) fn text(rel: &str, bytes: Option<Vec<u8>>) -> Result<String, SpoolError> {
    let bytes = bytes.ok_or_else(|| SpoolError::Missing(rel.to_string()))?;
    String::from_utf8(bytes).map_err(|_| SpoolError::NotText(rel.to_string()))
}

/// What bounds one replacement: the budget hold its text grows in, and the stop flag.
pub(super) struct Limits<'a> {
    pub(super) held: &'a mut Held,
    pub(super) ticker: Ticker<'a>,
}

/// Bytes of replacement text between two charges to the budget.
pub(super) const CHARGE_STEP: usize = 256 * 1024;

impl Limits<'_> {
    /// Called before `out` grows by `more` bytes: the text must still fit the budget.
    /// Capacity grows by half (not double) so the text never holds much more than the
    /// budget allows.
    pub(super) fn reserve(&mut self, out: &mut String, more: usize) -> Result<(), SpoolError> {
        self.ticker.tick()?;
        let needed = out.len() + more;
        if needed as u64 > self.held.bytes() {
            self.held.grow_to(
                (needed + CHARGE_STEP) as u64,
                "the text a spool replacement builds",
            )?;
        }
        if needed > out.capacity() {
            out.reserve_exact(more.max(out.len() / 2).max(CHARGE_STEP));
        }
        Ok(())
    }
}

/// Replaces matches of `pattern` in `old`, building the result piece by piece so a
/// replacement that would outgrow the budget stops as soon as it does.
pub(super) fn replace(
    old: &str,
    pattern: &str,
    replacement: &str,
    regex: bool,
    all: bool,
    mut limits: Limits<'_>,
) -> Result<(String, usize), SpoolError> {
    if pattern.is_empty() {
        return Err(SpoolError::EmptyMatch);
    }
    let limit = if all { usize::MAX } else { 1 };
    let mut out = String::new();
    let mut last = 0usize;
    let mut count = 0usize;
    if regex {
        let re = Regex::new(pattern)?;
        let refs = replacement.matches('$').count();
        for caps in re.captures_iter(old).take(limit) {
            let Some(m) = caps.get(0) else { continue };
            // Expansion adds at most the replacement plus, per `$` reference, a group
            // (no longer than the match).
            limits.reserve(
                &mut out,
                m.start() - last + replacement.len() + refs.saturating_mul(m.len()),
            )?;
            out.push_str(&old[last..m.start()]);
            caps.expand(replacement, &mut out);
            last = m.end();
            count += 1;
        }
    } else {
        for (start, m) in old.match_indices(pattern).take(limit) {
            limits.reserve(&mut out, start - last + replacement.len())?;
            out.push_str(&old[last..start]);
            out.push_str(replacement);
            last = start + m.len();
            count += 1;
        }
    }
    if count == 0 {
        return Ok((old.to_string(), 0));
    }
    limits.reserve(&mut out, old.len() - last)?;
    out.push_str(&old[last..]);
    Ok((out, count))
}

/// Refuses a `match` that occurs more than once (without `all` or `first`), listing
/// the places by line so the caller can widen it.
pub(super) fn unique(
    old: &str,
    rel: &str,
    pattern: &str,
    regex: bool,
    stop: &Stop,
) -> Result<(), SpoolError> {
    let mut ticker = stop.ticker(1024);
    let mut shown: Vec<(usize, usize)> = Vec::new();
    let mut count = 0usize;
    let mut note = |s: usize, e: usize| {
        if shown.len() < 10 {
            shown.push((s, e));
        }
        count += 1;
    };
    if regex {
        let re = Regex::new(pattern)?;
        for m in re.find_iter(old) {
            ticker.tick()?;
            note(m.start(), m.end());
        }
    } else if !pattern.is_empty() {
        for (s, m) in old.match_indices(pattern) {
            ticker.tick()?;
            note(s, s + m.len());
        }
    }
    if count > 1 {
        return Err(SpoolError::Ambiguous {
            pattern: pattern.to_string(),
            count,
            rel: rel.to_string(),
            places: crate::patchkit::edit::describe_matches(old, &shown, count),
        });
    }
    Ok(())
}
