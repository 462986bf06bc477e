//! Loading a workspace's entity data (`entities.json`, `entities/**/*.json`).
//!
//! All files are parsed into one Cedar `Entities` store (validated against the schema when
//! there is one, transitive closure computed once). When Cedar rejects the combined data, each
//! entity is re-checked on its own so the diagnostic names the file and line of the culprit.

use std::sync::Arc;

use cedar_policy::{Entities, Entity, Schema};
use serde_json::Value;

use super::diagnostic::Diagnostic;
use super::files::{FileKind, SourceFile};

/// Parses the entity files. Returns the store and the number of data entities, or `None`
/// after pushing diagnostics.
pub(crate) fn load_entities(
    files: &[SourceFile],
    schema: Option<&Schema>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Entities, usize)> {
    let entity_files: Vec<&SourceFile> =
        files.iter().filter(|f| f.kind == FileKind::Entities).collect();
    let mut all = Vec::new();
    let mut syntax_ok = true;
    for f in &entity_files {
        match serde_json::from_str::<Value>(&f.text) {
            Ok(Value::Array(items)) => all.extend(items),
            Ok(_) => {
                syntax_ok = false;
                diags.push(
                    Diagnostic::file_error(&f.path, "entity data must be a JSON array")
                        .with_help("use Cedar's JSON entity format: [{\"uid\": …, \"attrs\": …, \"parents\": […]}]"),
                );
            }
            Err(e) => {
                syntax_ok = false;
                diags.push(Diagnostic::at_line(
                    &f.path,
                    &f.text,
                    e.line(),
                    e.column(),
                    format!("invalid JSON: {e}"),
                ));
            }
        }
    }
    if !syntax_ok {
        return None;
    }
    let count = all.len();
    match Entities::from_json_value(Value::Array(all), schema) {
        Ok(entities) => Some((entities, count)),
        Err(combined) => {
            let before = diags.len();
            for f in &entity_files {
                pinpoint(f, schema, diags);
            }
            if diags.len() == before {
                // Not a problem of any single entity (e.g. a uid defined twice): locate the
                // uid Cedar names, if it does.
                let message = error_chain(&combined);
                diags.push(locate_named_uid(&entity_files, &message));
            }
            None
        }
    }
}

/// Re-parses each entity of one file on its own and reports those Cedar rejects.
fn pinpoint(f: &SourceFile, schema: Option<&Schema>, diags: &mut Vec<Diagnostic>) {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&f.text) else {
        return;
    };
    let mut search_from = 0;
    for item in items {
        let id = item.pointer("/uid/id").or_else(|| item.pointer("/uid/__entity/id")).cloned();
        if let Err(e) = Entity::from_json_value(item, schema) {
            let message = error_chain(&e);
            let diag = match id.as_ref().and_then(|id| find_id(&f.text, id, search_from)) {
                Some(offset) => {
                    search_from = offset;
                    Diagnostic::at_offset(&f.path, &f.text, offset, 0, message)
                }
                None => Diagnostic::file_error(&f.path, message),
            };
            diags.push(diag);
        }
    }
}

/// An error with its causes, `outer: inner: innermost` (Cedar nests the useful detail).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// Finds the offset of `"id": <id>` at or after `from`.
fn find_id(text: &Arc<str>, id: &Value, from: usize) -> Option<usize> {
    let quoted = serde_json::to_string(id).ok()?;
    let rest = text.get(from..)?;
    rest.match_indices(&quoted)
        .find(|(i, _)| rest[..*i].trim_end().trim_end_matches(':').trim_end().ends_with("\"id\""))
        .map(|(i, _)| from + i)
}

fn locate_named_uid(files: &[&SourceFile], message: &str) -> Diagnostic {
    // Cedar quotes uids as Type::"id"; look for the id in the files.
    let id = message.split("::\"").nth(1).and_then(|rest| rest.split('"').next());
    if let Some(id) = id {
        let value = Value::String(id.to_owned());
        let mut hits = files.iter().filter_map(|f| find_id(&f.text, &value, 0).map(|o| (f, o)));
        if let Some((f, offset)) = hits.next() {
            let mut d = Diagnostic::at_offset(&f.path, &f.text, offset, 0, message);
            if let Some((g, o2)) = hits.next() {
                let (line, _) = (Diagnostic::at_offset(&g.path, &g.text, o2, 0, "").line, 0);
                d = d.with_help(format!("also defined in `{}` at line {line}", g.path));
            }
            return d;
        }
    }
    let file = files.first().map_or(".", |f| f.path.as_str());
    Diagnostic::file_error(file, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_id_skips_values_that_are_not_ids() {
        let text: Arc<str> = Arc::from(
            r#"[{"uid":{"type":"T","id":"b"},"attrs":{"x":"a"}},{"uid":{"type":"T","id": "a"}}]"#,
        );
        let off = find_id(&text, &Value::String("a".into()), 0).unwrap();
        assert!(text[..off].ends_with("\"id\": "));
    }
}
