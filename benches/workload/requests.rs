//! Decision requests over the generated world: every action, principals and resources of the
//! types the schema allows, contexts with realistic (mostly benign) values so that a fair share
//! of requests is allowed.

use super::entities::{
    clinician_id, destination_id, firmware_id, gateway_id, patient_id, record_id, terminal_id,
    World, CATEGORIES, FIRMWARE, GATEWAYS, PROFILES, SLICES,
};
use super::{uid, Rng};

/// One request body.
pub(crate) fn request(world: &World, rng: &mut Rng) -> String {
    let (action, principal, resource, context) = match rng.below(100) {
        0..=19 => attach(world, rng),
        20..=24 => register(world, rng),
        25..=34 => credential(world, rng),
        35..=59 => transmit(world, rng),
        60..=67 => command(world, rng),
        68..=72 => firmware(world, rng),
        _ => read_record(world, rng),
    };
    format!(
        "{{\"principal\": {principal}, \"action\": \"Med5G::Action::\\\"{action}\\\"\", \
         \"resource\": {resource}, \"context\": {context}}}"
    )
}

type Parts = (&'static str, String, String, String);

fn env(rng: &mut Rng) -> String {
    format!(
        "{{\"now\": \"2026-11-{:02}T{:02}:{:02}:00Z\", \"risk_score\": {}, \
         \"inside_geofence\": {}, \"audit_available\": {}}}",
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        if rng.chance(5) { 90 + rng.below(11) } else { rng.below(60) },
        !rng.chance(5),
        !rng.chance(3)
    )
}

fn device(world: &World, rng: &mut Rng) -> String {
    if rng.chance(10) {
        uid("Gateway", &gateway_id(rng.below(GATEWAYS)))
    } else {
        terminal(world, rng)
    }
}

fn terminal(world: &World, rng: &mut Rng) -> String {
    uid("Terminal", &terminal_id(rng.below(world.terminals)))
}

fn attach(world: &World, rng: &mut Rng) -> Parts {
    let slice = uid("NetworkSlice", rng.pick(&SLICES).0);
    let ctx = format!("{{\"env\": {}, \"attested\": {}}}", env(rng), !rng.chance(5));
    ("attach", device(world, rng), slice, ctx)
}

fn register(world: &World, rng: &mut Rng) -> Parts {
    let facility = uid("Facility", World::facility_of(rng.below(8)));
    let ctx = format!("{{\"env\": {}, \"attested\": {}}}", env(rng), !rng.chance(5));
    ("register", device(world, rng), facility, ctx)
}

fn credential(world: &World, rng: &mut Rng) -> Parts {
    let renew = rng.chance(50);
    let expiry = if renew && rng.chance(80) {
        format!(", \"current_cert_expiry\": \"2026-12-{:02}T00:00:00Z\"", 1 + rng.below(31))
    } else {
        String::new()
    };
    let ctx = format!(
        "{{\"env\": {}, \"attested\": {}, \"key_alg\": \"{}\", \"requested_validity\": \"{}d\", \
         \"current_cert_revoked\": {}{expiry}}}",
        env(rng),
        !rng.chance(5),
        rng.pick(&["ecdsa-p256", "ed25519", "rsa2048", "rsa1024"]),
        rng.pick(&[7, 90, 365, 730]),
        renew && rng.chance(5),
    );
    let action = if renew { "renew_credential" } else { "request_credential" };
    let profile = PROFILES[rng.below(PROFILES.len())];
    (action, device(world, rng), uid("CertificateProfile", profile), ctx)
}

fn slice_ctx(rng: &mut Rng) -> String {
    let (_, sst, npn, dedicated, _, _) = *rng.pick(&SLICES);
    format!(
        "{{\"sst\": {sst}, \"sd\": \"{:06x}\", \"npn\": {npn}, \"dedicated\": {dedicated}}}",
        sst * 4097
    )
}

fn tls(rng: &mut Rng) -> String {
    format!(
        "{{\"protocol\": \"{}\", \"mutual\": {}, \"client_cert_valid\": {}}}",
        rng.pick(&["TLS1.3", "TLS1.3", "TLCP", "TLS1.2", "TLS1.0"]),
        !rng.chance(5),
        !rng.chance(3)
    )
}

fn transmit(world: &World, rng: &mut Rng) -> Parts {
    let patient = if rng.chance(70) {
        format!(", \"patient\": {}", uid("Patient", &patient_id(rng.below(world.patients))))
    } else {
        String::new()
    };
    let gateway = if rng.chance(20) {
        format!(", \"via_gateway\": {}", uid("Gateway", &gateway_id(rng.below(GATEWAYS))))
    } else {
        String::new()
    };
    let ctx = format!(
        "{{\"env\": {}, \"slice\": {}, \"tls\": {}, \"data\": {}, \"purpose\": \"{}\", \
         \"deidentified\": {}, \"payload_encrypted\": {}, \"emergency\": {}, \
         \"cross_border_approval\": {}{patient}{gateway}}}",
        env(rng),
        slice_ctx(rng),
        tls(rng),
        uid("DataCategory", rng.pick(&CATEGORIES).0),
        rng.pick(&["TREAT", "REMOTE_MONITORING", "RESEARCH", "SHARE"]),
        rng.chance(20),
        !rng.chance(10),
        rng.chance(10),
        rng.chance(10),
    );
    let destination = uid("Destination", &destination_id(rng.below(world.destinations)));
    ("transmit", terminal(world, rng), destination, ctx)
}

fn command(world: &World, rng: &mut Rng) -> Parts {
    let operator = if rng.chance(60) {
        format!(", \"operator\": {}", uid("Clinician", &clinician_id(rng.below(world.clinicians))))
    } else {
        String::new()
    };
    let ctx = format!(
        "{{\"env\": {}, \"slice\": {}, \"tls\": {}, \"command_class\": \"{}\"{operator}}}",
        env(rng),
        slice_ctx(rng),
        tls(rng),
        rng.pick(&["query", "configure", "therapy", "realtime_control"]),
    );
    ("receive_command", terminal(world, rng), terminal(world, rng), ctx)
}

fn firmware(world: &World, rng: &mut Rng) -> Parts {
    let ctx = format!(
        "{{\"env\": {}, \"signature_verified\": {}, \"in_clinical_use\": {}}}",
        env(rng),
        !rng.chance(5),
        rng.chance(30)
    );
    let image = uid("FirmwareImage", &firmware_id(rng.below(FIRMWARE)));
    ("firmware_update", terminal(world, rng), image, ctx)
}

fn read_record(world: &World, rng: &mut Rng) -> Parts {
    let break_glass = rng.chance(8);
    let purpose =
        if break_glass { "ETREAT" } else { rng.pick(&["TREAT", "TREAT", "RESEARCH", "BILLING"]) };
    let ctx = format!(
        "{{\"env\": {}, \"purpose\": \"{purpose}\", \"break_glass\": {break_glass}, \
         \"treating_relationship\": {}, \"justification\": \"{}\"}}",
        env(rng),
        rng.chance(60),
        if rng.chance(80) { "ward round" } else { "" }
    );
    let clinician = uid("Clinician", &clinician_id(rng.below(world.clinicians)));
    ("read_record", clinician, uid("HealthRecord", &record_id(rng.below(world.records))), ctx)
}
