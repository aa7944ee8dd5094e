//! Teaching: captured examples, the patterns they form, and replay by similarity.
//!
//! Owns the example store (bounded by count and age, oldest evicted first), pattern
//! counters keyed `type-phase-actionType` kept incrementally (O(1) per capture and per
//! eviction: count and successes; confidence = min(0.5 + 0.1·count, 0.9), effectiveness
//! = successes / count), the similarity used by replay (0.3·same phase + 0.4·keyword
//! Jaccard + 0.3·state-key Jaccard; applies at ≥ 0.6) and the `teaching` stream of the
//! runtime's store (one record per capture, compacted in the background to the live
//! examples once the log passes 32 MiB).
//!
//! It must not publish events or know about tools (that is `tools/teaching.rs`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runtime::store::{
    Backend, Compaction, Fold, Fsync, Replicated, StoreError, StreamOptions,
};

/// Log size past which the stream is compacted to the live examples.
const MAX_LOG_BYTES: u64 = 32 * 1024 * 1024;

/// Examples older than this are dropped.
pub const TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Replay applies an example at or above this similarity.
pub const APPLY_THRESHOLD: f64 = 0.6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExampleType {
    Workflow,
    Validation,
    Decision,
    Correction,
}

impl ExampleType {
    fn as_str(self) -> &'static str {
        match self {
            ExampleType::Workflow => "workflow",
            ExampleType::Validation => "validation",
            ExampleType::Decision => "decision",
            ExampleType::Correction => "correction",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExampleContext {
    /// What was going on, in words (keywords feed replay similarity).
    #[serde(default)]
    pub description: String,
    /// The state the user acted on; its keys feed replay similarity.
    #[serde(default)]
    pub state: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserAction {
    /// Kind of action, e.g. `approve`, `edit`, `rerun` (part of the pattern key).
    #[schemars(length(min = 1, max = 64))]
    pub r#type: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub parameters: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub success: bool,
    /// How much this example teaches, 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub learning_value: f64,
    #[serde(default)]
    pub notes: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Example {
    pub id: String,
    pub r#type: ExampleType,
    /// Workflow phase the example belongs to (e.g. strategy, build, evaluation).
    pub phase: String,
    pub context: ExampleContext,
    pub user_action: UserAction,
    pub outcome: Outcome,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Unix milliseconds.
    pub captured_at: i64,
}

impl Example {
    pub fn pattern_key(&self) -> String {
        format!(
            "{}-{}-{}",
            self.r#type.as_str(),
            self.phase,
            self.user_action.r#type
        )
    }

    fn keywords(&self) -> BTreeSet<String> {
        let mut k = keywords(&self.context.description);
        k.extend(keywords(&self.user_action.description));
        k.extend(self.tags.iter().map(|t| t.to_lowercase()));
        k
    }
}

/// A pattern's running figures.
#[derive(Debug, Clone, Default, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Pattern {
    pub key: String,
    pub r#type: String,
    pub phase: String,
    pub action_type: String,
    pub examples: u64,
    pub successes: u64,
    /// min(0.5 + 0.1·examples, 0.9).
    pub confidence: f64,
    /// successes / examples.
    pub effectiveness: f64,
    /// Mean learning value of the examples.
    pub learning_value: f64,
    #[serde(skip)]
    learning_sum: f64,
}

impl Pattern {
    fn add(&mut self, e: &Example, sign: i64) {
        if sign > 0 {
            self.examples += 1;
            self.successes += e.outcome.success as u64;
            self.learning_sum += e.outcome.learning_value;
        } else {
            self.examples = self.examples.saturating_sub(1);
            self.successes = self.successes.saturating_sub(e.outcome.success as u64);
            self.learning_sum -= e.outcome.learning_value;
        }
        let n = self.examples.max(1) as f64;
        self.confidence = (0.5 + 0.1 * self.examples as f64).min(0.9);
        self.effectiveness = self.successes as f64 / n;
        self.learning_value = (self.learning_sum / n).clamp(0.0, 1.0);
    }
}

/// How an example compares with a new state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Similarity {
    pub score: f64,
    /// 1 when the state's `phase` equals the example's phase.
    pub phase: f64,
    /// Jaccard of the keywords.
    pub keywords: f64,
    /// Jaccard of the state keys.
    pub state_keys: f64,
}

/// Lower-cased words of 3+ letters, minus a few stop words.
pub fn keywords(text: &str) -> BTreeSet<String> {
    const STOP: &[&str] = &["the", "and", "for", "with", "that", "this", "from", "into"];
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

fn state_words(state: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for v in state.values() {
        match v {
            Value::String(s) => out.extend(keywords(s)),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .for_each(|s| out.extend(keywords(s))),
            _ => {}
        }
    }
    out
}

/// 0.3·same phase + 0.4·keyword Jaccard + 0.3·state-key Jaccard.
pub fn similarity(example: &Example, state: &serde_json::Map<String, Value>) -> Similarity {
    let phase = match state.get("phase").and_then(Value::as_str) {
        Some(p) if p == example.phase => 1.0,
        _ => 0.0,
    };
    let mut words = state_words(state);
    if let Some(Value::String(d)) = state.get("description") {
        words.extend(keywords(d));
    }
    let kw = jaccard(&example.keywords(), &words);
    let ex_keys: BTreeSet<String> = example.context.state.keys().cloned().collect();
    let keys: BTreeSet<String> = state
        .keys()
        .filter(|k| *k != "phase" && *k != "description")
        .cloned()
        .collect();
    let sk = jaccard(&ex_keys, &keys);
    let score = 0.3 * phase + 0.4 * kw + 0.3 * sk;
    Similarity {
        score: (score * 1000.0).round() / 1000.0,
        phase,
        keywords: (kw * 1000.0).round() / 1000.0,
        state_keys: (sk * 1000.0).round() / 1000.0,
    }
}

#[derive(Default)]
struct Store {
    order: VecDeque<Arc<Example>>,
    by_id: HashMap<String, Arc<Example>>,
    patterns: BTreeMap<String, Pattern>,
}

impl Store {
    fn insert(&mut self, e: Arc<Example>, max: usize) -> Vec<Arc<Example>> {
        let key = e.pattern_key();
        let p = self.patterns.entry(key.clone()).or_insert_with(|| Pattern {
            key,
            r#type: e.r#type.as_str().into(),
            phase: e.phase.clone(),
            action_type: e.user_action.r#type.clone(),
            ..Default::default()
        });
        p.add(&e, 1);
        if let Some(old) = self.by_id.insert(e.id.clone(), e.clone()) {
            self.remove_counts(&old);
            self.order.retain(|x| x.id != old.id);
        }
        self.order.push_back(e);
        let mut evicted = Vec::new();
        let cutoff = chrono::Utc::now().timestamp_millis() - TTL.as_millis() as i64;
        while self.order.len() > max || self.order.front().is_some_and(|f| f.captured_at < cutoff) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.by_id.remove(&old.id);
            self.remove_counts(&old);
            evicted.push(old);
        }
        evicted
    }

    fn remove_counts(&mut self, e: &Example) {
        let key = e.pattern_key();
        if let Some(p) = self.patterns.get_mut(&key) {
            p.add(e, -1);
            if p.examples == 0 {
                self.patterns.remove(&key);
            }
        }
    }
}

/// The teaching store, journaled.
pub struct Teaching {
    store: Mutex<Store>,
    log: Replicated<Example>,
    max: usize,
}

impl Fold<Example> for Teaching {
    fn apply(&self, e: Example) {
        self.store.lock().insert(Arc::new(e), self.max);
    }

    fn reset(&self, examples: Vec<Example>) {
        let mut store = Store::default();
        for e in examples {
            store.insert(Arc::new(e), self.max);
        }
        *self.store.lock() = store;
    }
}

/// The examples a store bounded by `max` (and the TTL) holds after `examples`.
fn live(examples: Vec<Example>, max: usize) -> Vec<Example> {
    let mut store = Store::default();
    for e in examples {
        store.insert(Arc::new(e), max);
    }
    let Store { order, by_id, .. } = store;
    drop(by_id);
    order
        .into_iter()
        .map(|e| Arc::try_unwrap(e).unwrap_or_else(|e| (*e).clone()))
        .collect()
}

impl Teaching {
    pub fn open(backend: &dyn Backend, policy: Fsync, max: usize) -> Result<Self, StoreError> {
        Self::open_with(backend, StreamOptions::new(policy, MAX_LOG_BYTES), max)
    }

    /// [`Teaching::open`] with explicit stream options (tests use a small log).
    pub fn open_with(
        backend: &dyn Backend,
        options: StreamOptions,
        max: usize,
    ) -> Result<Self, StoreError> {
        let compaction = Compaction::new(move |examples| live(examples, max));
        let (log, replay) = Replicated::open_now(backend, "teaching", options, compaction)?;
        for (position, reason) in &replay.undecodable {
            tracing::warn!("teaching journal: skipped record {position}: {reason}");
        }
        let mut store = Store::default();
        for e in replay.into_records() {
            store.insert(Arc::new(e), max);
        }
        Ok(Teaching {
            store: Mutex::new(store),
            log,
            max,
        })
    }

    /// On a shared store, keeps this replica's copy current (see [`Replicated::follow`]).
    pub fn follow(self: &Arc<Self>) {
        self.log.follow(self);
    }

    /// Applies what other replicas captured before this call (shared store only).
    pub async fn catch_up(&self) {
        self.log.catch_up_or_log(self).await
    }

    /// Stores an example (journaled before it is acknowledged); returns its pattern.
    pub async fn capture(&self, e: Example) -> Result<Pattern, StoreError> {
        let key = e.pattern_key();
        self.log.append(e, self).await?;
        Ok(self
            .store
            .lock()
            .patterns
            .get(&key)
            .cloned()
            .unwrap_or_default())
    }

    /// Makes queued captures (and a compaction under way) durable and closes the stream.
    pub async fn close(&self) {
        self.log.close().await
    }

    pub fn get(&self, id: &str) -> Option<Arc<Example>> {
        self.store.lock().by_id.get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.store.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Patterns sorted by key, optionally filtered.
    pub fn patterns(&self, r#type: Option<ExampleType>, phase: Option<&str>) -> Vec<Pattern> {
        self.store
            .lock()
            .patterns
            .values()
            .filter(|p| r#type.is_none_or(|t| p.r#type == t.as_str()))
            .filter(|p| phase.is_none_or(|ph| p.phase == ph))
            .cloned()
            .collect()
    }

    pub fn pattern(&self, key: &str) -> Option<Pattern> {
        self.store.lock().patterns.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(id: &str, success: bool) -> Example {
        Example {
            id: id.into(),
            r#type: ExampleType::Correction,
            phase: "build".into(),
            context: ExampleContext {
                description: "failing test in parser module".into(),
                state: serde_json::json!({"tests": 3, "module": "parser"})
                    .as_object()
                    .unwrap()
                    .clone(),
            },
            user_action: UserAction {
                r#type: "fix".into(),
                description: "fix the parser test".into(),
                parameters: Default::default(),
            },
            outcome: Outcome {
                success,
                learning_value: 0.8,
                notes: String::new(),
            },
            tags: vec![],
            captured_at: chrono::Utc::now().timestamp_millis(),
        }
    }

    #[test]
    fn counters_follow_captures_and_evictions() {
        let mut s = Store::default();
        s.insert(Arc::new(example("a", true)), 2);
        s.insert(Arc::new(example("b", false)), 2);
        let p = &s.patterns["correction-build-fix"];
        assert_eq!((p.examples, p.successes), (2, 1));
        assert!((p.confidence - 0.7).abs() < 1e-9);
        assert!((p.effectiveness - 0.5).abs() < 1e-9);
        let evicted = s.insert(Arc::new(example("c", true)), 2);
        assert_eq!(evicted[0].id, "a");
        let p = &s.patterns["correction-build-fix"];
        assert_eq!((p.examples, p.successes), (2, 1));
    }

    #[tokio::test]
    async fn the_journal_is_compacted_to_the_live_examples_and_replays_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let options = StreamOptions::new(Fsync::Never, 8192);
        let t = Teaching::open_with(
            &crate::runtime::store::LocalBackend::new(dir.path()),
            options,
            5,
        )
        .unwrap();
        for i in 0..300 {
            t.capture(example(&format!("e{i}"), i % 2 == 0))
                .await
                .unwrap();
        }
        let before = t.pattern("correction-build-fix").unwrap();
        t.close().await;
        let segment = std::fs::metadata(dir.path().join("teaching.ndjson")).unwrap();
        assert!(segment.len() <= 2 * 8192, "{} bytes left", segment.len());
        assert!(dir.path().join("teaching.snapshot.json").exists());

        let t = Teaching::open_with(
            &crate::runtime::store::LocalBackend::new(dir.path()),
            options,
            5,
        )
        .unwrap();
        assert_eq!(t.len(), 5);
        assert!(t.get("e299").is_some() && t.get("e294").is_none());
        assert_eq!(t.pattern("correction-build-fix").unwrap(), before);
        t.close().await;
    }

    #[test]
    fn similarity_weights() {
        let e = example("a", true);
        let same = serde_json::json!({"phase": "build", "module": "parser", "tests": 1, "description": "failing parser test module"});
        let s = similarity(&e, same.as_object().unwrap());
        assert!(s.score >= APPLY_THRESHOLD, "{s:?}");
        let other = serde_json::json!({"phase": "strategy", "owner": "x"});
        assert!(similarity(&e, other.as_object().unwrap()).score < APPLY_THRESHOLD);
    }
}
