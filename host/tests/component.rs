//! The signer component through the host: every vector, and failures that
//! must come back as errors rather than panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use hooksign::{Keyring, SecretRecord};
use hooksign_host::{ComponentBackend, HostError, SignerComponent};
use hooksign_vectors::{Native, load, run, run_files};

fn component() -> SignerComponent {
    common::component().clone()
}

#[test]
fn every_vector_passes_on_the_component() {
    every_vector_passes_on(&component());
}

#[test]
fn every_vector_passes_on_the_edge_component() {
    every_vector_passes_on(&SignerComponent::load(&common::edge_component_path()).unwrap());
}

fn every_vector_passes_on(component: &SignerComponent) {
    let files = common::vector_files();
    let total = run_files(&files, &mut ComponentBackend::new(component)).unwrap();
    let cases: usize = files
        .iter()
        .map(|path| load(path).unwrap().cases.len())
        .sum();
    for failure in &total.failures {
        eprintln!("{failure}");
    }
    eprintln!("component: {}", total.summary());
    assert!(total.failures.is_empty(), "component: {}", total.summary());
    assert_eq!(total.passed, cases);
}

#[test]
fn a_broken_vector_fails_on_both_backends() {
    let path = common::vector_files()
        .into_iter()
        .find(|path| path.ends_with("starter.json"))
        .unwrap();
    let mut file = load(&path).unwrap();
    let case = file
        .cases
        .iter_mut()
        .find(|case| case.name == "standard-webhooks-spec-example")
        .unwrap();
    case.expect = hooksign_vectors::Outcome::Signature("v1,AAAA".into());
    let component = component();
    for report in [
        run(&file, &mut Native),
        run(&file, &mut ComponentBackend::new(&component)),
    ] {
        assert_eq!(report.failures.len(), 1, "{}", report.summary());
        assert_eq!(report.failures[0].name, "standard-webhooks-spec-example");
    }
}

#[test]
fn component_and_native_sign_and_verify_each_other() {
    let component = component();
    let mut session = component.session().unwrap();
    let secret = session.generate_secret().unwrap();
    let records = [SecretRecord::new(secret.as_str())];
    let keyring = session.parse_keyring(&records).unwrap();
    let payload = b"\xff\x00 not utf-8";
    let signature = session
        .sign(keyring, "msg_x", 1_700_000_000, payload)
        .unwrap();

    let native = Keyring::from_records(&records).unwrap();
    assert_eq!(
        native.sign("msg_x", 1_700_000_000, payload).unwrap(),
        signature
    );
    let headers = vec![
        ("webhook-id".to_string(), "msg_x".to_string()),
        ("webhook-timestamp".to_string(), "1700000000".to_string()),
        ("webhook-signature".to_string(), signature),
    ];
    let verified = session
        .verify(keyring, &headers, payload, Some(1_700_000_100), None)
        .unwrap();
    assert_eq!(verified.secret, 0);
    assert_eq!(verified.id, "msg_x");
    // `None` reads the component's wall clock: a 2023 timestamp is far too old now.
    let stale = session.verify(keyring, &headers, payload, None, None);
    assert!(matches!(
        stale,
        Err(HostError::Signing(hooksign::Error::TimestampTooOld))
    ));
}

#[test]
fn rotated_keyrings_come_back_out_of_the_component() {
    let component = component();
    let mut session = component.session().unwrap();
    let old = session.generate_secret().unwrap();
    let new = session.generate_secret().unwrap();
    let keyring = session
        .parse_keyring(&[SecretRecord::new(old.as_str())])
        .unwrap();
    let rotated = session.rotate(keyring, &new, Some(100), Some(50)).unwrap();
    let records = session.secrets(rotated).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0], SecretRecord::new(new.as_str()));
    assert_eq!(records[1].key, old);
    assert_eq!(records[1].not_after, Some(150));
    assert_eq!(session.active(rotated, Some(149)).unwrap(), vec![0, 1]);
    assert_eq!(session.active(rotated, Some(150)).unwrap(), vec![0]);
    // The original keyring is unchanged and both can be freed.
    assert_eq!(session.secrets(keyring).unwrap().len(), 1);
    session.drop_keyring(keyring).unwrap();
    session.drop_keyring(rotated).unwrap();
}

#[test]
fn sessions_past_the_pool_are_an_error_until_one_ends() {
    // A pool of its own: the shared one serves the tests running alongside.
    let component = SignerComponent::load(&common::component_path()).unwrap();
    let mut live: Vec<_> = (0..hooksign_host::MAX_POOLED_INSTANCES)
        .map(|_| component.session().unwrap())
        .collect();
    assert!(matches!(component.session(), Err(HostError::Wasm(_))));
    // Ending one frees its slot, and the sessions still alive still work.
    live.pop();
    let mut again = component.session().unwrap();
    assert!(again.generate_secret().unwrap().starts_with("whsec_"));
    assert!(live[0].generate_secret().unwrap().starts_with("whsec_"));
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let component = component();
    let mut first = component.session().unwrap();
    let mut second = component.session().unwrap();
    let secret = first.generate_secret().unwrap();
    let keyring = first
        .parse_keyring(&[SecretRecord::new(secret.as_str())])
        .unwrap();

    // A handle from another store.
    assert!(matches!(
        second.sign(keyring, "msg", 1, b""),
        Err(HostError::Wasm(_))
    ));
    // A handle used after it was dropped, and dropped twice.
    first.drop_keyring(keyring).unwrap();
    assert!(matches!(
        first.sign(keyring, "msg", 1, b""),
        Err(HostError::Wasm(_))
    ));
    assert!(matches!(
        first.drop_keyring(keyring),
        Err(HostError::Wasm(_))
    ));

    // Not a component at all, and a missing file.
    assert!(matches!(
        SignerComponent::from_bytes(b"\0asm garbage"),
        Err(HostError::Wasm(_))
    ));
    assert!(matches!(
        SignerComponent::load(std::path::Path::new("/nonexistent/signer.wasm")),
        Err(HostError::Read { .. })
    ));
}

#[test]
fn the_signer_imports_only_a_clock_and_a_random_source() {
    // No standard library, so none of WASI's command-line interfaces
    // (environment, exit, stdio, filesystem): any host that has the two
    // can load it.
    let mut imports: Vec<String> = component()
        .imports()
        .into_iter()
        .map(|name| name.split('@').next().unwrap_or_default().to_string())
        .collect();
    imports.sort();
    assert_eq!(imports, ["wasi:clocks/wall-clock", "wasi:random/random"]);
    let edge = SignerComponent::load(&common::edge_component_path())
        .unwrap()
        .imports();
    assert!(
        edge.iter()
            .any(|name| name.starts_with("wasi:keyvalue/atomics")),
        "{edge:?}"
    );
    // Of wasi:keyvalue, only what Spin provides (its batch included).
    let keyvalue: Vec<&str> = edge
        .iter()
        .filter_map(|name| name.strip_prefix("wasi:keyvalue/"))
        .map(|name| name.split('@').next().unwrap_or_default())
        .collect();
    assert!(
        keyvalue
            .iter()
            .all(|name| ["store", "atomics", "batch"].contains(name)),
        "{keyvalue:?}"
    );
}

#[test]
fn one_instance_frees_what_each_call_allocated() {
    // 600 calls of 1 MiB each through one instance: more than its 512 MiB
    // memory cap in all, so this passes only if the component's allocator
    // takes back each call's arguments and result.
    let mut session = component().session().unwrap();
    let key = session.generate_secret().unwrap();
    let records = [SecretRecord::new(key.as_str())];
    let keyring = session.parse_keyring(&records).unwrap();
    let body = vec![b'a'; 1 << 20];
    let signature = Keyring::from_records(&records)
        .unwrap()
        .sign("msg", 1_700_000_000, &body)
        .unwrap();
    let headers = [
        ("webhook-id".to_string(), "msg".to_string()),
        ("webhook-timestamp".to_string(), "1700000000".to_string()),
        ("webhook-signature".to_string(), signature),
    ];
    for _ in 0..600 {
        let verified = session
            .verify(keyring, &headers, &body, Some(1_700_000_000), None)
            .unwrap();
        assert_eq!(verified.secret, 0);
    }
}

#[test]
fn abuse_is_an_answer_or_an_error_never_a_crash() {
    let component = component();
    let mut session = component.session().unwrap();
    let key = session.generate_secret().unwrap();
    let records = [SecretRecord::new(key.as_str())];
    let keyring = session.parse_keyring(&records).unwrap();
    let native = Keyring::from_records(&records).unwrap();
    let headers = |signature: String| {
        vec![
            ("webhook-id".to_string(), "msg".to_string()),
            ("webhook-timestamp".to_string(), "1700000000".to_string()),
            ("webhook-signature".to_string(), signature),
        ]
    };

    // A 64 MiB body verifies.
    let big = vec![b'a'; 64 << 20];
    let signed = headers(native.sign("msg", 1_700_000_000, &big).unwrap());
    let verified = session
        .verify(keyring, &signed, &big, Some(1_700_000_000), None)
        .unwrap();
    assert_eq!(verified.secret, 0);

    // 10,000 headers: unrelated ones are passed over, repeated ones refused.
    let mut many: Vec<(String, String)> = (0..10_000)
        .map(|n| (format!("x-{n}"), "v".repeat(20)))
        .collect();
    many.extend(headers(native.sign("msg", 1_700_000_000, b"").unwrap()));
    assert_eq!(
        session
            .verify(keyring, &many, b"", Some(1_700_000_000), None)
            .unwrap()
            .secret,
        0
    );
    let repeated: Vec<(String, String)> = (0..10_000)
        .map(|_| ("webhook-id".to_string(), "msg".to_string()))
        .collect();
    assert!(matches!(
        session.verify(keyring, &repeated, b"", Some(1_700_000_000), None),
        Err(HostError::Signing(hooksign::Error::MissingHeader))
    ));
    let repeated = [repeated, headers("v1,".into())].concat();
    assert!(matches!(
        session.verify(keyring, &repeated, b"", Some(1_700_000_000), None),
        Err(HostError::Signing(hooksign::Error::InvalidHeader))
    ));

    // A 100,000-secret keyring parses, and a signature by none of them is checked against all.
    let other = Keyring::from_records(&[SecretRecord::new(
        hooksign::Secret::generate().unwrap().to_text(),
    )])
    .unwrap();
    let crowd: Vec<SecretRecord> = (0..100_000)
        .map(|_| SecretRecord::new(key.as_str()))
        .collect();
    let crowded = session.parse_keyring(&crowd).unwrap();
    assert_eq!(session.active(crowded, Some(0)).unwrap().len(), 100_000);
    assert!(matches!(
        session.verify(
            crowded,
            &headers(other.sign("msg", 1_700_000_000, b"").unwrap()),
            b"",
            Some(1_700_000_000),
            None
        ),
        Err(HostError::Signing(hooksign::Error::NoMatchingSignature))
    ));
    session.drop_keyring(crowded).unwrap();

    // Past the instance's memory cap: an error, and the instance stays unusable, not the host.
    let huge = vec![0u8; hooksign_host::MAX_INSTANCE_MEMORY + (16 << 20)];
    assert!(matches!(
        session.verify(keyring, &signed, &huge, Some(1_700_000_000), None),
        Err(HostError::Wasm(_))
    ));
    assert!(session.sign(keyring, "msg", 1, b"").is_err());
    // A fresh session works.
    let mut fresh = component.session().unwrap();
    let keyring = fresh.parse_keyring(&records).unwrap();
    assert_eq!(
        fresh
            .verify(keyring, &signed, &big, Some(1_700_000_000), None)
            .unwrap()
            .secret,
        0
    );
}

#[test]
fn a_call_past_its_deadline_is_interrupted() {
    let component = component();
    let mut session = component.session().unwrap();
    let key = session.generate_secret().unwrap();
    let records = [SecretRecord::new(key.as_str())];
    let keyring = session.parse_keyring(&records).unwrap();
    let big = vec![b'a'; 64 << 20];
    let signature = Keyring::from_records(&records)
        .unwrap()
        .sign("msg", 1, &big)
        .unwrap();
    let headers = vec![
        ("webhook-id".to_string(), "msg".to_string()),
        ("webhook-timestamp".to_string(), "1".to_string()),
        ("webhook-signature".to_string(), signature),
    ];
    // Hashing 64 MiB in wasm takes far longer than one 10 ms tick.
    session.set_call_deadline(std::time::Duration::from_millis(10));
    assert!(matches!(
        session.verify(keyring, &headers, &big, Some(1), None),
        Err(HostError::Wasm(_))
    ));
    // With the default deadline the same call completes in a fresh instance.
    let mut fresh = component.session().unwrap();
    let keyring = fresh.parse_keyring(&records).unwrap();
    assert_eq!(
        fresh
            .verify(keyring, &headers, &big, Some(1), None)
            .unwrap()
            .secret,
        0
    );
}
