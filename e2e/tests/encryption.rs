//! Encryption at rest (`--encryption-provider-config`) against the real
//! apiserver binary: Secrets written through kubectl are stored only as
//! ciphertext in upstream's layout, read straight from the embedded store's
//! files and from etcd, while an unencrypted ConfigMap shows the same scan
//! finds plain values; after a key rotation (a new first provider, the old
//! key kept) old Secrets stay readable and rewrites use the new key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use rkube_e2e::cluster::{Backend, TEST_DISABLED_ADMISSION, TestCluster};
use rkube_storage::{StorageBackend, StorageConfig};

const KEY1: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI="; // 32 bytes
const KEY2: &str = "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY="; // 32 bytes

const PLAIN_SECRET: &str = "s3cr3t-never-on-disk-7f1c";
const PLAIN_SECRET2: &str = "s3cr3t-after-rotation-2b9d";
const PLAIN_CONFIG: &str = "plain-config-value-on-disk-4e8a";

fn write_config(path: &Path, providers: &str) {
    std::fs::write(
        path,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
             - resources: [secrets]\n  providers:\n{providers}"
        ),
    )
    .unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every byte the embedded backend has written: its log segments and database file.
fn stored_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(stored_files(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

/// The stored value of a key, read from the cluster's storage without the apiserver.
async fn raw_value(c: &TestCluster, key: &str, needle_in_db: &str) -> Vec<u8> {
    match c.backend() {
        Backend::Etcd => {
            let store = StorageConfig {
                backend: StorageBackend::Etcd,
                etcd_servers: c.etcd_client_urls(),
                etcd_prefix: "/registry".into(),
                ..StorageConfig::default()
            }
            .open()
            .await
            .unwrap();
            store.get(key, None).await.unwrap().expect(key).value.to_vec()
        }
        Backend::Embedded => {
            // Wait until the checkpointer has copied the latest write into
            // the database file, then return every stored byte.
            let dir = c.data_dir().join("store");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let files = stored_files(&dir);
                let in_db = files
                    .iter()
                    .any(|(n, b)| n.ends_with(".redb") && contains(b, needle_in_db.as_bytes()));
                if in_db || Instant::now() > deadline {
                    assert!(in_db, "{needle_in_db} never reached the database file");
                    return files.into_iter().flat_map(|(_, b)| b).collect();
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn secret_value(c: &TestCluster, name: &str) -> String {
    let b64 = c
        .ok(&["get", "secret", name, "-o", "jsonpath={.data.password}"])
        .unwrap();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap()).unwrap()
}

async fn secrets_encrypted_and_rotated(backend: Backend) {
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("encryption.yaml");
    write_config(
        &conf,
        &format!("  - aesgcm: {{keys: [{{name: key1, secret: {KEY1}}}]}}\n  - identity: {{}}\n"),
    );
    let flag = format!("--encryption-provider-config={}", conf.display());
    let mut c = TestCluster::start_with(backend, &[TEST_DISABLED_ADMISSION, &flag])
        .await
        .unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    c.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        &format!("--from-literal=password={PLAIN_SECRET}"),
    ])
    .unwrap();
    // Written after the Secret: once it is in the database file, so is the Secret.
    c.ok(&["create", "configmap", "c1", &format!("--from-literal=v={PLAIN_CONFIG}")])
        .unwrap();
    match backend {
        Backend::Etcd => {
            let s1 = raw_value(&c, "/core/secrets/default/s1", "").await;
            assert!(
                s1.starts_with(b"k8s:enc:aesgcm:v1:key1:"),
                "{}",
                String::from_utf8_lossy(&s1)
            );
            assert!(!contains(&s1, PLAIN_SECRET.as_bytes()) && !contains(&s1, b64(PLAIN_SECRET).as_bytes()));
            // The same read shows plain values where none is configured.
            let c1 = raw_value(&c, "/core/configmaps/default/c1", "").await;
            assert!(contains(&c1, PLAIN_CONFIG.as_bytes()));
        }
        Backend::Embedded => {
            let all = raw_value(&c, "", PLAIN_CONFIG).await;
            assert!(contains(&all, b"k8s:enc:aesgcm:v1:key1:"));
            assert!(!contains(&all, PLAIN_SECRET.as_bytes()), "plain secret on disk");
            assert!(!contains(&all, b64(PLAIN_SECRET).as_bytes()), "base64 secret on disk");
        }
    }
    assert_eq!(secret_value(&c, "s1"), PLAIN_SECRET);

    // Rotation: a new first provider writes; key1 still reads.
    write_config(
        &conf,
        &format!(
            "  - secretbox: {{keys: [{{name: key2, secret: {KEY2}}}]}}\n  - aesgcm: {{keys: [{{name: key1, secret: {KEY1}}}]}}\n"
        ),
    );
    c.restart_apiserver().unwrap();
    assert_eq!(secret_value(&c, "s1"), PLAIN_SECRET, "old data readable after rotation");
    c.ok(&[
        "create",
        "secret",
        "generic",
        "s2",
        &format!("--from-literal=password={PLAIN_SECRET2}"),
    ])
    .unwrap();
    c.ok(&["label", "secret", "s1", "rotated=yes"]).unwrap();
    c.ok(&[
        "create",
        "configmap",
        "c2",
        "--from-literal=v=after-rotation-marker-5c3e",
    ])
    .unwrap();
    assert_eq!(secret_value(&c, "s2"), PLAIN_SECRET2);
    assert_eq!(
        c.ok(&["get", "secrets", "-l", "rotated=yes", "-o", "name"])
            .unwrap()
            .trim(),
        "secret/s1"
    );
    match backend {
        Backend::Etcd => {
            for (key, plain) in [
                ("/core/secrets/default/s1", PLAIN_SECRET),
                ("/core/secrets/default/s2", PLAIN_SECRET2),
            ] {
                let v = raw_value(&c, key, "").await;
                assert!(
                    v.starts_with(b"k8s:enc:secretbox:v1:key2:"),
                    "{key}: {}",
                    String::from_utf8_lossy(&v)
                );
                assert!(!contains(&v, plain.as_bytes()) && !contains(&v, b64(plain).as_bytes()));
            }
        }
        Backend::Embedded => {
            let all = raw_value(&c, "", "after-rotation-marker-5c3e").await;
            assert!(contains(&all, b"k8s:enc:secretbox:v1:key2:"));
            for plain in [PLAIN_SECRET, PLAIN_SECRET2] {
                assert!(!contains(&all, plain.as_bytes()) && !contains(&all, b64(plain).as_bytes()));
            }
        }
    }

    // Once every Secret was rewritten with key2, key1 can go.
    write_config(
        &conf,
        &format!("  - secretbox: {{keys: [{{name: key2, secret: {KEY2}}}]}}\n"),
    );
    c.restart_apiserver().unwrap();
    assert_eq!(secret_value(&c, "s2"), PLAIN_SECRET2);
}

#[tokio::test]
async fn secrets_encrypted_and_rotated_embedded() {
    secrets_encrypted_and_rotated(Backend::Embedded).await;
}

#[tokio::test]
async fn secrets_encrypted_and_rotated_etcd() {
    secrets_encrypted_and_rotated(Backend::Etcd).await;
}

#[tokio::test]
async fn bad_configuration_stops_the_apiserver() {
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("encryption.yaml");
    write_config(&conf, "  - aesgcm: {keys: [{name: k, secret: c2hvcnQ=}]}\n");
    let flag = format!("--encryption-provider-config={}", conf.display());
    let err = match TestCluster::start_with(Backend::Embedded, &[&flag]).await {
        Ok(_) => panic!("started with a 5-byte AES key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("secret is not of the expected length, got 5, expected one of [16 24 32]"),
        "{err}"
    );
}
