//! Loading a workspace: parse every file, validate, and assemble a [`Snapshot`], or report
//! every problem found (never just the first).
//!
//! Each `*.cedar` file is parsed on its own so that Cedar's error spans are offsets into that
//! file. Policy ids come from an `@id("…")` annotation, else `<path>#<n>` (the n-th policy or
//! template of the file, from 1). Duplicate ids are errors. When `schema.cedarschema` exists,
//! policies are validated in strict mode and entity data is checked against it.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    Entities, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Schema, SlotId,
    ValidationMode, Validator,
};
use time::OffsetDateTime;

use super::diagnostic::{Diagnostic, Severity};
use super::entities::load_entities;
use super::files::{read_workspace, versions, FileKind, SourceFile};
use super::shapes::RequestShapes;
use super::snapshot::{Effect, PolicyInfo, Snapshot, SnapshotMeta};

/// A successfully loaded workspace and the file contents it was built from (kept so the
/// caller can archive exactly what became active).
#[derive(Debug)]
pub struct LoadedWorkspace {
    /// The validated snapshot.
    pub snapshot: Snapshot,
    /// The files, sorted by path.
    pub sources: Vec<SourceFile>,
}

/// Why a workspace could not be loaded: every diagnostic found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("workspace `{dir}` is invalid: {} error(s)", self.error_count())]
pub struct LoadError {
    /// The workspace directory as given.
    pub dir: String,
    /// The content version of the broken files, when they could be read.
    pub version: Option<String>,
    /// Errors (and warnings) with their locations.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// Number of error-severity diagnostics.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }
}

/// Loads and validates the workspace in `root`.
pub fn load_workspace(root: &Path) -> Result<LoadedWorkspace, LoadError> {
    let files = read_workspace(root).map_err(|diagnostics| LoadError {
        dir: root.display().to_string(),
        version: None,
        diagnostics,
    })?;
    build_snapshot(root, files)
}

/// Parses and validates files already read from the workspace in `root`.
pub fn build_snapshot(root: &Path, files: Vec<SourceFile>) -> Result<LoadedWorkspace, LoadError> {
    rebuild_snapshot(root, files, None)
}

/// [`build_snapshot`], taking the entity store from `previous` instead of parsing it again
/// when the entity files and the schema are byte-identical to the ones `previous` was built
/// from (the entity store depends on nothing else). Everything else is built anew.
pub(crate) fn rebuild_snapshot(
    root: &Path,
    files: Vec<SourceFile>,
    previous: Option<&Snapshot>,
) -> Result<LoadedWorkspace, LoadError> {
    let dir = root.display().to_string();
    let versions = versions(&files);
    let mut diags = Vec::new();

    let schema = parse_schema(&files, &mut diags);
    let (mut policies, mut info) = parse_policy_files(&files, &mut diags);
    link_templates(&files, &mut policies, &mut info, &mut diags);
    if let SchemaState::Valid(schema) = &schema {
        validate_policies(schema, &policies, &info, &files, &mut diags);
    }
    let schema_sha = files.iter().find(|f| f.kind == FileKind::Schema).map(|f| f.sha256.clone());
    let reused =
        previous.and_then(|p| p.entities_if_built_from(schema_sha.as_deref(), &versions.entities));
    let entities = match (&schema, reused) {
        (SchemaState::Broken, _) => None,
        (_, Some(reused)) => Some(reused),
        (SchemaState::Valid(s), None) => share(load_entities(&files, Some(s), &mut diags)),
        (SchemaState::Absent, None) => share(load_entities(&files, None, &mut diags)),
    };
    if info.is_empty() && !diags.iter().any(|d| d.severity == Severity::Error) {
        diags.push(
            Diagnostic::file_error(".", "workspace has no policies: every request is denied")
                .into_warning(),
        );
    }

    let has_errors = diags.iter().any(|d| d.severity == Severity::Error);
    let (entities, entity_count) = match entities {
        Some(e) if !has_errors => e,
        _ => return Err(LoadError { dir, version: Some(versions.workspace), diagnostics: diags }),
    };
    let schema = match schema {
        SchemaState::Valid(s) => Some(s),
        SchemaState::Absent | SchemaState::Broken => None,
    };
    let literal_uids = literal_entity_uids(&policies);
    let meta = SnapshotMeta {
        version: versions.workspace,
        entities_version: versions.entities,
        loaded_at: OffsetDateTime::now_utc(),
        policy_count: policies.policies().count(),
        template_count: policies.templates().count(),
        entity_count,
        schema: schema.is_some(),
        warnings: diags,
        files: files.iter().map(|f| (f.path.clone(), f.sha256.clone())).collect(),
    };
    let shapes = match (&schema, files.iter().find(|f| f.kind == FileKind::Schema)) {
        (Some(schema), Some(f)) => RequestShapes::from_cedarschema(&f.text).verify(schema),
        _ => RequestShapes::default(),
    };
    let snapshot = Snapshot::new(policies, schema, entities, info, literal_uids, meta)
        .with_shapes(shapes)
        .with_schema_sha(schema_sha);
    Ok(LoadedWorkspace { snapshot, sources: files })
}

fn share(loaded: Option<(Entities, usize)>) -> Option<(Arc<Entities>, usize)> {
    loaded.map(|(entities, count)| (Arc::new(entities), count))
}

enum SchemaState {
    Absent,
    Broken,
    Valid(Schema),
}

fn parse_schema(files: &[SourceFile], diags: &mut Vec<Diagnostic>) -> SchemaState {
    let Some(f) = files.iter().find(|f| f.kind == FileKind::Schema) else {
        return SchemaState::Absent;
    };
    match Schema::from_cedarschema_str(&f.text) {
        Ok((schema, warnings)) => {
            for w in warnings {
                diags.extend(Diagnostic::from_cedar(&f.path, &f.text, &w, Severity::Warning));
            }
            SchemaState::Valid(schema)
        }
        Err(e) => {
            diags.extend(Diagnostic::from_cedar(&f.path, &f.text, &e, Severity::Error));
            SchemaState::Broken
        }
    }
}

fn parse_policy_files(
    files: &[SourceFile],
    diags: &mut Vec<Diagnostic>,
) -> (PolicySet, HashMap<PolicyId, PolicyInfo>) {
    let mut set = PolicySet::new();
    let mut info: HashMap<PolicyId, PolicyInfo> = HashMap::new();
    for f in files.iter().filter(|f| f.kind == FileKind::Policies) {
        let parsed = match PolicySet::from_str(&f.text) {
            Ok(p) => p,
            Err(errs) => {
                for e in errs.iter() {
                    diags.extend(Diagnostic::from_cedar(&f.path, &f.text, e, Severity::Error));
                }
                continue;
            }
        };
        // The parser names items `policy0`, `policy1`, … in file order (policies and
        // templates share the counter); that index gives stable derived ids.
        let mut items: Vec<(usize, Item)> = parsed
            .policies()
            .map(|p| (parser_index(p.id()), Item::Policy(p.clone())))
            .chain(parsed.templates().map(|t| (parser_index(t.id()), Item::Template(t.clone()))))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        for (index, item) in items {
            let id = match item.annotation("id") {
                Some(id) if !id.trim().is_empty() => id.to_owned(),
                Some(_) => {
                    diags.push(annotation_diag(f, "id", "", "`@id` annotation is empty"));
                    continue;
                }
                None => format!("{}#{}", f.path, index + 1),
            };
            let pid = PolicyId::new(&id);
            if let Some(first) = info.get(&pid) {
                diags.push(
                    annotation_diag(f, "id", &id, format!("duplicate policy id `{id}`"))
                        .with_help(format!("the id is already used in `{}`", first.file)),
                );
                continue;
            }
            let added = match &item {
                Item::Policy(p) => set.add(p.new_id(pid.clone())),
                Item::Template(t) => set.add_template(t.new_id(pid.clone())),
            };
            if let Err(e) = added {
                diags.push(annotation_diag(f, "id", &id, e.to_string()));
                continue;
            }
            info.insert(pid, item.info(id, &f.path));
        }
    }
    (set, info)
}

enum Item {
    Policy(cedar_policy::Policy),
    Template(cedar_policy::Template),
}

impl Item {
    fn annotation(&self, key: &str) -> Option<&str> {
        match self {
            Item::Policy(p) => p.annotation(key),
            Item::Template(t) => t.annotation(key),
        }
    }

    fn info(&self, id: String, file: &str) -> PolicyInfo {
        let effect = match self {
            Item::Policy(p) => p.effect(),
            Item::Template(t) => t.effect(),
        };
        PolicyInfo {
            id,
            file: file.to_owned(),
            effect: match effect {
                cedar_policy::Effect::Permit => Effect::Permit,
                cedar_policy::Effect::Forbid => Effect::Forbid,
            },
            obligations: self.annotation("obligation").map(split_obligations).unwrap_or_default(),
            description: self.annotation("description").map(str::to_owned),
            template: matches!(self, Item::Template(_)),
        }
    }
}

/// `@obligation("audit;notify:privacy-officer")` names two obligations.
fn split_obligations(s: &str) -> Vec<String> {
    s.split(';').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect()
}

fn parser_index(id: &PolicyId) -> usize {
    id.to_string().strip_prefix("policy").and_then(|n| n.parse().ok()).unwrap_or(usize::MAX)
}

/// Locates `@<key>("<value>")` in a file for a diagnostic; falls back to the whole file.
fn annotation_diag(
    f: &SourceFile,
    key: &str,
    value: &str,
    message: impl Into<String>,
) -> Diagnostic {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    let needle_at = f
        .text
        .match_indices(&format!("@{key}"))
        .find(|(i, _)| f.text[*i..].split_once(')').is_some_and(|(a, _)| a.contains(&quoted)));
    match needle_at {
        Some((offset, _)) => {
            Diagnostic::at_offset(&f.path, &f.text, offset, key.len() + 1, message)
        }
        None => Diagnostic::file_error(&f.path, message),
    }
}

#[derive(serde::Deserialize)]
struct LinkSpec {
    template_id: String,
    link_id: String,
    #[serde(default)]
    args: HashMap<String, serde_json::Value>,
}

fn link_templates(
    files: &[SourceFile],
    set: &mut PolicySet,
    info: &mut HashMap<PolicyId, PolicyInfo>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(f) = files.iter().find(|f| f.kind == FileKind::Links) else {
        return;
    };
    let links: Vec<LinkSpec> = match serde_json::from_str(&f.text) {
        Ok(l) => l,
        Err(e) => {
            diags.push(Diagnostic::at_line(&f.path, &f.text, e.line(), e.column(), e.to_string()));
            return;
        }
    };
    for link in links {
        let locate = |msg: String| {
            let quoted = serde_json::to_string(&link.link_id).unwrap_or_default();
            match f.text.find(&quoted) {
                Some(o) => Diagnostic::at_offset(&f.path, &f.text, o, quoted.len(), msg),
                None => Diagnostic::file_error(&f.path, msg),
            }
        };
        let mut vals = HashMap::new();
        let mut ok = true;
        for (slot, value) in &link.args {
            let slot_id = match slot.as_str() {
                "?principal" => SlotId::principal(),
                "?resource" => SlotId::resource(),
                other => {
                    diags.push(locate(format!("unknown template slot `{other}`")));
                    ok = false;
                    continue;
                }
            };
            match crate::decide::parse_entity_ref(value) {
                Ok(uid) => {
                    vals.insert(slot_id, uid);
                }
                Err(e) => {
                    diags.push(locate(format!("slot `{slot}`: {e}")));
                    ok = false;
                }
            }
        }
        if !ok {
            continue;
        }
        let template_id = PolicyId::new(&link.template_id);
        let Some(template_info) = info.get(&template_id).cloned() else {
            diags.push(locate(format!("no template with id `{}`", link.template_id)));
            continue;
        };
        let link_id = PolicyId::new(&link.link_id);
        if let Some(existing) = info.get(&link_id) {
            let msg = format!("duplicate policy id `{}`", link.link_id);
            diags.push(locate(msg).with_help(format!("already used in `{}`", existing.file)));
            continue;
        }
        match set.link(template_id, link_id.clone(), vals) {
            Ok(()) => {
                let mut li = template_info;
                li.id = link.link_id.clone();
                li.file = f.path.clone();
                li.template = false;
                info.insert(link_id, li);
            }
            Err(e) => diags.push(locate(e.to_string())),
        }
    }
}

fn validate_policies(
    schema: &Schema,
    policies: &PolicySet,
    info: &HashMap<PolicyId, PolicyInfo>,
    files: &[SourceFile],
    diags: &mut Vec<Diagnostic>,
) {
    let result = Validator::new(schema.clone()).validate(policies, ValidationMode::Strict);
    let text_of = |id: &PolicyId| -> Option<(&str, &Arc<str>)> {
        let file = &info.get(id)?.file;
        files.iter().find(|f| &f.path == file).map(|f| (f.path.as_str(), &f.text))
    };
    for e in result.validation_errors() {
        match text_of(e.policy_id()) {
            Some((file, text)) => {
                diags.extend(Diagnostic::from_cedar(file, text, e, Severity::Error))
            }
            None => diags.push(Diagnostic::file_error(".", e.to_string())),
        }
    }
    for w in result.validation_warnings() {
        match text_of(w.policy_id()) {
            Some((file, text)) => {
                diags.extend(Diagnostic::from_cedar(file, text, w, Severity::Warning))
            }
            None => diags.push(Diagnostic::file_error(".", w.to_string()).into_warning()),
        }
    }
}

/// Every entity uid that appears literally in a policy or template (scope or condition).
fn literal_entity_uids(policies: &PolicySet) -> Vec<EntityUid> {
    let mut out = Vec::new();
    let jsons = policies
        .policies()
        .filter_map(|p| p.to_json().ok())
        .chain(policies.templates().filter_map(|t| t.to_json().ok()));
    for json in jsons {
        collect_uids(&json, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

fn collect_uids(v: &serde_json::Value, out: &mut Vec<EntityUid>) {
    match v {
        serde_json::Value::Object(map) => {
            if let (Some(serde_json::Value::String(ty)), Some(serde_json::Value::String(id))) =
                (map.get("type"), map.get("id"))
            {
                if let Ok(tn) = EntityTypeName::from_str(ty) {
                    out.push(EntityUid::from_type_name_and_id(tn, EntityId::new(id)));
                }
            }
            map.values().for_each(|v| collect_uids(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_uids(v, out)),
        _ => {}
    }
}
