//! Unit tests of option merging, validation, redaction, file trust rules, and that the
//! README's configuration table lists exactly the flags and variables `--help` does.

use std::time::Duration;

use super::{
    file::{check_file_placement, parse},
    *,
};

use super::*;

#[test]
fn defaults_enable_the_five_toolsets() {
    let c = Config::from_layers(Options::default(), Options::default()).unwrap();
    assert_eq!(c.toolsets, DEFAULT_TOOLSETS);
    assert!(!c.toolset_enabled("batch"));
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

#[test]
fn non_loopback_bind_needs_token() {
    let c = Config::from_layers(Options::default(), Options::default()).unwrap();
    assert!(c.check_bind("0.0.0.0:7439".parse().unwrap()).is_err());
    assert!(c.check_bind("127.0.0.1:7439".parse().unwrap()).is_ok());
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
