//! Unit tests of the GitHub client's pure parts: text windows, path encoding, error
//! bodies.

use super::*;

#[test]
fn window_respects_char_boundaries() {
    let text = "héllo wörld";
    let w = window(text, 0, 2).unwrap();
    assert_eq!(w.text, "h");
    assert_eq!(w.next_offset, Some(1));
    let rest = window(text, 1, 100).unwrap();
    assert_eq!(format!("{}{}", w.text, rest.text), text);
    assert!(rest.next_offset.is_none());
    assert!(window(text, 999, 1).is_err());
}

#[test]
fn path_fields_are_checked_after_decoding() {
    for (field, bad) in [
        ("sha", "%2e%2e/%2e%2e/orgs/x"),
        ("sha", "%2E%2E"),
        ("base", ".."),
        ("head", "main#frag"),
        ("head", "main%23frag"),
        ("sha", "a?b=1"),
        ("sha", "a%3Fb"),
        ("sha", "a\\b"),
        ("sha", "a%2fb"),
        ("sha", "a\nb"),
        ("sha", "a%0ab"),
        ("sha", ""),
        ("path", "docs/%2e%2e/x"),
        ("path", "docs/../x"),
    ] {
        let err = path_field(field, bad).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{field}: ")), "{bad}: {err}");
    }
    assert_eq!(path_field("head", "feature/x").unwrap(), "feature/x");
    assert_eq!(path_field("sha", "v1.0").unwrap(), "v1.0");
    assert_eq!(path_field("path", "/docs/a b.md").unwrap(), "docs/a%20b.md");
    assert_eq!(path_field("path", "C#/x?.md").unwrap(), "C%23/x%3F.md");
    assert_eq!(path_field("path", "").unwrap(), "");
}

#[test]
fn next_link_parsed() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::LINK,
        HeaderValue::from_static(
            "<http://h/repos/o/r/issues?page=2>; rel=\"next\", <http://h/repos/o/r/issues?page=9>; rel=\"last\"",
        ),
    );
    let reply = Reply {
        status: 200,
        headers,
        body: Bytes::new(),
        dropped: 0,
        outcome: CacheOutcome::Miss,
        _hold: None,
    };
    assert_eq!(
        reply.next_link().unwrap().as_str(),
        "http://h/repos/o/r/issues?page=2"
    );
}
