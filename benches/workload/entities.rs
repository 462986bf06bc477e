//! The generated world: how many entities of each kind exist, their ids, and their JSON.

use super::{uid, Params, Rng};

pub(crate) const FACILITIES: [(&str, &str, u32, &str); 8] = [
    ("hosp-01", "CN", 4, "net-east"),
    ("hosp-02", "CN", 4, "net-east"),
    ("hosp-03", "CN", 3, "net-east"),
    ("hosp-04", "CN", 3, "net-west"),
    ("hosp-05", "CN", 3, "net-west"),
    ("clinic-01", "CN", 2, "net-west"),
    ("proc-01", "CN", 3, "net-east"),
    ("intl-01", "SG", 3, "net-intl"),
];
pub(crate) const ROLES: [&str; 9] = [
    "surgeon",
    "physician",
    "nurse",
    "emt",
    "biomed_engineer",
    "researcher",
    "pharmacist",
    "radiologist",
    "admin",
];
pub(crate) const KINDS: [&str; 6] =
    ["wearable_ecg", "infusion_pump", "ultrasound_cart", "ambulance_gateway", "monitor", "robot"];
/// (id, sst, npn, dedicated, facility, min security level)
type SliceDef = (&'static str, u32, bool, bool, Option<&'static str>, u32);
pub(crate) const SLICES: [SliceDef; 5] = [
    ("plmn-embb", 1, false, false, None, 1),
    ("plmn-urllc", 2, false, false, None, 2),
    ("plmn-miot", 3, false, false, None, 1),
    ("npn-hosp-01", 3, true, true, Some("hosp-01"), 2),
    ("npn-hosp-04", 2, true, true, Some("hosp-04"), 2),
];
/// (id, group, level, personal, sensitive, genetic, realtime)
type CategoryDef = (&'static str, &'static str, u32, bool, bool, bool, bool);
pub(crate) const CATEGORIES: [CategoryDef; 10] = [
    ("ecg-stream", "clinical", 3, true, true, false, false),
    ("vitals", "clinical", 2, true, false, false, false),
    ("imaging", "clinical", 3, true, true, false, false),
    ("lab-results", "clinical", 3, true, true, false, false),
    ("genome", "restricted", 5, true, true, true, false),
    ("psych-notes", "restricted", 4, true, true, false, false),
    ("device-telemetry", "operational", 1, false, false, false, false),
    ("pump-control", "operational", 3, false, false, false, true),
    ("robot-control", "operational", 4, false, false, false, true),
    ("deidentified-stats", "operational", 1, false, false, false, false),
];
pub(crate) const PROFILES: [&str; 4] = ["device-tls", "device-sign", "gateway-tls", "short-lived"];
pub(crate) const MODELS: usize = 10;
pub(crate) const DEPARTMENTS: usize = 8;
pub(crate) const WARDS: usize = 16;
pub(crate) const GROUPS: usize = 4;
pub(crate) const GATEWAYS: usize = 12;
pub(crate) const FIRMWARE: usize = 20;

pub(crate) fn clinician_id(i: usize) -> String {
    format!("c-{i:04}")
}
pub(crate) fn patient_id(i: usize) -> String {
    format!("p-{i:05}")
}
pub(crate) fn record_id(i: usize) -> String {
    format!("r-{i:05}")
}
pub(crate) fn terminal_id(i: usize) -> String {
    format!("t-{i:06}")
}
pub(crate) fn destination_id(i: usize) -> String {
    format!("dst-{i:02}")
}
pub(crate) fn gateway_id(i: usize) -> String {
    format!("gw-{i:02}")
}
pub(crate) fn firmware_id(i: usize) -> String {
    format!("fw-{i:02}")
}
pub(crate) fn model_id(i: usize) -> String {
    format!("model-{i:02}")
}

/// Entity counts (ids are derived from indexes).
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) terminals: usize,
    pub(crate) clinicians: usize,
    pub(crate) patients: usize,
    pub(crate) records: usize,
    pub(crate) destinations: usize,
}

impl World {
    pub(crate) fn new(p: &Params, _rng: &mut Rng) -> Self {
        Self {
            terminals: p.terminals,
            clinicians: p.clinicians,
            patients: p.patients,
            records: p.patients,
            destinations: 12,
        }
    }

    /// The facility a terminal, clinician, patient or record belongs to (stable by index).
    pub(crate) fn facility_of(i: usize) -> &'static str {
        FACILITIES[i % 6].0
    }

    /// Entity files and the number of entities written.
    pub(crate) fn entity_files(&self, rng: &mut Rng) -> (Vec<(String, String)>, usize) {
        let mut count = 0;
        let mut file = |name: &str, items: Vec<String>| {
            count += items.len();
            (format!("entities/{name}.json"), format!("[\n{}\n]\n", items.join(",\n")))
        };
        let files = vec![
            file("organisations", self.organisations()),
            file("clinicians", self.clinicians(rng)),
            file("patients", self.patients_and_records(rng)),
            file("devices", self.devices(rng)),
            file("terminals", self.terminal_entities(rng)),
            file("network", self.network()),
        ];
        (files, count)
    }

    fn organisations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for net in ["net-east", "net-west", "net-intl"] {
            out.push(entity("HealthNetwork", net, "{}", &[]));
        }
        for (id, country, mlps, net) in FACILITIES {
            let attrs = format!(
                "{{\"org_code\": \"{id}-code\", \"country\": \"{country}\", \"mlps_level\": {mlps}, \
                 \"networks\": [{}]}}",
                uid("HealthNetwork", net)
            );
            out.push(entity("Facility", id, &attrs, &[("HealthNetwork", net.to_owned())]));
        }
        for d in 0..DEPARTMENTS {
            let parent = ("Facility", Self::facility_of(d).to_owned());
            out.push(entity("Department", &format!("dept-{d:02}"), "{}", &[parent]));
        }
        for w in 0..WARDS {
            let parent = ("Department", format!("dept-{:02}", w % DEPARTMENTS));
            out.push(entity("Ward", &format!("w-{:02}", w + 1), "{}", &[parent]));
        }
        for r in ROLES {
            out.push(entity("Role", r, "{}", &[]));
        }
        for g in ["clinical", "restricted", "operational"] {
            out.push(entity("DataGroup", g, "{}", &[]));
        }
        for (id, group, level, personal, sensitive, genetic, realtime) in CATEGORIES {
            let attrs = format!(
                "{{\"gbt39725_class\": \"{group}\", \"level\": {level}, \"personal\": {personal}, \
                 \"sensitive_pi\": {sensitive}, \"human_genetic\": {genetic}, \
                 \"fhir_confidentiality\": \"N\", \"realtime_control\": {realtime}}}"
            );
            out.push(entity("DataCategory", id, &attrs, &[("DataGroup", group.to_owned())]));
        }
        for d in 0..self.destinations {
            let (fac, country, mlps, _) = FACILITIES[d % FACILITIES.len()];
            let kind = ["ehr", "cloud", "research", "registry"][d % 4];
            let contracted = uid("Facility", FACILITIES[(d + 1) % 6].0);
            let attrs = format!(
                "{{\"facility\": {}, \"kind\": \"{kind}\", \"country\": \"{country}\", \
                 \"mlps_level\": {mlps}, \"accepts_deidentified_only\": {}, \
                 \"contracted_by\": [{contracted}]}}",
                uid("Facility", fac),
                kind == "research"
            );
            out.push(entity(
                "Destination",
                &destination_id(d),
                &attrs,
                &[("Facility", fac.into())],
            ));
        }
        out
    }

    fn clinicians(&self, rng: &mut Rng) -> Vec<String> {
        (0..self.clinicians)
            .map(|c| {
                let role = if c % 10 < 4 { "physician" } else { ROLES[c % ROLES.len()] };
                let ward = c % WARDS;
                let attrs = format!(
                    "{{\"facility\": {}, \"license_valid\": {}}}",
                    uid("Facility", Self::facility_of(ward % DEPARTMENTS)),
                    !rng.chance(4)
                );
                let parents = [
                    ("Role", role.to_owned()),
                    ("Department", format!("dept-{:02}", ward % DEPARTMENTS)),
                    ("Ward", format!("w-{:02}", ward + 1)),
                ];
                entity("Clinician", &clinician_id(c), &attrs, &parents)
            })
            .collect()
    }

    fn patients_and_records(&self, rng: &mut Rng) -> Vec<String> {
        let mut out = Vec::new();
        for p in 0..self.patients {
            let team: Vec<String> = (0..3 + rng.below(4))
                .map(|_| uid("Clinician", &clinician_id(rng.below(self.clinicians))))
                .collect();
            let consents: Vec<&str> = ["TREAT", "RESEARCH", "SHARE", "REMOTE_MONITORING"]
                .into_iter()
                .filter(|_| rng.chance(50))
                .collect();
            let attrs = format!(
                "{{\"home_facility\": {}, \"care_team\": [{}], \"consents\": [{}], \
                 \"cross_border_consent\": {}, \"minor_under_14\": {}}}",
                uid("Facility", Self::facility_of(p)),
                team.join(", "),
                consents.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", "),
                rng.chance(10),
                rng.chance(8),
            );
            out.push(entity("Patient", &patient_id(p), &attrs, &[]));
        }
        for r in 0..self.records {
            let p = r % self.patients;
            let attrs = format!(
                "{{\"patient\": {}, \"facility\": {}, \"category\": {}}}",
                uid("Patient", &patient_id(p)),
                uid("Facility", Self::facility_of(if rng.chance(85) { p } else { p + 1 })),
                uid("DataCategory", rng.pick(&CATEGORIES[..6]).0),
            );
            out.push(entity("HealthRecord", &record_id(r), &attrs, &[]));
        }
        out
    }

    fn devices(&self, rng: &mut Rng) -> Vec<String> {
        let mut out = Vec::new();
        for m in 0..MODELS {
            let attrs = format!(
                "{{\"manufacturer\": \"maker-{}\", \"device_class\": {}, \
                 \"nmpa_registration\": \"{}\", \"min_firmware\": {}, \"sbom_available\": {}}}",
                m % 4,
                1 + m % 3,
                if m == 7 { String::new() } else { format!("NMPA-2026-{m:04}") },
                1_000_000 + (m as u64 % 3) * 1_000,
                m % 5 != 4
            );
            out.push(entity("DeviceModel", &model_id(m), &attrs, &[]));
        }
        for f in 0..FIRMWARE {
            let attrs = format!(
                "{{\"model\": {}, \"version\": {}, \"security_fix\": {}}}",
                uid("DeviceModel", &model_id(f % MODELS)),
                1_000_000 + (f as u64 % 4) * 1_000 + 500,
                rng.chance(30)
            );
            out.push(entity("FirmwareImage", &firmware_id(f), &attrs, &[]));
        }
        for g in 0..GATEWAYS {
            let fac = Self::facility_of(g);
            let attrs = format!(
                "{{\"owner\": {}, \"lifecycle\": \"{}\", \"security_level\": {}}}",
                uid("Facility", fac),
                if g == 5 { "revoked" } else { "active" },
                1 + g % 2
            );
            out.push(entity("Gateway", &gateway_id(g), &attrs, &[("Facility", fac.into())]));
        }
        for (i, id) in PROFILES.into_iter().enumerate() {
            let attrs = format!(
                "{{\"key_purposes\": [\"clientAuth\"], \"allowed_kinds\": [{}], \
                 \"max_validity\": {{\"__extn\": {{\"fn\": \"duration\", \"arg\": \"{}d\"}}}}, \
                 \"min_security_level\": {}, \"allowed_key_algs\": [\"ecdsa-p256\", \"ed25519\"{}]}}",
                KINDS[i..].iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", "),
                [365, 730, 365, 7][i],
                1 + i % 2,
                if i == 0 { ", \"rsa2048\"" } else { "" }
            );
            out.push(entity("CertificateProfile", id, &attrs, &[]));
        }
        for g in 0..GROUPS {
            out.push(entity("TerminalGroup", &format!("group-{g}"), "{}", &[]));
        }
        out
    }

    fn terminal_entities(&self, rng: &mut Rng) -> Vec<String> {
        (0..self.terminals)
            .map(|t| {
                let fac = Self::facility_of(t);
                let model = t % MODELS;
                let lifecycle = match rng.below(100) {
                    0..=89 => "active",
                    90..=93 => "provisioning",
                    94..=96 => "quarantined",
                    97..=98 => "revoked",
                    _ => "decommissioned",
                };
                let sst: Vec<&str> =
                    ["1", "2", "3"].into_iter().filter(|_| rng.chance(60)).collect();
                let bound = if rng.chance(50) {
                    format!(
                        ", \"bound_patient\": {}",
                        uid("Patient", &patient_id(t % self.patients))
                    )
                } else {
                    String::new()
                };
                let attrs = format!(
                    "{{\"model\": {}, \"kind\": \"{}\", \"owner\": {}, \"certified\": {}, \
                     \"lifecycle\": \"{lifecycle}\", \"firmware_version\": {}, \
                     \"security_level\": {}, \"allowed_sst\": [{}]{bound}}}",
                    uid("DeviceModel", &model_id(model)),
                    KINDS[t % KINDS.len()],
                    uid("Facility", fac),
                    !rng.chance(8),
                    1_000_000 + rng.below(4) as u64 * 1_000,
                    1 + rng.below(2),
                    sst.join(", "),
                );
                let parents = [
                    ("Facility", fac.to_owned()),
                    ("Department", format!("dept-{:02}", t % DEPARTMENTS)),
                    ("TerminalGroup", format!("group-{}", t % GROUPS)),
                ];
                entity("Terminal", &terminal_id(t), &attrs, &parents)
            })
            .collect()
    }

    fn network(&self) -> Vec<String> {
        SLICES
            .iter()
            .map(|(id, sst, npn, dedicated, facility, min_level)| {
                let facility =
                    facility.map(|f| format!(", \"facility\": {}", uid("Facility", f))).unwrap_or_default();
                let attrs = format!(
                    "{{\"sst\": {sst}, \"sd\": \"{:06x}\", \"npn\": {npn}, \"dedicated\": {dedicated}, \
                     \"min_security_level\": {min_level}{facility}}}",
                    sst * 4097
                );
                entity("NetworkSlice", id, &attrs, &[])
            })
            .collect()
    }
}

fn entity(ty: &str, id: &str, attrs: &str, parents: &[(&str, String)]) -> String {
    let parents: Vec<String> = parents.iter().map(|(t, i)| uid(t, i)).collect();
    format!(
        "  {{\"uid\": {}, \"attrs\": {attrs}, \"parents\": [{}]}}",
        uid(ty, id),
        parents.join(", ")
    )
}
