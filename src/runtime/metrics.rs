//! Metrics: counters, gauges and histograms through the `metrics` facade, stored by the
//! Prometheus recorder of `metrics-exporter-prometheus`.
//!
//! Served as Prometheus text (`GET /metrics`) and as a JSON snapshot (`cortex://metrics`)
//! made from the same exposition. Owns recorder installation and rendering; labels never
//! carry secrets (lanes name credentials by fingerprint only).

use std::{collections::BTreeMap, sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::{Value, json};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Handle to the process-wide recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

impl Metrics {
    /// Installs the recorder once per process (every metric labelled `replica` when
    /// `replica` is given); later calls share it.
    pub fn install(replica: Option<&str>) -> Self {
        let handle = HANDLE
            .get_or_init(|| {
                let mut builder = PrometheusBuilder::new()
                    .set_quantiles(&[0.5, 0.95, 0.99])
                    .expect("static quantiles are valid");
                if let Some(replica) = replica {
                    builder = builder.add_global_label("replica", replica);
                }
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                metrics::set_global_recorder(recorder).ok().map(|_| handle)
            })
            .clone();
        Metrics { handle }
    }

    /// Prometheus text exposition.
    pub fn prometheus(&self) -> String {
        self.handle.as_ref().map(|h| h.render()).unwrap_or_default()
    }

    /// The same figures as JSON: `{metric: [{labels, value}]}`.
    pub fn snapshot(&self) -> Value {
        exposition_to_json(&self.prometheus())
    }
}

/// Records one tool call: count, errors by kind, latency.
pub fn record_tool_call(tool: &str, elapsed: Duration, error_kind: Option<&'static str>) {
    metrics::counter!("cortex_tool_calls_total", "tool" => tool.to_string()).increment(1);
    if let Some(kind) = error_kind {
        metrics::counter!("cortex_tool_errors_total", "tool" => tool.to_string(), "kind" => kind)
            .increment(1);
    }
    metrics::histogram!("cortex_tool_seconds", "tool" => tool.to_string())
        .record(elapsed.as_secs_f64());
}

fn exposition_to_json(text: &str) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
            None => (series, serde_json::Map::new()),
        };
        let value = value
            .parse::<f64>()
            .map(|v| json!(v))
            .unwrap_or(Value::Null);
        out.entry(name.to_string())
            .or_default()
            .push(json!({"labels": labels, "value": value}));
    }
    json!(out)
}

fn parse_labels(s: &str) -> serde_json::Map<String, Value> {
    let mut map = serde_json::Map::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut end = 0;
        let bytes = after.as_bytes();
        while end < bytes.len() && !(bytes[end] == b'"' && (end == 0 || bytes[end - 1] != b'\\')) {
            end += 1;
        }
        map.insert(
            key.trim_start_matches(',').to_string(),
            Value::String(after[..end].replace("\\\"", "\"")),
        );
        rest = after.get(end + 1..).unwrap_or("");
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_becomes_json() {
        let text = "# TYPE x counter\nx{tool=\"a\",kind=\"in\\\"put\"} 3\ny 1.5\n";
        let v = exposition_to_json(text);
        assert_eq!(v["x"][0]["labels"]["tool"], "a");
        assert_eq!(v["x"][0]["labels"]["kind"], "in\"put");
        assert_eq!(v["x"][0]["value"], 3.0);
        assert_eq!(v["y"][0]["value"], 1.5);
    }

    #[test]
    fn tool_calls_are_counted() {
        let m = Metrics::install(None);
        record_tool_call("unit_probe", Duration::from_millis(2), Some("input"));
        let snap = m.snapshot();
        let calls = snap["cortex_tool_calls_total"].as_array().unwrap();
        assert!(calls.iter().any(|c| c["labels"]["tool"] == "unit_probe"));
    }
}
