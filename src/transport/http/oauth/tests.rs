use super::*;

fn list(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn write_reaches_every_tool_read_the_read_only_ones_and_required_scopes_must_all_be_there() {
    assert_eq!(
        grant(&list(&["cortex:write"]), &[]),
        Grant::Tools(ToolAccess::All)
    );
    assert_eq!(
        grant(&list(&["cortex:read", "cortex:write"]), &[]),
        Grant::Tools(ToolAccess::All)
    );
    assert_eq!(
        grant(&list(&["openid", "cortex:read"]), &[]),
        Grant::Tools(ToolAccess::ReadOnly)
    );
    assert_eq!(
        grant(&list(&["openid"]), &[]),
        Grant::Insufficient(list(&["cortex:read"]))
    );
    assert_eq!(grant(&[], &[]), Grant::Insufficient(list(&["cortex:read"])));
    let required = list(&["mcp", "org:42"]);
    assert_eq!(
        grant(&list(&["cortex:write", "mcp", "org:42"]), &required),
        Grant::Tools(ToolAccess::All)
    );
    assert_eq!(
        grant(&list(&["cortex:write", "mcp"]), &required),
        Grant::Insufficient(list(&["mcp", "org:42", "cortex:read"]))
    );
    // Scope names are compared exactly.
    assert_eq!(
        grant(&list(&["Cortex:Write"]), &[]),
        Grant::Insufficient(list(&["cortex:read"]))
    );
    assert_eq!(
        needed_scopes(&required, "cortex:write"),
        list(&["mcp", "org:42", "cortex:write"])
    );
    assert_eq!(
        needed_scopes(&list(&["cortex:write"]), "cortex:write"),
        list(&["cortex:write"])
    );
}

#[test]
fn scope_claims_are_a_string_or_an_array() {
    let v = serde_json::json!("cortex:read  mcp\torg");
    assert_eq!(scope_list(Some(&v)), list(&["cortex:read", "mcp", "org"]));
    let v = serde_json::json!(["cortex:write", 5, "mcp"]);
    assert_eq!(scope_list(Some(&v)), list(&["cortex:write", "mcp"]));
    assert!(scope_list(Some(&serde_json::json!(3))).is_empty());
    assert!(scope_list(None).is_empty());
}

#[test]
fn metadata_is_looked_for_where_rfc8414_and_oidc_put_it() {
    assert_eq!(
        metadata_urls("https://auth.example.com"),
        list(&[
            "https://auth.example.com/.well-known/oauth-authorization-server",
            "https://auth.example.com/.well-known/openid-configuration",
        ])
    );
    assert_eq!(
        metadata_urls("https://auth.example.com/tenant/1/"),
        list(&[
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant/1",
            "https://auth.example.com/.well-known/openid-configuration/tenant/1",
            "https://auth.example.com/tenant/1/.well-known/openid-configuration",
        ])
    );
}

#[test]
fn metadata_must_name_the_issuer_and_a_secure_jwks_uri() {
    let issuer = "https://auth.example.com";
    let doc = |iss: &str, jwks: &str| serde_json::json!({"issuer": iss, "jwks_uri": jwks});
    assert_eq!(
        jwks_uri_of(&doc(issuer, "https://auth.example.com/jwks"), issuer).unwrap(),
        "https://auth.example.com/jwks"
    );
    assert!(jwks_uri_of(&doc("https://auth.example.com/", "https://a/j"), issuer).is_err());
    assert!(jwks_uri_of(&doc(issuer, "http://auth.example.com/jwks"), issuer).is_err());
    assert!(jwks_uri_of(&doc(issuer, "http://127.0.0.1:9/jwks"), issuer).is_ok());
    assert!(jwks_uri_of(&serde_json::json!({"issuer": issuer}), issuer).is_err());
}

#[test]
fn key_sets_keep_only_asymmetric_signing_keys() {
    let doc = serde_json::json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
        {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256",
         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed",
         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "weird", "kid": "unknown"}
    ]});
    let keys = parse_key_set(&doc);
    let kids: Vec<_> = keys.iter().map(|k| k.kid.clone().unwrap()).collect();
    assert_eq!(kids, list(&["ec", "ed"]));
    let set = KeySet {
        keys,
        fetched: Some(Instant::now()),
    };
    assert!(set.knows(Some("ec"), Algorithm::ES256));
    assert!(
        !set.knows(Some("ec"), Algorithm::ES384),
        "the JWK names ES256"
    );
    assert!(!set.knows(Some("ec"), Algorithm::RS256));
    assert!(
        set.knows(Some("ed"), Algorithm::EdDSA),
        "no alg: by key type"
    );
    assert!(!set.knows(Some("hmac"), Algorithm::HS256));
    assert!(set.knows(None, Algorithm::EdDSA));
    assert!(!set.stale());
}
