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
//! `{"type": "array"}` — except the rows of a list result (its `items`), which keep
//! their own fields, so a model planning a call knows what a row carries: still a valid
//! description of what is sent (a client validating `structuredContent` accepts every
//! result), at about half the bytes of a second level everywhere. A shape no bigger than a `$ref` to
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

mod refs;
#[cfg(test)]
mod tests;
mod variants;

use refs::inline_single_use;
use variants::{collapse_const_variants, join_notes};

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

/// The field of a list result that holds its rows (see [`limit_depth`]).
const PAGE_ROWS: &str = "items";

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
                for (name, child) in o.iter_mut() {
                    // The rows of a page (`items` of a list result) keep their own
                    // fields: one level more than any other field.
                    let next = if depth == 0 && name == PAGE_ROWS {
                        depth
                    } else {
                        next
                    };
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

/// Makes schemars' output portable: drops its Rust-specific `format`s (`uint64`, `int32`,
/// `double`, ...), which JSON Schema 2020-12 does not define and strict clients warn on
/// (the bounds they imply stay as `minimum`/`maximum`), and spells "any value" as `{}`.
pub fn portable(schema: &mut JsonObject) {
    const RUST_FORMATS: &[&str] = &[
        "int", "int8", "int16", "int32", "int64", "int128", "uint", "uint8", "uint16", "uint32",
        "uint64", "uint128", "float", "double",
    ];
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| RUST_FORMATS.contains(&f))
    {
        schema.remove("format");
    }
    // A bare `true` schema ("any value") is legal but some clients expect an object:
    // `{}` means the same.
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for value in properties.values_mut() {
            if *value == Value::Bool(true) {
                *value = Value::Object(JsonObject::new());
            }
        }
    }
    if schema.get("items") == Some(&Value::Bool(true)) {
        schema.insert("items".into(), Value::Object(JsonObject::new()));
    }
    for value in schema.values_mut() {
        match value {
            Value::Object(inner) => portable(inner),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        portable(inner);
                    }
                }
            }
            _ => {}
        }
    }
}
