//! Score receipts end to end: issued receipts verify, anything altered or forged is refused,
//! and the key file is created once (0600) and reloaded unchanged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coil_store::{ReceiptError, ReceiptKey, ScoreEntry, StoreError};

fn entry() -> ScoreEntry {
    ScoreEntry {
        run_id: "run-7f3a".to_owned(),
        name: "Ada".to_owned(),
        score: 4_321,
        room: "eu-1/room-9".to_owned(),
        recorded_at_ms: 1_763_700_000_000,
    }
}

fn key(byte: u8) -> ReceiptKey {
    ReceiptKey::from_secret(&[byte; 32]).unwrap()
}

#[test]
fn issued_receipts_verify_to_the_same_entry_and_are_url_safe() {
    let key = key(1);
    let receipt = key.issue(&entry());
    assert_eq!(key.verify(&receipt), Ok(entry()));
    assert_eq!(receipt.matches('.').count(), 1);
    assert!(
        receipt
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'),
        "{receipt}"
    );
}

#[test]
fn a_receipt_with_an_edited_payload_is_refused() {
    let key = key(1);
    let receipt = key.issue(&entry());
    let (payload_text, mac_text) = receipt.split_once('.').unwrap();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload_text).unwrap()).unwrap();
    assert!(payload.contains("4321"), "{payload}");
    let inflated = payload.replace("4321", "999999");
    let forged = format!("{}.{mac_text}", URL_SAFE_NO_PAD.encode(inflated));
    assert_eq!(key.verify(&forged), Err(ReceiptError::BadSignature));
}

#[test]
fn flipping_any_character_of_a_receipt_breaks_it() {
    let key = key(1);
    let receipt = key.issue(&entry());
    for position in 0..receipt.len() {
        let mut bytes = receipt.clone().into_bytes();
        if bytes[position] == b'.' {
            continue;
        }
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        // Changing the last base64 character can leave the decoded bytes the same only if the
        // change is in unused padding bits; URL_SAFE_NO_PAD rejects non-canonical trailing bits,
        // so every alteration must be refused one way or the other.
        assert!(
            key.verify(&altered).is_err(),
            "accepted alteration at {position}: {altered}"
        );
    }
}

#[test]
fn a_receipt_from_another_key_is_refused() {
    let receipt = key(2).issue(&entry());
    assert_eq!(key(1).verify(&receipt), Err(ReceiptError::BadSignature));
}

#[test]
fn a_mac_moved_onto_another_payload_is_refused() {
    let key = key(1);
    let first = key.issue(&entry());
    let second = key.issue(&ScoreEntry {
        score: 1,
        ..entry()
    });
    let (first_payload, _) = first.split_once('.').unwrap();
    let (_, second_mac) = second.split_once('.').unwrap();
    assert_eq!(
        key.verify(&format!("{first_payload}.{second_mac}")),
        Err(ReceiptError::BadSignature)
    );
}

#[test]
fn malformed_receipts_are_refused_as_malformed() {
    let key = key(1);
    let good = key.issue(&entry());
    let (payload_text, mac_text) = good.split_once('.').unwrap();
    let short_mac = URL_SAFE_NO_PAD.encode([0_u8; 16]);
    let oversized = format!("{}.{mac_text}", "A".repeat(5_000));
    let cases = [
        String::new(),
        ".".to_owned(),
        "no-dot-at-all".to_owned(),
        format!(".{mac_text}"),
        format!("{payload_text}."),
        format!("{good}.extra"),
        format!("{payload_text}.{mac_text}="),
        format!("{payload_text}.!!!not-base64!!!"),
        format!("{payload_text}.{short_mac}"),
        format!("{payload_text} .{mac_text}"),
        oversized,
        "\u{0}\u{ffff}.🐍".to_owned(),
    ];
    for receipt in cases {
        assert_eq!(
            key.verify(&receipt),
            Err(ReceiptError::Malformed),
            "{receipt:?}"
        );
    }
}

#[test]
fn short_secrets_are_refused() {
    for length in [0, 1, 16, 31] {
        match ReceiptKey::from_secret(&vec![9_u8; length]) {
            Err(StoreError::InvalidKey { reason }) => assert!(reason.contains(&length.to_string())),
            other => panic!("{length}-byte secret should be refused, got {other:?}"),
        }
    }
    assert!(ReceiptKey::from_secret(&[9_u8; 32]).is_ok());
    assert!(ReceiptKey::from_secret(&[9_u8; 64]).is_ok());
}

#[test]
fn key_file_is_created_once_with_owner_only_permissions_and_reloaded() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory
        .path()
        .join("data")
        .join("keys")
        .join("receipt.key");

    let created = ReceiptKey::load_or_create(&path).unwrap();
    let secret = std::fs::read(&path).unwrap();
    assert_eq!(secret.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode is {mode:o}");
    }

    let reloaded = ReceiptKey::load_or_create(&path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        secret,
        "the key file was rewritten"
    );
    // Receipts issued before a restart verify after it, in both directions.
    assert_eq!(reloaded.verify(&created.issue(&entry())), Ok(entry()));
    assert_eq!(created.verify(&reloaded.issue(&entry())), Ok(entry()));
    // The key really is the file's bytes.
    let from_bytes = ReceiptKey::from_secret(&secret).unwrap();
    assert_eq!(from_bytes.verify(&created.issue(&entry())), Ok(entry()));

    // No staging files are left behind next to the key.
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|item| item.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("receipt.key")]);
}

#[test]
fn two_fresh_key_files_hold_different_secrets() {
    let directory = tempfile::tempdir().unwrap();
    let first = directory.path().join("first.key");
    let second = directory.path().join("second.key");
    let first_key = ReceiptKey::load_or_create(&first).unwrap();
    let second_key = ReceiptKey::load_or_create(&second).unwrap();
    assert_ne!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    assert_eq!(
        second_key.verify(&first_key.issue(&entry())),
        Err(ReceiptError::BadSignature)
    );
}

#[test]
fn racing_creators_agree_on_one_key() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("race").join("receipt.key");
    let keys: Vec<ReceiptKey> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| ReceiptKey::load_or_create(&path).unwrap()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap())
            .collect()
    });
    let receipt = keys[0].issue(&entry());
    for key in &keys {
        assert_eq!(key.verify(&receipt), Ok(entry()));
    }
}

#[test]
fn a_short_existing_key_file_is_refused_not_replaced() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("receipt.key");
    std::fs::write(&path, b"too short").unwrap();
    match ReceiptKey::load_or_create(&path) {
        Err(StoreError::InvalidKey { reason }) => {
            assert!(reason.contains("receipt.key"), "{reason}")
        }
        other => panic!("expected InvalidKey, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"too short");
}

#[test]
fn an_unreadable_key_path_is_a_key_file_error() {
    let directory = tempfile::tempdir().unwrap();
    // A directory where the key file should be cannot be read as a key.
    let path = directory.path().join("is-a-directory");
    std::fs::create_dir(&path).unwrap();
    assert!(matches!(
        ReceiptKey::load_or_create(&path),
        Err(StoreError::KeyFile { action: "read", .. })
    ));
}
