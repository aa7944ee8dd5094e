//! Graph templates and conditions: `{{inputs.x}}`, `{{nodes.ID.path}}` and, inside
//! `map`, `{{item}}` / `{{item.path}}` references; rendering them against a scope (a
//! string that is exactly one template keeps the referenced JSON type); and gate/edge
//! conditions `[!]operand [op operand]` with `==`, `!=`, `>`, `>=`, `<`, `<=`.
//!
//! Pure functions over JSON values: owns no graph structure, execution or storage.

use std::{collections::HashMap, sync::LazyLock};

use regex::Regex;
use serde_json::Value;

pub(super) static TEMPLATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([^{}]*?)\s*\}\}").expect("template regex"));

/// Why a template or condition does not parse or resolve; the text is what a graph's
/// issues and node errors show.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("`{{{{{raw}}}}}` has an empty path segment")]
    EmptySegment { raw: String },
    #[error("`{{{{{raw}}}}}` starts with `{first}`; use inputs.NAME, nodes.ID.PATH or item")]
    UnknownRoot { raw: String, first: String },
    #[error("`{text}` has an unclosed or empty template")]
    Unclosed { text: String },
    #[error("`{{{{{raw}}}}}`: node `{id}` has no output (it did not run or failed)")]
    NoOutput { raw: String, id: String },
    #[error("`{{{{{raw}}}}}`: `item` exists only in map arguments")]
    ItemOutsideMap { raw: String },
    #[error("`{{{{{raw}}}}}` does not resolve (no such field)")]
    Unresolved { raw: String },
    #[error("`{tok}` is not a template, number, quoted string, true, false or null")]
    Operand { tok: String },
    #[error("unclosed `{{{{`")]
    UnclosedBraces,
    #[error("unclosed string")]
    UnclosedString,
    #[error("empty")]
    EmptyCondition,
    #[error("unexpected tokens")]
    UnexpectedTokens,
    /// A condition that does not tokenise.
    #[error("condition `{expr}`: {why}")]
    Tokens {
        expr: String,
        why: Box<TemplateError>,
    },
    /// A condition whose shape or operands are wrong.
    #[error(
        "condition `{expr}`: {why}; write `[!]operand [op operand]`, e.g. `{{{{nodes.t.totals.failed}}}} == 0`"
    )]
    Condition {
        expr: String,
        why: Box<TemplateError>,
    },
}

/// A parsed template reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref {
    Input(Vec<String>),
    Node(String, Vec<String>),
    Item(Vec<String>),
}

pub fn parse_ref(raw: &str) -> Result<Ref, TemplateError> {
    let parts: Vec<String> = raw.split('.').map(|s| s.trim().to_string()).collect();
    if parts.iter().any(String::is_empty) {
        return Err(TemplateError::EmptySegment { raw: raw.into() });
    }
    match parts[0].as_str() {
        "inputs" if parts.len() >= 2 => Ok(Ref::Input(parts[1..].to_vec())),
        "inputs" => Ok(Ref::Input(Vec::new())),
        "nodes" if parts.len() >= 2 => Ok(Ref::Node(parts[1].clone(), parts[2..].to_vec())),
        "item" => Ok(Ref::Item(parts[1..].to_vec())),
        other => Err(TemplateError::UnknownRoot {
            raw: raw.into(),
            first: other.into(),
        }),
    }
}

/// Every template reference in a JSON value (strings anywhere inside).
pub fn refs_in(value: &Value, out: &mut Vec<Result<Ref, TemplateError>>) {
    match value {
        Value::String(s) => {
            for cap in TEMPLATE.captures_iter(s) {
                out.push(parse_ref(&cap[1]));
            }
            if s.contains("{{") && TEMPLATE.find(s).is_none() {
                out.push(Err(TemplateError::Unclosed { text: s.clone() }));
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs_in(v, out)),
        Value::Object(o) => o.values().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// What templates can see while a graph runs.
pub struct Scope<'a> {
    pub inputs: &'a Value,
    /// Outputs of finished nodes, shared with the run (never copied per node).
    pub outputs: &'a HashMap<String, std::sync::Arc<Value>>,
    pub item: Option<&'a Value>,
}

fn walk_path<'v>(mut v: &'v Value, path: &[String]) -> Option<&'v Value> {
    for seg in path {
        v = match v {
            Value::Object(o) => o.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

impl Scope<'_> {
    pub fn lookup(&self, raw: &str) -> Result<Value, TemplateError> {
        let r = parse_ref(raw)?;
        let found = match &r {
            Ref::Input(p) => walk_path(self.inputs, p),
            Ref::Node(id, p) => match self.outputs.get(id) {
                Some(out) => walk_path(out, p),
                None => {
                    return Err(TemplateError::NoOutput {
                        raw: raw.into(),
                        id: id.clone(),
                    });
                }
            },
            Ref::Item(p) => match self.item {
                Some(item) => walk_path(item, p),
                None => {
                    return Err(TemplateError::ItemOutsideMap { raw: raw.into() });
                }
            },
        };
        found
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved { raw: raw.into() })
    }

    /// Substitutes templates in a JSON value.
    pub fn render(&self, value: &Value) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => self.render_str(s)?,
            Value::Array(a) => {
                Value::Array(a.iter().map(|v| self.render(v)).collect::<Result<_, _>>()?)
            }
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| Ok((k.clone(), self.render(v)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => other.clone(),
        })
    }

    fn render_str(&self, s: &str) -> Result<Value, TemplateError> {
        if let Some(cap) = TEMPLATE.captures(s)
            && cap
                .get(0)
                .is_some_and(|m| m.start() == 0 && m.end() == s.len())
        {
            return self.lookup(&cap[1]);
        }
        let mut out = String::new();
        let mut last = 0;
        for cap in TEMPLATE.captures_iter(s) {
            let m = cap.get(0).expect("whole match");
            out.push_str(&s[last..m.start()]);
            match self.lookup(&cap[1])? {
                Value::String(v) => out.push_str(&v),
                other => out.push_str(&other.to_string()),
            }
            last = m.end();
        }
        out.push_str(&s[last..]);
        Ok(Value::String(out))
    }

    /// Evaluates a condition.
    pub fn condition(&self, expr: &str) -> Result<bool, TemplateError> {
        let c = parse_condition(expr)?;
        let left = self.operand(&c.left)?;
        let result = match &c.op {
            None => truthy(&left),
            Some((op, right)) => compare(&left, op, &self.operand(right)?),
        };
        Ok(result != c.negate)
    }

    fn operand(&self, o: &Operand) -> Result<Value, TemplateError> {
        match o {
            Operand::Template(raw) => self.lookup(raw),
            Operand::Literal(v) => Ok(v.clone()),
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compare(a: &Value, op: &str, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return match op {
            "==" => x == y,
            "!=" => x != y,
            ">" => x > y,
            ">=" => x >= y,
            "<" => x < y,
            "<=" => x <= y,
            _ => false,
        };
    }
    match op {
        "==" => a == b,
        "!=" => a != b,
        _ => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => match op {
                ">" => x > y,
                ">=" => x >= y,
                "<" => x < y,
                "<=" => x <= y,
                _ => false,
            },
            _ => false,
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Template(String),
    Literal(Value),
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    negate: bool,
    left: Operand,
    op: Option<(String, Operand)>,
}

fn tokens(expr: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '{' && chars.get(i + 1) == Some(&'{') {
            let rest: String = chars[i..].iter().collect();
            let end = rest.find("}}").ok_or(TemplateError::UnclosedBraces)?;
            out.push(rest[..end + 2].to_string());
            i += rest[..end + 2].chars().count();
        } else if c == '"' || c == '\'' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                j += 1;
            }
            if j >= chars.len() {
                return Err(TemplateError::UnclosedString);
            }
            out.push(chars[i..=j].iter().collect());
            i = j + 1;
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["==", "!=", ">=", "<="].contains(&two.as_str()) {
                out.push(two);
                i += 2;
            } else {
                out.push(c.to_string());
                i += 1;
            }
        } else {
            let mut j = i;
            while j < chars.len() && !chars[j].is_whitespace() && !"=!<>".contains(chars[j]) {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    Ok(out)
}

fn operand(tok: &str) -> Result<Operand, TemplateError> {
    if let Some(inner) = tok.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
        parse_ref(inner.trim())?;
        return Ok(Operand::Template(inner.trim().to_string()));
    }
    if (tok.starts_with('"') || tok.starts_with('\'')) && tok.len() >= 2 {
        return Ok(Operand::Literal(Value::String(
            tok[1..tok.len() - 1].to_string(),
        )));
    }
    serde_json::from_str::<Value>(tok)
        .ok()
        .filter(|v| !v.is_object() && !v.is_array())
        .map(Operand::Literal)
        .ok_or_else(|| TemplateError::Operand { tok: tok.into() })
}

/// Checks that a condition parses.
pub(super) fn check_condition(expr: &str) -> Result<(), TemplateError> {
    parse_condition(expr).map(|_| ())
}

fn parse_condition(expr: &str) -> Result<Condition, TemplateError> {
    let mut toks = tokens(expr).map_err(|e| TemplateError::Tokens {
        expr: expr.into(),
        why: Box::new(e),
    })?;
    let negate = toks.first().is_some_and(|t| t == "!");
    if negate {
        toks.remove(0);
    }
    let bad = |why: TemplateError| TemplateError::Condition {
        expr: expr.into(),
        why: Box::new(why),
    };
    match toks.as_slice() {
        [a] => Ok(Condition {
            negate,
            left: operand(a).map_err(bad)?,
            op: None,
        }),
        [a, op, b] if ["==", "!=", ">", ">=", "<", "<="].contains(&op.as_str()) => Ok(Condition {
            negate,
            left: operand(a).map_err(bad)?,
            op: Some((op.clone(), operand(b).map_err(bad)?)),
        }),
        [] => Err(bad(TemplateError::EmptyCondition)),
        _ => Err(bad(TemplateError::UnexpectedTokens)),
    }
}

pub(super) fn condition_refs(expr: &str) -> Result<Vec<Ref>, TemplateError> {
    let c = parse_condition(expr)?;
    let mut out = Vec::new();
    for o in std::iter::once(&c.left).chain(c.op.as_ref().map(|(_, r)| r)) {
        if let Operand::Template(raw) = o {
            out.push(parse_ref(raw)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_and_templates_render_against_a_scope() {
        let outputs = HashMap::from([(
            "a".to_string(),
            std::sync::Arc::new(json!({"n": 3, "s": "x"})),
        )]);
        let inputs = json!({"who": "w"});
        let scope = Scope {
            inputs: &inputs,
            outputs: &outputs,
            item: None,
        };
        assert!(scope.condition("{{nodes.a.n}} >= 2").unwrap());
        assert!(scope.condition("! {{nodes.a.s}} == 'y'").unwrap());
        assert_eq!(scope.render(&json!("{{nodes.a.n}}")).unwrap(), json!(3));
        assert_eq!(
            scope.render(&json!("hi {{inputs.who}}")).unwrap(),
            json!("hi w")
        );
    }
}
