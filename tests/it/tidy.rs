//! Code-base hygiene checked by `cargo test` (after rust-analyzer's tidy tests): every source
//! file says what it is, stays readable in size, carries no debugging leftovers, and every
//! top-level module appears in ARCHITECTURE.md's code map.

use std::path::{Path, PathBuf};

use crate::common::repo;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples", "fuzz/src", "fuzz/fuzz_targets"] {
        let d = repo(dir);
        if d.is_dir() {
            rust_files(&d, &mut files);
        }
    }
    files.into_iter().map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap())).collect()
}

#[test]
fn every_file_starts_with_a_module_doc() {
    for (path, text) in sources() {
        assert!(text.starts_with("//!"), "{} must start with a `//!` header", path.display());
    }
}

#[test]
fn files_stay_under_600_lines() {
    for (path, text) in sources() {
        let n = text.lines().count();
        assert!(n <= 600, "{} has {n} lines; split it by concern", path.display());
    }
}

#[test]
fn no_debugging_leftovers() {
    let this = repo("tests/it/tidy.rs");
    for (path, text) in sources() {
        if path == this {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            for banned in ["dbg!(", "todo!(", "unimplemented!("] {
                assert!(!line.contains(banned), "{}:{}: `{banned}`", path.display(), i + 1);
            }
            assert!(
                !line.ends_with(' ') && !line.ends_with('\t'),
                "{}:{}: trailing whitespace",
                path.display(),
                i + 1
            );
        }
    }
}

#[test]
fn every_top_level_module_is_in_the_code_map() {
    let arch = std::fs::read_to_string(repo("ARCHITECTURE.md")).unwrap();
    for entry in std::fs::read_dir(repo("src")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "main" || name == "lib" {
            continue;
        }
        assert!(
            arch.contains(&format!("`src/{name}")),
            "ARCHITECTURE.md does not map `src/{name}`"
        );
    }
}
