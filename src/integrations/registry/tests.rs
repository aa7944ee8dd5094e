//! Unit tests of the integration registry: storage, replay, compaction, the vault and
//! validation.

use super::validate::check_endpoint;
use super::*;

fn api(endpoint: &str) -> ConfigInput {
    ConfigInput {
        endpoint: Some(endpoint.into()),
        credentials: Some(BTreeMap::from([("token".into(), "s3cret".into())])),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_replay_and_vault_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let reg = IntegrationStore::open(dir.path(), Fsync::Never).unwrap();
    let made = reg
        .create(
            "a".into(),
            IntegrationType::Api,
            api("http://127.0.0.1:1/x"),
            &Principal::stdio(),
            false,
        )
        .await
        .unwrap();
    assert_eq!(made.config.credential_names, vec!["token"]);
    let record = std::fs::read_to_string(dir.path().join("registry.ndjson")).unwrap();
    assert!(!record.contains("s3cret"));
    let mode = std::fs::metadata(dir.path().join(VAULT))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let err = reg
        .create(
            "a".into(),
            IntegrationType::Api,
            api("http://h/"),
            &Principal::stdio(),
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DuplicateName(_)));
    reg.close().await;
    drop(reg);
    let reg = IntegrationStore::open(dir.path(), Fsync::Never).unwrap();
    assert_eq!(reg.get(&made.id).unwrap(), made);
    assert_eq!(reg.credentials(&made.id)["token"], "s3cret");
}

/// A journal written before secret headers were refused: the headers are dropped on
/// replay (never shown nor sent), and the journal is rewritten without them.
#[tokio::test]
async fn old_records_lose_their_secret_headers_on_replay() {
    let dir = tempfile::tempdir().unwrap();
    let record = serde_json::json!({"seq": 1, "rec": {"op": "put", "integration": {
        "id": "int-old", "name": "old", "type": "api", "status": "active",
        "config": {
            "endpoint": "http://127.0.0.1:1/",
            "credentialNames": [],
            "headers": {
                "Authorization": "Bearer OLDSECRET-1",
                "X-Api-Key": "OLDSECRET-2",
                "Accept": "application/json"
            },
            "retryPolicy": {"maxRetries": 1, "backoffMs": 100},
            "concurrency": 1,
            "operations": {},
            "allowWrites": false
        },
        "revision": 1,
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z"
    }}});
    std::fs::write(dir.path().join("registry.ndjson"), format!("{record}\n")).unwrap();
    let reg = IntegrationStore::open(dir.path(), Fsync::Never).unwrap();
    let got = reg.get("int-old").unwrap();
    assert_eq!(
        got.config.headers,
        BTreeMap::from([("Accept".to_string(), "application/json".to_string())])
    );
    let shown = serde_json::to_string(&got).unwrap();
    assert!(!shown.contains("OLDSECRET"), "{shown}");
    reg.close().await;
    drop(reg);
    let mut on_disk = String::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            on_disk.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    assert!(!on_disk.contains("OLDSECRET"), "{on_disk}");
    let reg = IntegrationStore::open(dir.path(), Fsync::Never).unwrap();
    assert_eq!(reg.get("int-old").unwrap(), got);
}

fn stored_bytes(dir: &Path) -> u64 {
    ["registry.ndjson", "registry.snapshot.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test]
async fn many_updates_compact_the_journal_and_the_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = StreamOptions::new(Fsync::Never, 8192);
    let reg = IntegrationStore::open_with(dir.path(), options).unwrap();
    let me = Principal::stdio();
    let mut made = Vec::new();
    for name in ["a", "b", "gone"] {
        let url = format!("http://127.0.0.1:1/{name}");
        let i = reg
            .create(name.into(), IntegrationType::Api, api(&url), &me, false)
            .await
            .unwrap();
        made.push(i);
    }
    reg.delete(&made[2].id, &me, None).await.unwrap();
    let before = stored_bytes(dir.path());
    let mut last = HashMap::new();
    for n in 0..300 {
        let id = &made[n % 2].id;
        let status = [Status::Error, Status::Active][(n / 2) % 2];
        let change = Change {
            name: None,
            r#type: None,
            status: Some(status),
            config: None,
        };
        let (i, _) = reg.update(id, &me, change).await.unwrap();
        last.insert(id.clone(), i);
    }
    reg.close().await;
    let appended: u64 = 300 * serde_json::to_vec(&last[&made[0].id]).unwrap().len() as u64;
    let stored = stored_bytes(dir.path());
    assert!(
        stored < appended / 10,
        "{stored} bytes stored for {appended} bytes of updates ({before} before them)"
    );
    assert!(dir.path().join("registry.snapshot.json").exists());
    drop(reg);

    let reg = IntegrationStore::open_with(dir.path(), options).unwrap();
    assert_eq!(reg.get(&made[0].id).unwrap(), last[&made[0].id]);
    assert_eq!(reg.get(&made[1].id).unwrap(), last[&made[1].id]);
    assert_eq!(reg.get(&made[0].id).unwrap().revision, 151);
    assert!(matches!(
        reg.get(&made[2].id),
        Err(RegistryError::NotFound(_))
    ));
    assert_eq!(reg.list(&me, None, None).len(), 2);
    assert_eq!(reg.credentials(&made[1].id)["token"], "s3cret");
    let snapshot = std::fs::read_to_string(dir.path().join("registry.snapshot.json")).unwrap();
    assert!(!snapshot.contains(&made[2].id), "deleted integration kept");
    reg.close().await;
}

#[test]
fn validation_names_the_field() {
    let bad = ConfigInput {
        endpoint: Some("ftp://x".into()),
        ..Default::default()
    };
    let e = build_config(IntegrationType::Api, bad, None).unwrap_err();
    assert!(e.to_string().starts_with("config.endpoint"), "{e}");
    let bad = ConfigInput {
        endpoint: Some("http://x".into()),
        headers: Some(BTreeMap::from([(
            "Authorization".into(),
            "Bearer x".into(),
        )])),
        ..Default::default()
    };
    let e = build_config(IntegrationType::Api, bad, None).unwrap_err();
    assert!(
        e.to_string().contains("config.headers.Authorization"),
        "{e}"
    );
    let e = check_endpoint(IntegrationType::Database, "postgres://u:pw@h/db").unwrap_err();
    if cfg!(feature = "postgres") {
        assert!(e.to_string().contains("password"), "{e}");
    } else {
        assert!(e.to_string().contains("not in this build"), "{e}");
    }
}

#[test]
fn integration_types_follow_the_build_features() {
    let db = check_endpoint(IntegrationType::Database, "postgres://h/db");
    assert_eq!(db.is_ok(), cfg!(feature = "postgres"), "{db:?}");
    let mq = check_endpoint(IntegrationType::MessageQueue, "redis://h");
    assert_eq!(mq.is_ok(), cfg!(feature = "redis"), "{mq:?}");
    assert!(check_endpoint(IntegrationType::Api, "http://h/").is_ok());
}
