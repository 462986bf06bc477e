//! A deterministic generator of a large Med5G workspace and of decision requests for it, used by
//! the benchmarks (`benches/decide.rs`), the load script (`examples/workload.rs`) and the
//! differential test.
//!
//! Library-free on purpose (std only, its own PRNG, JSON written by hand): the same seed gives
//! byte-identical files on every machine and with every dependency version, so figures measured
//! on it stay comparable. The schema and static policies live next to this file
//! (`schema.cedarschema`, `policies.cedar`); this module adds the entity data, one-off consult
//! grants, template links and the requests.

#![allow(dead_code)] // each includer uses a different part

mod entities;
mod requests;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    /// Terminals (the dimension scaled to compare store sizes).
    pub(crate) terminals: usize,
    /// Clinicians.
    pub(crate) clinicians: usize,
    /// Patients (each with one health record).
    pub(crate) patients: usize,
    /// Decision requests.
    pub(crate) requests: usize,
    /// PRNG seed.
    pub(crate) seed: u64,
}

impl Params {
    /// The large workspace of BENCHMARKS.md: 1,000 terminals, 400 clinicians, 1,000 patients.
    pub(crate) const LARGE: Params = Params {
        terminals: 1_000,
        clinicians: 400,
        patients: 1_000,
        requests: 10_000,
        seed: 0x5eed,
    };
}

/// A generated workspace: files relative to the workspace root, and request bodies.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// `(path, content)` of every workspace file.
    pub(crate) files: Vec<(String, String)>,
    /// Decision request bodies (`POST /v1/decide`), one JSON object each.
    pub(crate) requests: Vec<String>,
    /// Number of entities in the entity files.
    pub(crate) entity_count: usize,
}

/// Number of one-off consult grants (`principal == …, resource == …`).
const CONSULTS: usize = 8;
/// Number of template links of `TT-delegated-destination`.
const LINKS: usize = 6;

/// Generates the workload for `p`.
pub(crate) fn generate(p: &Params) -> Workload {
    let mut rng = Rng::new(p.seed);
    let world = entities::World::new(p, &mut rng);
    let mut files = vec![
        ("schema.cedarschema".to_owned(), include_str!("schema.cedarschema").to_owned()),
        ("policies.cedar".to_owned(), include_str!("policies.cedar").to_owned()),
        ("consults.cedar".to_owned(), consults(&world, &mut rng)),
        ("links.json".to_owned(), links(&world, &mut rng)),
    ];
    let (entity_files, entity_count) = world.entity_files(&mut rng);
    files.extend(entity_files);
    let requests = (0..p.requests).map(|_| requests::request(&world, &mut rng)).collect();
    Workload { files, requests, entity_count }
}

fn consults(world: &entities::World, rng: &mut Rng) -> String {
    let mut out =
        String::from("// One-off consult grants: a named clinician may read one record.\n");
    for i in 0..CONSULTS {
        let c = rng.below(world.clinicians);
        let r = rng.below(world.records);
        out.push_str(&format!(
            "\n@id(\"G{:02}-consult\")\npermit (\n  principal == Med5G::Clinician::\"{}\",\n  \
             action == Med5G::Action::\"read_record\",\n  resource == Med5G::HealthRecord::\"{}\"\n)\n\
             when {{ context.purpose == \"TREAT\" }};\n",
            i + 1,
            entities::clinician_id(c),
            entities::record_id(r),
        ));
    }
    out
}

fn links(world: &entities::World, rng: &mut Rng) -> String {
    let items: Vec<String> = (0..LINKS)
        .map(|i| {
            format!(
                "  {{\"template_id\": \"TT-delegated-destination\", \"link_id\": \"TT-link-{}\", \
                 \"args\": {{\"?principal\": {}, \"?resource\": {}}}}}",
                i + 1,
                uid("Terminal", &entities::terminal_id(rng.below(world.terminals))),
                uid("Destination", &entities::destination_id(rng.below(world.destinations))),
            )
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// `{"type": "Med5G::<ty>", "id": "<id>"}` (ids are generated ASCII, no escaping needed).
pub(crate) fn uid(ty: &str, id: &str) -> String {
    format!("{{\"type\": \"Med5G::{ty}\", \"id\": \"{id}\"}}")
}

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element of `items`, or `default` when it is empty.
    pub(crate) fn pick_or<'a>(&mut self, items: &'a [String], default: &'a str) -> &'a str {
        if items.is_empty() {
            default
        } else {
            &items[self.below(items.len())]
        }
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}
