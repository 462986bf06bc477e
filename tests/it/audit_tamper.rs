//! Tampering with a log written by the real service: `medpdp audit verify` reports each kind
//! of damage precisely (position and decision id) and exits 5; an untouched log exits 0.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::cli::medpdp;
use crate::common::{attach, TestServer};

struct Fixture {
    data: tempfile::TempDir,
    pubkey: PathBuf,
    /// `(segment path, lines)` in order.
    segments: Vec<(PathBuf, Vec<String>)>,
}

async fn written_log() -> Fixture {
    let server = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.audit.checkpoint_every = 10;
        c.audit.segment_max_bytes = 8192;
    })
    .await;
    for i in 0..40 {
        let t = ["t-ecg1", "t-quar", "t-mon1", "t-uncert"][i % 4];
        assert_eq!(server.post("/v1/decide", &attach(t, "plmn-miot-health")).await.0, 200);
    }
    let data = server.stop().await;
    let pem = medpdp().args(["audit", "pubkey", "--data"]).arg(data.path()).output().unwrap();
    assert_eq!(pem.status.code(), Some(0));
    let pubkey = data.path().join("pinned.pem");
    std::fs::write(&pubkey, &pem.stdout).unwrap();
    let segments = medpdp::audit::segment::list_segments(&data.path().join("audit"))
        .unwrap()
        .into_iter()
        .map(|p| {
            let lines =
                std::fs::read_to_string(&p).unwrap().lines().map(|l| format!("{l}\n")).collect();
            (p, lines)
        })
        .collect();
    Fixture { data, pubkey, segments }
}

impl Fixture {
    fn save(&self, segments: &[(PathBuf, Vec<String>)]) {
        for (p, lines) in segments {
            std::fs::write(p, lines.concat()).unwrap();
        }
    }

    fn verify(&self, extra: &[&str]) -> (Option<i32>, String) {
        let out: Output = medpdp()
            .args(["audit", "verify", "--data"])
            .arg(self.data.path())
            .arg("--pubkey")
            .arg(&self.pubkey)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Position (over all segments) and decision id of line `i` of segment `s`.
    fn at(&self, s: usize, i: usize) -> (usize, String) {
        let before: usize = self.segments[..s].iter().map(|(_, l)| l.len()).sum();
        let v: Value = serde_json::from_str(&self.segments[s].1[i]).unwrap();
        (before + i + 1, v["decision_id"].as_str().unwrap_or("-").to_owned())
    }
}

fn decision_line(lines: &[String]) -> usize {
    lines.iter().position(|l| l.contains("\"kind\":\"decision\"")).unwrap() + 2
}

fn expect(out: &(Option<i32>, String), problem: &str, position: usize, id: &str) {
    assert_eq!(out.0, Some(5), "{}", out.1);
    let line = out
        .1
        .lines()
        .find(|l| l.starts_with(problem))
        .unwrap_or_else(|| panic!("no `{problem}` in:\n{}", out.1));
    assert!(line.contains(&format!("position {position} ")), "{line}");
    assert!(line.contains(&format!("decision_id {id}")), "{line}");
    assert!(out.1.contains("NOT INTACT"), "{}", out.1);
}

#[tokio::test]
async fn verify_reports_each_kind_of_tampering_precisely() {
    let f = written_log().await;
    assert!(f.segments.len() >= 3, "the log spans several segments");
    let ok = f.verify(&[]);
    assert_eq!(ok.0, Some(0), "{}", ok.1);
    assert!(ok.1.contains("intact"));
    let anchor = ok.1.lines().find_map(|l| l.strip_prefix("last checkpoint: --anchor ")).unwrap();
    let anchor = anchor.split_whitespace().next().unwrap().to_owned();
    let s = 1; // tamper inside the second segment
    let i = decision_line(&f.segments[s].1);

    // A flipped byte.
    let mut segs = f.segments.clone();
    let line = &mut segs[s].1[i];
    let at = line.find("t-").unwrap() + 2;
    line.replace_range(at..at + 1, if &line[at..at + 1] == "X" { "Y" } else { "X" });
    f.save(&segs);
    let (pos, id) = f.at(s, i);
    expect(&f.verify(&[]), "changed", pos, &id);

    // A deleted record: reported at its successor, naming the missing seq.
    let mut segs = f.segments.clone();
    segs[s].1.remove(i);
    f.save(&segs);
    let (pos, _) = f.at(s, i);
    let (_, next_id) = f.at(s, i + 1);
    let out = f.verify(&[]);
    expect(&out, "removed", pos, &next_id);

    // An inserted record (a copy of another decision).
    let mut segs = f.segments.clone();
    let copy = segs[0].1[decision_line(&segs[0].1)].clone();
    let copied_id =
        serde_json::from_str::<Value>(&copy).unwrap()["decision_id"].as_str().unwrap().to_owned();
    segs[s].1.insert(i, copy);
    f.save(&segs);
    let (pos, _) = f.at(s, i);
    expect(&f.verify(&[]), "inserted", pos, &copied_id);

    // Two records swapped.
    let mut segs = f.segments.clone();
    segs[s].1.swap(i, i + 1);
    f.save(&segs);
    let (pos, _) = f.at(s, i);
    let (_, moved_id) = f.at(s, i + 1);
    expect(&f.verify(&[]), "reordered", pos, &moved_id);

    // Truncated inside the last record.
    let mut segs = f.segments.clone();
    let last = segs.len() - 1;
    let n = segs[last].1.len();
    segs[last].1[n - 1].truncate(30);
    f.save(&segs);
    let out = f.verify(&[]);
    assert_eq!(out.0, Some(5));
    assert!(
        out.1.lines().any(|l| l.starts_with("truncated") && l.contains("incomplete record")),
        "{}",
        out.1
    );

    // Whole records cut from the end: the anchor noted earlier proves it.
    let mut segs = f.segments.clone();
    let last = segs.len() - 1;
    segs[last].1.pop();
    f.save(&segs);
    let out = f.verify(&["--anchor", &anchor]);
    assert_eq!(out.0, Some(5), "{}", out.1);
    assert!(
        out.1.lines().any(|l| l.starts_with("truncated") && l.contains("records were removed")),
        "{}",
        out.1
    );

    // JSON output for tools.
    f.save(&f.segments);
    let out = medpdp()
        .args(["audit", "verify", "--format", "json", "--data"])
        .arg(f.data.path())
        .arg("--pubkey")
        .arg(&f.pubkey)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"], Value::Array(vec![]));
    assert!(v["decisions"].as_u64().unwrap() >= 40);
}

#[test]
fn pubkey_without_a_key_says_how_to_get_one() {
    let d = tempfile::tempdir().unwrap();
    let out = medpdp().args(["audit", "pubkey", "--data"]).arg(d.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("medpdp serve"));
    let out = medpdp()
        .args(["audit", "verify", "--log"])
        .arg(d.path())
        .arg("--data")
        .arg(Path::new("/nonexistent"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
