//! Root keys from key files and passphrases.

mod common;

use std::os::unix::fs::PermissionsExt;

use civitas_kms::{Argon2Cost, KeyRing, KmsError, PassphraseParams, RootKey, RootKeySource};
use common::{at, id};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn key_file_is_created_owner_only_and_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    let created = RootKey::create_key_file(&path).unwrap();
    assert_eq!(created.source(), RootKeySource::KeyFile);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read(&path).unwrap().len(), 32);
    // No temporary left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The loaded key opens what the created key sealed.
    let mut ring = KeyRing::new(created);
    ring.create_key(&id("k"), at(1)).unwrap();
    let sealed = ring.to_sealed_bytes().unwrap();
    let loaded = RootKey::load_key_file(&path).unwrap();
    assert!(KeyRing::from_sealed_bytes(&sealed, loaded).is_ok());
}

#[test]
fn an_existing_key_file_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    RootKey::create_key_file(&path).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        RootKey::create_key_file(&path),
        Err(KmsError::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn key_file_readable_by_others_is_refused_naming_file_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.key");
    RootKey::create_key_file(&path).unwrap();
    for bad in [0o644, 0o640, 0o604, 0o620, 0o602, 0o610] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
        let err = RootKey::load_key_file(&path).unwrap_err();
        match &err {
            KmsError::InsecureKeyFile { path: p, mode } => {
                assert_eq!(p, &path);
                assert_eq!(*mode, bad);
            }
            other => panic!("{bad:o}: {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("{bad:04o}")), "{msg}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(RootKey::load_key_file(&path).is_ok());
}

#[test]
fn key_file_of_the_wrong_size_or_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.key");
    std::fs::write(&path, [0u8; 31]).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(
        RootKey::load_key_file(&path),
        Err(KmsError::BadKeyFile { .. })
    ));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(
        RootKey::load_key_file(dir.path()),
        Err(KmsError::BadKeyFile { .. })
    ));
    assert!(matches!(
        RootKey::load_key_file(&dir.path().join("missing")),
        Err(KmsError::Io { .. })
    ));
}

#[test]
fn passphrase_round_trip_and_wrong_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let params_path = dir.path().join("root.params.json");
    let (key, params) = RootKey::new_passphrase(b"correct horse", Argon2Cost::MINIMUM).unwrap();
    assert_eq!(key.source(), RootKeySource::Passphrase);
    assert_eq!(params.cost(), Argon2Cost::MINIMUM);
    params.write(&params_path).unwrap();

    let mut ring = KeyRing::new(key);
    ring.create_key(&id("k"), at(1)).unwrap();
    let sealed = ring.to_sealed_bytes().unwrap();

    let stored = PassphraseParams::read(&params_path).unwrap();
    assert_eq!(stored, params);
    let again = RootKey::from_passphrase(b"correct horse", &stored).unwrap();
    assert!(KeyRing::from_sealed_bytes(&sealed, again).is_ok());

    assert!(matches!(
        RootKey::from_passphrase(b"correct horsf", &stored),
        Err(KmsError::WrongPassphrase)
    ));
}

#[test]
fn passphrase_parameters_are_validated() {
    assert!(matches!(
        RootKey::new_passphrase(b"", Argon2Cost::MINIMUM),
        Err(KmsError::PassphraseParams(_))
    ));
    let (_, params) = RootKey::new_passphrase(b"pw", Argon2Cost::MINIMUM).unwrap();
    let json = params.to_json();
    for (from, to) in [
        ("\"argon2id\"", "\"argon2i\""),
        ("\"memory_kib\": 19456", "\"memory_kib\": 1024"),
        ("\"memory_kib\": 19456", "\"memory_kib\": 99999999"),
        ("\"iterations\": 2", "\"iterations\": 1"),
        ("\"salt\": \"", "\"salt\": \"zz"),
        ("\"check\": \"", "\"check\": \"00"),
    ] {
        assert!(json.contains(from), "{json}");
        let edited = PassphraseParams::from_json(&json.replace(from, to)).unwrap();
        assert!(
            matches!(
                RootKey::from_passphrase(b"pw", &edited),
                Err(KmsError::PassphraseParams(_))
            ),
            "{to}"
        );
    }
    assert!(PassphraseParams::from_json("{}").is_err());
    assert!(PassphraseParams::from_json(&json.replace("{", "{\"extra\": 1,")).is_err());
}
