//! A secret key file created once and then only read: the all-in-one shape generates its
//! access-token signing key into the data directory on first start.
//!
//! The creation is atomic in the way `coil_match::TokenSigner::load_or_create` is (a private
//! temporary file, then a hard link into place, so two processes starting at once never see a
//! half-written key and the loser reads the winner's). It is a small generic copy rather than a
//! shared helper because the join-token code belongs to `coil-match`, which must not depend on
//! the identity crate, and the helper is twenty lines; moving both onto one helper in a crate
//! they share is a cleanup for whoever next touches either.

use std::io::Write;
use std::path::Path;

/// Reads the file's text, or creates it (mode 0600 on Unix) with `generate()`'s text.
pub fn load_or_create_secret_file(
    path: &Path,
    generate: impl FnOnce() -> String,
) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    let text = generate();
    let suffix: u64 = rand::random();
    let temporary = path.with_extension(format!("tmp-{suffix:016x}"));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path)
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_writer_wins_and_later_calls_read_it() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("nested").join("key");
        let first = load_or_create_secret_file(&path, || "one\n".into()).unwrap();
        let second = load_or_create_secret_file(&path, || "two\n".into()).unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("one\n", "one\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn concurrent_creators_agree_on_one_key() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("key");
        let threads: Vec<_> = (0..8)
            .map(|index| {
                let path = path.clone();
                std::thread::spawn(move || {
                    load_or_create_secret_file(&path, || format!("key-{index}\n")).unwrap()
                })
            })
            .collect();
        let keys: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(keys.iter().all(|key| key == &keys[0]), "{keys:?}");
    }
}
