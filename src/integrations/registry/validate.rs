//! Validation of integration definitions: names, endpoints (by type), headers,
//! operations and credentials, and building the [`StoredConfig`] a change asks for.
//!
//! Owns the rules only; it must not store anything nor see credential values beyond
//! checking their names.

use std::collections::BTreeMap;

use super::{
    API_KEY_KEYS, BEARER_KEYS, ConfigInput, Integration, IntegrationType, RegistryError,
    StoredConfig, invalid,
};

pub(super) fn check_name(name: &str) -> Result<String, RegistryError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(invalid("name", "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("name", "must not contain control characters"));
    }
    Ok(name.to_string())
}

pub(super) fn build_config(
    r#type: IntegrationType,
    input: ConfigInput,
    previous: Option<&StoredConfig>,
) -> Result<StoredConfig, RegistryError> {
    let endpoint = match input.endpoint {
        Some(raw) => Some(check_endpoint(r#type, &raw)?),
        None => previous.and_then(|p| p.endpoint.clone()),
    };
    if endpoint.is_none() && r#type != IntegrationType::Webhook {
        return Err(invalid(
            "config.endpoint",
            format!("is required for a {} integration", r#type.as_str()),
        ));
    }
    let headers = match input.headers {
        Some(h) => check_headers(h)?,
        None => previous.map(|p| p.headers.clone()).unwrap_or_default(),
    };
    let operations = match input.operations {
        Some(ops) => check_operations(r#type, ops)?,
        None => previous.map(|p| p.operations.clone()).unwrap_or_default(),
    };
    if r#type.is_http()
        && let Some(endpoint) = &endpoint
    {
        for (name, op) in &operations {
            if let Ok((_, path)) = crate::integrations::execute::parse_http_operation(op) {
                crate::integrations::execute::target_url(endpoint, &path).map_err(|reason| {
                    invalid(&format!("config.operations.{name}"), reason.to_string())
                })?;
            }
        }
    }
    let api_key_header = match input.api_key_header {
        Some(h) => Some(check_header_name("config.apiKeyHeader", &h)?),
        None => previous.and_then(|p| p.api_key_header.clone()),
    };
    let webhook_delivery_header = match input.webhook_delivery_header {
        Some(h) => Some(check_header_name("config.webhookDeliveryHeader", &h)?),
        None => previous.and_then(|p| p.webhook_delivery_header.clone()),
    };
    let webhook_timestamp_header = match input.webhook_timestamp_header {
        Some(h) => Some(check_header_name("config.webhookTimestampHeader", &h)?),
        None => previous.and_then(|p| p.webhook_timestamp_header.clone()),
    };
    let concurrency = input
        .concurrency
        .or(previous.map(|p| p.concurrency))
        .unwrap_or(4);
    if !(1..=64).contains(&concurrency) {
        return Err(invalid("config.concurrency", "must be between 1 and 64"));
    }
    let retry_policy = input
        .retry_policy
        .or(previous.map(|p| p.retry_policy))
        .unwrap_or_default();
    if retry_policy.backoff_ms == 0 {
        return Err(invalid("config.retryPolicy.backoffMs", "must be above 0"));
    }
    if retry_policy.max_retries > 10 {
        return Err(invalid(
            "config.retryPolicy.maxRetries",
            "must be at most 10",
        ));
    }
    let credential_names = match &input.credentials {
        Some(c) => c.keys().cloned().collect(),
        None => previous
            .map(|p| p.credential_names.clone())
            .unwrap_or_default(),
    };
    Ok(StoredConfig {
        endpoint,
        credential_names,
        headers,
        retry_policy,
        concurrency,
        operations,
        api_key_header,
        allow_writes: input
            .allow_writes
            .or(previous.map(|p| p.allow_writes))
            .unwrap_or(false),
        webhook_delivery_header,
        webhook_timestamp_header,
    })
}

/// The origin credentials are bound to: scheme, host (as the resolver reads it) and port
/// (with the scheme's default).
pub fn origin_of(endpoint: &str) -> String {
    let Ok(url) = url::Url::parse(endpoint) else {
        return endpoint.to_string();
    };
    let scheme = match url.scheme() {
        "postgresql" => "postgres",
        other => other,
    };
    let port = url.port_or_known_default().or(match scheme {
        "postgres" => Some(5432),
        "redis" | "rediss" => Some(6379),
        _ => None,
    });
    let host = crate::integrations::address::normalise_host(url.host_str().unwrap_or(""));
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// Headers a caller may never set: the request target and connection management.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "expect",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
];

fn check_header_name(field: &str, name: &str) -> Result<String, RegistryError> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| invalid(field, "is not a valid header name"))?;
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(
            field,
            format!(
                "`{name}` is set by the client (Host and hop-by-hop headers cannot be configured)"
            ),
        ));
    }
    Ok(name.to_string())
}

pub(super) fn check_endpoint(r#type: IntegrationType, raw: &str) -> Result<String, RegistryError> {
    let url = url::Url::parse(raw.trim()).map_err(|e| {
        invalid(
            "config.endpoint",
            format!("{} is not a URL: {e}", crate::config::shown_url(raw)),
        )
    })?;
    let (schemes, built): (&[&str], bool) = match r#type {
        IntegrationType::Api | IntegrationType::Webhook => (&["http", "https"], true),
        IntegrationType::Database => (&["postgres", "postgresql"], cfg!(feature = "postgres")),
        IntegrationType::MessageQueue => (&["redis", "rediss"], cfg!(feature = "redis")),
    };
    if !built {
        return Err(invalid(
            "type",
            format!(
                "{} integrations are not in this build (it was compiled without the cargo feature that provides them); use api or webhook",
                r#type.as_str()
            ),
        ));
    }
    if !schemes.contains(&url.scheme()) || url.host_str().is_none() {
        return Err(invalid(
            "config.endpoint",
            format!(
                "must be a {} URL with a host for a {} integration",
                schemes.join("/"),
                r#type.as_str()
            ),
        ));
    }
    if url.password().is_some() {
        return Err(invalid(
            "config.endpoint",
            "must not carry a password; put it in config.credentials.password",
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("config.endpoint", "must not carry a fragment"));
    }
    let mut url = url;
    let host = url.host_str().unwrap_or("").to_string();
    if let Some(ip) = crate::integrations::address::literal_ip(&host) {
        if let Some(reason) = crate::integrations::address::AddressPolicy::always_refused(ip) {
            return Err(invalid("config.endpoint", reason.to_string()));
        }
        // Non-HTTP URLs keep hosts like `127.1` as written: store what the resolver
        // would connect to.
        let canonical = match ip {
            std::net::IpAddr::V4(v4) => v4.to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        };
        if canonical != host && url.set_host(Some(&canonical)).is_err() {
            return Err(invalid(
                "config.endpoint",
                format!("`{host}` is an unusual spelling of {ip}; write {ip}"),
            ));
        }
    }
    if matches!(r#type, IntegrationType::Database)
        && url
            .query_pairs()
            .any(|(k, _)| matches!(k.as_ref(), "host" | "hostaddr" | "port"))
    {
        return Err(invalid(
            "config.endpoint",
            "must not set host, hostaddr or port in the query; put the host in the URL",
        ));
    }
    Ok(url.to_string())
}

/// Drops the headers that carry secrets (refused on create and update, but kept by
/// records written before that) from a replayed integration, so they are never sent or
/// shown; logs the integration id and header name (never the value). True when any was
/// dropped.
pub(super) fn scrub_secret_headers(integration: &mut Integration) -> bool {
    let before = integration.config.headers.len();
    integration.config.headers.retain(|name, _| {
        let secret = crate::runtime::http::is_credential_header(name);
        if secret {
            tracing::warn!(
                integration = %integration.id,
                header = %name,
                "integrations registry: dropped a stored header that carries a secret (such headers are refused now); give the value again as config.credentials"
            );
        }
        !secret
    });
    integration.config.headers.len() != before
}

fn check_headers(
    headers: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RegistryError> {
    for (name, value) in &headers {
        let field = format!("config.headers.{name}");
        check_header_name(&field, name)?;
        http::HeaderValue::from_str(value)
            .map_err(|_| invalid(&field, "is not a valid header value"))?;
        if crate::runtime::http::is_credential_header(name) {
            let lower = name.to_ascii_lowercase();
            let advice = if matches!(lower.as_str(), "authorization" | "proxy-authorization") {
                "put the token in config.credentials.token (sent as Authorization: Bearer)"
                    .to_string()
            } else {
                format!(
                    "put the value in config.credentials.apiKey and set config.apiKeyHeader to \"{name}\""
                )
            };
            return Err(invalid(
                &field,
                format!(
                    "looks like it carries a secret, and headers are returned in results and stored in the registry journal; {advice} so it is stored apart and never returned"
                ),
            ));
        }
    }
    Ok(headers)
}

fn check_operations(
    r#type: IntegrationType,
    ops: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RegistryError> {
    for (name, op) in &ops {
        let field = format!("config.operations.{name}");
        if name.is_empty() || name.contains(' ') {
            return Err(invalid(&field, "names must be non-empty without spaces"));
        }
        if r#type.is_http() {
            crate::integrations::execute::parse_http_operation(op)
                .map_err(|reason| invalid(&field, reason.to_string()))?;
        } else if op.trim().is_empty() {
            return Err(invalid(&field, "must not be empty"));
        }
    }
    Ok(ops)
}

pub(super) fn check_credentials(
    r#type: IntegrationType,
    creds: &BTreeMap<String, String>,
) -> Result<(), RegistryError> {
    for (name, value) in creds {
        let field = format!("config.credentials.{name}");
        if name.is_empty() || name.len() > 64 {
            return Err(invalid(&field, "names must be 1 to 64 characters"));
        }
        if value.is_empty() {
            return Err(invalid(&field, "must not be empty"));
        }
        let injected =
            BEARER_KEYS.contains(&name.as_str()) || API_KEY_KEYS.contains(&name.as_str());
        if injected && r#type.is_http() && http::HeaderValue::from_str(value).is_err() {
            return Err(invalid(&field, "cannot be sent in an HTTP header"));
        }
    }
    Ok(())
}
