//! Path parameters of GitHub URLs: each user-supplied value is checked and encoded
//! segment by segment (file paths keep their slashes; `#`/`?` never act as URL syntax).
//!
//! Owns the encoding only; it must not build requests.

use super::GhError;

/// Fields that are repository file paths: several segments, and `#`/`?` are legitimate
/// file-name characters there (they are percent-encoded, never interpreted).
const FILE_PATH_FIELDS: &[&str] = &["path"];

/// Characters kept as they are in an encoded path segment (RFC 3986 unreserved).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Checks one user-supplied path value (after percent-decoding) and encodes it segment by
/// segment, keeping its slashes.
pub(super) fn path_field(field: &str, raw: &str) -> Result<String, GhError> {
    let file_path = FILE_PATH_FIELDS.contains(&field);
    let value = if file_path {
        raw.trim_matches('/')
    } else {
        raw
    };
    let refuse = |why: &str| {
        GhError::Input(format!(
            "{field}: `{}` is refused in a GitHub URL path: {why}",
            raw.escape_debug()
        ))
    };
    if value.is_empty() {
        return if file_path {
            Ok(String::new())
        } else {
            Err(refuse("it is empty"))
        };
    }
    let mut out = Vec::new();
    for segment in value.split('/') {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        for text in [segment, decoded.as_ref()] {
            if text.chars().any(char::is_control) {
                return Err(refuse("it contains a control character"));
            }
            if text.contains('\\') {
                return Err(refuse("it contains `\\`"));
            }
            if !file_path && (text.contains('#') || text.contains('?')) {
                return Err(refuse("it contains `#` or `?`"));
            }
        }
        match decoded.as_ref() {
            "" => return Err(refuse("it has an empty segment (`//`)")),
            "." | ".." => {
                return Err(refuse(
                    "it has a `.` or `..` segment (also when percent-encoded)",
                ));
            }
            d if d.contains('/') => return Err(refuse("it has a percent-encoded `/`")),
            _ => {}
        }
        out.push(percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string());
    }
    Ok(out.join("/"))
}
