//! Multi-round requests (MCP 2026-07-28 `input_required`, SEP-2322): a tool (or prompt)
//! that needs something only the client has — a decision of its user (elicitation), an
//! answer of its model (sampling), its roots — answers with an [`Ask`] instead of its
//! result. The client fulfils the requests and sends the same request again with its
//! answers (`inputResponses`) and the `requestState` the ask carried; the handler runs
//! again from the top and finds both in [`Rounds`]. Nothing is kept on the server between
//! rounds, so any replica can serve the next one.
//!
//! Owns:
//! - who can be asked what ([`Askable`]): only a request of protocol 2026-07-28 or newer,
//!   and only what its `clientCapabilities` declare (form elicitation, sampling, roots);
//!   never a call nested in another (a batch item, a graph node), whose caller could not
//!   relay the question. An ask the client cannot answer is refused
//!   ([`RoundError::MissingCapability`], -32021) rather than sent;
//! - `requestState`: the handler's state for its next round (small JSON, at most
//!   [`MAX_STATE_JSON`] bytes), sealed by rmcp's `RequestStateCodec` — HMAC-SHA256 under a
//!   key derived from the state directory's signing key (`page::derive_key`), so it
//!   survives a restart and is shared by replicas sharing that directory — bound to the
//!   request it answers (method, tool or prompt name, a digest of the arguments) and to
//!   the principal, and expiring after [`STATE_TTL`]. A state that does not verify
//!   (altered, issued for another request or caller, or by another key), that is too
//!   long or that has expired is refused before the handler runs (-32602): the spec's
//!   "MUST reject state that fails verification". It is signed, not encrypted: it holds
//!   nothing secret;
//! - the answers: each value of `inputResponses` must be an object (a result), or the
//!   request is refused (-32602); an answer is read when the handler asks for its key,
//!   typed by what was asked, and one that does not parse as that is refused the same
//!   way. Keys nobody reads are ignored, as the spec says; a missing answer is the
//!   handler's to ask again ([`Ask`] once more), never an error.
//!
//! Must not know any tool, toolset, the server or a transport: the server builds
//! [`Rounds`] from each request and turns an [`Ask`] into the `input_required` result
//! ([`Ask::into_result`]).
#![allow(deprecated)] // roots and sampling are deprecated by SEP-2577 but remain in 2026-07-28

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use rmcp::model::{
    ClientCapabilities, CreateMessageResult, ElicitResult, ElicitationAction, InputRequest,
    InputRequests, InputRequiredResult, InputResponses, JsonObject, ListRootsResult,
    RequestStateCodec, RequestStateError, SealOptions,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::principal::Principal;

/// How long a `requestState` stays valid: time for a person to read a question and
/// answer it, short enough that a stale answer is not acted on much later.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Longest `requestState` accepted (this server issues far shorter ones).
pub const MAX_STATE_BYTES: usize = 8 * 1024;

/// Largest state (as JSON) a handler may carry to its next round.
pub const MAX_STATE_JSON: usize = 4 * 1024;

/// Label of the key that signs `requestState` (see `page::derive_key`).
const KEY_LABEL: &str = "requestState v1";

const ELICIT: &str = "elicitation/create";
const SAMPLE: &str = "sampling/createMessage";
const ROOTS: &str = "roots/list";

/// Why a round cannot go on. The first four are the client's fault and answered as
/// invalid params (-32602); [`RoundError::MissingCapability`] is -32021.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoundError {
    #[error(
        "requestState is {len} bytes, longer than any this server issues ({MAX_STATE_BYTES}); send back the requestState of the last input_required result unchanged"
    )]
    StateTooLong { len: usize },
    #[error(
        "requestState failed verification: it was altered, or issued for another request (tool, prompt or arguments), another caller or by another server; send the request again without requestState and inputResponses"
    )]
    StateRejected,
    #[error(
        "requestState has expired (it is valid for {} s); send the request again without requestState and inputResponses",
        STATE_TTL.as_secs()
    )]
    StateExpired,
    #[error("inputResponses.{key}: {reason}")]
    BadResponse { key: String, reason: String },
    /// The handler asked for something the client did not declare it can do.
    #[error("the client did not declare the capabilities this request needs to ask it for input")]
    MissingCapability(Box<ClientCapabilities>),
    /// A request before protocol 2026-07-28 cannot receive `input_required`.
    #[error(
        "this request needs input from the client (input_required), which takes protocol 2026-07-28"
    )]
    NotModern,
    /// A fault of this server (a state or request it could not encode).
    #[error("input_required: {0}")]
    Internal(String),
}

fn codec() -> &'static RequestStateCodec {
    static CODEC: OnceLock<RequestStateCodec> = OnceLock::new();
    CODEC.get_or_init(|| {
        RequestStateCodec::try_new(super::page::derive_key(KEY_LABEL).to_vec())
            .expect("a 32-byte key is long enough")
    })
}

/// The request a `requestState` belongs to: it opens only on a request with the same
/// method, name and arguments from the same principal.
#[derive(Debug, Clone)]
pub struct Origin {
    /// What the state's signature covers besides the state.
    binding: Vec<u8>,
}

impl Origin {
    /// [`Origin::new`] when the request can take part in a round: it carries a
    /// `requestState`, or it speaks 2026-07-28 (it may be asked). Otherwise no state is
    /// opened or sealed for it ([`Ask::into_result`] refuses an older request first), so
    /// the arguments are not hashed on every call of an older client.
    pub fn for_request(
        method: &str,
        name: &str,
        arguments: Option<&JsonObject>,
        principal: &Principal,
        askable: Askable,
        has_state: bool,
    ) -> Self {
        if askable.modern || has_state {
            Origin::new(method, name, arguments, principal)
        } else {
            Origin {
                binding: Vec::new(),
            }
        }
    }

    /// `method` is `tools/call` or `prompts/get`, `name` the tool's or prompt's. The
    /// arguments count by a digest of their JSON with object keys sorted, so the order a
    /// client sends them in does not matter.
    pub fn new(
        method: &str,
        name: &str,
        arguments: Option<&JsonObject>,
        principal: &Principal,
    ) -> Self {
        let mut digest = Sha256::new();
        // No arguments and `{}` are the same call.
        hash_object(&mut digest, arguments.unwrap_or(&JsonObject::new()));
        let args = hex::encode(digest.finalize());
        let binding = format!(
            "cortex-mcp/rounds/v1\0{method}\0{name}\0{args}\0{}",
            principal.as_str()
        );
        Origin {
            binding: binding.into_bytes(),
        }
    }
}

/// Feeds `map` to `digest` as JSON with its keys sorted.
fn hash_object(digest: &mut Sha256, map: &JsonObject) {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    digest.update(b"{");
    for (i, (key, v)) in entries.into_iter().enumerate() {
        if i > 0 {
            digest.update(b",");
        }
        digest.update(Value::String(key.clone()).to_string().as_bytes());
        digest.update(b":");
        hash_canonical(digest, v);
    }
    digest.update(b"}");
}

/// Feeds `value` to `digest` as JSON with object keys sorted.
fn hash_canonical(digest: &mut Sha256, value: &Value) {
    match value {
        Value::Object(map) => hash_object(digest, map),
        Value::Array(items) => {
            digest.update(b"[");
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    digest.update(b",");
                }
                hash_canonical(digest, v);
            }
            digest.update(b"]");
        }
        other => digest.update(other.to_string().as_bytes()),
    }
}

/// What the client of one request can be asked through `input_required`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Askable {
    /// Form elicitation (a question to the user).
    pub elicitation: bool,
    /// Sampling (a question to the client's model).
    pub sampling: bool,
    /// Its roots.
    pub roots: bool,
    /// The request speaks 2026-07-28 or newer; nothing can be asked before.
    pub modern: bool,
}

impl Askable {
    /// From the request's protocol era and declared capabilities. An `elicitation`
    /// capability that names neither mode means form (the spec's backward
    /// compatibility); one naming only `url` does not allow a form.
    pub fn of(modern: bool, capabilities: Option<&ClientCapabilities>) -> Self {
        let Some(caps) = capabilities.filter(|_| modern) else {
            return Askable {
                modern,
                ..Askable::default()
            };
        };
        Askable {
            elicitation: caps
                .elicitation
                .as_ref()
                .is_some_and(|e| e.form.is_some() || e.url.is_none()),
            sampling: caps.sampling.is_some(),
            roots: caps.roots.is_some(),
            modern,
        }
    }

    /// The capabilities `method` needs, when the client lacks them.
    fn missing_for(&self, method: &str) -> Option<ClientCapabilities> {
        let mut caps = ClientCapabilities::default();
        match method {
            ELICIT if !self.elicitation => caps.elicitation = Some(Default::default()),
            SAMPLE if !self.sampling => caps.sampling = Some(Default::default()),
            ROOTS if !self.roots => caps.roots = Some(Default::default()),
            _ => return None,
        }
        Some(caps)
    }
}

/// The client's answer to an elicitation.
#[derive(Debug, Clone, PartialEq)]
pub enum Elicited {
    /// The user answered; the form's content.
    Accepted(JsonObject),
    /// The user explicitly declined.
    Declined,
    /// The user dismissed the question.
    Cancelled,
}

/// The answer to a yes/no question asked with [`Ask::confirm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Yes,
    /// No, declined, or dismissed; the words say which, for the result's message.
    No(&'static str),
}

/// The field of the yes/no form [`Ask::confirm`] sends.
const CONFIRM_FIELD: &str = "confirm";

/// The multi-round side of one request: what its client can be asked, what it answered,
/// and the state the handler carried from its previous round. Empty (nothing to ask,
/// nothing answered) for clients before 2026-07-28 and for nested calls.
#[derive(Debug, Clone, Default)]
pub struct Rounds {
    askable: Askable,
    responses: Arc<InputResponses>,
    state: Option<Arc<Value>>,
}

impl Rounds {
    /// The rounds of a request: verifies `state` against `origin` (see the module doc)
    /// and checks that every answer is an object.
    pub fn open(
        origin: &Origin,
        askable: Askable,
        responses: Option<InputResponses>,
        state: Option<&str>,
    ) -> Result<Self, RoundError> {
        let responses = responses.unwrap_or_default();
        if let Some((key, _)) = responses.iter().find(|(_, v)| !v.is_object()) {
            return Err(RoundError::BadResponse {
                key: key.clone(),
                reason: "not a result object (an elicitation, sampling or roots/list result)"
                    .into(),
            });
        }
        let state = state.map(|s| open_state(origin, s)).transpose()?;
        Ok(Rounds {
            askable,
            responses: Arc::new(responses),
            state: state.map(Arc::new),
        })
    }

    /// The rounds of a call run as a task (see [`super::tool_tasks`]): the answers the
    /// task gathered through `tasks/update` and the state its last ask left, both kept on
    /// the server (so nothing to verify).
    pub fn in_task(askable: Askable, responses: InputResponses, state: Option<Value>) -> Self {
        Rounds {
            askable,
            responses: Arc::new(responses),
            state: state.map(Arc::new),
        }
    }

    /// The answers and the (verified) state this request came with, which a task started
    /// from it carries into its later rounds.
    pub fn parts(&self) -> (InputResponses, Option<Value>) {
        ((*self.responses).clone(), self.state.as_deref().cloned())
    }

    /// The same client, seen from a call nested in this one: it cannot be asked.
    pub fn nested(&self) -> Rounds {
        Rounds::default()
    }

    pub fn askable(&self) -> Askable {
        self.askable
    }

    /// Whether the user can be asked a question (form elicitation).
    pub fn can_elicit(&self) -> bool {
        self.askable.elicitation
    }

    /// The state the handler put in its previous [`Ask`], when the request carried a
    /// verified one of type `T`.
    pub fn state<T: DeserializeOwned>(&self) -> Option<T> {
        self.state
            .as_deref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Whether the request carried a (verified) state.
    pub fn has_state(&self) -> bool {
        self.state.is_some()
    }

    fn answer<T: DeserializeOwned>(&self, key: &str, what: &str) -> Result<Option<T>, RoundError> {
        let Some(value) = self.responses.get(key) else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| RoundError::BadResponse {
                key: key.to_string(),
                reason: format!("not {what}: {e}"),
            })
    }

    /// The answer to elicitation `key`, if the client sent one.
    pub fn elicited(&self, key: &str) -> Result<Option<Elicited>, RoundError> {
        let Some(result) = self.answer::<ElicitResult>(key, "an elicitation result")? else {
            return Ok(None);
        };
        Ok(Some(match result.action {
            ElicitationAction::Accept => match result.content {
                Some(Value::Object(content)) => Elicited::Accepted(content),
                None | Some(Value::Null) => Elicited::Accepted(JsonObject::new()),
                Some(_) => {
                    return Err(RoundError::BadResponse {
                        key: key.to_string(),
                        reason: "an accepted elicitation's content must be an object".into(),
                    });
                }
            },
            ElicitationAction::Decline => Elicited::Declined,
            _ => Elicited::Cancelled,
        }))
    }

    /// The answer to the yes/no question `key` ([`Ask::confirm`]).
    pub fn decision(&self, key: &str) -> Result<Option<Decision>, RoundError> {
        Ok(self.elicited(key)?.map(|answer| match answer {
            Elicited::Accepted(content) => match content.get(CONFIRM_FIELD) {
                Some(Value::Bool(true)) => Decision::Yes,
                _ => Decision::No("answered no"),
            },
            Elicited::Declined => Decision::No("declined"),
            Elicited::Cancelled => Decision::No("dismissed the question"),
        }))
    }

    /// The answer to sampling request `key`, if the client sent one.
    pub fn sampled(&self, key: &str) -> Result<Option<CreateMessageResult>, RoundError> {
        self.answer(key, "a sampling/createMessage result")
    }

    /// The answer to roots request `key`, if the client sent one.
    pub fn roots(&self, key: &str) -> Result<Option<ListRootsResult>, RoundError> {
        self.answer(key, "a roots/list result")
    }
}

fn open_state(origin: &Origin, sealed: &str) -> Result<Value, RoundError> {
    if sealed.len() > MAX_STATE_BYTES {
        return Err(RoundError::StateTooLong { len: sealed.len() });
    }
    codec()
        .open_json_with(sealed, &origin.binding)
        .map_err(|e| match e {
            RequestStateError::Expired => RoundError::StateExpired,
            _ => RoundError::StateRejected,
        })
}

/// What a handler asks the client before it can answer: named requests (each key is
/// answered under the same key) and the state it needs in the next round.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    /// key → `{method, params}`, typed when the result is made.
    requests: Vec<(String, Value)>,
    /// The state as JSON, or why it could not be made JSON (reported by
    /// [`Ask::into_result`]).
    state: Option<Result<Value, String>>,
}

impl Ask {
    pub fn new() -> Self {
        Ask::default()
    }

    fn request(mut self, key: &str, method: &str, params: Value) -> Self {
        self.requests.retain(|(k, _)| k != key);
        self.requests
            .push((key.to_string(), json!({"method": method, "params": params})));
        self
    }

    /// A form for the user: `schema` is the restricted JSON Schema of elicitation (an
    /// object of primitive properties).
    pub fn elicit(self, key: &str, message: impl Into<String>, schema: Value) -> Self {
        let params = json!({"mode": "form", "message": message.into(), "requestedSchema": schema});
        self.request(key, ELICIT, params)
    }

    /// A yes/no question to the user, answered through [`Rounds::decision`].
    pub fn confirm(self, key: &str, message: impl Into<String>, label: &str) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {CONFIRM_FIELD: {"type": "boolean", "title": label, "default": false}},
            "required": [CONFIRM_FIELD],
        });
        self.elicit(key, message, schema)
    }

    /// A question to the client's model: `params` are `sampling/createMessage`'s.
    pub fn sample(self, key: &str, params: Value) -> Self {
        self.request(key, SAMPLE, params)
    }

    /// The client's roots.
    pub fn list_roots(self, key: &str) -> Self {
        self.request(key, ROOTS, json!({}))
    }

    /// The state the handler finds in [`Rounds::state`] in the next round.
    pub fn with_state<T: Serialize>(mut self, state: &T) -> Self {
        self.state = Some(serde_json::to_value(state).map_err(|e| e.to_string()));
        self
    }

    /// The `input_required` result for `origin`: each request typed (and refused when
    /// the client cannot answer it), the state sealed.
    pub fn into_result(
        self,
        origin: &Origin,
        askable: Askable,
    ) -> Result<InputRequiredResult, RoundError> {
        if !askable.modern {
            return Err(RoundError::NotModern);
        }
        let (requests, state) = self.into_parts(askable)?;
        let state = state.map(|state| seal_state(origin, &state)).transpose()?;
        if requests.is_empty() && state.is_none() {
            return Err(RoundError::Internal(
                "an ask with neither requests nor state".into(),
            ));
        }
        Ok(InputRequiredResult::new(
            (!requests.is_empty()).then_some(requests),
            state,
        ))
    }
}

impl Ask {
    /// The ask of a call run as a task, which parks the task (`input_required` on
    /// `tasks/get`) until `tasks/update` answers every request: the typed requests and
    /// the state, which stays on the server.
    pub fn into_task_input(
        self,
        askable: Askable,
    ) -> Result<(InputRequests, Option<Value>), RoundError> {
        let (requests, state) = self.into_parts(askable)?;
        if requests.is_empty() {
            return Err(RoundError::Internal(
                "a task can only wait for requests, not for a state alone".into(),
            ));
        }
        Ok((requests, state))
    }

    /// Each request typed (refused when the client cannot answer it) and the state.
    fn into_parts(self, askable: Askable) -> Result<(InputRequests, Option<Value>), RoundError> {
        let mut requests = InputRequests::new();
        for (key, request) in self.requests {
            let method = request["method"].as_str().unwrap_or_default();
            if let Some(missing) = askable.missing_for(method) {
                return Err(RoundError::MissingCapability(Box::new(missing)));
            }
            let typed: InputRequest = serde_json::from_value(request)
                .map_err(|e| RoundError::Internal(format!("request `{key}`: {e}")))?;
            requests.insert(key, typed);
        }
        let state = match self.state {
            Some(Ok(state)) => Some(state),
            Some(Err(e)) => return Err(RoundError::Internal(format!("the state: {e}"))),
            None => None,
        };
        Ok((requests, state))
    }
}

fn seal_state(origin: &Origin, state: &Value) -> Result<String, RoundError> {
    let json = state.to_string();
    if json.len() > MAX_STATE_JSON {
        return Err(RoundError::Internal(format!(
            "the state is {} bytes of JSON, over {MAX_STATE_JSON}",
            json.len()
        )));
    }
    let options = SealOptions::new()
        .associated_data(&origin.binding)
        .ttl(STATE_TTL);
    codec()
        .seal_json_with(state, &options)
        .map_err(|e| RoundError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests;
