//! Random workspaces for the differential test: an entity hierarchy with groups, folders and
//! nested action groups, and policies drawn from every scope shape (`==`, `in`, `is`, `is … in`,
//! unconstrained, action lists and groups, templates with links) with conditions that often
//! raise errors (missing attributes, dangling references, overflow). With a schema, candidate
//! policies that strict validation rejects are dropped, so every workspace loads.

use cedar_policy::{PolicySet, Schema, ValidationMode, Validator};

use super::workload::Rng;

const SCHEMA: &str = r#"
entity Tenant;
namespace App {
  entity Group in [Group];
  entity User in [Group] = { level: Long, tags: Set<String>, manager?: User };
  entity Folder in [Folder, Tenant] = { owner: User };
  entity Doc in [Folder, Tenant] = { owner: User, level: Long };
  entity Device = { trusted: Bool };
  entity Kiosk enum ["k1", "k2"];
  entity Color enum ["red", "green"];
  action all;
  action readers in [all];
  action read, share in [readers] appliesTo {
    principal: [User, Device], resource: [Doc, Folder],
    context: {
      mfa: Bool, n: Long, now: datetime, ip: ipaddr, who?: User, tags: Set<String>,
      env: { risk: Long, zone: String },
    }
  };
  action write in [all] appliesTo {
    principal: [User], resource: [Doc], context: { mfa: Bool, n: Long }
  };
  action delete in [all] appliesTo { principal: [User], resource: [Doc, Folder] };
  action login appliesTo {
    principal: [User, Device, Kiosk], resource: [Device], context: { color?: Color, n?: Long }
  };
}
"#;

const GROUPS: usize = 5;
const USERS: usize = 12;
const FOLDERS: usize = 4;
const DOCS: usize = 10;
const DEVICES: usize = 3;

/// The files of a random workspace.
pub(super) fn random_workspace(seed: u64, with_schema: bool) -> Vec<(String, String)> {
    let mut rng = Rng::new(seed);
    let schema = with_schema.then(|| Schema::from_cedarschema_str(SCHEMA).map(|(s, _)| s).unwrap());
    let mut files = vec![("entities.json".to_owned(), entities(&mut rng, with_schema))];
    if with_schema {
        files.push(("schema.cedarschema".to_owned(), SCHEMA.to_owned()));
    }
    let mut policies = String::new();
    let mut count = 0;
    let wanted = 8 + rng.below(20);
    let mut attempts = 0;
    while count < wanted && attempts < 400 {
        attempts += 1;
        let text = policy(&mut rng, with_schema, count);
        if schema.as_ref().is_none_or(|s| validates(s, &text)) {
            policies.push_str(&text);
            count += 1;
        }
    }
    let mut links = Vec::new();
    for (t, template) in templates(with_schema).iter().enumerate() {
        if schema.as_ref().is_some_and(|s| !validates(s, template)) {
            continue;
        }
        policies.push_str(template);
        for l in 0..rng.below(4) {
            let principal = match rng.below(3) {
                0 => uid("App::User", &format!("u{}", rng.below(USERS))),
                1 => uid("App::Group", &format!("g{}", rng.below(GROUPS))),
                _ => uid("App::Device", &format!("dev{}", rng.below(DEVICES))),
            };
            let resource = match rng.below(2) {
                0 => uid("App::Folder", &format!("f{}", rng.below(FOLDERS))),
                _ => uid("App::Doc", &format!("d{}", rng.below(DOCS))),
            };
            links.push(format!(
                "{{\"template_id\": \"tpl{t}\", \"link_id\": \"tpl{t}-link{l}\", \
                 \"args\": {{\"?principal\": {principal}, \"?resource\": {resource}}}}}"
            ));
        }
    }
    files.push(("p.cedar".to_owned(), policies));
    if !links.is_empty() {
        files.push(("links.json".to_owned(), format!("[{}]", links.join(",\n"))));
    }
    files
}

fn validates(schema: &Schema, text: &str) -> bool {
    let Ok(set) = text.parse::<PolicySet>() else {
        return false;
    };
    Validator::new(schema.clone()).validate(&set, ValidationMode::Strict).validation_passed()
}

fn uid(ty: &str, id: &str) -> String {
    format!("{{\"type\": \"{ty}\", \"id\": \"{id}\"}}")
}

fn entity(ty: &str, id: &str, attrs: String, parents: Vec<String>) -> String {
    format!(
        "{{\"uid\": {}, \"attrs\": {attrs}, \"parents\": [{}]}}",
        uid(ty, id),
        parents.join(", ")
    )
}

fn entities(rng: &mut Rng, with_schema: bool) -> String {
    let mut out = Vec::new();
    out.push(entity("Tenant", "t0", "{}".into(), vec![]));
    out.push(entity("Tenant", "t1", "{}".into(), vec![]));
    for g in 0..GROUPS {
        let parents =
            (0..g).filter(|_| rng.chance(35)).map(|p| uid("App::Group", &format!("g{p}")));
        out.push(entity("App::Group", &format!("g{g}"), "{}".into(), parents.collect()));
    }
    for u in 0..USERS {
        let mut attrs = Vec::new();
        if with_schema || rng.chance(80) {
            attrs.push(format!("\"level\": {}", rng.below(5)));
        }
        if with_schema || rng.chance(80) {
            attrs.push(format!("\"tags\": [{}]", if rng.chance(50) { "\"x\"" } else { "" }));
        }
        if rng.chance(40) {
            // Some managers do not exist: reading their attributes is an evaluation error.
            attrs.push(format!(
                "\"manager\": {}",
                uid("App::User", &format!("u{}", rng.below(USERS + 4)))
            ));
        }
        let parents =
            (0..GROUPS).filter(|_| rng.chance(30)).map(|g| uid("App::Group", &format!("g{g}")));
        out.push(entity(
            "App::User",
            &format!("u{u}"),
            format!("{{{}}}", attrs.join(", ")),
            parents.collect(),
        ));
    }
    for f in 0..FOLDERS {
        let mut parents = Vec::new();
        if f > 0 && rng.chance(60) {
            parents.push(uid("App::Folder", &format!("f{}", rng.below(f))));
        }
        if rng.chance(30) {
            parents.push(uid("Tenant", "t1"));
        }
        let attrs =
            format!("{{\"owner\": {}}}", uid("App::User", &format!("u{}", rng.below(USERS))));
        out.push(entity("App::Folder", &format!("f{f}"), attrs, parents));
    }
    for d in 0..DOCS {
        let mut parents = vec![uid("App::Folder", &format!("f{}", rng.below(FOLDERS)))];
        if rng.chance(20) {
            parents.push(uid("Tenant", &format!("t{}", rng.below(2))));
        }
        let level = if with_schema || rng.chance(80) {
            format!(", \"level\": {}", rng.below(5))
        } else {
            String::new()
        };
        let attrs = format!(
            "{{\"owner\": {}{level}}}",
            uid("App::User", &format!("u{}", rng.below(USERS)))
        );
        out.push(entity("App::Doc", &format!("d{d}"), attrs, parents));
    }
    for d in 0..DEVICES {
        out.push(entity(
            "App::Device",
            &format!("dev{d}"),
            format!("{{\"trusted\": {}}}", rng.chance(50)),
            vec![],
        ));
    }
    if !with_schema {
        // Without a schema the action hierarchy is entity data; vary it per workspace.
        let action = |id: &str| uid("App::Action", id);
        let mut push = |id: &str, parents: Vec<String>| {
            out.push(entity("App::Action", id, "{}".into(), parents))
        };
        push("all", vec![]);
        push("readers", vec![action("all")]);
        push("read", vec![action("readers")]);
        push("share", if rng.chance(50) { vec![action("readers")] } else { vec![] });
        push("write", vec![action("all")]);
        push("delete", if rng.chance(50) { vec![action("all")] } else { vec![action("readers")] });
        out.push(entity("Action", "ping", "{}".into(), vec![]));
    }
    format!("[\n{}\n]\n", out.join(",\n"))
}

fn principal(rng: &mut Rng, with_schema: bool) -> String {
    let n = if with_schema { 9 } else { 11 };
    match rng.below(n) {
        0 | 1 => "principal".into(),
        2 => format!("principal == App::User::\"u{}\"", rng.below(USERS)),
        3 => format!("principal == App::Device::\"dev{}\"", rng.below(DEVICES)),
        4 => format!("principal in App::Group::\"g{}\"", rng.below(GROUPS)),
        5 => "principal is App::User".into(),
        6 => "principal is App::Device".into(),
        7 => format!("principal is App::User in App::Group::\"g{}\"", rng.below(GROUPS)),
        8 if with_schema => "principal is App::Kiosk".into(),
        8 => "principal is Zed".into(),
        9 => "principal == Zed::\"z\"".into(),
        _ => format!("principal in App::User::\"u{}\"", rng.below(USERS)),
    }
}

fn action(rng: &mut Rng, with_schema: bool) -> String {
    let n = if with_schema { 9 } else { 11 };
    let one = ["read", "share", "write", "delete", "login"];
    match rng.below(n) {
        0 | 1 => "action".into(),
        2 | 3 => format!("action == App::Action::\"{}\"", rng.pick(&one)),
        4 => "action in App::Action::\"readers\"".into(),
        5 => "action in App::Action::\"all\"".into(),
        6 => format!(
            "action in [App::Action::\"{}\", App::Action::\"{}\"]",
            rng.pick(&one),
            rng.pick(&one)
        ),
        7 => "action in [App::Action::\"readers\", App::Action::\"delete\"]".into(),
        8 => "action in [App::Action::\"login\"]".into(),
        9 => "action == Action::\"ping\"".into(),
        _ => "action in [Action::\"ping\", App::Action::\"read\"]".into(),
    }
}

fn resource(rng: &mut Rng, with_schema: bool) -> String {
    let n = if with_schema { 9 } else { 10 };
    match rng.below(n) {
        0 | 1 => "resource".into(),
        2 => format!("resource == App::Doc::\"d{}\"", rng.below(DOCS)),
        3 => format!("resource in App::Folder::\"f{}\"", rng.below(FOLDERS)),
        4 => "resource is App::Doc".into(),
        5 => "resource is App::Folder".into(),
        6 => format!("resource is App::Doc in App::Folder::\"f{}\"", rng.below(FOLDERS)),
        7 => "resource in Tenant::\"t1\"".into(),
        8 => "resource is App::Device".into(),
        _ => "resource is Zed".into(),
    }
}

fn condition(rng: &mut Rng, with_schema: bool) -> String {
    const GUARDED: [&str; 15] = [
        "true",
        "principal has level && principal.level >= 2",
        "resource has owner && resource.owner == principal",
        "context has mfa && context.mfa",
        "context has n && context.n * 4611686018427387904 > 0",
        "principal has manager && principal.manager.level > 1",
        "context has who && context.who == principal",
        "context has tags && context.tags.contains(\"x\")",
        "context has env && context.env.risk > 5",
        "context has ip && context.ip.isInRange(ip(\"10.0.0.0/8\"))",
        "context has now && context.now < datetime(\"2026-06-01\")",
        "action in App::Action::\"readers\"",
        "principal in App::Group::\"g1\"",
        "resource has level && principal has level && resource.level <= principal.level",
        "context has now && context.now.offset(duration(\"9223372036854775807ms\")) > context.now",
    ];
    const LOOSE: [&str; 11] = [
        "principal.level >= 2",
        "resource.owner == principal",
        "context.mfa",
        "context.n * 4611686018427387904 > 0",
        "principal.manager.level > 1",
        "context.who == principal",
        "context.tags.contains(\"x\")",
        "resource.level <= principal.level",
        "principal in resource.owner",
        "resource in App::Folder::\"f0\"",
        "context.env.risk > 5",
    ];
    let pick = |rng: &mut Rng| {
        if with_schema || rng.chance(30) {
            rng.pick(&GUARDED).to_string()
        } else {
            rng.pick(&LOOSE).to_string()
        }
    };
    match rng.below(4) {
        0 => pick(rng),
        1 => format!("({}) && ({})", pick(rng), pick(rng)),
        2 => format!("({}) || ({})", pick(rng), pick(rng)),
        _ => format!("!({})", pick(rng)),
    }
}

fn policy(rng: &mut Rng, with_schema: bool, n: usize) -> String {
    let effect = if rng.chance(60) { "permit" } else { "forbid" };
    let mut out = String::new();
    if rng.chance(80) {
        out.push_str(&format!("@id(\"p{n}\")\n"));
    }
    if rng.chance(25) {
        out.push_str(&format!("@obligation(\"audit; notify:{}\")\n", n % 3));
    }
    out.push_str(&format!(
        "{effect} (\n  {},\n  {},\n  {}\n)",
        principal(rng, with_schema),
        action(rng, with_schema),
        resource(rng, with_schema)
    ));
    for clause in ["when", "unless"] {
        if rng.chance(if clause == "when" { 70 } else { 25 }) {
            out.push_str(&format!("\n{clause} {{ {} }}", condition(rng, with_schema)));
        }
    }
    out.push_str(";\n\n");
    out
}

fn templates(with_schema: bool) -> Vec<String> {
    let ctx = if with_schema { "context has mfa && context.mfa" } else { "context.mfa" };
    vec![
        format!(
            "@id(\"tpl0\")\npermit (principal == ?principal, \
             action in [App::Action::\"read\", App::Action::\"share\"], resource in ?resource)\n\
             when {{ {ctx} }};\n\n"
        ),
        "@id(\"tpl1\")\nforbid (principal in ?principal, action, resource == ?resource);\n\n"
            .to_owned(),
    ]
}
