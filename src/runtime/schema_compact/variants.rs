//! Enums of documented unit variants: `oneOf`/`anyOf` of `const`s spelled as one
//! `enum`, the variants' meanings parked and joined to the field's description unless
//! the description already names every value.
//!
//! Owns only these two transforms; it must not know any toolset.

use super::*;

/// Joins the variant notes [`collapse_const_variants`] parked to the description, unless
/// the node's own description, or for the items of an array the array's, already names
/// every value: a field documented by hand is not told twice.
pub(super) fn join_notes(node: &mut JsonObject, parent: Option<&str>) {
    let own = node
        .get("description")
        .and_then(Value::as_str)
        .map(String::from);
    let mut items_context = own.clone();
    if let Some(Value::String(notes)) = node.remove(NOTES) {
        let values: Vec<String> = match node.get("enum") {
            Some(Value::Array(values)) => values
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                .collect(),
            _ => Vec::new(),
        };
        let said = [own.as_deref(), parent]
            .into_iter()
            .flatten()
            .any(|text| !values.is_empty() && values.iter().all(|value| mentions(text, value)));
        if !said {
            let text = match own.as_deref() {
                Some(d) => format!("{} {notes}", d.trim_end()),
                None => notes,
            };
            items_context = Some(text.clone());
            node.insert("description".into(), Value::String(text));
        }
    }
    for (key, value) in node.iter_mut() {
        let context = if key == "items" {
            items_context.as_deref()
        } else {
            None
        };
        let key = key.as_str();
        if MAP_KEYWORDS.contains(&key) {
            if let Value::Object(map) = value {
                for child in map.values_mut() {
                    if let Value::Object(child) = child {
                        join_notes(child, None);
                    }
                }
            }
        } else if ARRAY_KEYWORDS.contains(&key) {
            if let Value::Array(items) = value {
                for child in items {
                    if let Value::Object(child) = child {
                        join_notes(child, None);
                    }
                }
            }
        } else if ONE_KEYWORDS.contains(&key)
            && let Value::Object(child) = value
        {
            join_notes(child, context);
        }
    }
}

/// `text` names `word` as a word of its own (case-insensitive; `-` and `_` are part of
/// a word).
pub(super) fn mentions(text: &str, word: &str) -> bool {
    let text = text.to_lowercase();
    let word = word.to_lowercase();
    let part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(&word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(part)
            && !text[at + word.len()..].chars().next().is_some_and(part)
    })
}

/// `oneOf`/`anyOf` whose branches are all `{type, const, description?}` of one type
/// becomes `{type, enum}`; on the input side the variants' descriptions join the
/// node's description ("value: what it means; ...").
pub(super) fn collapse_const_variants(node: &mut JsonObject, side: Side) {
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(branches)) = node.get(key) else {
            continue;
        };
        if branches.len() < 2 {
            continue;
        }
        let mut types = Vec::new();
        let mut values = Vec::new();
        let mut notes = Vec::new();
        for branch in branches {
            let Some(branch) = branch.as_object() else {
                return;
            };
            let Some(value) = branch.get("const") else {
                return;
            };
            if branch
                .keys()
                .any(|k| !matches!(k.as_str(), "const" | "type" | "description" | "title"))
            {
                return;
            }
            types.push(branch.get("type").cloned());
            values.push(value.clone());
            if let Some(text) = branch.get("description").and_then(Value::as_str) {
                let shown = value
                    .as_str()
                    .map_or_else(|| value.to_string(), String::from);
                notes.push(format!("{shown}: {}", one_line(text).trim_end_matches('.')));
            }
        }
        if types.windows(2).any(|w| w[0] != w[1]) {
            return;
        }
        node.remove(key);
        if let Some(Some(t)) = types.into_iter().next() {
            node.insert("type".into(), t);
        }
        node.insert("enum".into(), Value::Array(values));
        if side == Side::Input && !notes.is_empty() {
            // Joined to the description once shapes are inlined, so that a field's own
            // description (which replaces its type's) keeps them too.
            node.insert(
                NOTES.into(),
                Value::String(format!("{}.", notes.join("; "))),
            );
        }
        return;
    }
}
