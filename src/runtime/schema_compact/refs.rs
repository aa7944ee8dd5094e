//! `$defs` housekeeping for the compacted schemas: a shape used once (or no bigger than
//! a reference to it) is written in place, unused ones are dropped.
//!
//! Owns only `$ref`/`$defs` rewriting; it must not know any toolset.

use super::*;

/// Inlines each `$defs` entry referenced once, or no bigger than a reference to it (and
/// not referencing itself), drops entries no one references, and drops an empty `$defs`.
pub(super) fn inline_single_use(schema: &mut JsonObject) {
    let rounds = schema
        .get("$defs")
        .and_then(Value::as_object)
        .map_or(0, |d| d.len());
    for _ in 0..=rounds {
        let Some(Value::Object(defs)) = schema.get("$defs") else {
            return;
        };
        let mut counts: BTreeMap<String, usize> =
            defs.keys().map(|k| (format!("#/$defs/{k}"), 0)).collect();
        count_refs(&Value::Object(schema.clone()), &mut counts);
        let unused: Vec<String> = counts
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(r, _)| r["#/$defs/".len()..].to_string())
            .collect();
        let single = counts.iter().find_map(|(r, n)| {
            let name = &r["#/$defs/".len()..];
            let def = defs.get(name)?;
            let mut own = BTreeMap::from([(r.clone(), 0)]);
            count_refs(def, &mut own);
            let small = def.to_string().len() <= json!({ "$ref": r }).to_string().len();
            ((*n == 1 || small) && own[r] == 0).then(|| (r.clone(), name.to_string()))
        });
        let Some(Value::Object(defs)) = schema.get_mut("$defs") else {
            return;
        };
        for name in &unused {
            defs.remove(name);
        }
        let mut changed = !unused.is_empty();
        if let Some((reference, name)) = single
            && let Some(def) = defs.remove(&name)
        {
            replace_ref(schema, &reference, &def);
            changed = true;
        }
        if schema
            .get("$defs")
            .and_then(Value::as_object)
            .is_some_and(|d| d.is_empty())
        {
            schema.remove("$defs");
            return;
        }
        if !changed {
            return;
        }
    }
}

fn count_refs(value: &Value, counts: &mut BTreeMap<String, usize>) {
    match value {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref")
                && let Some(n) = counts.get_mut(r)
            {
                *n += 1;
            }
            o.values().for_each(|v| count_refs(v, counts));
        }
        Value::Array(a) => a.iter().for_each(|v| count_refs(v, counts)),
        _ => {}
    }
}

fn replace_ref(node: &mut JsonObject, reference: &str, def: &Value) {
    for_each_child(node, &mut |_, child| {
        let Value::Object(o) = child else { return };
        if o.get("$ref").and_then(Value::as_str) == Some(reference) {
            o.remove("$ref");
            let siblings = std::mem::take(o);
            let mut merged = match def {
                Value::Object(d) => d.clone(),
                _ => JsonObject::new(),
            };
            merged.extend(siblings);
            *o = merged;
        } else {
            replace_ref(o, reference, def);
        }
    });
}
