//! Unit tests of option merging, validation, redaction, file trust rules, and that the
//! README's configuration table lists exactly the flags and variables `--help` does.

use std::time::Duration;

use super::{
    file::{check_file_placement, parse},
    *,
};

#[test]
fn defaults_enable_four_toolsets_whole_and_three_github_groups() {
    let c = Config::from_layers(Options::default(), Options::default()).unwrap();
    assert_eq!(c.toolsets, DEFAULT_TOOLSETS);
    assert_eq!(c.toolset_groups, DEFAULT_GROUPS);
    assert!(c.toolset_wanted("github"));
    assert!(!c.toolset_enabled("github") && !c.toolset_enabled("batch"));

    let named = |list: &str| Options {
        core: CoreOptions {
            toolsets: Some(list.split(',').map(str::to_string).collect()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Config::from_layers(Options::default(), named("default,github.actions")).unwrap();
    assert_eq!(c.toolset_groups.len(), DEFAULT_GROUPS.len() + 1);
    let c = Config::from_layers(Options::default(), named("default,github")).unwrap();
    assert!(c.toolset_enabled("github") && c.toolset_groups.is_empty());
}

#[test]
fn github_max_concurrency_is_parsed_and_checked() {
    let over = Options {
        github: GithubOptions {
            github_max_concurrency: Some("read=4, write=2".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Config::from_layers(Options::default(), over).unwrap();
    assert_eq!(
        c.github.max_concurrency,
        GithubConcurrency {
            read: 4,
            write: 2,
            ..Default::default()
        }
    );
    for bad in ["read=0", "read=65", "reads=4", "read"] {
        let over = Options {
            github: GithubOptions {
                github_max_concurrency: Some(bad.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let e = Config::from_layers(Options::default(), over).unwrap_err();
        assert!(e.to_string().contains("github-max-concurrency"), "{e}");
    }
}

#[test]
fn flags_override_file() {
    let file = Options {
        core: CoreOptions {
            read_only: Some(false),
            toolsets: Some(vec!["github".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let over = Options {
        core: CoreOptions {
            read_only: Some(true),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Config::from_layers(file, over).unwrap();
    assert!(c.read_only);
    assert_eq!(c.toolsets, vec!["github"]);
}

#[test]
fn unknown_toolset_names_the_option() {
    let over = Options {
        core: CoreOptions {
            toolsets: Some(vec!["nope".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = Config::from_layers(Options::default(), over)
        .unwrap_err()
        .to_string();
    assert!(err.contains("toolsets") && err.contains("nope"), "{err}");
}

fn with_toolsets(names: &[&str]) -> Result<Config, ConfigError> {
    let over = Options {
        core: CoreOptions {
            toolsets: Some(names.iter().map(|n| n.to_string()).collect()),
            ..Default::default()
        },
        ..Default::default()
    };
    Config::from_layers(Options::default(), over)
}

#[test]
fn toolsets_take_groups_and_a_whole_toolset_takes_its_groups_in() {
    let c = with_toolsets(&[
        "github.actions",
        "patchkit",
        "github.issues",
        "github.actions",
    ])
    .unwrap();
    assert_eq!(c.toolsets, vec!["patchkit"]);
    assert_eq!(c.toolset_groups, vec!["github.actions", "github.issues"]);
    assert!(c.toolset_wanted("github") && !c.toolset_enabled("github"));
    assert!(c.group_selected("github", Some("github.issues")));
    assert!(!c.group_selected("github", Some("github.pulls")));
    assert!(!c.group_selected("github", None));
    assert!(c.group_selected("patchkit", None));
    assert!(!c.toolset_wanted("asbr"));

    let c = with_toolsets(&["github.actions", "github"]).unwrap();
    assert_eq!(c.toolsets, vec!["github"]);
    assert!(c.toolset_groups.is_empty());
    assert!(c.group_selected("github", Some("github.pulls")));

    for bad in ["nope.actions", "github.", ".actions"] {
        let err = with_toolsets(&[bad]).unwrap_err().to_string();
        assert!(err.contains("toolsets") && err.contains(bad), "{err}");
    }
}

#[test]
fn non_loopback_bind_needs_token() {
    let c = Config::from_layers(Options::default(), Options::default()).unwrap();
    assert!(c.check_bind("0.0.0.0:7439".parse().unwrap()).is_err());
    assert!(c.check_bind("127.0.0.1:7439".parse().unwrap()).is_ok());
}

#[test]
fn oauth_counts_as_authentication_and_shows_in_the_config_view() {
    let over = flags(&[
        "--oauth-issuer",
        "https://auth.example.com",
        "--oauth-audience",
        "https://mcp.example.com/mcp",
        "--oauth-required-scopes",
        "mcp:use, org:42",
        "--http-rate-limit",
        "600/min",
    ]);
    let c = Config::from_layers(Options::default(), over).unwrap();
    assert!(c.http_auth_required());
    assert!(c.check_bind("0.0.0.0:7439".parse().unwrap()).is_ok());
    let shown = c.redacted();
    assert_eq!(shown["oauth"]["issuer"], "https://auth.example.com");
    assert_eq!(shown["oauth"]["audience"], "https://mcp.example.com/mcp");
    assert_eq!(
        shown["oauth"]["requiredScopes"],
        serde_json::json!(["mcp:use", "org:42"])
    );
    assert_eq!(shown["oauth"]["jwksCooldownSecs"], 30);
    assert_eq!(shown["httpRateLimit"], "600/min");

    let e = Config::from_layers(Options::default(), flags(&["--http-rate-limit", "fast"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("http-rate-limit") && e.contains("COUNT/UNIT"),
        "{e}"
    );
    let e = Config::from_layers(
        Options::default(),
        flags(&["--oauth-issuer", "https://auth.example.com"]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("oauth-audience"), "{e}");
    let off = Config::from_layers(Options::default(), Options::default()).unwrap();
    assert!(off.oauth.is_none() && off.http_rate_limit.is_none());
    assert!(!off.http_auth_required());
}

#[test]
fn a_file_inside_a_workspace_root_cannot_set_the_oauth_issuer() {
    for key in ["oauth-issuer", "oauth-audience"] {
        assert!(WIDENING_KEYS.contains(&key), "{key}");
    }
}

#[test]
fn integrations_private_default_follows_the_bind() {
    let base = Config::from_layers(Options::default(), Options::default()).unwrap();
    let mut c = base.clone();
    c.settle_integrations_private(None);
    assert_eq!(c.integrations_allow_private, Some(true));
    let mut c = base.clone();
    c.settle_integrations_private(Some("127.0.0.1:7439".parse().unwrap()));
    assert_eq!(c.integrations_allow_private, Some(true));
    let mut c = base.clone();
    c.settle_integrations_private(Some("0.0.0.0:7439".parse().unwrap()));
    assert_eq!(c.integrations_allow_private, Some(false));
    let over = Options {
        integrations: IntegrationsOptions {
            integrations_allow_private: Some(true),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut c = Config::from_layers(Options::default(), over).unwrap();
    c.settle_integrations_private(Some("0.0.0.0:7439".parse().unwrap()));
    assert_eq!(c.integrations_allow_private, Some(true));
}

#[test]
fn mvp_options_are_validated_by_name() {
    let over = Options {
        mvp: MvpOptions {
            exec_allow: Some(vec!["/bin/sh".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = Config::from_layers(Options::default(), over)
        .unwrap_err()
        .to_string();
    assert!(err.contains("exec-allow"), "{err}");
    let over = Options {
        mvp: MvpOptions {
            prp_history: Some(0),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = Config::from_layers(Options::default(), over)
        .unwrap_err()
        .to_string();
    assert!(err.contains("prp-history"), "{err}");
}

#[test]
fn redacted_config_hides_token() {
    let over = Options {
        transport: TransportOptions {
            auth_token: Some("s3cret-token-0123456789".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let c = Config::from_layers(Options::default(), over).unwrap();
    assert!(!c.redacted().to_string().contains("s3cret"));
}

#[test]
fn asbr_task_retention_takes_seconds_or_durations() {
    let with = |raw: &str| {
        let over = Options {
            asbr: AsbrOptions {
                asbr_task_retention: Some(raw.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Config::from_layers(Options::default(), over).map(|c| c.asbr.task_retention)
    };
    assert_eq!(with("90").unwrap(), Some(Duration::from_secs(90)));
    assert_eq!(with("2h").unwrap(), Some(Duration::from_secs(7200)));
    for bad in ["0", "soon", "400days"] {
        let err = with(bad).unwrap_err().to_string();
        assert!(err.contains("asbr-task-retention"), "{err}");
    }
}

#[test]
fn urls_are_redacted() {
    let url = url::Url::parse(
        "https://bob:hunter2@sink.example/in?access_token=abc123&topic=x&api_key=k9",
    )
    .unwrap();
    let shown = redact_url(&url);
    for secret in ["bob", "hunter2", "abc123", "k9"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(
        shown.contains("topic=x") && shown.contains("sink.example/in"),
        "{shown}"
    );
    let plain = url::Url::parse("https://api.github.com/").unwrap();
    assert_eq!(redact_url(&plain), "https://api.github.com/");
}

#[test]
fn widening_keys_from_inside_a_root_are_refused() {
    let root = std::env::temp_dir().join(format!("cortex-config-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&root).unwrap();
    let path = root.join("cortex-mcp.toml");
    std::fs::write(&path, "").unwrap();
    let widening = parse("exec-allow = [\"sh\"]\nevents-sink-url = \"http://x.example/\"\n")
        .unwrap()
        .keys;
    let err = check_file_placement(&path, &widening, std::slice::from_ref(&root))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("exec-allow") && err.contains("events-sink-url"),
        "{err}"
    );
    let narrow = parse("exec-timeout-secs = 5\n").unwrap().keys;
    assert!(check_file_placement(&path, &narrow, std::slice::from_ref(&root)).is_ok());
    let elsewhere = std::env::temp_dir().join(format!("cortex-other-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    assert!(check_file_placement(&path, &widening, std::slice::from_ref(&elsewhere)).is_ok());
    std::fs::remove_dir_all(root).unwrap();
    std::fs::remove_dir_all(elsewhere).unwrap();
}

/// The flags and variables of the clap definition, `--flag` → its variable.
fn clap_options() -> std::collections::BTreeMap<String, Option<String>> {
    use clap::Args;
    Options::augment_args(clap::Command::new("cortex-mcp"))
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| {
            let env = a.get_env().map(|e| e.to_string_lossy().into_owned());
            a.get_long().map(|l| (format!("--{l}"), env))
        })
        .collect()
}

/// The rows of README's configuration table, `--flag` → its variable (rows without a
/// flag, like the environment-only `CONNECTORS_SIGNATURE_KEY`, are left out).
fn readme_options() -> std::collections::BTreeMap<String, Option<String>> {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("\n| flag | env | default | meaning |\n")
        .nth(1)
        .expect("README has the configuration table");
    let ticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut out = std::collections::BTreeMap::new();
    for row in table.lines().skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let (flags, env) = (cells[0].trim_start_matches('|'), cells[1]);
        let env = ticked(env).into_iter().find(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        });
        for flag in ticked(flags).into_iter().filter(|f| f.starts_with("--")) {
            out.insert(flag, env.clone());
        }
    }
    out
}

#[test]
fn readme_table_lists_exactly_the_options_of_help() {
    let clap = clap_options();
    let readme = readme_options();
    let missing: Vec<&String> = clap.keys().filter(|k| !readme.contains_key(*k)).collect();
    let stale: Vec<&String> = readme.keys().filter(|k| !clap.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "README configuration table is out of date: flags missing from it {missing:?}, \
         flags it lists that --help does not {stale:?}"
    );
    let env_differs: Vec<String> = clap
        .iter()
        .filter(|(flag, env)| readme[*flag] != **env)
        .map(|(flag, env)| format!("{flag}: --help {env:?}, README {:?}", readme[flag]))
        .collect();
    assert!(env_differs.is_empty(), "{env_differs:#?}");
    let readme = include_str!("../../README.md");
    for key in WIDENING_KEYS {
        assert!(
            readme.contains(&format!("`{key}`")),
            "README's configuration section does not name the widening key `{key}`"
        );
    }
    assert!(clap.len() >= 30, "{clap:?}");
}

#[test]
fn every_flag_is_a_file_key_and_unknown_keys_are_refused() {
    for key in Options::file_keys() {
        let accepted = ["\"x\"", "[\"x\"]", "5", "true", "\"batch\"", "\"auto\""]
            .iter()
            .any(|v| parse(&format!("{key} = {v}\n")).is_ok());
        assert!(accepted, "no value of `{key}` is accepted from a file");
    }
    for key in ["config", "integrations-deny-private", "no-such-option"] {
        let err = parse(&format!("{key} = true\n"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(&format!("unknown field `{key}`")), "{err}");
    }
    for key in WIDENING_KEYS {
        assert!(Options::file_keys().iter().any(|k| k == key), "{key}");
    }
}

/// Parses flags and variables as the binary does (clap), without the process environment.
fn flags(args: &[&str]) -> Options {
    use clap::{Args, FromArgMatches};
    let cmd = Options::augment_args(clap::Command::new("cortex-mcp"));
    let argv = std::iter::once("cortex-mcp").chain(args.iter().copied());
    Options::from_arg_matches(&cmd.get_matches_from(argv)).unwrap()
}

#[test]
fn max_body_bytes_is_a_flag_and_a_file_key_and_flags_win() {
    let file = parse("max-body-bytes = 1000\nread-only = true\n")
        .unwrap()
        .options;
    let c = Config::from_layers(file.clone(), Options::default()).unwrap();
    assert_eq!(c.max_body_bytes, 1000);
    assert!(c.read_only);
    let c = Config::from_layers(
        file,
        flags(&["--max-body-bytes", "2000", "--read-only=false"]),
    )
    .unwrap();
    assert_eq!(c.max_body_bytes, 2000);
    assert!(!c.read_only);
    let c = Config::from_layers(Options::default(), Options::default()).unwrap();
    assert_eq!(c.max_body_bytes, 4 * 1024 * 1024);
}

#[test]
fn deny_private_flag_overrides_a_file_that_allows() {
    let file = parse("integrations-allow-private = true\n")
        .unwrap()
        .options;
    let c = Config::from_layers(file.clone(), flags(&["--integrations-deny-private"])).unwrap();
    assert_eq!(c.integrations_allow_private, Some(false));
    let c = Config::from_layers(file, flags(&[])).unwrap();
    assert_eq!(c.integrations_allow_private, Some(true));
    let c =
        Config::from_layers(Options::default(), flags(&["--integrations-allow-private"])).unwrap();
    assert_eq!(c.integrations_allow_private, Some(true));
}

#[test]
fn the_config_view_keeps_its_shape_and_hides_secrets() {
    let over = flags(&[
        "--auth-token",
        "s3cret-token-0123456789",
        "--events-sink-url",
        "https://u:pw@sink.example/in?token=abc&topic=t",
        "--asbr-task-retention",
        "2h",
    ]);
    let mut c = Config::from_layers(Options::default(), over).unwrap();
    c.asbr.signature_key = Some("signature-key-value".into());
    let view = c.redacted();
    let text = view.to_string();
    for secret in ["s3cret-token", "signature-key-value", ":pw@", "abc"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
    assert_eq!(view["authToken"], REDACTED);
    assert_eq!(view["asbr"]["signatureKey"], REDACTED);
    assert_eq!(view["asbr"]["taskRetentionSecs"], 7200);
    assert_eq!(view["github"]["credential"], "none");
    assert_eq!(view["github"]["apiUrl"], "https://api.github.com/");
    assert!(format!("{c:?}").contains(REDACTED) && !format!("{c:?}").contains("s3cret"));
    // Every key `cortex://config` served before the options had one definition.
    for path in [
        "configFile",
        "toolsets",
        "tools",
        "excludeTools",
        "readOnly",
        "stateDir",
        "logLevel",
        "authToken",
        "allowedHosts",
        "allowedOrigins",
        "requestTimeoutSecs",
        "fsync",
        "workspaceRoots",
        "httpSessions",
        "maxBodyBytes",
        "limits/httpMaxSessions",
        "limits/httpMaxConnections",
        "limits/httpHeaderTimeoutSecs",
        "limits/httpBodyTimeoutSecs",
        "limits/stdioMaxLineBytes",
        "callMemoryBudgetBytes",
        "github/apiUrl",
        "github/credential",
        "github/maxRateWaitSecs",
        "asbr/connectorsManifestPath",
        "asbr/signatureKey",
        "asbr/advisoriesDir",
        "asbr/taskRetentionSecs",
        "integrationsAllowPrivate",
        "eventsSink/url",
        "eventsSink/batching",
        "eventsSink/filter",
        "mvp/execAllow",
        "mvp/execEnvAllow",
        "mvp/execMaxProcesses",
        "mvp/execTimeoutSecs",
        "mvp/execSandbox",
        "mvp/execNetwork",
        "mvp/prpHistory",
        "mvp/teachingMaxExamples",
    ] {
        assert!(
            view.pointer(&format!("/{path}")).is_some(),
            "{path} missing: {view}"
        );
    }
    assert_eq!(view["requestTimeoutSecs"], 120);
    assert_eq!(view["mvp"]["execTimeoutSecs"], 30);
    assert_eq!(view["limits"]["httpHeaderTimeoutSecs"], 10);
}

#[test]
fn a_bad_file_value_names_its_key() {
    let err = parse("prp-history = 3\nread-only = \"yes\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("`read-only`") && err.contains("expected a boolean"),
        "{err}"
    );
    let err = parse("fsync = \"sometimes\"\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("`fsync`") && err.contains("never"), "{err}");
}

#[test]
fn extra_bearer_tokens_are_long_distinct_and_redacted() {
    let with = |first: Option<&str>, extra: &[&str]| {
        let over = Options {
            transport: TransportOptions {
                auth_token: first.map(Secret::from),
                auth_tokens: Some(extra.iter().map(|t| Secret::from(*t)).collect()),
                ..Default::default()
            },
            ..Default::default()
        };
        Config::from_layers(Options::default(), over)
    };
    let ok = with(Some("first-token-0123456789"), &["second-token-0123456789"]).unwrap();
    assert_eq!(ok.bearer_tokens().count(), 2);
    assert!(!ok.redacted().to_string().contains("second-token"));
    let short = with(None, &["short"]).unwrap_err().to_string();
    assert!(
        short.contains("auth-tokens") && short.contains("16"),
        "{short}"
    );
    let twice = with(Some("same-token-0123456789"), &["same-token-0123456789"])
        .unwrap_err()
        .to_string();
    assert!(twice.contains("twice"), "{twice}");
}

#[test]
fn bad_url_options_never_echo_their_secrets() {
    let cases: &[&[&str]] = &[
        // Unparseable (bad port): the value is not shown at all.
        &[
            "--github-api-url",
            "https://user:ghp_SECRETSECRET@host:99999/",
        ],
        &[
            "--events-sink-url",
            "https://user:ghp_SECRETSECRET@host:99999/",
        ],
        // Parseable but refused (scheme): shown redacted.
        &[
            "--github-api-url",
            "ftp://user:ghp_SECRETSECRET@host/?access_token=SECRETSECRET",
        ],
        &[
            "--events-sink-url",
            "ftp://user:ghp_SECRETSECRET@host/?access_token=SECRETSECRET",
        ],
        &["--events-sink-url", "not a url access_token=SECRETSECRET"],
        &[
            "--otlp-endpoint",
            "https://user:ghp_SECRETSECRET@host:99999/",
        ],
        &[
            "--otlp-endpoint",
            "ftp://user:ghp_SECRETSECRET@host/?access_token=SECRETSECRET",
        ],
    ];
    for args in cases {
        let err = Config::from_layers(Options::default(), flags(args))
            .err()
            .unwrap_or_else(|| panic!("{args:?} was accepted"))
            .to_string();
        assert!(!err.contains("SECRETSECRET"), "{err}");
        assert!(err.contains(args[0].trim_start_matches("--")), "{err}");
    }
    let err = Config::from_layers(
        Options::default(),
        flags(&[
            "--events-sink-url",
            "ftp://u:p@sink.example/?access_token=x",
        ]),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("sink.example"), "{err}");
}

fn with_store(store: &str, prefix: Option<&str>) -> Result<Config, ConfigError> {
    let over = Options {
        store: StoreOptions {
            store: Some(store.into()),
            store_prefix: prefix.map(str::to_string),
            ..Default::default()
        },
        ..Default::default()
    };
    Config::from_layers(Options::default(), over)
}

#[test]
fn the_store_is_local_or_a_redis_url_with_a_key_and_never_shows_its_password() {
    assert!(!with_store("local", None).unwrap().store.is_shared());
    let c = with_store("redis://:pw-secret-77@10.0.0.5:6379/2", None).unwrap();
    assert!(c.store.is_shared());
    let shown = c.redacted().to_string();
    assert!(!shown.contains("pw-secret-77"), "{shown}");
    assert!(
        with_store("rediss://:pw@h:6380/", None)
            .unwrap()
            .store
            .is_shared()
    );
    for bad in ["http://x/", "redis://", "not a url"] {
        let e = with_store(bad, None).unwrap_err().to_string();
        assert!(e.contains("store"), "{bad}: {e}");
    }
    let e = with_store("redis://h/", Some("bad prefix!"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("store-prefix"), "{e}");
    // The at-rest key: required, 32 bytes as hex or base64.
    let e = c.store.clone().with_key(None).unwrap_err().to_string();
    assert!(e.contains(STORE_KEY_ENV), "{e}");
    assert!(c.store.clone().with_key(Some("short".into())).is_err());
    let hex = "ab".repeat(32);
    let keyed = c.store.clone().with_key(Some(hex)).unwrap();
    assert_eq!(keyed.key_bytes(), Some([0xab; 32]));
    let b64 = "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=";
    assert_eq!(
        c.store.with_key(Some(b64.into())).unwrap().key_bytes(),
        Some([0xab; 32])
    );
}

fn with_store_options(store: StoreOptions) -> Result<Config, ConfigError> {
    let over = Options {
        store,
        ..Default::default()
    };
    Config::from_layers(Options::default(), over)
}

#[test]
fn the_store_tls_ca_and_artifact_limit_apply_to_redis_stores_only_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let not_pem = dir.path().join("x.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let opts = |store: &str, tls: Option<&std::path::Path>, max: Option<u64>| StoreOptions {
        store: Some(store.into()),
        store_tls_ca: tls.map(|p| p.to_path_buf()),
        store_max_artifact_bytes: max,
        ..Default::default()
    };
    assert!(with_store_options(opts("rediss://h/", Some(&ca), None)).is_ok());
    for (o, field) in [
        (opts("redis://h/", Some(&ca), None), "store-tls-ca"),
        (opts("local", Some(&ca), None), "store-tls-ca"),
        (opts("rediss://h/", Some(&not_pem), None), "store-tls-ca"),
        (
            opts("rediss://h/", Some(&dir.path().join("missing.pem")), None),
            "store-tls-ca",
        ),
        (opts("local", None, Some(1024)), "store-max-artifact-bytes"),
        (
            opts("redis://h/", None, Some(0)),
            "store-max-artifact-bytes",
        ),
        (
            opts("redis://h/", None, Some(32 << 20)),
            "store-max-artifact-bytes",
        ),
    ] {
        let e = with_store_options(o).unwrap_err().to_string();
        assert!(e.contains(field), "{e}");
    }
    let c = with_store_options(opts("redis://h/", None, Some(1024))).unwrap();
    assert_eq!(c.store.max_artifact_bytes(), Some(1024));
    let c = with_store_options(opts("redis://h/", None, None)).unwrap();
    assert_eq!(c.store.max_artifact_bytes(), Some(4 << 20));
}
