//! Compacts the JSON Schemas schemars generates into what `tools/list` publishes: every
//! byte of the catalog is paid by the model on every request, and some clients map tool
//! schemas onto single-`type` dialects.
//!
//! Both sides: no `$schema` (MCP's default dialect is 2020-12), no `title`, enums of
//! documented unit variants (`oneOf` of `const`s) spelled as one `enum`, a shape used
//! once inlined and a shape used more than once defined once in `$defs`, and "any JSON
//! value" spelled as an `anyOf` of the JSON types (a bare `{}` constrains nothing and
//! strict linters flag it).
//!
//! Input side ([`input`]): no nullable types. An `Option` field is optional (absent from
//! `required`) with its one type; `null` branches, `null` enum members and `default:
//! null` are dropped. The registry still validates arguments against the schema as
//! generated, so an explicit `null` for an optional field stays accepted. Field
//! descriptions and defaults are kept: they are what the model reads to fill a call.
//!
//! Output side ([`output`]): the shape only (types, properties, nullability, enums) of
//! the result's own fields. A property the server skips when empty never is `null`; a
//! property that may be `null` is an `anyOf` with a `null` branch (never a `type` array).
//! Descriptions, defaults, examples, `required` and the bounds inherited from input
//! types are dropped (the tool's description says what it returns), so `oneOf` becomes
//! `anyOf`. A field that is an object or a list is only `{"type": "object"}` /
//! `{"type": "array"}`: still a valid description of what is sent (a client validating
//! `structuredContent` accepts every result), at under half the bytes of a second level,
//! and models read the result itself, not its schema. A shape no bigger than a `$ref` to
//! it is written in place. `additionalProperties: false` is dropped from input
//! schemas too: the registry still refuses unknown arguments.
//!
//! Descriptions are kept on one line without a "(default X)" the `default` keyword
//! says, a field described by hand is not told its enum
//! values' meanings twice, and `default: false` / `""` / `[]` / `{}` (what an absent flag,
//! text, list or map means anyway) are dropped. [`hints`] publishes only the tool annotations that
//! differ from MCP's defaults and mean something for the tool.
//!
//! Owns only these transforms; it must not know any toolset.

use std::collections::BTreeMap;

use rmcp::model::{JsonObject, ToolAnnotations};
use serde_json::{Value, json};

/// Keywords whose value is a map of subschemas.
const MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
];
/// Keywords whose value is an array of subschemas.
const ARRAY_KEYWORDS: &[&str] = &["anyOf", "oneOf", "allOf", "prefixItems"];
/// Keywords whose value is one subschema.
const ONE_KEYWORDS: &[&str] = &[
    "items",
    "contains",
    "not",
    "propertyNames",
    "if",
    "then",
    "else",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];
/// Keywords where `true` is an ordinary value ("anything else is allowed").
const BOOLEAN_VALUED: &[&str] = &[
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Keywords that constrain an instance: a schema with none of them accepts anything.
const CONSTRAINING: &[&str] = &[
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "items",
    "prefixItems",
    "contains",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "$ref",
];
/// Annotations: they describe, they do not constrain.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];
/// Bounds an output need not repeat (they come from input types or unsigned integers).
const BOUNDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "multipleOf",
];

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Input,
    Output,
}

/// Compacts a tool's input schema (see the module doc).
pub fn input(schema: &mut JsonObject) {
    compact(schema, Side::Input);
}

/// Compacts a tool's output schema (see the module doc).
pub fn output(schema: &mut JsonObject) {
    compact(schema, Side::Output);
}

/// Where [`collapse_const_variants`] parks what the values of an enum mean.
const NOTES: &str = "x-cortex-variant-notes";

/// Output levels kept: the result's fields (1); an object or list among them is only
/// its `type`.
const OUTPUT_DEPTH: usize = 1;

fn compact(schema: &mut JsonObject, side: Side) {
    schema.remove("$schema");
    walk(schema, &mut |node| tidy(node, side));
    inline_single_use(schema);
    if side == Side::Output {
        walk(schema, &mut |node| {
            node.remove("required");
            if let Some(branches) = node.remove("oneOf") {
                node.insert("anyOf".into(), branches);
            }
        });
        limit_depth(schema, 0);
        if let Some(Value::Object(defs)) = schema.get_mut("$defs") {
            for def in defs.values_mut() {
                if let Value::Object(def) = def {
                    limit_depth(def, 1);
                }
            }
        }
        // Shapes only the cut levels used are gone; one use left, or a shape now no bigger
        // than a reference, is inlined.
        inline_single_use(schema);
    }
    join_notes(schema, None);
}

/// Joins the variant notes [`collapse_const_variants`] parked to the description, unless
/// the node's own description, or for the items of an array the array's, already names
/// every value: a field documented by hand is not told twice.
fn join_notes(node: &mut JsonObject, parent: Option<&str>) {
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
fn mentions(text: &str, word: &str) -> bool {
    let text = text.to_lowercase();
    let word = word.to_lowercase();
    let part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(&word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(part)
            && !text[at + word.len()..].chars().next().is_some_and(part)
    })
}

/// Drops the behaviour hints whose value is the one MCP gives an absent hint
/// (`readOnlyHint` false, `destructiveHint` true, `idempotentHint` false,
/// `openWorldHint` true), and for a read-only tool the two MCP calls meaningful only
/// when `readOnlyHint` is false (`destructiveHint`, `idempotentHint`): a client reads
/// the same thing from fewer bytes. A tool whose hints are all the defaults keeps an empty
/// annotations object, which says so.
pub fn hints(mut annotations: ToolAnnotations) -> ToolAnnotations {
    if annotations.read_only_hint == Some(true) {
        // MCP: "meaningful only when `readOnlyHint == false`".
        annotations.destructive_hint = None;
        annotations.idempotent_hint = None;
    }
    if annotations.read_only_hint == Some(false) {
        annotations.read_only_hint = None;
    }
    if annotations.destructive_hint == Some(true) {
        annotations.destructive_hint = None;
    }
    if annotations.idempotent_hint == Some(false) {
        annotations.idempotent_hint = None;
    }
    if annotations.open_world_hint == Some(true) {
        annotations.open_world_hint = None;
    }
    annotations
}

/// Cuts an output schema below [`OUTPUT_DEPTH`] levels of fields: an object or array
/// there keeps only its `type`.
fn limit_depth(node: &mut JsonObject, depth: usize) {
    if depth >= OUTPUT_DEPTH
        && let Some(Value::String(t)) = node.get("type")
        && (t == "object" || t == "array")
    {
        let t = Value::String(t.clone());
        node.clear();
        node.insert("type".into(), t);
        return;
    }
    for (key, value) in node.iter_mut() {
        let next = match key.as_str() {
            "properties" | "patternProperties" | "additionalProperties" => depth + 1,
            "items" | "prefixItems" | "anyOf" | "oneOf" | "allOf" => depth,
            _ => continue,
        };
        match value {
            Value::Object(o) if key == "properties" || key == "patternProperties" => {
                for child in o.values_mut() {
                    if let Value::Object(child) = child {
                        limit_depth(child, next);
                    }
                }
            }
            Value::Object(child) => limit_depth(child, next),
            Value::Array(items) => {
                for child in items {
                    if let Value::Object(child) = child {
                        limit_depth(child, next);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Calls `f` on every subschema below `node` (children before parents), then on `node`.
fn walk(node: &mut JsonObject, f: &mut dyn FnMut(&mut JsonObject)) {
    for_each_child(node, &mut |_, child| {
        if let Value::Object(child) = child {
            walk(child, f);
        }
    });
    f(node);
}

/// Calls `f(keyword, child)` on each direct subschema of `node`.
fn for_each_child(node: &mut JsonObject, f: &mut dyn FnMut(&str, &mut Value)) {
    for (key, value) in node.iter_mut() {
        let key = key.as_str();
        if MAP_KEYWORDS.contains(&key) {
            if let Value::Object(map) = value {
                for child in map.values_mut() {
                    f(key, child);
                }
            }
        } else if ARRAY_KEYWORDS.contains(&key) {
            if let Value::Array(items) = value {
                for child in items {
                    f(key, child);
                }
            }
        } else if ONE_KEYWORDS.contains(&key) {
            f(key, value);
        }
    }
}

fn any_value() -> Value {
    json!({"anyOf": [
        {"type": "object"}, {"type": "array"}, {"type": "string"},
        {"type": "number"}, {"type": "boolean"}, {"type": "null"}
    ]})
}

fn constrains(node: &JsonObject) -> bool {
    node.keys().any(|k| CONSTRAINING.contains(&k.as_str()))
        || (node.contains_key("if") && (node.contains_key("then") || node.contains_key("else")))
}

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
        && value.as_object().map_or(0, |o| o.len()) == 1
}

/// One node's tidying; its children are already tidy.
fn tidy(node: &mut JsonObject, side: Side) {
    node.remove("title");
    if node.get("additionalProperties") == Some(&Value::Bool(false)) {
        node.remove("additionalProperties");
    }
    if side == Side::Output {
        for key in ANNOTATIONS.iter().chain(BOUNDS) {
            node.remove(*key);
        }
    }
    let default = node.get("default").and_then(|d| match d {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(d.to_string()),
        _ => None,
    });
    if let Some(Value::String(text)) = node.get_mut("description") {
        *text = one_line(text);
        if let Some(default) = default {
            *text = without_default(text, &default);
        }
    }
    if node.get("default").is_some_and(is_empty_value) {
        node.remove("default");
    }
    collapse_const_variants(node, side);
    match side {
        Side::Input => drop_null(node),
        Side::Output => {
            // Skipped when empty, so never written as null.
            let required: Vec<String> = node
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = node.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if let Value::Object(property) = property
                        && !required.contains(name)
                    {
                        drop_null(property);
                    }
                }
            }
            spell_any_values(node);
            split_type_array(node);
            return;
        }
    }
    spell_any_values(node);
}

/// `oneOf`/`anyOf` whose branches are all `{type, const, description?}` of one type
/// becomes `{type, enum}`; on the input side the variants' descriptions join the
/// node's description ("value: what it means; ...").
fn collapse_const_variants(node: &mut JsonObject, side: Side) {
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

/// `false`, `""`, `[]`, `{}`, or an object of those: what an absent flag, text, list or
/// map means anyway.
fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty_value),
        _ => false,
    }
}

/// `text` without a "(default X)" that the `default` keyword already says.
fn without_default(text: &str, default: &str) -> String {
    text.replace(&format!(" (default {default})"), "")
        .replace(&format!("(default {default}, "), "(")
        .replace(&format!(", default {default})"), ")")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Removes `null` from a schema: from a `type` array, an `enum`, a `default`, and the
/// `null` branch of an `anyOf`/`oneOf` (a single remaining branch is merged in).
fn drop_null(node: &mut JsonObject) {
    if let Some(Value::Array(types)) = node.get_mut("type")
        && types.iter().any(|t| t == "null")
    {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            node.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(values)) = node.get_mut("enum") {
        values.retain(|v| !v.is_null());
    }
    if node.get("default") == Some(&Value::Null) {
        node.remove("default");
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(branches)) = node.get_mut(key) else {
            continue;
        };
        let before = branches.len();
        branches.retain(|b| !is_null_schema(b));
        if branches.len() == before {
            continue;
        }
        if branches.len() == 1 {
            let Some(Value::Object(only)) = node
                .remove(key)
                .and_then(|mut b| b.as_array_mut().and_then(|a| a.pop()))
            else {
                continue;
            };
            for (k, v) in only {
                if ANNOTATIONS.contains(&k.as_str()) && node.contains_key(&k) {
                    continue;
                }
                node.insert(k, v);
            }
        }
    }
}

/// `{"type": ["string", "null"], ...}` becomes `{"anyOf": [{"type": "string", ...},
/// {"type": "null"}]}`: single-type dialects reject type arrays.
fn split_type_array(node: &mut JsonObject) {
    let Some(Value::Array(types)) = node.get("type") else {
        return;
    };
    let types = types.clone();
    node.remove("type");
    let mut body = JsonObject::new();
    let keys: Vec<String> = node
        .keys()
        .filter(|k| !ANNOTATIONS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in keys {
        if let Some(v) = node.remove(&key) {
            body.insert(key, v);
        }
    }
    let branches: Vec<Value> = types
        .into_iter()
        .map(|t| {
            if t == "null" {
                return json!({"type": "null"});
            }
            let mut branch = JsonObject::new();
            branch.insert("type".into(), t);
            for (k, v) in &body {
                let mut v = v.clone();
                if k == "enum"
                    && let Value::Array(values) = &mut v
                {
                    values.retain(|x| !x.is_null());
                }
                branch.insert(k.clone(), v);
            }
            Value::Object(branch)
        })
        .collect();
    node.insert("anyOf".into(), Value::Array(branches));
}

/// A child that accepts anything (`true`, `{}`, a description alone) says so with the
/// JSON types; under a boolean-valued keyword it becomes `true`.
fn spell_any_values(node: &mut JsonObject) {
    for_each_child(node, &mut |key, child| {
        if key == "not" || key == "$defs" {
            return;
        }
        let untyped = match child {
            Value::Bool(true) => true,
            Value::Object(o) => !constrains(o),
            _ => false,
        };
        if !untyped {
            return;
        }
        if BOOLEAN_VALUED.contains(&key) {
            *child = Value::Bool(true);
            return;
        }
        let annotations = match child {
            Value::Object(o) => std::mem::take(o),
            _ => JsonObject::new(),
        };
        let mut any = any_value();
        if let Value::Object(any) = &mut any {
            any.extend(annotations);
        }
        *child = any;
    });
}

/// Inlines each `$defs` entry referenced once, or no bigger than a reference to it (and
/// not referencing itself), drops entries no one references, and drops an empty `$defs`.
fn inline_single_use(schema: &mut JsonObject) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> JsonObject {
        match v {
            Value::Object(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn input_options_are_optional_fields_of_one_type() {
        let mut s = obj(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["a"],
            "properties": {
                "a": {"type": "string", "title": "A"},
                "b": {"type": ["string", "null"], "default": null, "description": "Bee."},
                "c": {"anyOf": [{"$ref": "#/$defs/Mode"}, {"type": "null"}], "description": "Mode."},
                "d": {"type": ["integer", "null"], "enum": [1, 2, null]}
            },
            "$defs": {"Mode": {"oneOf": [
                {"type": "string", "const": "x", "description": "Ex."},
                {"type": "string", "const": "y"}
            ]}}
        }));
        input(&mut s);
        assert_eq!(
            Value::Object(s),
            json!({
                "type": "object",
                "required": ["a"],
                "properties": {
                    "a": {"type": "string"},
                    "b": {"type": "string", "description": "Bee."},
                    "c": {"description": "Mode. x: Ex.", "type": "string", "enum": ["x", "y"]},
                    "d": {"type": "integer", "enum": [1, 2]}
                }
            })
        );
    }

    #[test]
    fn output_keeps_shape_and_spells_null_as_a_branch() {
        let mut s = obj(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["n", "body", "user", "owner", "any", "mode"],
            "properties": {
                "n": {"type": "integer", "minimum": 0, "default": 0, "description": "Count."},
                "body": {"type": ["string", "null"], "description": "Text."},
                "cursor": {"type": ["string", "null"]},
                "user": {"anyOf": [{"$ref": "#/$defs/User"}, {"type": "null"}]},
                "owner": {"$ref": "#/$defs/User"},
                "any": {"description": "Whatever the tool returned."},
                "mode": {"$ref": "#/$defs/Mode"},
                "was": {"$ref": "#/$defs/Mode"}
            },
            "$defs": {
                "User": {"type": "object", "description": "Who.", "properties": {"login": {"type": "string"}}, "required": ["login"], "additionalProperties": false},
                "Mode": {"type": "string", "enum": ["fast", "careful", "thorough"]}
            }
        }));
        output(&mut s);
        assert_eq!(
            Value::Object(s),
            json!({
                "type": "object",
                "properties": {
                    "n": {"type": "integer"},
                    "body": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "cursor": {"type": "string"},
                    "user": {"anyOf": [{"type": "object"}, {"type": "null"}]},
                    "owner": {"type": "object"},
                    "any": {"anyOf": [
                        {"type": "object"}, {"type": "array"}, {"type": "string"},
                        {"type": "number"}, {"type": "boolean"}, {"type": "null"}
                    ]},
                    "mode": {"$ref": "#/$defs/Mode"},
                    "was": {"$ref": "#/$defs/Mode"}
                },
                "$defs": {"Mode": {"type": "string", "enum": ["fast", "careful", "thorough"]}}
            })
        );
    }

    #[test]
    fn output_keeps_the_results_fields_and_only_the_type_of_an_object_or_list() {
        let mut s = obj(json!({
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {"type": "array", "items": {"type": "object", "required": ["n"], "properties": {
                    "n": {"type": "integer"}
                }}},
                "kind": {"oneOf": [
                    {"type": "object", "properties": {"k": {"type": "string", "const": "a"}}, "required": ["k"]},
                    {"type": "string", "const": "b"}
                ]},
                "count": {"type": "integer"}
            }
        }));
        output(&mut s);
        assert_eq!(
            Value::Object(s),
            json!({
                "type": "object",
                "properties": {
                    "items": {"type": "array"},
                    "kind": {"anyOf": [
                        {"type": "object"},
                        {"type": "string", "const": "b"}
                    ]},
                    "count": {"type": "integer"}
                }
            })
        );
    }

    #[test]
    fn a_field_described_by_hand_is_not_told_its_values_twice() {
        let mut s = obj(json!({
            "type": "object",
            "properties": {
                "said": {"description": "`x` (default) or\n  `y-z`.", "oneOf": [
                    {"type": "string", "const": "x", "description": "Ex."},
                    {"type": "string", "const": "y-z", "description": "Why."}
                ]},
                "unsaid": {"$ref": "#/$defs/Mode", "description": "Mode."},
                "list": {"type": "array", "description": "x and y-z.", "items": {"oneOf": [
                    {"type": "string", "const": "x", "description": "Ex."},
                    {"type": "string", "const": "y-z", "description": "Why."}
                ]}},
                "flag": {"type": "boolean", "default": false},
                "on": {"type": "boolean", "default": true, "description": "On (default true)."},
                "n": {"type": "integer", "default": 3, "description": "Lines (0-9, default 3)."},
                "many": {"type": "array", "items": {"type": "string"}, "default": []},
                "ctx": {"type": "object", "default": {"text": "", "state": {}}}
            },
            "$defs": {"Mode": {"oneOf": [
                {"type": "string", "const": "x", "description": "Ex."},
                {"type": "string", "const": "y-z", "description": "Why."}
            ]}}
        }));
        input(&mut s);
        let p = &s["properties"];
        assert_eq!(p["said"]["description"], "`x` (default) or `y-z`.");
        assert_eq!(p["unsaid"]["description"], "Mode. x: Ex; y-z: Why.");
        assert_eq!(
            p["list"]["items"],
            json!({"type": "string", "enum": ["x", "y-z"]})
        );
        assert_eq!(p["flag"], json!({"type": "boolean"}));
        assert_eq!(
            p["on"],
            json!({"type": "boolean", "default": true, "description": "On."})
        );
        assert_eq!(p["n"]["description"], "Lines (0-9).");
        assert_eq!(
            p["many"],
            json!({"type": "array", "items": {"type": "string"}})
        );
        assert!(!mentions("maintain", "ai") && mentions("`ai` is you", "ai"));
    }

    #[test]
    fn hints_keep_only_what_differs_from_the_mcp_defaults() {
        let read = ToolAnnotations::new()
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(true);
        let kept = hints(read);
        assert_eq!(
            (
                kept.read_only_hint,
                kept.destructive_hint,
                kept.idempotent_hint,
                kept.open_world_hint
            ),
            (Some(true), None, None, None)
        );
        let write = ToolAnnotations::new()
            .read_only(false)
            .destructive(true)
            .idempotent(false)
            .open_world(true);
        assert_eq!(hints(write), ToolAnnotations::default());
    }

    #[test]
    fn a_shape_used_once_is_inlined_and_a_recursive_one_kept() {
        let mut s = obj(json!({
            "type": "object",
            "properties": {
                "a": {"$ref": "#/$defs/A"},
                "t": {"$ref": "#/$defs/Tree"}
            },
            "$defs": {
                "A": {"type": "object", "properties": {"x": {"type": "string"}}},
                "Unused": {"type": "string"},
                "Tree": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}}}
            }
        }));
        input(&mut s);
        assert_eq!(
            s["properties"]["a"],
            json!({"type": "object", "properties": {"x": {"type": "string"}}})
        );
        assert_eq!(s["properties"]["t"], json!({"$ref": "#/$defs/Tree"}));
        assert_eq!(
            s["$defs"].as_object().unwrap().keys().collect::<Vec<_>>(),
            vec!["Tree"]
        );
    }
}
