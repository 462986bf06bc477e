#!/usr/bin/env python3
"""Generate the demo hospital network of the Med5G policy pack (policies/entities/*.json).

The demo network is a medical consortium around Xihu General Hospital (hospA): a community
clinic, a county hospital, a second clinic and the city's 120 emergency centre share patient
data; a hospital of another alliance (hospC) and an overseas analytics processor (vendorX) sit
outside it. It has the named entities the test cases and README examples use (t-ecg1, dr-li,
P1, ...; see policies/README.md) and, around them, dozens of generated terminals of every kind,
gateways, clinicians, patients and records, so that the data looks like a real deployment.

The output is deterministic (fixed seed, sorted, one entity per line): running the script again
gives byte-identical files, which tests/it/policy_pack.rs checks. Re-run it after editing:

    python3 scripts/gen-demo-entities.py            # writes policies/entities/
    python3 scripts/gen-demo-entities.py --check    # exits 1 if the committed files differ
"""

import argparse
import json
import random
import sys
from pathlib import Path

NS = "Med5G::"
SEED = 20260310


def uid(kind, ident):
    return {"type": NS + kind, "id": ident}


def ent(kind, ident, attrs=None, parents=()):
    return {"uid": uid(kind, ident), "attrs": attrs or {}, "parents": list(parents)}


def duration(text):
    return {"__extn": {"fn": "duration", "arg": text}}


def version(text):
    """'2.1.0' -> 2001000 (the packed form policies compare)."""
    major, minor, patch = (int(p) for p in text.split("."))
    return major * 1_000_000 + minor * 1_000 + patch


# ---------------------------------------------------------------- organisations

NETWORKS = {
    "zj-consortium": "Xihu Medical Consortium",
    "other-net": "Yongjiang Medical Alliance",
}

# id: (name, org code, country, MLPS level, networks, departments)
FACILITIES = {
    "hospA": ("Xihu General Hospital", "12330000470051234A", "CN", 3, ["zj-consortium"],
              ["icu", "ed", "cardiology", "surgery", "radiology", "wards", "biomed"]),
    "clinicB": ("Binjiang Community Health Centre", "12330108MB0123456C", "CN", 3,
                ["zj-consortium"], ["general", "ultrasound", "surgery"]),
    "hospD": ("Qiantang County People's Hospital", "12330114470098765D", "CN", 3,
              ["zj-consortium"], ["icu", "ed", "cardiology", "wards", "radiology"]),
    "clinicE": ("Gongshu Community Clinic", "12330105MB0987654E", "CN", 2,
                ["zj-consortium"], ["general"]),
    "ems120": ("Hangzhou 120 Emergency Centre", "12330100470011200F", "CN", 3,
               ["zj-consortium"], ["fleet"]),
    "hospC": ("Ningbo Harbour Hospital", "12330200470055555G", "CN", 3, ["other-net"],
              ["icu", "ed", "radiology", "wards"]),
    "vendorX": ("MedCloud Analytics Pte. Ltd.", "SG-201912345K", "SG", 0, [], []),
}

ROLES = ["surgeon", "physician", "nurse", "emt", "biomed_engineer", "researcher"]


def organisations():
    out = [ent("HealthNetwork", i, {"name": n}) for i, n in NETWORKS.items()]
    for fid, (name, code, country, mlps, nets, depts) in FACILITIES.items():
        out.append(ent("Facility", fid, {
            "name": name, "org_code": code, "country": country, "mlps_level": mlps,
            "networks": [uid("HealthNetwork", n) for n in nets],
        }, [uid("HealthNetwork", n) for n in nets]))
        for d in depts:
            out.append(ent("Department", f"{fid}-{d}", {"name": f"{name}: {d}"},
                           [uid("Facility", fid)]))
    out += [ent("Role", r) for r in ROLES]
    return out


# ---------------------------------------------------------------- people

# id: (facility, department, roles, licence valid)
NAMED_CLINICIANS = {
    "dr-li": ("hospA", "cardiology", ["physician"], True),
    "dr-wang": ("hospA", "surgery", ["physician", "surgeon"], True),
    "nurse-zhao": ("hospA", "icu", ["nurse"], True),
    "emt-sun": ("ems120", "fleet", ["emt"], True),
    "dr-expired": ("hospA", "cardiology", ["physician"], False),
    "dr-chen": ("clinicB", "general", ["physician"], True),
    "dr-zhou": ("hospC", "ed", ["physician", "surgeon"], True),
    "bio-ma": ("hospA", "biomed", ["biomed_engineer"], True),
    "res-he": ("hospA", "cardiology", ["researcher"], True),
}

# (facility, department, roles, how many)
GENERATED_STAFF = [
    ("hospA", "icu", ["physician"], 4), ("hospA", "icu", ["nurse"], 6),
    ("hospA", "ed", ["physician"], 4), ("hospA", "ed", ["nurse"], 4),
    ("hospA", "surgery", ["physician", "surgeon"], 4), ("hospA", "wards", ["nurse"], 6),
    ("clinicB", "general", ["physician"], 3), ("clinicB", "general", ["nurse"], 3),
    ("hospD", "icu", ["physician"], 3), ("hospD", "ed", ["nurse"], 4),
    ("hospD", "cardiology", ["physician"], 3), ("clinicE", "general", ["physician"], 2),
    ("ems120", "fleet", ["emt"], 10), ("hospC", "ed", ["physician"], 3),
    ("hospC", "icu", ["nurse"], 3),
]

# id: (home, consents, cross-border consent, care team, minor under 14, guardian consent)
NAMED_PATIENTS = {
    "P1": ("hospA", ["remote_monitoring", "TREAT"], True, ["dr-wang"], False, False),
    "P2": ("hospA", ["remote_monitoring"], False, [], False, False),
    "P3": ("hospA", [], False, [], False, False),
    "P4": ("clinicB", ["teleconsult", "cross_facility_share", "TREAT"], False, ["dr-chen"],
           False, False),
    "P5": ("hospA", ["remote_monitoring"], False, ["dr-li"], True, False),
    "P6": ("hospA", ["remote_monitoring"], False, ["dr-li"], True, True),
    "P7": ("hospA", ["remote_monitoring", "research"], False, [], False, False),
}

PURPOSES = ["remote_monitoring", "TREAT", "teleconsult", "cross_facility_share", "research"]


def people(rng):
    out = []
    staff = {}  # facility -> clinician ids

    def clinician(cid, fac, dept, roles, licence):
        staff.setdefault(fac, []).append(cid)
        parents = [uid("Role", r) for r in roles] + [uid("Department", f"{fac}-{dept}")]
        out.append(ent("Clinician", cid, {
            "facility": uid("Facility", fac), "license_valid": licence,
        }, parents))

    for cid, (fac, dept, roles, licence) in NAMED_CLINICIANS.items():
        clinician(cid, fac, dept, roles, licence)
    for fac, dept, roles, n in GENERATED_STAFF:
        tag = "sur" if "surgeon" in roles else roles[0][:3]
        for k in range(1, n + 1):
            clinician(f"{fac}-{dept}-{tag}-{k:02}", fac, dept, roles, rng.random() > 0.03)

    patients = {}
    for pid, (home, consents, xb, team, minor, guardian) in NAMED_PATIENTS.items():
        patients[pid] = home
        out.append(patient(pid, home, consents, xb, team, minor, guardian))
    homes = ["hospA"] * 5 + ["hospD"] * 3 + ["clinicB"] * 2 + ["clinicE", "hospC"]
    for k in range(1, 121):
        pid = f"pt-{k:04}"
        home = rng.choice(homes)
        consents = sorted(p for p in PURPOSES if rng.random() < 0.55)
        team = sorted(rng.sample(staff[home], k=min(len(staff[home]), rng.randint(1, 3))))
        minor = rng.random() < 0.08
        patients[pid] = home
        out.append(patient(pid, home, consents, rng.random() < 0.15, team, minor,
                           minor and rng.random() < 0.7))
    return out, patients


def patient(pid, home, consents, xb, team, minor, guardian):
    return ent("Patient", pid, {
        "home_facility": uid("Facility", home),
        "care_team": [uid("Clinician", c) for c in team],
        "consents": list(consents),
        "cross_border_consent": xb,
        "minor_under_14": minor,
        "guardian_consent": guardian,
    })


# ---------------------------------------------------------------- devices

# id: (manufacturer, NMPA class, registration or filing number, min firmware, SBOM on file)
MODELS = {
    "robot-m1": ("Qiantang Surgical Robotics", 3, "国械注准20243010101", "2.1.0", True),
    "console-c1": ("Qiantang Surgical Robotics", 3, "国械注准20243010102", "1.0.0", True),
    "ecg-e2": ("Xizi Cardio Devices", 2, "浙械注准20222070201", "1.4.0", True),
    "us-u5": ("Lingyin Imaging", 2, "浙械注准20232060301", "3.0.0", True),
    "monitor-b7": ("Baidi Monitoring", 2, "浙械注准20212070401", "1.0.0", True),
    "amb-g1": ("Gouqu Emergency Systems", 2, "浙械注准20222070501", "2.2.0", True),
    "pump-p3": ("Santan Infusion", 2, "浙械注准20212140601", "4.0.0", True),
    "bp-h1": ("Huagang Home Health", 2, "浙械注准20232070701", "1.0.0", True),
    "nosbom-x": ("Legacy Medical Ltd.", 2, "浙械注准20182070801", "1.0.0", False),
}

# kind: (model, security level, allowed SSTs, current firmware choices, departments, owners)
KINDS = {
    "wearable_ecg": ("ecg-e2", 1, [1, 3], ["1.5.0", "1.5.0", "1.6.0", "1.3.9"],
                     "cardiology", ["hospA", "hospD", "clinicB", "clinicE"]),
    "patient_monitor": ("monitor-b7", 2, [1, 2, 3], ["1.0.5", "1.1.0", "1.1.0"],
                        "icu", ["hospA", "hospD", "hospC", "clinicB"]),
    "infusion_pump": ("pump-p3", 2, [3], ["4.1.2", "4.1.2", "4.0.0", "3.9.9"],
                      "wards", ["hospA", "hospD", "hospC"]),
    "ultrasound_probe": ("us-u5", 2, [1, 2], ["3.2.0", "3.2.0", "3.1.4"],
                         "radiology", ["hospA", "hospD", "clinicB", "hospC"]),
    "ambulance_monitor": ("amb-g1", 2, [1, 2], ["2.4.0", "2.4.0", "2.2.0"],
                          "fleet", ["ems120", "ems120", "ems120", "hospA"]),
    "surgical_robot": ("robot-m1", 2, [2], ["2.3.0", "2.3.0", "2.2.1"],
                       "surgery", ["hospA", "clinicB", "hospD", "hospC"]),
    "surgical_console": ("console-c1", 2, [1, 2], ["1.2.0", "1.2.0", "1.1.0"],
                         "surgery", ["hospA", "hospD", "hospC", "clinicB"]),
    "bp_monitor": ("bp-h1", 1, [3], ["1.2.0", "1.2.0", "1.1.3"],
                   None, ["hospA", "hospD", "clinicE", "clinicB"]),
}

COUNTS = {"wearable_ecg": 36, "patient_monitor": 48, "infusion_pump": 36,
          "ultrasound_probe": 24, "ambulance_monitor": 24, "surgical_robot": 24,
          "surgical_console": 24, "bp_monitor": 36}

GROUPS = {
    "tg-home-monitoring": ["wearable_ecg", "bp_monitor"],
    "tg-telesurgery": ["surgical_robot", "surgical_console"],
    "tg-ambulance-fleet": ["ambulance_monitor"],
    "tg-bedside": ["patient_monitor", "infusion_pump"],
    "tg-imaging": ["ultrasound_probe"],
}
GROUP_OF = {k: g for g, ks in GROUPS.items() for k in ks}

# id: (kind, owner, security level, allowed SSTs, firmware, lifecycle, certified, bound patient,
#      model override)
NAMED_TERMINALS = {
    "t-robot1": ("surgical_robot", "clinicB", 2, [2], "2.3.0", "active", True, None, None),
    "t-robot-weak": ("surgical_robot", "clinicB", 1, [2], "2.3.0", "active", True, None, None),
    "t-robot-old": ("surgical_robot", "clinicB", 2, [2], "2.0.5", "active", True, None, None),
    "t-robot-hospC": ("surgical_robot", "hospC", 2, [2], "2.3.0", "active", True, None, None),
    "t-console1": ("surgical_console", "hospA", 2, [1, 2], "1.2.0", "active", True, None, None),
    "t-console-rev": ("surgical_console", "hospA", 2, [1, 2], "1.2.0", "revoked", True, None,
                      None),
    "t-ecg1": ("wearable_ecg", "hospA", 1, [1, 3], "1.5.0", "active", True, "P1", None),
    "t-ecg-old": ("wearable_ecg", "hospA", 1, [1, 3], "1.3.9", "active", True, None, None),
    "t-ecg-kid": ("wearable_ecg", "hospA", 1, [1, 3], "1.5.0", "active", True, None, None),
    "t-us1": ("ultrasound_probe", "clinicB", 2, [1, 2], "3.2.0", "active", True, None, None),
    "t-mon1": ("patient_monitor", "hospA", 2, [1, 2, 3], "1.1.0", "active", True, None, None),
    "t-amb1": ("ambulance_monitor", "hospA", 2, [1, 2], "2.4.0", "active", True, None, None),
    "t-pump1": ("infusion_pump", "hospA", 2, [3], "4.1.2", "active", True, None, None),
    "t-prov": ("patient_monitor", "hospA", 2, [1, 2, 3], "1.1.0", "provisioning", True, None,
               None),
    "t-uncert": ("patient_monitor", "hospA", 2, [1, 2, 3], "1.1.0", "active", False, None,
                 None),
    "t-quar": ("patient_monitor", "hospA", 1, [1, 3], "1.0.5", "quarantined", True, None, None),
    "t-rev": ("patient_monitor", "hospA", 2, [1, 2, 3], "1.1.0", "revoked", True, None, None),
    "t-legacy": ("patient_monitor", "hospA", 2, [1, 3], "1.5.0", "active", True, None,
                 "nosbom-x"),
}

# id: (kind, owner, security level, allowed SSTs, lifecycle, certified)
NAMED_GATEWAYS = {
    "g-cpe1": ("cpe", "hospA", 2, [1, 2, 3], "active", True),
    "g-cpe-q": ("cpe", "hospA", 2, [1, 2, 3], "quarantined", True),
    "g-cpe-weak": ("cpe", "hospA", 1, [1, 3], "active", True),
    "g-cpe-new": ("cpe", "hospA", 2, [1, 3], "provisioning", True),
    "g-cpe-clinicB": ("cpe", "clinicB", 2, [1, 2, 3], "active", True),
    "g-amb1": ("ambulance_router", "hospA", 2, [1, 2], "active", True),
}

FIRMWARE = {
    # id: (model, version, security fix)
    "ecg-e2-1.4.0": ("ecg-e2", "1.4.0", False),
    "ecg-e2-1.5.0": ("ecg-e2", "1.5.0", False),
    "ecg-e2-1.6.0": ("ecg-e2", "1.6.0", False),
    "ecg-e2-1.6.1-sec": ("ecg-e2", "1.6.1", True),
    "mon-b7-1.1.0": ("monitor-b7", "1.1.0", False),
    "mon-b7-1.2.0": ("monitor-b7", "1.2.0", False),
    "robot-m1-2.4.0": ("robot-m1", "2.4.0", False),
    "console-c1-1.3.0": ("console-c1", "1.3.0", False),
    "us-u5-3.3.0": ("us-u5", "3.3.0", False),
    "amb-g1-2.5.0-sec": ("amb-g1", "2.5.0", True),
    "pump-p3-4.2.0": ("pump-p3", "4.2.0", False),
    "bp-h1-1.3.0": ("bp-h1", "1.3.0", False),
    "nosbom-x-1.6.0": ("nosbom-x", "1.6.0", False),
}


def terminal(tid, kind, owner, sec, sst, fw, lifecycle, certified, bound, model, depts):
    dept = KINDS[kind][4]
    parents = [uid("Facility", owner)]
    if dept and dept in depts.get(owner, []):
        parents.append(uid("Department", f"{owner}-{dept}"))
    parents.append(uid("TerminalGroup", GROUP_OF[kind]))
    attrs = {
        "model": uid("DeviceModel", model or KINDS[kind][0]),
        "kind": kind,
        "owner": uid("Facility", owner),
        "certified": certified,
        "lifecycle": lifecycle,
        "firmware_version": version(fw),
        "security_level": sec,
        "allowed_sst": sst,
    }
    if bound:
        attrs["bound_patient"] = uid("Patient", bound)
    return ent("Terminal", tid, attrs, parents)


def devices(rng, patients):
    depts = {f: v[5] for f, v in FACILITIES.items()}
    out = []
    for mid, (maker, cls, reg, min_fw, sbom) in MODELS.items():
        out.append(ent("DeviceModel", mid, {
            "manufacturer": maker, "device_class": cls, "nmpa_registration": reg,
            "min_firmware": version(min_fw), "sbom_available": sbom,
        }))
    out += [ent("TerminalGroup", g) for g in GROUPS]
    for tid, (kind, owner, sec, sst, fw, life, cert, bound, model) in NAMED_TERMINALS.items():
        out.append(terminal(tid, kind, owner, sec, sst, fw, life, cert, bound, model, depts))
    by_home = {}
    for pid, home in patients.items():
        if pid.startswith("pt-"):
            by_home.setdefault(home, []).append(pid)
    lifecycles = ["active"] * 85 + ["provisioning"] * 6 + ["quarantined"] * 4 + \
                 ["revoked"] * 3 + ["decommissioned"] * 2
    for kind, n in COUNTS.items():
        _, sec, sst, fws, _, owners = KINDS[kind]
        for k in range(1, n + 1):
            owner = owners[(k - 1) % len(owners)]
            bound = None
            if kind in ("wearable_ecg", "bp_monitor") and by_home.get(owner):
                bound = rng.choice(by_home[owner])
            out.append(terminal(
                f"{owner}-{kind.replace('_', '-')}-{k:03}", kind, owner, sec, sst,
                rng.choice(fws), rng.choice(lifecycles), rng.random() > 0.03, bound, None,
                depts))
    for gid, (kind, owner, sec, sst, life, cert) in NAMED_GATEWAYS.items():
        out.append(gateway(gid, kind, owner, sec, sst, life, cert))
    for owner, kind, n in [("hospA", "cpe", 6), ("hospD", "cpe", 4), ("hospC", "cpe", 3),
                           ("clinicB", "cpe", 2), ("clinicE", "cpe", 2),
                           ("ems120", "ambulance_router", 20), ("hospA", "edge_node", 2),
                           ("hospD", "edge_node", 1)]:
        for k in range(1, n + 1):
            life = "active" if rng.random() > 0.06 else "quarantined"
            sst = [1, 2] if kind == "ambulance_router" else [1, 2, 3]
            out.append(gateway(f"{owner}-{kind.replace('_', '-')}-{k:02}", kind, owner, 2, sst,
                               life, True))
    for fid, (model, ver, fix) in FIRMWARE.items():
        out.append(ent("FirmwareImage", fid, {
            "model": uid("DeviceModel", model), "version": version(ver), "security_fix": fix,
        }))
    return out


def gateway(gid, kind, owner, sec, sst, lifecycle, certified):
    return ent("Gateway", gid, {
        "kind": kind, "owner": uid("Facility", owner), "certified": certified,
        "lifecycle": lifecycle, "security_level": sec, "allowed_sst": sst,
    }, [uid("Facility", owner)])


# ---------------------------------------------------------------- network

# id: (SST, SD, NPN, dedicated, facility, minimum security level)
SLICES = {
    "npn-urllc-hospA": (2, "0A0001", True, True, "hospA", 2),
    "npn-embb-hospA": (1, "0A0002", True, True, "hospA", 1),
    "npn-urllc-clinicB": (2, "0B0001", True, True, "clinicB", 2),
    "plmn-embb-public": (1, "", False, False, None, 1),
    "plmn-embb-health": (1, "1A0001", False, True, None, 1),
    "plmn-miot-health": (3, "1C0001", False, True, None, 1),
    "plmn-urllc-health": (2, "1B0001", False, True, None, 2),
}


def network():
    out = []
    for sid, (sst, sd, npn, ded, fac, minsec) in SLICES.items():
        attrs = {"sst": sst, "sd": sd, "npn": npn, "dedicated": ded, "min_security_level": minsec}
        if fac:
            attrs["facility"] = uid("Facility", fac)
        out.append(ent("NetworkSlice", sid, attrs))
    return out


# ---------------------------------------------------------------- data

# id: (GB/T 39725 class, grade, personal, sensitive PI, genetic, FHIR confidentiality, realtime)
CATEGORIES = {
    "device_telemetry": ("health_resource", 1, False, False, False, "U", False),
    "outbreak_aggregate": ("public_health", 2, False, False, False, "L", False),
    "deid_research_set": ("medical_application", 2, False, False, False, "M", False),
    "vital_signs": ("health_status", 3, True, True, False, "N", False),
    "ecg_waveform": ("health_status", 3, True, True, False, "N", False),
    "medication_orders": ("medical_application", 3, True, True, False, "N", False),
    "insurance_claim": ("medical_payment", 3, True, True, False, "N", False),
    "patient_identity": ("personal_attribute", 4, True, False, False, "R", False),
    "us_video": ("medical_application", 4, True, True, False, "R", False),
    "surgical_control": ("medical_application", 4, False, False, False, "R", True),
    "hiv_status": ("health_status", 5, True, True, False, "V", False),
    "genome": ("health_status", 5, True, True, True, "V", False),
}

# id: (facility, kind, country, MLPS level, de-identified only, contracted by)
DESTINATIONS = {
    "hospA-monitoring": ("hospA", "monitoring", "CN", 3, False, []),
    "hospA-ed": ("hospA", "ed", "CN", 3, False, []),
    "hospA-pacs": ("hospA", "pacs", "CN", 3, False, []),
    "research-platform": ("hospA", "research", "CN", 3, True, []),
    "clinicB-telesurgery": ("clinicB", "telesurgery", "CN", 3, False, []),
    "hospD-icu-central": ("hospD", "monitoring", "CN", 3, False, []),
    "ems120-dispatch": ("ems120", "dispatch", "CN", 3, False, []),
    "clinicE-followup": ("clinicE", "followup", "CN", 2, False, []),
    "hospC-pacs": ("hospC", "pacs", "CN", 3, False, []),
    "vendor-cloud-sg": ("vendorX", "cloud", "SG", 3, False, ["hospA"]),
}

NAMED_RECORDS = {
    "r-P1-vitals": ("P1", "hospA", "vital_signs"),
    "r-P1-ecg": ("P1", "hospA", "ecg_waveform"),
    "r-P1-hiv": ("P1", "hospA", "hiv_status"),
    "r-P1-genome": ("P1", "hospA", "genome"),
    "r-P2-vitals": ("P2", "hospA", "vital_signs"),
    "r-P4-us": ("P4", "clinicB", "us_video"),
    "r-P4-hiv": ("P4", "clinicB", "hiv_status"),
}


def data(rng, patients):
    out = []
    for cid, (cls, level, personal, sens, gen, fhir, rt) in CATEGORIES.items():
        out.append(ent("DataCategory", cid, {
            "gbt39725_class": cls, "level": level, "personal": personal, "sensitive_pi": sens,
            "human_genetic": gen, "fhir_confidentiality": fhir, "realtime_control": rt,
        }))
    for did, (fac, kind, country, mlps, deid, contracted) in DESTINATIONS.items():
        out.append(ent("Destination", did, {
            "facility": uid("Facility", fac), "kind": kind, "country": country,
            "mlps_level": mlps, "accepts_deidentified_only": deid,
            "contracted_by": [uid("Facility", f) for f in contracted],
        }, [uid("Facility", fac)]))
    records = dict(NAMED_RECORDS)
    personal_cats = ["vital_signs", "ecg_waveform", "medication_orders", "us_video",
                     "patient_identity", "hiv_status"]
    for pid, home in patients.items():
        if pid.startswith("pt-"):
            for cat in sorted(rng.sample(personal_cats, k=2)):
                records[f"r-{pid}-{cat.replace('_', '-')}"] = (pid, home, cat)
    for rid, (pid, fac, cat) in records.items():
        out.append(ent("HealthRecord", rid, {
            "patient": uid("Patient", pid), "facility": uid("Facility", fac),
            "category": uid("DataCategory", cat),
        }))
    return out


# ---------------------------------------------------------------- credentials

# id: (key purposes, kinds, max validity, renewal window, min security level, key algorithms)
PROFILES = {
    "terminal-mtls": (["client_auth", "sdc_provider", "sdc_consumer"],
                      ["surgical_robot", "surgical_console", "ultrasound_probe",
                       "patient_monitor", "ambulance_monitor", "infusion_pump"],
                      "365d", "30d", 2, ["ECDSA-P256", "SM2"]),
    "wearable-mtls": (["client_auth"], ["wearable_ecg", "bp_monitor"], "90d", "14d", 1,
                      ["ECDSA-P256", "SM2", "Ed25519"]),
    "gateway-mtls": (["client_auth", "server_auth"], ["cpe", "ambulance_router", "edge_node"],
                     "365d", "30d", 2, ["ECDSA-P256", "ECDSA-P384", "SM2"]),
}


def pki():
    out = []
    for pid, (purposes, kinds, maxv, window, minsec, algs) in PROFILES.items():
        out.append(ent("CertificateProfile", pid, {
            "key_purposes": purposes, "allowed_kinds": kinds,
            "max_validity": duration(maxv), "renewal_window": duration(window),
            "min_security_level": minsec, "allowed_key_algs": algs,
        }))
    return out


# ---------------------------------------------------------------- output

def render(entities):
    """One entity per line: small diffs, greppable, and loader diagnostics point at a line."""
    entities = sorted(entities, key=lambda e: (e["uid"]["type"], e["uid"]["id"]))
    lines = [json.dumps(e, ensure_ascii=False, separators=(", ", ": ")) for e in entities]
    return "[\n  " + ",\n  ".join(lines) + "\n]\n"


def generate():
    rng = random.Random(SEED)
    people_entities, patients = people(rng)
    return {
        "organisations.json": organisations(),
        "people.json": people_entities,
        "devices.json": devices(rng, patients),
        "network.json": network(),
        "data.json": data(rng, patients),
        "pki.json": pki(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent
                                              / "policies" / "entities"))
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args()
    out = Path(args.out)
    files = {name: render(ents) for name, ents in generate().items()}
    if args.check:
        stale = [n for n, text in files.items()
                 if not (out / n).is_file() or (out / n).read_text(encoding="utf-8") != text]
        extra = sorted(p.name for p in out.glob("*.json") if p.name not in files)
        for n in stale:
            print(f"{out / n} differs from the generator's output", file=sys.stderr)
        for n in extra:
            print(f"{out / n} is not produced by the generator", file=sys.stderr)
        return 1 if stale or extra else 0
    out.mkdir(parents=True, exist_ok=True)
    for p in out.glob("*.json"):
        if p.name not in files:
            p.unlink()
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    total = sum(len(e) for e in generate().values())
    print(f"wrote {len(files)} files, {total} entities, to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
