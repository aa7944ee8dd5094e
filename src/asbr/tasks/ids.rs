//! Task identities: the idempotency key of a task input and the W3C `traceparent` a
//! task's events carry.
//!
//! Owns only these two derivations; the store that uses them is `asbr::tasks`.

use serde_json::Value;

use super::TaskInput;
use crate::asbr::canonical;

/// The idempotency key: first 16 hex of SHA-256 over canonical
/// `{title, brief, inputs, scopes (sorted)}`.
pub fn idempotency_key(input: &TaskInput) -> String {
    let mut scopes = input.scopes.clone();
    scopes.sort();
    let value = serde_json::json!({
        "title": input.title,
        "brief": input.brief,
        "inputs": input.inputs,
        "scopes": scopes,
    });
    canonical::sha256_hex(canonical::to_string(&value).as_bytes())[..16].to_string()
}

/// The request's `traceparent` when valid W3C, else a new one.
pub fn traceparent(meta: &serde_json::Map<String, Value>) -> String {
    if let Some(tp) = meta.get("traceparent").and_then(Value::as_str)
        && valid_traceparent(tp)
    {
        return tp.to_string();
    }
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    format!("00-{trace}-{span}-01")
}

fn valid_traceparent(tp: &str) -> bool {
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1] != "0".repeat(32)
        && hex(parts[2], 16)
        && parts[2] != "0".repeat(16)
        && hex(parts[3], 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asbr::tasks::TaskInputItem;

    fn input(scopes: &[&str]) -> TaskInput {
        TaskInput {
            title: "t".into(),
            brief: "b".into(),
            inputs: vec![TaskInputItem::Text { value: "x".into() }],
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            deadlines: None,
            a11y_profile_id: None,
            preferences: None,
        }
    }

    #[test]
    fn key_ignores_scope_order_and_is_16_hex() {
        let a = idempotency_key(&input(&["b", "a"]));
        assert_eq!(a, idempotency_key(&input(&["a", "b"])));
        assert_eq!(a.len(), 16);
        assert_ne!(a, idempotency_key(&input(&["a"])));
    }

    #[test]
    fn traceparent_kept_when_valid_else_generated() {
        let mut meta = serde_json::Map::new();
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        meta.insert("traceparent".into(), tp.into());
        assert_eq!(traceparent(&meta), tp);
        meta.insert("traceparent".into(), "garbage".into());
        assert!(valid_traceparent(&traceparent(&meta)));
    }
}
