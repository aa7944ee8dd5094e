//! The process-wide set of secret values that must never appear in anything a child
//! process prints: any toolset registers the secrets it loads or creates (integration
//! credentials, webhook secrets), and the mvp redactor reads the set on every line.
//!
//! Owns only the set itself. It must not know where a secret came from or what it is
//! for, and it never hands the values out except to a redactor ([`snapshot`]). It lives
//! in the runtime so that toolsets share it without importing one another.

use std::sync::{
    OnceLock,
    atomic::{AtomicU64, Ordering},
};

use parking_lot::RwLock;

/// Values shorter than this are not registered: redacting them would garble ordinary
/// output (a one-letter "secret" would blank every line).
pub const MIN_SECRET_LEN: usize = 6;

fn set() -> &'static RwLock<Vec<String>> {
    static SET: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SET.get_or_init(RwLock::default)
}

static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Adds one secret value (trimmed; ignored when shorter than [`MIN_SECRET_LEN`]).
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let mut set = set().write();
    if set.iter().any(|v| v == value) {
        return;
    }
    set.push(value.to_string());
    // Longest first, so a secret that contains another is replaced whole.
    set.sort_by_key(|v| std::cmp::Reverse(v.len()));
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Adds every value of an iterator (see [`register`]).
pub fn register_all<'a>(values: impl IntoIterator<Item = &'a String>) {
    for v in values {
        register(v);
    }
}

/// Bumped on every change, so a reader can tell whether its copy is stale.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// The registered values, longest first (for redactors only).
pub fn snapshot() -> Vec<String> {
    set().read().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_once_longest_first_and_skips_short_values() {
        let before = generation();
        register("short");
        register("  registered-secret-a  ");
        register("registered-secret-a");
        register("registered-secret-a-longer");
        let all = snapshot();
        assert!(!all.iter().any(|v| v == "short"));
        assert_eq!(
            all.iter()
                .filter(|v| v.as_str() == "registered-secret-a")
                .count(),
            1
        );
        let long = all
            .iter()
            .position(|v| v == "registered-secret-a-longer")
            .unwrap();
        let short = all.iter().position(|v| v == "registered-secret-a").unwrap();
        assert!(long < short);
        assert!(generation() >= before + 2);
    }
}
