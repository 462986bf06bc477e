//! Finding a workspace's files and hashing them into a version.
//!
//! A workspace is a directory holding:
//! - `schema.cedarschema` (optional) at the top;
//! - any number of `*.cedar` files, in any subdirectory;
//! - entity data as `entities.json` and/or `entities/**/*.json` (Cedar's JSON entity format);
//! - `links.json` (optional): template links in the `cedar --template-linked` format.
//!
//! Hidden files and directories (names starting with `.`) are ignored, so editor swap files
//! never count. A subdirectory with its own `schema.cedarschema` is a *separate* workspace (for
//! example `policies/access/`) and is not part of its parent. Directory symlinks are not
//! followed.
//!
//! The version is `sha256:` over a manifest of `"<sha256 of file>  <path>\n"` lines sorted by
//! path (the format of `sha256sum`), so an auditor can recompute it with standard tools.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diagnostic::Diagnostic;

/// The file name of a workspace schema.
pub const SCHEMA_FILE: &str = "schema.cedarschema";
/// The file name of the single-file entity data.
pub const ENTITIES_FILE: &str = "entities.json";
/// The directory of multi-file entity data.
pub const ENTITIES_DIR: &str = "entities";
/// The file name of template links.
pub const LINKS_FILE: &str = "links.json";

/// What a workspace file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// `schema.cedarschema`.
    Schema,
    /// A `*.cedar` policy file.
    Policies,
    /// Cedar JSON entity data.
    Entities,
    /// Template links.
    Links,
}

/// One file of a workspace, read into memory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the workspace root, with `/` separators.
    pub path: String,
    /// What the file holds.
    pub kind: FileKind,
    /// The file's text.
    pub text: Arc<str>,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
}

/// The content versions of a workspace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Versions {
    /// Hash over every file: identifies exactly what decided a request.
    pub workspace: String,
    /// Hash over the entity data files only.
    pub entities: String,
}

/// Reads every file of the workspace at `root`, sorted by path.
///
/// Unreadable or non-UTF-8 files are reported as diagnostics; the walk goes on so that every
/// problem is reported at once.
pub fn read_workspace(root: &Path) -> Result<Vec<SourceFile>, Vec<Diagnostic>> {
    let shown = root.display().to_string();
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(vec![Diagnostic::file_error(shown, "not a directory")]),
        Err(e) => {
            return Err(vec![Diagnostic::file_error(
                shown,
                format!("cannot open workspace directory: {e}"),
            )])
        }
    }
    let mut found = Vec::new();
    let mut diags = Vec::new();
    walk(root, root, true, &mut found, &mut diags);
    found.sort_by(|a, b| a.0.cmp(&b.0));

    let mut files = Vec::with_capacity(found.len());
    for (rel, kind, path) in found {
        match std::fs::read(&path) {
            Ok(bytes) => {
                let sha256 = sha256_hex(&bytes);
                match String::from_utf8(bytes) {
                    Ok(text) => {
                        files.push(SourceFile { path: rel, kind, text: text.into(), sha256 })
                    }
                    Err(e) => diags.push(Diagnostic::file_error(
                        rel,
                        format!("file is not valid UTF-8 (byte {})", e.utf8_error().valid_up_to()),
                    )),
                }
            }
            Err(e) => diags.push(Diagnostic::file_error(rel, format!("cannot read file: {e}"))),
        }
    }
    if diags.is_empty() {
        Ok(files)
    } else {
        Err(diags)
    }
}

/// Computes the workspace and entity-data versions of a set of files.
pub fn versions(files: &[SourceFile]) -> Versions {
    let manifest = |filter: &dyn Fn(&SourceFile) -> bool| {
        let mut m = String::new();
        for f in files.iter().filter(|f| filter(f)) {
            m.push_str(&f.sha256);
            m.push_str("  ");
            m.push_str(&f.path);
            m.push('\n');
        }
        format!("sha256:{}", sha256_hex(m.as_bytes()))
    };
    Versions {
        workspace: manifest(&|_| true),
        entities: manifest(&|f| f.kind == FileKind::Entities),
    }
}

/// Lower-case hex SHA-256 of some bytes (ring, the project's one crypto library).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

fn walk(
    root: &Path,
    dir: &Path,
    top: bool,
    found: &mut Vec<(String, FileKind, PathBuf)>,
    diags: &mut Vec<Diagnostic>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::file_error(rel_path(root, dir), format!("cannot list: {e}")));
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let is_file = file_type.is_file()
            || (file_type.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_file()));
        if file_type.is_dir() {
            if path.join(SCHEMA_FILE).is_file() {
                // A nested workspace (e.g. the API access policies) is loaded on its own.
                continue;
            }
            walk(root, &path, false, found, diags);
        } else if is_file {
            if let Some(kind) = classify(root, &path, top, &name) {
                found.push((rel_path(root, &path), kind, path));
            }
        }
    }
}

fn classify(root: &Path, path: &Path, top: bool, name: &str) -> Option<FileKind> {
    if top && name == SCHEMA_FILE {
        return Some(FileKind::Schema);
    }
    if top && name == ENTITIES_FILE {
        return Some(FileKind::Entities);
    }
    if top && name == LINKS_FILE {
        return Some(FileKind::Links);
    }
    if name.ends_with(".cedar") {
        return Some(FileKind::Policies);
    }
    let in_entities_dir = path.strip_prefix(root.join(ENTITIES_DIR)).is_ok();
    if in_entities_dir && name.ends_with(".json") {
        return Some(FileKind::Entities);
    }
    None
}

fn rel_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> =
        rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn finds_policies_entities_and_skips_hidden_and_nested_workspaces() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "schema.cedarschema", "");
        write(d.path(), "a.cedar", "");
        write(d.path(), "sub/b.cedar", "");
        write(d.path(), ".swp.cedar", "");
        write(d.path(), ".git/c.cedar", "");
        write(d.path(), "entities.json", "[]");
        write(d.path(), "entities/more.json", "[]");
        write(d.path(), "tests/case.json", "{}");
        write(d.path(), "access/schema.cedarschema", "");
        write(d.path(), "access/x.cedar", "");
        let files = read_workspace(d.path()).unwrap();
        let names: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
        assert_eq!(
            names,
            vec![
                ("a.cedar", FileKind::Policies),
                ("entities.json", FileKind::Entities),
                ("entities/more.json", FileKind::Entities),
                ("schema.cedarschema", FileKind::Schema),
                ("sub/b.cedar", FileKind::Policies),
            ]
        );
    }

    #[test]
    fn version_changes_with_content_and_is_stable_otherwise() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.cedar", "permit(principal, action, resource);");
        let v1 = versions(&read_workspace(d.path()).unwrap());
        let v2 = versions(&read_workspace(d.path()).unwrap());
        assert_eq!(v1, v2);
        assert!(v1.workspace.starts_with("sha256:"));
        write(d.path(), "a.cedar", "forbid(principal, action, resource);");
        let v3 = versions(&read_workspace(d.path()).unwrap());
        assert_ne!(v1.workspace, v3.workspace);
        assert_eq!(v1.entities, v3.entities, "entity version ignores policy files");
    }

    #[test]
    fn missing_directory_is_a_diagnostic() {
        let err = read_workspace(Path::new("/nonexistent/medpdp")).unwrap_err();
        assert!(err[0].message.contains("cannot open workspace directory"));
    }

    #[test]
    fn invalid_utf8_is_reported_with_the_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("bad.cedar"), [0x70, 0xff, 0xfe]).unwrap();
        let err = read_workspace(d.path()).unwrap_err();
        assert_eq!(err[0].file, "bad.cedar");
        assert!(err[0].message.contains("UTF-8"));
    }
}
