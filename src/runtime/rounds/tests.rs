use super::*;

fn args(v: Value) -> JsonObject {
    v.as_object().cloned().unwrap()
}

fn everything() -> Askable {
    Askable {
        elicitation: true,
        sampling: true,
        roots: true,
        modern: true,
    }
}

fn tool(args: Option<&JsonObject>, principal: &Principal) -> Origin {
    Origin::new("tools/call", "t", args, principal)
}

fn sealed(origin: &Origin, state: Value) -> String {
    Ask::new()
        .with_state(&state)
        .into_result(origin, everything())
        .unwrap()
        .request_state
        .unwrap()
}

#[test]
fn state_round_trips_on_the_same_request_whatever_the_key_order() {
    let alice = Principal::oauth("alice");
    let origin = tool(Some(&args(json!({"id": "x", "n": 1}))), &alice);
    let token = sealed(&origin, json!({"revision": 3}));
    let again = tool(Some(&args(json!({"n": 1, "id": "x"}))), &alice);
    let rounds = Rounds::open(&again, everything(), None, Some(&token)).unwrap();
    assert_eq!(rounds.state::<Value>(), Some(json!({"revision": 3})));
    assert!(rounds.has_state());
}

#[test]
fn only_requests_that_can_take_part_in_a_round_are_bound() {
    let alice = Principal::oauth("alice");
    let a = args(json!({"id": "x"}));
    let older = Askable::default();
    let unbound = Origin::for_request("tools/call", "t", Some(&a), &alice, older, false);
    assert!(unbound.binding.is_empty());
    assert!(matches!(
        Ask::new()
            .with_state(&json!({"ok": true}))
            .into_result(&unbound, older),
        Err(RoundError::NotModern)
    ));
    let token = sealed(&tool(Some(&a), &alice), json!({"ok": true}));
    for (askable, has_state) in [(everything(), false), (older, true)] {
        let bound = Origin::for_request("tools/call", "t", Some(&a), &alice, askable, has_state);
        assert!(Rounds::open(&bound, askable, None, Some(&token)).is_ok());
    }
}

#[test]
fn state_is_refused_when_altered_or_used_elsewhere() {
    let alice = Principal::oauth("alice");
    let bob = Principal::oauth("bob");
    let a = args(json!({"id": "x"}));
    let origin = tool(Some(&a), &alice);
    let token = sealed(&origin, json!({"ok": true}));
    let open = |o: &Origin, t: &str| Rounds::open(o, everything(), None, Some(t));
    let tampered = format!("{token}-TAMPERED");
    assert!(matches!(
        open(&origin, &tampered),
        Err(RoundError::StateRejected)
    ));
    for other in [
        tool(Some(&a), &bob),
        tool(Some(&args(json!({"id": "y"}))), &alice),
        tool(None, &alice),
        Origin::new("tools/call", "u", Some(&a), &alice),
        Origin::new("prompts/get", "t", Some(&a), &alice),
    ] {
        assert!(matches!(
            open(&other, &token),
            Err(RoundError::StateRejected)
        ));
    }
    let foreign = RequestStateCodec::try_new(vec![7u8; 32])
        .unwrap()
        .seal_json_with(
            &json!({"ok": true}),
            &SealOptions::new().associated_data(&origin.binding),
        )
        .unwrap();
    assert!(matches!(
        open(&origin, &foreign),
        Err(RoundError::StateRejected)
    ));
    let long = "x".repeat(MAX_STATE_BYTES + 1);
    assert!(matches!(
        open(&origin, &long),
        Err(RoundError::StateTooLong { .. })
    ));
}

#[test]
fn answers_are_read_by_kind_and_malformed_ones_refused() {
    let p = Principal::stdio();
    let origin = tool(None, &p);
    let responses: InputResponses = serde_json::from_value(json!({
        "name": {"action": "accept", "content": {"name": "Ada"}},
        "ok": {"action": "accept", "content": {"confirm": true}},
        "no": {"action": "decline"},
        "bye": {"action": "cancel"},
        "weird": {"foo": 1},
        "extra": {"action": "accept", "content": {}}
    }))
    .unwrap();
    let rounds = Rounds::open(&origin, everything(), Some(responses), None).unwrap();
    assert_eq!(
        rounds.elicited("name").unwrap(),
        Some(Elicited::Accepted(args(json!({"name": "Ada"}))))
    );
    assert_eq!(rounds.decision("ok").unwrap(), Some(Decision::Yes));
    assert_eq!(
        rounds.decision("no").unwrap(),
        Some(Decision::No("declined"))
    );
    assert!(matches!(
        rounds.decision("bye").unwrap(),
        Some(Decision::No(_))
    ));
    assert_eq!(rounds.elicited("missing").unwrap(), None);
    assert!(rounds.elicited("weird").is_err());
    assert!(rounds.sampled("weird").is_err());

    let not_an_object: InputResponses = serde_json::from_value(json!({"name": 12345})).unwrap();
    assert!(matches!(
        Rounds::open(&origin, everything(), Some(not_an_object), None),
        Err(RoundError::BadResponse { .. })
    ));
}

#[test]
fn an_ask_is_refused_for_what_the_client_cannot_answer() {
    let p = Principal::stdio();
    let origin = tool(None, &p);
    let sampling_only = Askable {
        sampling: true,
        modern: true,
        ..Askable::default()
    };
    let ask = Ask::new().confirm("ok", "Sure?", "Yes");
    match ask.clone().into_result(&origin, sampling_only) {
        Err(RoundError::MissingCapability(caps)) => assert!(caps.elicitation.is_some()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ask.clone().into_result(&origin, Askable::default()),
        Err(RoundError::NotModern)
    ));
    let result = ask.into_result(&origin, everything()).unwrap();
    let wire = serde_json::to_value(&result).unwrap();
    assert_eq!(wire["resultType"], "input_required");
    assert_eq!(wire["inputRequests"]["ok"]["method"], "elicitation/create");
    assert_eq!(wire["inputRequests"]["ok"]["params"]["mode"], "form");
    assert!(wire.get("requestState").is_none());
}

#[test]
fn capabilities_decide_what_can_be_asked() {
    let caps: ClientCapabilities =
        serde_json::from_value(json!({"elicitation": {}, "sampling": {}})).unwrap();
    let modern = Askable::of(true, Some(&caps));
    assert!(modern.elicitation && modern.sampling && !modern.roots);
    assert_eq!(
        Askable::of(false, Some(&caps)),
        Askable {
            modern: false,
            ..Askable::default()
        }
    );
    let url_only: ClientCapabilities =
        serde_json::from_value(json!({"elicitation": {"url": {}}})).unwrap();
    assert!(!Askable::of(true, Some(&url_only)).elicitation);
}

#[test]
fn an_expired_state_says_so() {
    let p = Principal::stdio();
    let origin = tool(None, &p);
    let token = codec()
        .seal_json_with(
            &json!({}),
            &SealOptions::new()
                .associated_data(&origin.binding)
                .ttl(Duration::from_millis(1)),
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(matches!(
        Rounds::open(&origin, everything(), None, Some(&token)),
        Err(RoundError::StateExpired)
    ));
}
