//! Unit tests of the schema compaction.

use super::variants::mentions;
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
fn output_keeps_the_results_fields_the_rows_fields_and_only_the_type_of_anything_deeper() {
    let mut s = obj(json!({
        "type": "object",
        "required": ["items"],
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "required": ["n"], "properties": {
                "n": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}}
            }}},
            "other": {"type": "array", "items": {"type": "object", "properties": {
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
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "n": {"type": "integer"},
                    "tags": {"type": "array"}
                }}},
                "other": {"type": "array"},
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
