//! The written rules of the repository, checked (a "tidy" test, like rust-analyzer's
//! `xtask/src/tidy.rs`): every module says what it owns, metrics are declared in one
//! `metrics.rs` per crate, `docs/ARCHITECTURE.md` lists exactly the workspace's crates, and the
//! sans-IO cores never read a clock or touch tokio. Reads files only; no network, no build.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every crate directory under `crates/` (those with a Cargo.toml).
fn crates() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("crates"))
        .expect("crates/ exists")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("Cargo.toml").is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, path)
        })
        .collect();
    found.sort();
    found
}

/// The `src/` files of every crate.
fn source_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (_, path) in crates() {
        rust_files(&path.join("src"), &mut files);
    }
    files.sort();
    assert!(files.len() > 50, "found only {} source files", files.len());
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The lines of `text` that are code, not comments (good enough for token checks).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(index, line)| (index + 1, line))
}

#[test]
fn every_module_opens_with_a_doc_saying_what_it_owns() {
    let missing: Vec<String> = source_files()
        .into_iter()
        .filter(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|path| relative(&path))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a `//!` doc comment: {missing:#?}"
    );
}

#[test]
fn metrics_are_declared_only_in_each_crates_metrics_rs() {
    const MACROS: [&str; 6] = [
        "counter!(",
        "gauge!(",
        "histogram!(",
        "describe_counter!(",
        "describe_gauge!(",
        "describe_histogram!(",
    ];
    let mut strays = Vec::new();
    for path in source_files() {
        if path.file_name().is_some_and(|name| name == "metrics.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (number, line) in code_lines(&text) {
            if MACROS.iter().any(|name| line.contains(name)) {
                strays.push(format!("{}:{number}: {}", relative(&path), line.trim()));
            }
        }
    }
    assert!(
        strays.is_empty(),
        "metrics recorded outside a metrics.rs (declare a function there): {strays:#?}"
    );
}

#[test]
fn the_architecture_map_lists_exactly_the_workspace_crates() {
    let text = std::fs::read_to_string(repo().join("docs/ARCHITECTURE.md")).unwrap();
    let section = text
        .split("## Crates")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("docs/ARCHITECTURE.md has a ## Crates section");
    let listed: BTreeSet<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("- **`"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.starts_with("coil"))
        .map(str::to_owned)
        .collect();
    let workspace: BTreeSet<String> = crates().into_iter().map(|(name, _)| name).collect();
    let missing: Vec<_> = workspace.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&workspace).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/ARCHITECTURE.md's crate list is out of date: missing {missing:?}, no such crate {stale:?}"
    );
}

#[test]
fn the_sans_io_cores_read_no_clock_and_touch_no_tokio() {
    const PURE_CRATES: [&str; 6] = [
        "coil-sim",
        "coil-protocol",
        "coil-game",
        "coil-arena",
        "coil-breach",
        "coil-autoscale",
    ];
    const FORBIDDEN: [&str; 5] = [
        "std::time::Instant",
        "Instant::now",
        "SystemTime",
        "tokio",
        "std::net",
    ];
    let root = repo();
    let mut files = vec![
        root.join("crates/coil-server/src/room/core.rs"),
        root.join("crates/coil-match/src/placement.rs"),
        root.join("crates/coil-match/src/queue.rs"),
        root.join("crates/coil-match/src/rating.rs"),
    ];
    for name in PURE_CRATES {
        rust_files(&root.join("crates").join(name).join("src"), &mut files);
        let manifest = std::fs::read_to_string(root.join("crates").join(name).join("Cargo.toml"))
            .unwrap_or_else(|error| panic!("{name}/Cargo.toml: {error}"));
        let dependencies = manifest
            .split("[dependencies]")
            .nth(1)
            .map(|rest| rest.split("\n[").next().unwrap_or(""))
            .unwrap_or("");
        for io_crate in ["tokio", "reqwest", "sqlx", "redis", "axum", "hyper"] {
            assert!(
                !dependencies
                    .lines()
                    .any(|line| line.trim_start().starts_with(io_crate)),
                "{name} depends on {io_crate}: a sans-IO core must not"
            );
        }
    }
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (number, line) in code_lines(&text) {
            if let Some(token) = FORBIDDEN.iter().find(|token| line.contains(*token)) {
                found.push(format!("{}:{number}: {token}", relative(&path)));
            }
        }
    }
    assert!(
        found.is_empty(),
        "clock or IO in a sans-IO core (take `now`/`dt` as an argument): {found:#?}"
    );
}
