//! Security alert lists of the triage group: code scanning, Dependabot and secret
//! scanning. Each alert is cut to the fields a model needs; a secret-scanning alert
//! never carries the secret itself (GitHub's `secret` field, and anything else naming
//! the value, is never read into the output).

use super::*;

pub(super) fn register(t: &Tools<SharedGithub>) -> Vec<ToolDef> {
    let read = Hints::read_remote();
    vec![
        t.tool(
            "list_code_scanning_alerts",
            read,
            list_code_scanning_alerts,
            "Code scanning alerts of a repository, newest first: rule, severity, tool and where the latest instance is.",
        )
        .titled("List code scanning alerts"),
        t.tool(
            "list_dependabot_alerts",
            read,
            list_dependabot_alerts,
            "Dependabot alerts of a repository: the vulnerable package, its manifest, the advisory and the first patched version.",
        )
        .titled("List Dependabot alerts"),
        t.tool(
            "list_secret_scanning_alerts",
            read,
            list_secret_scanning_alerts,
            "Secret scanning alerts of a repository: which kind of secret, state and resolution. The secret values are never returned.",
        )
        .titled("List secret scanning alerts"),
    ]
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct CodeScanningIn {
        /// owner/name
        pub repository: String,
        /// open, closed, dismissed or fixed.
        #[serde(default)]
        pub state: Option<String>,
        /// critical, high, medium, low, warning, note or error.
        #[serde(default)]
        pub severity: Option<String>,
        /// Git ref the alerts were found on, e.g. `refs/heads/main`.
        #[serde(default, rename = "ref")]
        pub git_ref: Option<String>,
        /// e.g. CodeQL.
        #[serde(default)]
        pub tool_name: Option<String>,
        ..page_args,
    }
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct DependabotIn {
        /// owner/name
        pub repository: String,
        /// Comma list of open, fixed, dismissed, auto_dismissed.
        #[serde(default)]
        pub state: Option<String>,
        /// Comma list of low, medium, high, critical.
        #[serde(default)]
        pub severity: Option<String>,
        /// Comma list: npm, pip, cargo (rust), maven, go, rubygems, composer, nuget...
        #[serde(default)]
        pub ecosystem: Option<String>,
        /// Comma list of package names.
        #[serde(default)]
        pub package: Option<String>,
        ..page_args,
    }
}

crate::runtime::page::list_input! {
    #[derive(Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct SecretScanningIn {
        /// owner/name
        pub repository: String,
        /// open or resolved.
        #[serde(default)]
        pub state: Option<String>,
        /// Comma list of secret types, e.g. github_personal_access_token.
        #[serde(default)]
        pub secret_type: Option<String>,
        ..page_args,
    }
}

#[derive(Serialize, JsonSchema)]
pub struct CodeScanningAlert {
    pub number: u64,
    pub state: String,
    /// Rule id, e.g. `js/sql-injection`.
    pub rule: String,
    /// Security severity when the rule has one, else the rule's severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    pub html_url: String,
    pub created_at: String,
}

#[derive(Serialize, JsonSchema)]
pub struct DependabotAlert {
    pub number: u64,
    pub state: String,
    pub package: String,
    pub ecosystem: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ghsa_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cve_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vulnerable_version_range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_patched_version: Option<String>,
    pub html_url: String,
    pub created_at: String,
}

/// A secret scanning alert, without the secret.
#[derive(Serialize, JsonSchema)]
pub struct SecretScanningAlert {
    pub number: u64,
    pub state: String,
    pub secret_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_type_display_name: Option<String>,
    /// active, inactive or unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    pub html_url: String,
    pub created_at: String,
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn push_filter(query: &mut Vec<(&'static str, String)>, key: &'static str, value: &Option<String>) {
    if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        query.push((key, v.to_string()));
    }
}

/// One page of an alert list; a repository without the feature (or a credential without
/// access to it) is a business error saying so.
#[allow(clippy::too_many_arguments)]
async fn alert_page<T>(
    gh: &SharedGithub,
    ctx: &CallCtx,
    (kind, what, path): (&str, &str, &str),
    repo: &str,
    query: Vec<(&'static str, String)>,
    cursor: Option<&str>,
    limit: u32,
    keep: impl Fn(Value) -> Option<T>,
) -> Out<Page<T>> {
    let c = &gh.client;
    let url = c.url(
        &format!("repos/{{repository}}/{path}"),
        &[("repository", repo)],
        &query,
    )?;
    match c
        .collect(
            ctx,
            kind,
            url,
            cursor,
            limit as usize,
            LaneKind::Read,
            None,
            keep,
        )
        .await
    {
        Ok((page, _)) => Ok(page),
        Err(GhError::Forbidden { message }) => Err(ToolError::business(format!(
            "{what} alerts of {repo} are not available: GitHub said \"{message}\". They need the feature enabled on the repository and a token allowed to read security alerts."
        ))),
        Err(GhError::NotFound { .. }) => Err(ToolError::business(format!(
            "{what} alerts of {repo} were not found: the repository may not exist, the feature may be off, or the token cannot read security alerts"
        ))),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn list_code_scanning_alerts(
    gh: SharedGithub,
    i: CodeScanningIn,
    ctx: CallCtx,
) -> Out<Page<CodeScanningAlert>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![("per_page", i.limit.to_string())];
    push_filter(&mut query, "state", &i.state);
    push_filter(&mut query, "severity", &i.severity);
    if let Some(r) = &i.git_ref {
        query.push(("ref", git_ref("ref", r.trim())?));
    }
    push_filter(&mut query, "tool_name", &i.tool_name);
    let keep = |v: Value| {
        Some(CodeScanningAlert {
            number: v.get("number")?.as_u64()?,
            state: text(&v, "/state")?,
            rule: text(&v, "/rule/id").or_else(|| text(&v, "/rule/name"))?,
            severity: text(&v, "/rule/security_severity_level")
                .or_else(|| text(&v, "/rule/severity")),
            description: text(&v, "/rule/description"),
            tool: text(&v, "/tool/name"),
            path: text(&v, "/most_recent_instance/location/path"),
            line: v
                .pointer("/most_recent_instance/location/start_line")
                .and_then(Value::as_u64),
            git_ref: text(&v, "/most_recent_instance/ref"),
            html_url: text(&v, "/html_url")?,
            created_at: text(&v, "/created_at")?,
        })
    };
    let names = (
        "list_code_scanning_alerts",
        "Code scanning",
        "code-scanning/alerts",
    );
    alert_page(
        &gh,
        &ctx,
        names,
        &repo,
        query,
        i.cursor.as_deref(),
        i.limit,
        keep,
    )
    .await
}

pub(super) async fn list_dependabot_alerts(
    gh: SharedGithub,
    i: DependabotIn,
    ctx: CallCtx,
) -> Out<Page<DependabotAlert>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![("per_page", i.limit.to_string())];
    push_filter(&mut query, "state", &i.state);
    push_filter(&mut query, "severity", &i.severity);
    push_filter(&mut query, "ecosystem", &i.ecosystem);
    push_filter(&mut query, "package", &i.package);
    let keep = |v: Value| {
        Some(DependabotAlert {
            number: v.get("number")?.as_u64()?,
            state: text(&v, "/state")?,
            package: text(&v, "/dependency/package/name")?,
            ecosystem: text(&v, "/dependency/package/ecosystem")?,
            manifest_path: text(&v, "/dependency/manifest_path"),
            severity: text(&v, "/security_vulnerability/severity")
                .or_else(|| text(&v, "/security_advisory/severity")),
            ghsa_id: text(&v, "/security_advisory/ghsa_id"),
            cve_id: text(&v, "/security_advisory/cve_id"),
            summary: text(&v, "/security_advisory/summary"),
            vulnerable_version_range: text(&v, "/security_vulnerability/vulnerable_version_range"),
            first_patched_version: text(
                &v,
                "/security_vulnerability/first_patched_version/identifier",
            ),
            html_url: text(&v, "/html_url")?,
            created_at: text(&v, "/created_at")?,
        })
    };
    let names = ("list_dependabot_alerts", "Dependabot", "dependabot/alerts");
    alert_page(
        &gh,
        &ctx,
        names,
        &repo,
        query,
        i.cursor.as_deref(),
        i.limit,
        keep,
    )
    .await
}

/// The output of one secret-scanning alert: named fields only, so `secret` (and any
/// field carrying the value, such as a location's `secret`) never reaches a result.
fn secret_alert(v: &Value) -> Option<SecretScanningAlert> {
    Some(SecretScanningAlert {
        number: v.get("number")?.as_u64()?,
        state: text(v, "/state")?,
        secret_type: text(v, "/secret_type")?,
        secret_type_display_name: text(v, "/secret_type_display_name"),
        validity: text(v, "/validity"),
        resolution: text(v, "/resolution"),
        html_url: text(v, "/html_url")?,
        created_at: text(v, "/created_at")?,
    })
}

pub(super) async fn list_secret_scanning_alerts(
    gh: SharedGithub,
    i: SecretScanningIn,
    ctx: CallCtx,
) -> Out<Page<SecretScanningAlert>> {
    let repo = repo(&i.repository)?;
    let mut query = vec![("per_page", i.limit.to_string())];
    push_filter(&mut query, "state", &i.state);
    push_filter(&mut query, "secret_type", &i.secret_type);
    let keep = |v: Value| secret_alert(&v);
    let names = (
        "list_secret_scanning_alerts",
        "Secret scanning",
        "secret-scanning/alerts",
    );
    alert_page(
        &gh,
        &ctx,
        names,
        &repo,
        query,
        i.cursor.as_deref(),
        i.limit,
        keep,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_alert_never_carries_the_secret() {
        let secret = "ghp_ZZtopSECRETvalue0123456789abcdefXYZ";
        let raw = json!({
            "number": 3, "state": "open", "secret_type": "github_personal_access_token",
            "secret_type_display_name": "GitHub Personal Access Token", "secret": secret,
            "validity": "active", "resolution": null, "html_url": "https://github.com/o/r/security/secret-scanning/3",
            "created_at": "2024-01-02T00:00:00Z",
            "first_location_detected": {"path": "config.env", "secret": secret},
        });
        let out = serde_json::to_string(&secret_alert(&raw).unwrap()).unwrap();
        assert!(!out.contains(secret) && !out.contains("ZZtop"), "{out}");
        assert!(out.contains("github_personal_access_token"), "{out}");
        let schema = serde_json::to_string(&schemars::schema_for!(SecretScanningAlert)).unwrap();
        assert!(!schema.contains("\"secret\""), "{schema}");
    }
}
