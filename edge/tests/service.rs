//! The service logic without a runtime: an in-memory platform with a
//! settable clock, a store that can be made to fail, and a recording sender.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use hooksign::{Keyring, SecretRecord};
use hooksign_edge::testing::{FakePlatform, SwapDefect};
use hooksign_edge::{Request, Response, SendFailure, api_key_entry, handle};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_test";
const SHOP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// `sealing_keys` entries: 32-byte keys.
const SEAL_1: &str = "s1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const SEAL_2: &str = "s2:HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo=";

/// The in-memory platform with the organisation `acme` (key [`KEY`]) and
/// the gateway source `shop`.
struct Fake(FakePlatform);

impl std::ops::Deref for Fake {
    type Target = FakePlatform;

    fn deref(&self) -> &FakePlatform {
        &self.0
    }
}

impl Fake {
    fn new() -> Fake {
        let platform = FakePlatform::default();
        platform.set_variable("api_keys", api_key_entry("acme", KEY));
        platform.set_variable("sealing_keys", SEAL_1);
        // The clock stands still here: the rate limit has its own test, as
        // has the cap on endpoints per host, which these tests pass.
        platform.set_variable("rate_limit_per_key", "0");
        platform.set_variable("max_endpoints_per_host", "1000");
        platform.set_variable(
            "inbound_sources",
            json!({ "shop": {
                "secrets": [{ "key": SHOP_SECRET }],
                "forwardUrl": "https://origin.example/hook",
                "org": "acme",
            } })
            .to_string(),
        );
        Fake(platform)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (path, None),
        };
        let request = Request {
            method: method.into(),
            path: path.into(),
            query,
            headers: vec![("Authorization".into(), format!("Bearer {KEY}"))],
            body: body
                .map(|body| body.to_string().into_bytes())
                .unwrap_or_default(),
        };
        let Response {
            status,
            body,
            follow_up,
            ..
        } = futures::executor::block_on(handle(&self.0, &request));
        // As the component does once the answer is out; a failure there
        // is the dispatcher's to retry.
        let _ = futures::executor::block_on(hooksign_edge::follow_up(&self.0, &follow_up));
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, value)
    }

    /// One dispatcher pass at the fake's time.
    fn dispatch(&self) -> hooksign_edge::PassReport {
        futures::executor::block_on(hooksign_edge::dispatch(&self.0)).unwrap()
    }

    /// Moves the clock on.
    fn advance_seconds(&self, seconds: i64) {
        self.now_ms.set(self.now_ms.get() + seconds * 1000);
    }

    /// The platform with keyrings kept in clear, for tests that change
    /// them in the store directly.
    fn in_plaintext() -> Fake {
        let fake = Fake::new();
        fake.variables.borrow_mut().remove("sealing_keys");
        fake.set_variable("insecure_plaintext_secrets", "true");
        fake
    }

    fn create(&self) -> (String, String) {
        let (status, created) = self.call(
            "POST",
            "/webhooks",
            Some(json!({ "url": "https://example.com/hook" })),
        );
        assert_eq!(status, 201, "{created}");
        (
            created["endpoint"]["id"].as_str().unwrap().into(),
            created["signingSecret"].as_str().unwrap().into(),
        )
    }

    fn last_signature(&self) -> String {
        let sent = self.sent.borrow();
        let request = sent.last().unwrap();
        request
            .headers
            .iter()
            .find(|(name, _)| name == "webhook-signature")
            .unwrap()
            .1
            .clone()
    }
}

/// Handles one request as it is (no follow-up sends).
fn send(
    fake: &Fake,
    method: &str,
    path: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Response {
    let request = Request {
        method: method.into(),
        path: path.into(),
        query: None,
        headers,
        body,
    };
    futures::executor::block_on(handle(&fake.0, &request))
}

/// `POST /events` of an event of type `t` with this id, accepted (its
/// first attempts not made: they are in the answer's follow-up).
fn accept_event(fake: &Fake, id: &str) -> Response {
    let event = json!({ "type": "t", "data": {}, "id": id });
    let body = event.to_string().into_bytes();
    let response = send(fake, "POST", "/events", bearer(KEY), body);
    assert_eq!(response.status, 202);
    response
}

/// `field` of each object in a JSON array (none if it is not an array).
fn each_field<'a>(list: &'a Value, field: &str) -> Vec<&'a Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|item| &item[field])
        .collect()
}

/// `Authorization: Bearer KEY`.
fn bearer(key: &str) -> Vec<(String, String)> {
    vec![("authorization".into(), format!("Bearer {key}"))]
}

/// The status and the JSON body (null if none).
fn status_and_json(response: &Response) -> (u16, Value) {
    let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, value)
}

#[test]
fn a_failed_store_write_leaves_no_half_written_endpoint() {
    for writes in 0..2 {
        let fake = Fake::new();
        fake.writes_left.set(Some(writes));
        let (status, problem) = fake.call(
            "POST",
            "/webhooks",
            Some(json!({ "url": "https://example.com/hook" })),
        );
        assert_eq!(
            (status, problem["code"].as_str()),
            (503, Some("store_unavailable"))
        );
        fake.writes_left.set(None);
        let (_, listed) = fake.call("GET", "/webhooks", None);
        assert_eq!(listed["data"], json!([]), "after {writes} writes");
        // Whatever was written is a whole endpoint record.
        for (key, value) in fake.entries.borrow_mut().iter() {
            let record: Value = serde_json::from_slice(value).unwrap();
            assert!(key.starts_with("endpoint/"));
            assert_eq!(record["secrets"]["sealed"]["key"], "s1");
        }
    }
}

#[test]
fn a_failed_rotation_keeps_the_keyring() {
    let fake = Fake::new();
    let (id, secret) = fake.create();
    fake.writes_left.set(Some(0));
    let (status, _) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
    assert_eq!(status, 503);
    fake.writes_left.set(None);
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    let signature = fake.last_signature();
    assert_eq!(signature.split(' ').count(), 1);
    let request = fake.sent.borrow().last().unwrap().clone();
    let keyring = Keyring::from_records(&[SecretRecord::new(secret)]).unwrap();
    keyring
        .verify(&request.headers, &request.body, fake.now_ms.get() / 1000, 0)
        .unwrap();
}

/// Rotates the stored endpoint behind the service's back, as a concurrent
/// request would; returns the secret it added.
fn rotate_in_store(kv: &mut BTreeMap<String, Vec<u8>>, id: &str, now: i64) -> String {
    let key = format!("endpoint/{id}");
    let mut record: Value = serde_json::from_slice(&kv[&key]).unwrap();
    let records: Vec<SecretRecord> = serde_json::from_value(record["secrets"].take()).unwrap();
    let secret = hooksign::Secret::generate().unwrap();
    let rotated = Keyring::from_records(&records)
        .unwrap()
        .rotate(secret.clone(), now, 3600)
        .unwrap();
    record["secrets"] = serde_json::to_value(rotated.to_records()).unwrap();
    kv.insert(key, serde_json::to_vec(&record).unwrap());
    secret.to_text()
}

#[test]
fn a_rotation_racing_another_keeps_every_secret() {
    let fake = Fake::in_plaintext();
    let (id, first) = fake.create();
    let now = fake.now_ms.get() / 1000;
    let raced = Rc::new(RefCell::new(String::new()));
    let meddler_id = id.clone();
    let meddler_raced = raced.clone();
    *fake.meddler.borrow_mut() = Some(Box::new(move |kv| {
        *meddler_raced.borrow_mut() = rotate_in_store(kv, &meddler_id, now);
        false
    }));
    let (status, rotated) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
    assert_eq!(status, 200, "{rotated}");
    let ours = rotated["signingSecret"].as_str().unwrap().to_string();
    let theirs = raced.borrow().clone();
    assert!(!theirs.is_empty(), "the meddler ran");

    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(fake.last_signature().split(' ').count(), 3);
    let request = fake.sent.borrow().last().unwrap().clone();
    for secret in [first, theirs, ours] {
        Keyring::from_records(&[SecretRecord::new(secret)])
            .unwrap()
            .verify(&request.headers, &request.body, now, 0)
            .unwrap();
    }
}

#[test]
fn two_first_writes_of_one_key_keep_both_on_a_store_that_upserts() {
    // Spin's SQLite store: a swap on an absent key writes over whatever is
    // there, so a second creator would erase the first's confirmed entry.
    let fake = Fake::new();
    fake.defect.set(Some(SwapDefect::AbsentUpserts));
    *fake.meddler.borrow_mut() = Some(Box::new(|kv| {
        // Another request creates the index first, as the service does.
        kv.insert(
            "created/org/acme/endpoints".into(),
            1i64.to_le_bytes().to_vec(),
        );
        let theirs = json!([{ "id": "theirs", "eventTypes": [] }]);
        kv.insert("org/acme/endpoints".into(), theirs.to_string().into_bytes());
        false
    }));
    let (ours, _) = fake.create();
    let index: Value =
        serde_json::from_slice(&fake.entries.borrow()["org/acme/endpoints"]).unwrap();
    let ids: Vec<&str> = index
        .as_array()
        .unwrap()
        .iter()
        .map(|listed| listed["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [ours.as_str(), "theirs"]);
}

#[test]
fn an_endpoint_keeps_its_recent_attempt_ids_only_where_swaps_are_confirmed() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let record = || -> Value {
        serde_json::from_slice(&fake.entries.borrow()[&format!("endpoint/{id}")]).unwrap()
    };
    let counted = || -> i64 {
        let counter = fake.entries.borrow()[&format!("attempt/{id}/count")].clone();
        i64::from_le_bytes(counter.try_into().unwrap())
    };
    // Failures, each of which changes the record. Confirmed swaps (Spin's
    // Redis store reports each as failed): the ids tell an attempt that
    // changed it already from a new one.
    fake.answer_with(503);
    fake.defect.set(Some(SwapDefect::ReportsFailure));
    for _ in 0..2 {
        fake.call("POST", "/events", Some(json!({ "type": "t", "data": {} })));
    }
    assert_eq!(record()["consecutiveFailures"], 2, "each counted once");
    assert_eq!(counted(), 2, "each numbered once");
    assert_eq!(record()["recentAttempts"].as_array().unwrap().len(), 2);
    // Truthful swaps: nothing to tell apart, so the list goes.
    fake.defect.set(None);
    fake.call("POST", "/events", Some(json!({ "type": "t", "data": {} })));
    assert_eq!(record()["consecutiveFailures"], 3);
    assert_eq!(counted(), 3);
    assert_eq!(record()["recentAttempts"], json!([]));
    let (_, attempts) = fake.call("GET", &format!("/webhooks/{id}/attempts"), None);
    assert_eq!(attempts["data"].as_array().unwrap().len(), 3, "{attempts}");
}

/// Every attempt takes its number from the endpoint's counter; the record
/// is written only when an attempt changes it, so attempts to one endpoint
/// never refuse each other's swaps while its state stays the same. An
/// endpoint stored before the counter numbers on from its stored count.
#[test]
fn attempts_are_numbered_by_a_counter_and_rewrite_the_endpoint_only_when_they_change_it() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let key = format!("endpoint/{id}");
    // As stored before the counter: 5 attempts numbered in the record.
    let mut stored: Value = serde_json::from_slice(&fake.entries.borrow()[&key]).unwrap();
    stored["attemptCount"] = json!(5);
    fake.entries
        .borrow_mut()
        .insert(key.clone(), serde_json::to_vec(&stored).unwrap());
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    let written = fake.entries.borrow()[&key].clone();
    let writes = fake.writes.get();
    // Two more successes in the same second: counted, the record untouched.
    for _ in 0..2 {
        fake.call("POST", &format!("/webhooks/{id}/test"), None);
    }
    assert_eq!(fake.entries.borrow()[&key], written);
    // Each: the counter, and the attempt with its message.
    assert!(
        fake.writes.get() - writes <= 2 * 3,
        "{}",
        fake.writes.get() - writes
    );
    let (_, attempts) = fake.call("GET", &format!("/webhooks/{id}/attempts"), None);
    let slots: Vec<String> = fake
        .entries
        .borrow()
        .keys()
        .filter(|key| key.starts_with(&format!("attempt/{id}/")))
        .cloned()
        .collect();
    assert_eq!(attempts["data"].as_array().unwrap().len(), 3, "{attempts}");
    let numbered: Vec<String> = (5..8).map(|n| format!("attempt/{id}/{n}")).collect();
    for slot in &numbered {
        assert!(slots.contains(slot), "{slots:?}");
    }
    // Deleting the endpoint takes its counter with it.
    assert_eq!(fake.call("DELETE", &format!("/webhooks/{id}"), None).0, 204);
    let left = fake
        .entries
        .borrow()
        .keys()
        .any(|key| key.starts_with(&format!("attempt/{id}/")));
    assert!(!left);
}

#[test]
fn a_record_that_never_stops_changing_gets_store_busy() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let meddler_id = id.clone();
    let mut meddled = 0;
    *fake.meddler.borrow_mut() = Some(Box::new(move |kv| {
        let key = format!("endpoint/{meddler_id}");
        let mut record: Value = serde_json::from_slice(&kv[&key]).unwrap();
        meddled += 1;
        record["description"] = json!(format!("changed {meddled} times"));
        kv.insert(key, serde_json::to_vec(&record).unwrap());
        true
    }));
    let (status, problem) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("store_busy")),
        "{problem}"
    );
    *fake.meddler.borrow_mut() = None;
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(fake.last_signature().split(' ').count(), 1);
}

#[test]
fn rotation_grace_follows_the_clock() {
    let fake = Fake::new();
    let (id, old) = fake.create();
    let (_, rotated) = fake.call(
        "POST",
        &format!("/webhooks/{id}/rotate"),
        Some(json!({ "graceSeconds": 60 })),
    );
    let new = rotated["signingSecret"].as_str().unwrap();
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(fake.last_signature().split(' ').count(), 2);

    fake.now_ms.set(fake.now_ms.get() + 59_999);
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(fake.last_signature().split(' ').count(), 2);

    fake.now_ms.set(fake.now_ms.get() + 1);
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    let request = fake.sent.borrow().last().unwrap().clone();
    let now = fake.now_ms.get() / 1000;
    assert_eq!(fake.last_signature().split(' ').count(), 1);
    let verify = |secret: &str| {
        Keyring::from_records(&[SecretRecord::new(secret)])
            .unwrap()
            .verify(&request.headers, &request.body, now, 0)
    };
    assert!(verify(new).is_ok());
    assert_eq!(
        verify(&old).unwrap_err(),
        hooksign::Error::NoMatchingSignature
    );
}

#[test]
fn an_endpoint_keeps_its_newest_200_attempts() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let mut message_ids = Vec::new();
    for n in 0..205 {
        let (status, delivered) = fake.call(
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {}, "id": format!("evt_{n}") })),
        );
        assert_eq!(status, 202);
        message_ids.push(delivered["id"].as_str().unwrap().to_string());
    }
    let (_, attempts) = fake.call("GET", &format!("/webhooks/{id}/attempts?limit=200"), None);
    let listed: Vec<&str> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["messageId"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = message_ids
        .iter()
        .rev()
        .take(200)
        .map(String::as_str)
        .collect();
    assert_eq!(listed, expected);
    let attempt_keys = fake
        .entries
        .borrow()
        .keys()
        .filter(|key| key.starts_with("attempt/") && !key.ends_with("/count"))
        .count();
    assert_eq!(attempt_keys, 200);

    // Deleting the endpoint removes it and its attempts (its messages stay
    // in the log until they expire).
    assert_eq!(fake.call("DELETE", &format!("/webhooks/{id}"), None).0, 204);
    assert_eq!(
        fake.entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with("endpoint/") || key.starts_with("attempt/"))
            .count(),
        0
    );
}

#[test]
fn auto_pause_counts_only_event_failures() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    fake.answer_with(503);
    for _ in 0..10 {
        fake.call("POST", &format!("/webhooks/{id}/test"), None);
    }
    let (_, endpoint) = fake.call("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(endpoint["consecutiveFailures"], 0);
    for _ in 0..4 {
        fake.call("POST", "/events", Some(json!({ "type": "t", "data": {} })));
    }
    fake.answer_with(200);
    fake.call("POST", "/events", Some(json!({ "type": "t", "data": {} })));
    let (_, endpoint) = fake.call("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(
        (
            endpoint["consecutiveFailures"].as_u64(),
            endpoint["paused"].as_bool()
        ),
        (Some(0), Some(false))
    );
}

#[test]
fn the_manifest_declares_what_the_service_reads() {
    let manifest: toml::Table =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../spin.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let variables = manifest["variables"].as_table().unwrap();
    let names: Vec<&str> = variables.keys().map(String::as_str).collect();
    // Every variable the service reads, through each kind of request.
    let fake = Fake::new();
    fake.create();
    fake.call("POST", "/events", Some(json!({ "type": "t", "data": {} })));
    deliver_inbound(&fake, "msg_manifest");
    fake.dispatch();
    let read: Vec<String> = fake.variables_read.borrow().iter().cloned().collect();
    assert_eq!(names, read);
    for secret in ["api_keys", "inbound_sources", "dispatch_token"] {
        assert_eq!(
            variables[secret]["secret"].as_bool(),
            Some(true),
            "{secret}"
        );
    }
    assert_eq!(variables["api_keys"]["secret"].as_bool(), Some(true));
    let component = manifest["component"]["hooksign"].as_table().unwrap();
    assert_eq!(
        component["source"].as_str(),
        Some("target/wasm32-wasip2/component/hooksign_http.wasm")
    );
    assert_eq!(
        component["key_value_stores"].as_array().unwrap()[0].as_str(),
        Some("default")
    );
    let component_variables = component["variables"].as_table().unwrap();
    for name in names {
        assert_eq!(
            component_variables[name].as_str(),
            Some(format!("{{{{ {name} }}}}").as_str())
        );
    }
    assert!(
        component["build"]["command"]
            .as_str()
            .unwrap()
            .contains("-p hooksign-http")
    );
}

#[test]
fn the_openapi_document_covers_every_route() {
    let document =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml")).unwrap();
    for path in [
        "/openapi.yaml:",
        "/webhooks:",
        "/webhooks/{id}:",
        "/webhooks/{id}/rotate:",
        "/webhooks/{id}/attempts:",
        "/webhooks/{id}/test:",
        "/events:",
    ] {
        assert!(
            document.contains(&format!("\n  {path}\n")),
            "{path} is not documented"
        );
    }
}

#[test]
fn whole_floats_are_integers_and_null_is_left_out() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let rotate = |body: Value| fake.call("POST", &format!("/webhooks/{id}/rotate"), Some(body));
    assert_eq!(rotate(json!({ "graceSeconds": 60.0 })).0, 200);
    assert_eq!(rotate(json!({ "graceSeconds": null })).0, 200);
    for bad in [
        json!(1.5),
        json!(-1),
        json!(604_801.0),
        json!(1e300),
        json!("60"),
    ] {
        let (status, problem) = rotate(json!({ "graceSeconds": bad }));
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("validation_failed")),
            "{bad}"
        );
    }
    let (status, endpoint) = fake.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "url": null, "description": null, "eventTypes": null, "paused": null })),
    );
    assert_eq!(status, 200);
    assert_eq!(endpoint["url"], "https://example.com/hook");
    // Lengths count characters, as JSON Schema's maxLength does.
    let long_type = "é".repeat(256);
    let (status, _) = fake.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "eventTypes": [long_type] })),
    );
    assert_eq!(status, 200);
    let (status, _) = fake.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "eventTypes": ["é".repeat(257)] })),
    );
    assert_eq!(status, 400);
}

/// Everything readable is whole: the listing and each listed endpoint, its
/// attempts, and every stored endpoint's keyring (whose seal checks the
/// rest when it is used).
fn assert_whole(fake: &Fake, what: &str) {
    let (status, listed) = fake.call("GET", "/webhooks?limit=200", None);
    assert_eq!(status, 200, "{what}: {listed}");
    for endpoint in listed["data"].as_array().unwrap() {
        let id = endpoint["id"].as_str().unwrap();
        let (status, attempts) = fake.call("GET", &format!("/webhooks/{id}/attempts"), None);
        assert_eq!(status, 200, "{what}: {attempts}");
    }
    for (key, value) in fake.entries.borrow_mut().iter() {
        if key.starts_with("endpoint/") {
            let record: Value = serde_json::from_slice(value).unwrap();
            let sealed = &record["secrets"]["sealed"];
            for field in ["key", "nonce", "data"] {
                assert!(sealed[field].is_string(), "{what}: {record}");
            }
        }
    }
}

#[test]
fn a_store_failing_at_any_write_leaves_every_record_whole() {
    type Operation = fn(&Fake, &str) -> (u16, Value);
    let operations: [(&str, Operation); 7] = [
        ("create", |fake, _| {
            fake.call(
                "POST",
                "/webhooks",
                Some(json!({ "url": "https://example.com/new" })),
            )
        }),
        ("patch", |fake, id| {
            fake.call(
                "PATCH",
                &format!("/webhooks/{id}"),
                Some(json!({ "description": "x" })),
            )
        }),
        ("patch event types", |fake, id| {
            let types = json!({ "eventTypes": ["order.paid"] });
            fake.call("PATCH", &format!("/webhooks/{id}"), Some(types))
        }),
        ("rotate", |fake, id| {
            fake.call("POST", &format!("/webhooks/{id}/rotate"), None)
        }),
        ("delete", |fake, id| {
            fake.call("DELETE", &format!("/webhooks/{id}"), None)
        }),
        ("test", |fake, id| {
            fake.call("POST", &format!("/webhooks/{id}/test"), None)
        }),
        ("event", |fake, _| {
            fake.call(
                "POST",
                "/events",
                Some(json!({ "type": "order.paid", "data": {} })),
            )
        }),
    ];
    for (name, operation) in operations {
        let mut completed = false;
        for writes in 0..20 {
            let fake = Fake::new();
            fake.create();
            let (id, _) = fake.create();
            let before = fake.entries.borrow_mut().clone();
            let sent_before = fake.sent.borrow().len();
            fake.writes_left.set(Some(writes));
            let (status, answer) = operation(&fake, &id);
            fake.writes_left.set(None);
            if name == "event" && status >= 300 {
                // Nothing is sent for a message that is not whole.
                assert_eq!(
                    fake.sent.borrow().len(),
                    sent_before,
                    "{name} after {writes}"
                );
            }
            let what = format!("{name} failing after {writes} writes");
            assert_whole(&fake, &what);
            if status < 300 {
                completed = true;
                break;
            }
            assert_eq!(
                (status, answer["code"].as_str()),
                (503, Some("store_unavailable")),
                "{what}: {answer}"
            );
            // A failed change of one record leaves that record as it was.
            if matches!(name, "patch" | "patch event types" | "rotate") {
                let key = format!("endpoint/{id}");
                assert_eq!(
                    fake.entries.borrow_mut().get(&key),
                    before.get(&key),
                    "{what}"
                );
            }
        }
        assert!(completed, "{name} never completed");
    }
}

fn create_for(fake: &Fake, event_types: Value) -> String {
    let (status, created) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://example.com/hook", "eventTypes": event_types })),
    );
    assert_eq!(status, 201, "{created}");
    created["endpoint"]["id"].as_str().unwrap().into()
}

fn delivered_to(fake: &Fake, event_type: &str) -> Vec<String> {
    let (status, answer) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": event_type, "data": {} })),
    );
    assert_eq!(status, 202, "{answer}");
    let mut ids: Vec<String> = answer["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["endpointId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn an_event_reads_only_the_endpoints_that_may_want_it() {
    let fake = Fake::new();
    let others: Vec<String> = (0..30)
        .map(|_| create_for(&fake, json!(["order.paid"])))
        .collect();
    let wanted = create_for(&fake, json!(["invoice.sent"]));
    let everything = create_for(&fake, json!([]));
    fake.reads.borrow_mut().clear();
    let mut expected = vec![wanted.clone(), everything.clone()];
    expected.sort();
    assert_eq!(delivered_to(&fake, "invoice.sent"), expected);
    let reads = fake.reads.borrow();
    for other in &others {
        assert!(
            !reads.iter().any(|key| key.contains(other.as_str())),
            "read {other}"
        );
    }
}

#[test]
fn a_changed_subscription_is_never_missed() {
    let fake = Fake::new();
    let id = create_for(&fake, json!(["order.paid"]));
    let patch = |types: Value| {
        let (status, answer) = fake.call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({ "eventTypes": types })),
        );
        assert_eq!(status, 200, "{answer}");
    };
    patch(json!(["invoice.sent"]));
    assert_eq!(
        delivered_to(&fake, "invoice.sent"),
        std::slice::from_ref(&id)
    );
    assert!(delivered_to(&fake, "order.paid").is_empty());
    patch(json!([]));
    assert_eq!(
        delivered_to(&fake, "anything.else"),
        std::slice::from_ref(&id)
    );
    patch(json!(["order.paid"]));
    assert!(delivered_to(&fake, "anything.else").is_empty());
    assert_eq!(delivered_to(&fake, "order.paid"), std::slice::from_ref(&id));

    // A widened index whose endpoint write then failed still delivers what
    // the endpoint wants, and only that. (The entry is wide already: the
    // endpoint wanted every type before; the one write that fails is the
    // endpoint's.)
    fake.writes_left.set(Some(0));
    let (status, _) = fake.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "eventTypes": ["refund.made"] })),
    );
    assert_eq!(status, 503);
    fake.writes_left.set(None);
    assert!(delivered_to(&fake, "refund.made").is_empty());
    assert_eq!(delivered_to(&fake, "order.paid"), std::slice::from_ref(&id));
}

#[test]
fn an_index_entry_whose_endpoint_vanished_is_skipped() {
    let fake = Fake::new();
    let kept = create_for(&fake, json!(["order.paid"]));
    let gone = create_for(&fake, json!(["order.paid"]));
    // As if the endpoint was deleted after the index was read.
    fake.entries
        .borrow_mut()
        .remove(&format!("endpoint/{gone}"));
    assert_eq!(
        delivered_to(&fake, "order.paid"),
        std::slice::from_ref(&kept)
    );
    let (status, listed) = fake.call("GET", "/webhooks", None);
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["id"], kept.as_str());
}

/// Posts a delivery signed for the `shop` source at the fake's time.
fn deliver_inbound(fake: &Fake, id: &str) -> u16 {
    post_inbound(fake, id, br#"{"n":1}"#, br#"{"n":1}"#).0
}

/// Signs `signed` for the `shop` source, posts `sent`: the status and the answer.
fn post_inbound(fake: &Fake, id: &str, signed: &[u8], sent: &[u8]) -> (u16, Value) {
    let keyring = Keyring::from_records(&[SecretRecord::new(SHOP_SECRET)]).unwrap();
    let headers = keyring
        .sign_headers(id, fake.now_ms.get() / 1000, signed)
        .unwrap()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    status_and_json(&send(fake, "POST", "/inbound/shop", headers, sent.to_vec()))
}

#[test]
fn a_flood_of_bad_signatures_costs_few_store_writes() {
    let fake = Fake::new();
    assert_eq!(deliver_inbound(&fake, "msg_good"), 200);
    let before = fake.writes.get();
    for n in 0..400 {
        let (status, _) = post_inbound(&fake, &format!("msg_bad_{n}"), b"{}", b"{\"x\":1}");
        assert_eq!(status, 401);
    }
    // The first hundred are counted one by one, then one in sixteen (a
    // compare-and-swap per refusal made 400 writes, each with a read).
    let writes = fake.writes.get() - before;
    assert!(writes < 200, "{writes} writes for 400 refusals");
    let (_, stats) = fake.call("GET", "/inbound/shop/stats", None);
    let refused = stats["rejected"]["no_matching_signature"].as_u64().unwrap();
    assert!((100..=100 + 300 * 16).contains(&refused), "{stats}");
    assert_eq!(refused % 16, 100 % 16, "{stats}");
    assert_eq!(stats["accepted"], 1);
    // Verified deliveries still count one by one.
    assert_eq!(deliver_inbound(&fake, "msg_good_2"), 200);
    let (_, stats) = fake.call("GET", "/inbound/shop/stats", None);
    assert_eq!(stats["accepted"], 2);
}

#[test]
fn gateway_problems_name_their_cause() {
    let fake = Fake::new();
    let (status, problem) = post_inbound(&fake, "msg_tampered", b"{}", b"{\"x\":1}");
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "no_matching_signature");
    assert_eq!(problem["cause"]["code"], "no-matching-signature");

    *fake.responder.borrow_mut() =
        Box::new(|_, _| Err(SendFailure::Failed("the connection was refused".into())));
    let (status, problem) = post_inbound(&fake, "msg_refused", b"{}", b"{}");
    assert_eq!(status, 502);
    assert_eq!(
        problem["cause"],
        json!({ "code": "connection_failed", "detail": "the connection was refused" })
    );

    *fake.responder.borrow_mut() = Box::new(|_, _| Err(SendFailure::Timeout));
    let (status, problem) = post_inbound(&fake, "msg_slow", b"{}", b"{}");
    assert_eq!(status, 504);
    assert_eq!(problem["cause"]["code"], "timeout");
    // Problems without an underlying cause carry none.
    let (status, problem) = fake.call("GET", "/webhooks/not-a-uuid", None);
    assert_eq!(status, 400);
    assert!(problem.get("cause").is_none(), "{problem}");
}

#[test]
fn replay_marks_are_pruned_a_bucket_at_a_time() {
    let fake = Fake::new();
    let keys = |prefix: &str| {
        fake.entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with(prefix))
            .count()
    };
    // One delivery a second for ten minutes, a dispatcher pass a second:
    // the live marks stay within the window (300 s tolerance, 10 s
    // buckets), no list grows past a bucket.
    for n in 0..600 {
        assert_eq!(deliver_inbound(&fake, &format!("msg_{n}")), 200);
        assert_eq!(deliver_inbound(&fake, &format!("msg_{n}")), 409);
        fake.now_ms.set(fake.now_ms.get() + 1000);
        fake.dispatch();
    }
    assert!(
        keys("inbound/shop/seen/") <= 300 + 10,
        "{}",
        keys("inbound/shop/seen/")
    );
    // At most 31 live buckets of 10 ids, each id in one of its bucket's lists.
    assert!(keys("inbound/shop/expiring/") <= 31 * 10);
    for (key, value) in fake.entries.borrow_mut().iter() {
        if key.starts_with("inbound/shop/expiring/") {
            let ids: Vec<String> = serde_json::from_slice(value).unwrap();
            assert!(ids.len() <= 10, "{key}: {}", ids.len());
        }
    }

    // An id accepted again after its first mark expired keeps its new mark
    // when the old bucket is pruned.
    assert_eq!(deliver_inbound(&fake, "msg_again"), 200);
    fake.now_ms.set(fake.now_ms.get() + 400_000);
    assert_eq!(deliver_inbound(&fake, "msg_again"), 200);
    fake.now_ms.set(fake.now_ms.get() + 20_000);
    // A pass prunes a bucket: these take every expired one.
    for _ in 0..40 {
        fake.dispatch();
    }
    assert!(
        keys("inbound/shop/seen/") <= 2,
        "{}",
        keys("inbound/shop/seen/")
    );
    assert_eq!(deliver_inbound(&fake, "msg_again"), 409);
}

#[test]
fn a_delivery_leaves_expired_marks_to_a_pass() {
    let fake = Fake::new();
    let marks = || {
        fake.entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with("inbound/shop/seen/"))
            .count()
    };
    for n in 0..300 {
        assert_eq!(deliver_inbound(&fake, &format!("msg_{n}")), 200);
    }
    fake.advance_seconds(400);
    // Every mark has expired. A delivery prunes none of them: it used to
    // prune the whole bucket, and so did every delivery beside it.
    let writes = fake.writes.get();
    assert_eq!(deliver_inbound(&fake, "msg_after"), 200);
    assert_eq!(marks(), 301);
    assert!(
        fake.writes.get() - writes < 10,
        "{}",
        fake.writes.get() - writes
    );
    // One pass prunes the expired bucket, marks and lists, in batches.
    fake.dispatch();
    assert_eq!(marks(), 1);
    assert_eq!(deliver_inbound(&fake, "msg_after"), 409);
    assert_eq!(deliver_inbound(&fake, "msg_7"), 200);
}

#[test]
fn an_unreadable_replay_record_is_pruned_and_stops_no_pass() {
    let fake = Fake::new();
    assert_eq!(deliver_inbound(&fake, "msg_garbled"), 200);
    assert_eq!(deliver_inbound(&fake, "msg_fine"), 200);
    let garbled_mark = "inbound/shop/seen/msg_garbled";
    let (lists, unreadable_list) = {
        let mut entries = fake.entries.borrow_mut();
        let lists: Vec<String> = entries
            .keys()
            .filter(|key| key.starts_with("inbound/shop/expiring/"))
            .cloned()
            .collect();
        entries.insert(garbled_mark.into(), b"not json".to_vec());
        // The bucket's one list of the oldest stores, unreadable.
        let unreadable_list = lists[0].rsplit_once('/').unwrap().0.to_string();
        entries.insert(unreadable_list.clone(), b"{".to_vec());
        (lists, unreadable_list)
    };
    fake.advance_seconds(400);
    // The pass ends well (`dispatch` unwraps it) and takes them all.
    fake.dispatch();
    let entries = fake.entries.borrow();
    assert!(!entries.contains_key(garbled_mark));
    assert!(!entries.contains_key("inbound/shop/seen/msg_fine"));
    assert!(!entries.contains_key(&unreadable_list));
    assert!(lists.iter().all(|list| !entries.contains_key(list)));
}

#[test]
fn a_burst_of_accepted_ids_spreads_over_its_buckets_lists() {
    let fake = Fake::new();
    // 640 deliveries within one second: one bucket. Each delivery rewrites
    // one of its 256 lists, so no list holds more than a few ids (one list
    // held all 640 once, 32 lists about 20 each until the twenty-first
    // round of #24).
    for n in 0..640 {
        assert_eq!(deliver_inbound(&fake, &format!("msg_burst_{n}")), 200);
    }
    let lists: Vec<usize> = fake
        .entries
        .borrow()
        .iter()
        .filter(|(key, _)| key.starts_with("inbound/shop/expiring/"))
        .map(|(_, value)| serde_json::from_slice::<Vec<String>>(value).unwrap().len())
        .collect();
    assert!(lists.len() > 200, "{}", lists.len());
    assert!(lists.iter().all(|&len| len <= 10), "{lists:?}");
    assert_eq!(lists.iter().sum::<usize>(), 640);
    assert_eq!(deliver_inbound(&fake, "msg_burst_7"), 409);

    // A bucket stored as one list (before the shards) is pruned too.
    let bucket = (fake.now_ms.get() / 1000 + 300) / 10 + 1;
    let legacy = format!("inbound/shop/expiring/{bucket}");
    fake.entries
        .borrow_mut()
        .insert(legacy.clone(), br#"["msg_legacy"]"#.to_vec());
    fake.entries.borrow_mut().insert(
        "inbound/shop/seen/msg_legacy".into(),
        json!({ "until": fake.now_ms.get() / 1000 + 310, "token": "old" })
            .to_string()
            .into_bytes(),
    );
    let directory = "inbound/shop/expiring".to_string();
    let mut listed: Vec<i64> = serde_json::from_slice(&fake.entries.borrow()[&directory]).unwrap();
    listed.push(bucket);
    fake.entries
        .borrow_mut()
        .insert(directory, serde_json::to_vec(&listed).unwrap());
    fake.advance_seconds(400);
    fake.dispatch();
    fake.dispatch();
    let entries = fake.entries.borrow();
    assert!(!entries.contains_key(&legacy));
    assert!(!entries.contains_key("inbound/shop/seen/msg_legacy"));
    assert!(!entries.contains_key("inbound/shop/seen/msg_burst_7"));
}

#[test]
fn a_slot_holding_another_number_is_skipped() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    fake.call("POST", &format!("/webhooks/{id}/test"), None);
    // As if attempt 200 had been written to the slot but the endpoint's
    // count not kept (a failure between the two writes).
    let key = format!("attempt/{id}/0");
    let mut slot: Value = serde_json::from_slice(&fake.entries.borrow()[&key]).unwrap();
    assert_eq!(slot["number"], 0);
    slot["number"] = json!(200);
    fake.entries
        .borrow_mut()
        .insert(key, serde_json::to_vec(&slot).unwrap());
    let (status, attempts) = fake.call("GET", &format!("/webhooks/{id}/attempts"), None);
    assert_eq!(status, 200, "{attempts}");
    assert_eq!(attempts["data"], json!([]));
}

/// The attempt numbers and `webhook-id`s of every request sent so far.
fn sent_attempts(fake: &Fake) -> Vec<(String, String)> {
    let header = |request: &hooksign_edge::OutboundRequest, name: &str| {
        request
            .headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.clone())
            .unwrap()
    };
    fake.sent
        .borrow()
        .iter()
        .map(|request| {
            (
                header(request, "webhook-id"),
                header(request, "hooksign-attempt"),
            )
        })
        .collect()
}

#[test]
fn a_failed_delivery_is_retried_on_the_schedule_until_it_succeeds() {
    let fake = Fake::new();
    fake.set_variable("retry_schedule", "0,10,20,30");
    let (id, secret) = fake.create();
    // Three failures (one a 503 with a Retry-After shorter than its slot),
    // then a 204.
    *fake.responder.borrow_mut() = Box::new(|n, _| match n {
        0 => Ok(hooksign_edge::testing::answer(500)),
        1 => Ok(hooksign_edge::OutboundResponse {
            status: 503,
            headers: vec![("Retry-After".into(), "3".into())],
            body: Vec::new(),
        }),
        2 => Err(SendFailure::Timeout),
        _ => Ok(hooksign_edge::testing::answer(204)),
    });
    let (status, accepted) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "order.paid", "data": { "n": 1 }, "id": "evt_retry" })),
    );
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["deliveries"][0]["status"], "pending");
    assert_eq!(
        fake.sent.borrow().len(),
        1,
        "the first attempt follows the answer"
    );

    // Not due before its slot (10 s, up to 10 % jitter).
    fake.advance_seconds(8);
    assert_eq!(fake.dispatch().attempted, 0);
    fake.advance_seconds(4);
    assert_eq!(fake.dispatch().attempted, 1);
    // The Retry-After of 3 s wins over the 20 s slot.
    fake.advance_seconds(3);
    assert_eq!(fake.dispatch().attempted, 1);
    fake.advance_seconds(33);
    assert_eq!(fake.dispatch().attempted, 1);
    fake.advance_seconds(60);
    assert_eq!(fake.dispatch().attempted, 0, "nothing is left to send");

    let attempts: Vec<(String, String)> = sent_attempts(&fake);
    let numbers: Vec<&str> = attempts.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(numbers, ["1", "2", "3", "4"]);
    assert!(attempts.iter().all(|(message, _)| message == "evt_retry"));
    // Every attempt is signed afresh, and verifies.
    let keyring = Keyring::from_records(&[SecretRecord::new(secret)]).unwrap();
    let sent = fake.sent.borrow();
    let timestamps: BTreeMap<String, ()> = sent
        .iter()
        .map(|request| {
            let verified = keyring
                .verify(
                    &request.headers,
                    &request.body,
                    fake.now_ms.get() / 1000,
                    86_400,
                )
                .unwrap();
            (verified.timestamp.to_string(), ())
        })
        .collect();
    assert_eq!(timestamps.len(), 4);
    drop(sent);

    let (_, message) = fake.call("GET", "/messages/evt_retry", None);
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    assert_eq!(message["deliveries"][0]["attempts"], 4);
    assert_eq!(message["data"], json!({ "n": 1 }));
    let (_, attempts) = fake.call(
        "GET",
        &format!("/webhooks/{id}/attempts?status=failed"),
        None,
    );
    assert_eq!(attempts["data"].as_array().unwrap().len(), 3);
    let (_, attempts) = fake.call(
        "GET",
        &format!("/webhooks/{id}/attempts?status=succeeded"),
        None,
    );
    assert_eq!(attempts["data"][0]["attemptNumber"], 4);
    assert_eq!(attempts["data"][0]["messageId"], "evt_retry");
}

/// A pass in which one endpoint's attempt fails with a store error still
/// finishes its sends to the others: dropped mid-send, their answers would
/// go unrecorded, and their receivers would get them again when the lease
/// ends.
#[test]
fn a_pass_finishes_its_other_sends_when_one_attempt_fails() {
    let fake = Fake::new();
    fake.set_variable("retry_schedule", "0,1");
    let (unreadable, _) = fake.create();
    let (other, _) = fake.create();
    fake.answer_with(500);
    let (status, answer) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_1" })),
    );
    assert_eq!(status, 202, "{answer}");
    // Both first attempts failed; the retries are due in a second.
    fake.answer_with(204);
    fake.sends_wait.set(true);
    fake.advance_seconds(2);
    let key = format!("endpoint/{unreadable}");
    let kept = fake
        .entries
        .borrow_mut()
        .insert(key.clone(), b"not json".to_vec())
        .expect("the endpoint's record");
    let sent_before = fake.sent.borrow().len();
    let pass = futures::executor::block_on(hooksign_edge::dispatch(&fake.0));
    assert!(pass.is_err(), "the unreadable record is the pass's error");
    fake.entries.borrow_mut().insert(key, kept);
    let (_, message) = fake.call("GET", "/messages/evt_1", None);
    let delivery = message["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|delivery| delivery["endpointId"] == other.as_str())
        .unwrap();
    assert_eq!(delivery["status"], "succeeded", "{message}");
    assert_eq!(fake.sent.borrow().len(), sent_before + 1);
}

#[test]
fn the_last_slot_fails_the_delivery_and_auto_pause_holds_the_next_ones() {
    let fake = Fake::new();
    fake.set_variable("retry_schedule", "0,1,1");
    fake.set_variable("auto_pause_after", "4");
    let (id, _) = fake.create();
    fake.answer_with(500);
    let send = |event: &str| {
        let (status, answer) = fake.call(
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {}, "id": event })),
        );
        assert!(status == 202, "{answer}");
        answer
    };
    send("evt_1");
    for _ in 0..3 {
        fake.advance_seconds(2);
        fake.dispatch();
    }
    let (_, message) = fake.call("GET", "/messages/evt_1", None);
    assert_eq!(message["deliveries"][0]["status"], "failed", "{message}");
    assert_eq!(message["deliveries"][0]["attempts"], 3);
    // The fourth failed attempt in a row pauses the endpoint; its delivery
    // and the later ones are held.
    send("evt_2");
    let (_, endpoint) = fake.call("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(endpoint["paused"], true, "{endpoint}");
    let held = send("evt_3");
    assert_eq!(held["deliveries"][0]["status"], "held");
    let sent_before = fake.sent.borrow().len();
    fake.advance_seconds(5);
    fake.dispatch();
    assert_eq!(
        fake.sent.borrow().len(),
        sent_before,
        "held deliveries wait"
    );

    // Unpausing releases them, in order.
    fake.answer_with(204);
    let (status, _) = fake.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "paused": false })),
    );
    assert_eq!(status, 200);
    let released: Vec<String> = sent_attempts(&fake)[sent_before..]
        .iter()
        .map(|(message, _)| message.clone())
        .collect();
    assert_eq!(released, ["evt_2", "evt_3"]);
    for event in ["evt_2", "evt_3"] {
        let (_, message) = fake.call("GET", &format!("/messages/{event}"), None);
        assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
    }
}

#[test]
fn an_event_id_is_an_idempotency_key() {
    let fake = Fake::new();
    fake.create();
    let event = json!({ "type": "order.paid", "data": { "n": 1 }, "id": "evt_once" });
    let (status, first) = fake.call("POST", "/events", Some(event.clone()));
    assert_eq!(status, 202, "{first}");
    let (status, again) = fake.call("POST", "/events", Some(event));
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["deliveries"][0]["status"], "succeeded");
    assert_eq!(again["createdAt"], first["createdAt"]);
    assert_eq!(fake.sent.borrow().len(), 1);
    let (status, conflict) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "order.paid", "data": { "n": 2 }, "id": "evt_once" })),
    );
    assert_eq!(
        (status, conflict["code"].as_str()),
        (409, Some("idempotency_conflict"))
    );
    // Another organisation's id is another message.
    assert_eq!(fake.sent.borrow().len(), 1);
}

#[test]
fn a_first_attempt_sends_under_its_requests_lease_which_a_pass_respects() {
    let fake = Fake::new();
    fake.create();
    let response = accept_event(&fake, "evt_leased");
    // A pass before the follow-up leaves the delivery to it.
    assert_eq!(fake.dispatch().attempted, 0);
    assert!(fake.sent.borrow().is_empty());
    let reads_before = fake.reads.borrow().len();
    futures::executor::block_on(hooksign_edge::follow_up(&fake.0, &response.follow_up)).unwrap();
    assert_eq!(fake.sent.borrow().len(), 1);
    let delivery_reads = fake.reads.borrow()[reads_before..]
        .iter()
        .filter(|key| key.starts_with("delivery/"))
        .count();
    assert_eq!(
        delivery_reads, 0,
        "no lease taken, and the result written without a swap: no read"
    );
    fake.advance_seconds(60);
    assert_eq!(fake.dispatch().attempted, 0, "sent once");
}

#[test]
fn an_accept_writes_no_delivery_record_and_its_first_attempt_writes_the_only_one() {
    let fake = Fake::new();
    fake.create();
    fake.create();
    let response = accept_event(&fake, "evt_unwritten");
    let records = |fake: &Fake| -> Vec<Value> {
        fake.entries
            .borrow()
            .iter()
            .filter(|(key, _)| key.starts_with("delivery/"))
            .map(|(_, value)| serde_json::from_slice(value).unwrap_or_default())
            .collect()
    };
    // Its message stands for both: pending, as the answer and a read say.
    assert!(records(&fake).is_empty());
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    let (_, read) = fake.call("GET", "/messages/evt_unwritten", None);
    for view in [&answer, &read] {
        let statuses = each_field(&view["deliveries"], "status");
        assert_eq!(statuses, [&json!("pending"), &json!("pending")], "{view}");
    }
    futures::executor::block_on(hooksign_edge::follow_up(&fake.0, &response.follow_up)).unwrap();
    assert_eq!(fake.sent.borrow().len(), 2);
    let statuses: Vec<Value> = records(&fake)
        .iter()
        .map(|record| record["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("succeeded"), json!("succeeded")]);
    fake.advance_seconds(60);
    assert_eq!(fake.dispatch().attempted, 0, "sent once");
}

#[test]
fn a_first_attempt_writes_its_deliverys_first_record_with_the_attempt_in_one_call() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let response = accept_event(&fake, "evt_one_call");
    fake.write_batches.borrow_mut().clear();
    let (reads, writes) = (fake.reads.borrow().len(), fake.writes.get());
    futures::executor::block_on(hooksign_edge::follow_up(&fake.0, &response.follow_up)).unwrap();
    assert_eq!(fake.sent.borrow().len(), 1);
    // Before, the record was swapped in on its own (a read, then a write).
    let batches = fake.write_batches.borrow().clone();
    assert_eq!(batches.len(), 1, "{batches:?}");
    let mut prefixes: Vec<&str> = batches[0]
        .iter()
        .map(|key| key.split('/').next().unwrap_or_default())
        .collect();
    prefixes.sort_unstable();
    assert_eq!(prefixes, ["attempt", "delivery"]);
    let delivery_reads = fake.reads.borrow()[reads..]
        .iter()
        .filter(|key| key.starts_with("delivery/"))
        .count();
    assert_eq!(delivery_reads, 0);
    // The attempt's number (the endpoint's counter), the endpoint's first
    // success, and the batch.
    assert_eq!(fake.writes.get() - writes, 3);
    let (_, read) = fake.call("GET", "/messages/evt_one_call", None);
    let statuses = each_field(&read["deliveries"], "status");
    assert_eq!(statuses, [&json!("succeeded")], "{read}");
    let (_, listed) = fake.call("GET", &format!("/webhooks/{id}/attempts"), None);
    assert_eq!(each_field(&listed["data"], "succeeded"), [&json!(true)]);
    fake.advance_seconds(60);
    assert_eq!(fake.dispatch().attempted, 0, "sent once");
}

#[test]
fn attempts_answered_in_one_round_are_written_in_one_batch() {
    let fake = Fake::new();
    let ids: Vec<String> = (0..10).map(|_| fake.create().0).collect();
    // Each send waits a round for its answer, as a receiver's would.
    fake.sends_wait.set(true);
    fake.write_batches.borrow_mut().clear();
    let event = json!({ "type": "t", "data": {}, "id": "evt_grouped" });
    assert_eq!(fake.call("POST", "/events", Some(event)).0, 202);
    assert_eq!(fake.sent.borrow().len(), 10);
    // The ten sends were answered at once: their attempts went together,
    // with the first records of their deliveries.
    assert_eq!(keys_in_batches(&fake.write_batches, "attempt/"), [10]);
    assert_eq!(keys_in_batches(&fake.write_batches, "delivery/"), [10]);
    for id in ids {
        let (status, listed) = fake.call("GET", &format!("/webhooks/{id}/attempts"), None);
        assert_eq!(status, 200);
        let numbers = each_field(&listed["data"], "attemptNumber");
        assert_eq!(numbers, [&json!(1)], "{listed}");
    }
}

#[test]
fn every_attempt_of_a_failed_batch_write_fails_and_stops_its_endpoints_run() {
    let fake = Fake::new();
    fake.create();
    fake.create();
    accept_event(&fake, "evt_first");
    accept_event(&fake, "evt_second");
    // Their requests' first attempts never ran: the pass sends each
    // endpoint's two in turn, the two endpoints side by side.
    fake.advance_seconds(60);
    fake.sends_wait.set(true);
    *fake.failing_batches.borrow_mut() = Some("attempt/".into());
    let pass = futures::executor::block_on(hooksign_edge::dispatch(&fake.0));
    assert!(pass.is_err(), "{pass:?}");
    // Both first sends were answered in one round and their attempts
    // went in one write, which failed: neither endpoint's run goes on to
    // its second delivery as if its attempt were recorded.
    assert_eq!(fake.sent.borrow().len(), 2);
}

#[test]
fn a_pass_drops_a_queued_delivery_without_a_record_whose_message_is_gone() {
    let fake = Fake::new();
    fake.create();
    accept_event(&fake, "evt_pruned");
    // Its request died before the first attempt, and its day was pruned
    // (a retention of one day) before any pass sent it.
    fake.entries
        .borrow_mut()
        .retain(|key, _| !key.starts_with("message/"));
    fake.advance_seconds(60);
    assert_eq!(fake.dispatch().attempted, 0);
    let queued = fake
        .entries
        .borrow()
        .keys()
        .filter(|key| {
            key.starts_with("due/") && !key.ends_with("/count") && !key.ends_with("/swept")
        })
        .filter(|key| key.matches('/').count() == 3)
        .count();
    assert_eq!(queued, 0, "the entry is removed, not chosen in every pass");
}

#[test]
fn a_pass_reads_a_queue_entrys_deliveries_in_one_batch() {
    let fake = Fake::new();
    for _ in 0..12 {
        fake.create();
    }
    accept_event(&fake, "evt_batched");
    // The request's first attempts never ran: past their lease, the pass
    // sends all twelve, listed in one queue entry.
    fake.advance_seconds(60);
    fake.batches.borrow_mut().clear();
    assert_eq!(fake.dispatch().attempted, 12);
    let deliveries = delivery_batches(&fake);
    assert_eq!(deliveries, [12], "the deliveries' records in one batch");
}

#[test]
fn a_pass_reads_and_removes_many_settled_queue_entries_in_a_batch_each() {
    let fake = Fake::new();
    fake.create();
    fake.create();
    // Forty events, each one queue entry of two deliveries, all sent by
    // their requests' first attempts: the entries are left for a pass.
    for n in 0..40 {
        let event = json!({ "type": "t", "data": {}, "id": format!("evt_swept_{n}") });
        assert_eq!(fake.call("POST", "/events", Some(event)).0, 202);
    }
    assert_eq!(fake.sent.borrow().len(), 80);
    let entries = |fake: &Fake| {
        fake.entries
            .borrow()
            .keys()
            .filter(|key| {
                key.starts_with("due/") && !key.ends_with("/count") && !key.ends_with("/swept")
            })
            .filter(|key| key.matches('/').count() == 3)
            .count()
    };
    assert_eq!(entries(&fake), 40);
    fake.batches.borrow_mut().clear();
    fake.removals.borrow_mut().clear();
    assert_eq!(fake.dispatch().attempted, 0);
    assert_eq!(entries(&fake), 0, "every entry settled is removed");
    // 80 records in one batch read (not one per entry), 40 entries in one
    // batch removal (not one each).
    assert_eq!(delivery_batches(&fake), [80]);
    let removals: Vec<usize> = fake.removals.borrow().iter().map(Vec::len).collect();
    assert_eq!(removals, [40], "{removals:?}");
    assert_eq!(fake.sent.borrow().len(), 80, "nothing sent again");
}

/// The queue entries of the organisation's one second (`due/{second}/{org}/{n}`),
/// by number, as stored.
fn queue_entries(fake: &Fake) -> BTreeMap<i64, Vec<u8>> {
    fake.entries
        .borrow()
        .iter()
        .filter(|(key, _)| key.starts_with("due/") && key.matches('/').count() == 3)
        .filter_map(|(key, value)| Some((key.rsplit('/').next()?.parse().ok()?, value.clone())))
        .collect()
}

/// Accepts events `{prefix}0` to `{prefix}{count - 1}`.
fn accept_numbered(fake: &Fake, prefix: &str, count: usize) {
    for n in 0..count {
        let event = json!({ "type": "t", "data": {}, "id": format!("{prefix}{n}") });
        assert_eq!(fake.call("POST", "/events", Some(event)).0, 202);
    }
}

/// The key of entry `n` of the organisation's one second.
fn queue_entry_key(fake: &Fake, n: i64) -> String {
    let entries = fake.entries.borrow();
    let count = entries
        .keys()
        .find(|key| key.starts_with("due/") && key.ends_with("/count"))
        .expect("a queue count");
    format!("{}/{n}", count.trim_end_matches("/count"))
}

/// What `due/{second}/{org}/swept` holds.
fn swept_mark(fake: &Fake) -> Option<i64> {
    let entries = fake.entries.borrow();
    let (_, value) = entries.iter().find(|(key, _)| key.ends_with("/swept"))?;
    serde_json::from_slice(value).ok()
}

#[test]
fn a_pass_reads_a_swept_seconds_entries_no_more() {
    let fake = Fake::new();
    fake.create();
    accept_numbered(&fake, "evt_once_", 40);
    assert_eq!(fake.dispatch().attempted, 0);
    assert_eq!(swept_mark(&fake), Some(40));
    // The second stays listed until it is old; the passes meanwhile read
    // its marks, not its forty entries again.
    for _ in 0..3 {
        fake.advance_seconds(10);
        fake.reads.borrow_mut().clear();
        assert_eq!(fake.dispatch().attempted, 0);
        let entries_read = fake
            .reads
            .borrow()
            .iter()
            .filter(|key| key.starts_with("due/") && key.matches('/').count() == 3)
            .filter(|key| !key.ends_with("/count") && !key.ends_with("/swept"))
            .count();
        assert_eq!(entries_read, 0);
    }
    // Once old, the second goes, marks and all.
    fake.advance_seconds(120);
    fake.dispatch();
    let left: Vec<String> = fake
        .entries
        .borrow()
        .keys()
        .filter(|key| key.starts_with("due/") && key.matches('/').count() == 3)
        .cloned()
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn the_swept_mark_waits_at_an_entry_counted_and_not_yet_written() {
    let fake = Fake::new();
    fake.create();
    accept_numbered(&fake, "evt_gap_", 3);
    assert_eq!(queue_entries(&fake).len(), 3);
    // Entry 2 as a request that has counted it and not yet written it.
    let second = queue_entry_key(&fake, 2);
    let written = fake.entries.borrow_mut().remove(&second).expect("entry 2");
    assert_eq!(fake.dispatch().attempted, 0);
    assert_eq!(swept_mark(&fake), Some(1), "not past the missing entry");
    let entries = queue_entries(&fake);
    assert_eq!(entries.keys().collect::<Vec<_>>(), [&3]);
    assert_eq!(entries[&3], b"[]", "entry 3, done, is kept empty");
    // The request writes it; the next pass reads it, and the mark passes
    // both.
    fake.entries.borrow_mut().insert(second.clone(), written);
    fake.reads.borrow_mut().clear();
    assert_eq!(fake.dispatch().attempted, 0);
    assert!(fake.reads.borrow().contains(&second));
    assert_eq!(swept_mark(&fake), Some(3));
    assert_eq!(queue_entries(&fake), BTreeMap::new());
}

#[test]
fn a_pass_reads_no_more_of_a_long_queue_entry_than_it_sends() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let path = format!("/webhooks/{id}");
    assert_eq!(
        fake.call("PATCH", &path, Some(json!({ "paused": true }))).0,
        200
    );
    for n in 0..1200 {
        let event = json!({ "type": "t", "data": {}, "id": format!("evt_long_{n}") });
        assert_eq!(fake.call("POST", "/events", Some(event)).0, 202);
    }
    // Released in one entry of 1,200; the request sends the first 100.
    assert_eq!(
        fake.call("PATCH", &path, Some(json!({ "paused": false })))
            .0,
        200
    );
    assert_eq!(fake.sent.borrow().len(), 100);
    fake.batches.borrow_mut().clear();
    // A pass makes at most 512 attempts.
    assert_eq!(fake.dispatch().attempted, 512);
    // 100 found done and 512 chosen: read a batch at a time, not all 1,200.
    let read: usize = delivery_batches(&fake).iter().sum();
    assert!((612..=612 + 128).contains(&read), "{read} records read");
}

/// How many deliveries' records each batch read that read any held.
fn delivery_batches(fake: &Fake) -> Vec<usize> {
    keys_in_batches(&fake.batches, "delivery/")
}

/// The keys of the deliveries' records in the store.
fn delivery_records(fake: &Fake) -> Vec<String> {
    let entries = fake.entries.borrow();
    let keys = entries.keys().filter(|key| key.starts_with("delivery/"));
    keys.cloned().collect()
}

/// How many keys under `prefix` each batch (read or written) that had any
/// held.
fn keys_in_batches(batches: &RefCell<Vec<Vec<String>>>, prefix: &str) -> Vec<usize> {
    batches
        .borrow()
        .iter()
        .map(|keys| keys.iter().filter(|key| key.starts_with(prefix)).count())
        .filter(|count| *count > 0)
        .collect()
}

/// An endpoint paused with three events held for it; unpauses it after
/// `before`.
fn unpause_three_held(before: impl FnOnce(&Fake)) -> Fake {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let path = format!("/webhooks/{id}");
    let (status, _) = fake.call("PATCH", &path, Some(json!({ "paused": true })));
    assert_eq!(status, 200);
    for n in 0..3 {
        let event = json!({ "type": "t", "data": {}, "id": format!("evt_held_{n}") });
        assert_eq!(fake.call("POST", "/events", Some(event)).0, 202);
    }
    before(&fake);
    let (status, _) = fake.call("PATCH", &path, Some(json!({ "paused": false })));
    assert_eq!(status, 200);
    fake
}

#[test]
fn unpausing_reads_the_held_deliveries_in_one_batch() {
    let fake = unpause_three_held(|fake| fake.batches.borrow_mut().clear());
    let held = delivery_batches(&fake);
    assert_eq!(held, [3], "the held deliveries' records in one batch");
    assert_eq!(fake.sent.borrow().len(), 3, "all three sent");
}

#[test]
fn unpausing_hands_its_sends_the_leased_deliveries_and_their_messages() {
    let fake = unpause_three_held(|fake| {
        fake.reads.borrow_mut().clear();
        fake.batches.borrow_mut().clear();
        fake.write_batches.borrow_mut().clear();
    });
    assert_eq!(fake.sent.borrow().len(), 3, "all three sent");
    let reads = |prefix: &str| {
        let batched: usize = fake
            .batches
            .borrow()
            .iter()
            .map(|keys| keys.iter().filter(|key| key.starts_with(prefix)).count())
            .sum();
        let read = fake
            .reads
            .borrow()
            .iter()
            .filter(|key| key.starts_with(prefix))
            .count();
        (batched, read)
    };
    // Each message read once, in the batch with the delivery records.
    assert_eq!(reads("message/"), (3, 3));
    // Released under the request's lease, each delivery's record is read in
    // the batch and by the release's swap: its send claims it no more, and
    // writes its result with its attempt, no swap.
    assert_eq!(reads("delivery/"), (3, 3 * 2));
    let written = keys_in_batches(&fake.write_batches, "delivery/");
    assert_eq!(written, [1, 1, 1]);
    assert_eq!(keys_in_batches(&fake.write_batches, "attempt/"), [1, 1, 1]);
}

#[test]
fn a_released_delivery_whose_endpoint_goes_during_its_send_gets_no_record_back() {
    let fake = unpause_three_held(|fake| {
        // Once the release is done, before the first send is counted on
        // its endpoint: the endpoint and its deliveries are deleted.
        *fake.meddler.borrow_mut() = Some(Box::new(|entries| {
            let holding = entries
                .iter()
                .any(|(key, value)| key.starts_with("held/") && value.as_slice() != b"[]");
            if !holding {
                entries.retain(|key, _| {
                    !key.starts_with("endpoint/") && !key.starts_with("delivery/")
                });
            }
            holding
        }));
    });
    assert_eq!(fake.sent.borrow().len(), 1, "sent before the endpoint went");
    let records = delivery_records(&fake);
    assert!(records.is_empty(), "{records:?}");
}

#[test]
fn an_accepted_delivery_whose_endpoint_goes_during_its_send_gets_no_record() {
    let fake = Fake::new();
    fake.create();
    let Response { follow_up, .. } = accept_event(&fake, "evt_erased");
    // At the first attempt's first swap (its count on the endpoint), the
    // organisation's endpoint and records are erased.
    *fake.meddler.borrow_mut() = Some(Box::new(|entries| {
        entries.retain(|key, _| !key.starts_with("endpoint/") && !key.starts_with("delivery/"));
        false
    }));
    let _ = futures::executor::block_on(hooksign_edge::follow_up(&fake.0, &follow_up));
    assert_eq!(fake.sent.borrow().len(), 1, "sent before the endpoint went");
    let records = delivery_records(&fake);
    assert!(records.is_empty(), "{records:?}");
}

#[test]
fn a_first_attempt_that_starts_late_goes_out_under_its_requests_lease_extended() {
    let fake = Fake::new();
    fake.create();
    let request = Request {
        method: "POST".into(),
        path: "/events".into(),
        query: None,
        headers: vec![("Authorization".into(), format!("Bearer {KEY}"))],
        body: json!({ "type": "t", "data": {} }).to_string().into_bytes(),
    };
    let Response {
        status, follow_up, ..
    } = futures::executor::block_on(handle(&fake.0, &request));
    assert_eq!(status, 202);
    // The first attempt starts 3 s after the answer (other sends went
    // first): the request's lease still runs, but no longer covers a send
    // and its margin. Before, the attempt found the delivery leased, to
    // another as it seemed, and left it to a pass once the lease ran out.
    fake.advance_seconds(3);
    futures::executor::block_on(hooksign_edge::follow_up(&fake.0, &follow_up)).unwrap();
    assert_eq!(fake.sent.borrow().len(), 1);
}

#[test]
fn an_accept_writes_its_queue_and_log_entries_in_one_batch() {
    let fake = Fake::new();
    fake.create();
    let event = json!({ "type": "t", "data": {}, "id": "evt_entries" });
    let (status, _) = fake.call("POST", "/events", Some(event));
    assert_eq!(status, 202);
    let batches = fake.write_batches.borrow();
    // The accept's, then its first attempt's.
    assert_eq!(batches.len(), 2, "{batches:?}");
    let prefixes: Vec<&str> = batches[0]
        .iter()
        .map(|key| key.split('/').next().unwrap_or_default())
        .collect();
    assert_eq!(prefixes, ["due", "log"], "{batches:?}");
    drop(batches);
    // Both written: the message is listed, and its delivery is due.
    let (status, listed) = fake.call("GET", "/messages", None);
    assert_eq!(status, 200);
    assert_eq!(listed["data"][0]["id"], "evt_entries", "{listed}");
}

#[test]
fn a_message_that_failed_half_written_is_completed_by_its_repost() {
    let fake = Fake::new();
    fake.create();
    let event = json!({ "type": "order.paid", "data": {}, "id": "evt_half" });
    // The storage charge, the log's number, the claim and the queue and
    // log entries are written; marking it whole fails.
    fake.writes_left.set(Some(4));
    let (status, _) = fake.call("POST", "/events", Some(event.clone()));
    assert_eq!(status, 503);
    fake.writes_left.set(None);
    assert!(fake.sent.borrow().is_empty());
    // The dispatcher does not send what is not whole (yet).
    fake.dispatch();
    assert!(fake.sent.borrow().is_empty());
    let (status, answer) = fake.call("POST", "/events", Some(event));
    assert_eq!(status, 202, "{answer}");
    // The repost marked it whole with its own lease: its first attempt
    // sends it, and no dispatcher after it, the lease over.
    assert_eq!(fake.sent.borrow().len(), 1);
    fake.advance_seconds(21);
    fake.dispatch();
    assert_eq!(fake.sent.borrow().len(), 1);
    let (_, listed) = fake.call("GET", "/messages", None);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
}

/// The ids of a page of `GET /messages`, in order.
fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap().to_string())
        .collect()
}

/// Bytes one more event of an organisation that accepted `before`
/// events today writes to its log.
fn next_log_write(before: usize) -> usize {
    let fake = Fake::new();
    fake.create();
    for n in 0..before {
        fake.call(
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {}, "id": format!("evt_{n:04}") })),
        );
    }
    let stored = fake.entries.borrow().clone();
    fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_next" })),
    );
    fake.bytes_changed_since(&stored, "log/")
}

#[test]
fn an_event_writes_as_much_to_a_busy_days_log_as_to_a_quiet_ones() {
    assert_eq!(next_log_write(1), next_log_write(300));
}

#[test]
fn the_log_of_before_is_listed_after_keyed_entries_and_its_cursors_still_work() {
    let fake = Fake::new();
    fake.create();
    for id in ["evt_new_1", "evt_new_2"] {
        fake.call(
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {}, "id": id })),
        );
    }
    // A repost of an accepted id takes a number it never writes: skipped.
    fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_new_1" })),
    );
    let day = fake.now_ms.get().div_euclid(86_400_000);
    let now = fake.now_ms.get() / 1000;
    let old: Vec<Value> = (0..3)
        .map(|n| json!({ "id": format!("evt_old_{n}"), "type": "t", "createdAt": now - 10 }))
        .collect();
    fake.entries
        .borrow_mut()
        .insert(format!("log/acme/{day}"), serde_json::to_vec(&old).unwrap());
    let (_, first) = fake.call("GET", "/messages?limit=3", None);
    assert_eq!(ids(&first), ["evt_new_2", "evt_new_1", "evt_old_2"]);
    let cursor = first["nextCursor"].as_str().unwrap().to_string();
    let (_, second) = fake.call("GET", &format!("/messages?limit=3&cursor={cursor}"), None);
    assert_eq!(ids(&second), ["evt_old_1", "evt_old_0"]);
    assert_eq!(second["nextCursor"], Value::Null);
    // A cursor handed out before (`DAY.INDEX + 1` into the list) goes on.
    let (_, resumed) = fake.call("GET", &format!("/messages?cursor={day}.1"), None);
    assert_eq!(ids(&resumed), ["evt_old_0"]);
}

#[test]
fn the_message_log_pages_newest_first_and_filters_by_type() {
    let fake = Fake::new();
    for n in 0..5 {
        let event_type = if n % 2 == 0 { "even" } else { "odd" };
        let (status, _) = fake.call(
            "POST",
            "/events",
            Some(json!({ "type": event_type, "data": {}, "id": format!("evt_{n}") })),
        );
        assert_eq!(status, 202);
        fake.advance_seconds(40_000);
    }
    let (_, page) = fake.call("GET", "/messages?limit=2", None);
    assert_eq!(ids(&page), ["evt_4", "evt_3"]);
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let (_, page) = fake.call("GET", &format!("/messages?limit=2&cursor={cursor}"), None);
    assert_eq!(ids(&page), ["evt_2", "evt_1"]);
    let cursor = page["nextCursor"].as_str().unwrap().to_string();
    let (_, page) = fake.call("GET", &format!("/messages?limit=2&cursor={cursor}"), None);
    assert_eq!(ids(&page), ["evt_0"]);
    assert_eq!(page["nextCursor"], Value::Null);
    let (_, page) = fake.call("GET", "/messages?type=even", None);
    assert_eq!(ids(&page), ["evt_4", "evt_2", "evt_0"]);
    let (status, _) = fake.call("GET", "/messages?cursor=nonsense", None);
    assert_eq!(status, 400);
    let (status, _) = fake.call("GET", "/messages/evt_missing", None);
    assert_eq!(status, 404);
}

#[test]
fn resend_makes_a_new_attempt_whatever_the_status() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let (status, _) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_again" })),
    );
    assert_eq!(status, 202);
    let (status, delivery) = fake.call(
        "POST",
        "/messages/evt_again/resend",
        Some(json!({ "endpointId": id })),
    );
    assert_eq!(status, 202, "{delivery}");
    let numbers: Vec<String> = sent_attempts(&fake).into_iter().map(|(_, n)| n).collect();
    assert_eq!(numbers, ["1", "2"]);
    let (status, problem) = fake.call(
        "POST",
        "/messages/evt_again/resend",
        Some(json!({ "endpointId": "00000000-0000-4000-8000-000000000000" })),
    );
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
}

#[test]
fn a_resend_while_a_pass_sends_the_delivery_sends_again_at_once() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    // The first attempt fails: its retry is what the pass sends.
    *fake.responder.borrow_mut() = Box::new(|n, _| {
        Ok(hooksign_edge::testing::answer(if n == 0 {
            500
        } else {
            200
        }))
    });
    let event = json!({ "type": "t", "data": {}, "id": "evt_resent" });
    assert_eq!(fake.call("POST", "/events", Some(event)).0, 202);
    fake.advance_seconds(60);
    fake.sends_wait.set(true);
    let resend = Request {
        method: "POST".into(),
        path: "/messages/evt_resent/resend".into(),
        query: None,
        headers: bearer(KEY),
        body: json!({ "endpointId": id }).to_string().into_bytes(),
    };
    // The resend arrives while the pass's send waits for its answer.
    let (pass, resent) = futures::executor::block_on(async {
        futures::join!(hooksign_edge::dispatch(&fake.0), async {
            let response = handle(&fake.0, &resend).await;
            let followed = hooksign_edge::follow_up(&fake.0, &response.follow_up).await;
            (response.status, followed)
        })
    });
    assert_eq!(pass.unwrap().attempted, 1);
    assert_eq!(resent.0, 202);
    assert!(resent.1.is_ok(), "{:?}", resent.1);
    assert_eq!(
        fake.sent.borrow().len(),
        3,
        "the resend's own attempt, at once"
    );
    let (_, message) = fake.call("GET", "/messages/evt_resent", None);
    let statuses = each_field(&message["deliveries"], "status");
    assert_eq!(statuses, [&json!("succeeded")], "{message}");
}

/// A platform that keeps messages a day, with an endpoint and three events
/// (`evt_0` to `evt_2`) sent to it.
fn three_events_kept_a_day() -> Fake {
    let fake = Fake::new();
    fake.set_variable("retention_days", "1");
    fake.create();
    for n in 0..3 {
        fake.call(
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {}, "id": format!("evt_{n}") })),
        );
    }
    fake
}

#[test]
fn a_pruned_message_goes_with_its_deliveries_records_in_one_removal() {
    let fake = three_events_kept_a_day();
    fake.advance_seconds(2 * 86_400);
    fake.removals.borrow_mut().clear();
    fake.dispatch();
    // Before, each delivery's record went first, on its own: a pass in
    // between found a queued retry's record gone and its message there.
    let removals = fake.removals.borrow();
    for n in 0..3 {
        let message = format!("message/acme/evt_{n}");
        let with_it: Vec<&Vec<String>> = removals
            .iter()
            .filter(|removed| removed.iter().any(|key| key.contains(&format!("/evt_{n}"))))
            .collect();
        assert_eq!(with_it.len(), 1, "{removals:?}");
        let keys: Vec<&str> = with_it[0]
            .iter()
            .filter(|key| !key.starts_with("log/"))
            .map(|key| key.split('/').next().unwrap_or_default())
            .collect();
        assert_eq!(keys, ["delivery", "message"], "{message}: {removals:?}");
    }
}

#[test]
fn messages_expire_a_day_at_a_time() {
    let fake = three_events_kept_a_day();
    let stored = |prefix: &str| {
        fake.entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with(prefix))
            .count()
    };
    assert_eq!((stored("message/"), stored("delivery/")), (3, 3));
    fake.advance_seconds(86_400);
    fake.dispatch();
    assert_eq!(stored("message/"), 3, "kept for the whole retention");
    fake.advance_seconds(2 * 86_400);
    fake.dispatch();
    for prefix in ["message/", "delivery/", "log/", "queue/", "due/"] {
        assert_eq!(stored(prefix), usize::from(prefix == "due/"), "{prefix}");
    }
    // What is left are the two directories, empty.
    for directory in ["due/minutes", "retention/days"] {
        assert_eq!(fake.entries.borrow()[directory], b"[]", "{directory}");
    }
    let (_, listed) = fake.call("GET", "/messages", None);
    assert_eq!(listed["data"], json!([]));
}

#[test]
fn dispatch_needs_its_token() {
    let fake = Fake::new();
    let post = |authorization: Option<&str>| {
        let headers = authorization
            .map(|value| vec![("authorization".to_string(), value.to_string())])
            .unwrap_or_default();
        send(&fake, "POST", "/dispatch", headers, Vec::new()).status
    };
    assert_eq!(post(Some("Bearer anything")), 401, "no token configured");
    fake.set_variable("dispatch_token", "tok_secret_0123456789abcdef0123456789");
    assert_eq!(post(None), 401);
    assert_eq!(post(Some(&format!("Bearer {KEY}"))), 401);
    assert_eq!(
        post(Some("Bearer tok_secret_0123456789abcdef0123456789")),
        200
    );
    // A token that guessing could reach is refused as configuration.
    fake.set_variable("dispatch_token", "tok_short");
    let (status, problem) = status_and_json(&send(
        &fake,
        "POST",
        "/dispatch",
        bearer("tok_short"),
        Vec::new(),
    ));
    assert_eq!(
        (status, problem["code"].as_str()),
        (500, Some("invalid_configuration"))
    );
    assert!(!problem.to_string().contains("tok_short"), "{problem}");
}

#[test]
fn dispatch_token_guesses_are_limited_and_never_hold_up_the_token() {
    let fake = Fake::new();
    let token = "tok_secret_0123456789abcdef0123456789";
    fake.set_variable("dispatch_token", token);
    let post =
        |token: &str| status_and_json(&send(&fake, "POST", "/dispatch", bearer(token), Vec::new()));
    // The clock stands still: ten guesses a second, then 429.
    for n in 0..10 {
        assert_eq!(post(&format!("guess_{n}")).0, 401);
    }
    let (status, problem) = post("guess_10");
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("rate_limited"))
    );
    // The token still dispatches, and a second later guesses are 401 again.
    assert_eq!(post(token).0, 200);
    fake.advance_seconds(1);
    assert_eq!(post("guess_11").0, 401);
}

#[test]
fn a_test_send_answers_with_the_receivers_headers_bounded() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    *fake.responder.borrow_mut() = Box::new(|_, _| {
        Ok(hooksign_edge::OutboundResponse {
            status: 200,
            headers: (0..90)
                .map(|n| (format!("x-big-{n:02}"), "v".repeat(4_000)))
                .collect(),
            body: b"ok".to_vec(),
        })
    });
    let response = send(
        &fake,
        "POST",
        &format!("/webhooks/{id}/test"),
        bearer(KEY),
        Vec::new(),
    );
    assert_eq!(response.status, 200);
    assert!(response.body.len() < 9_000, "{} bytes", response.body.len());
    let (_, answer) = status_and_json(&response);
    let headers = answer["response"]["headers"].as_object().unwrap();
    assert_eq!(headers.keys().collect::<Vec<_>>(), ["x-big-00"]);
}

#[test]
fn every_answer_says_nosniff_and_a_long_path_is_not_echoed() {
    let fake = Fake::new();
    let long = format!("/{}", "a".repeat(60_000));
    for (method, path, key) in [
        ("GET", "/webhooks", KEY),
        ("GET", "/webhooks", "sgn_live_wrong"),
        ("GET", long.as_str(), KEY),
        ("GET", "/openapi.yaml", KEY),
        ("GET", "/dashboard", KEY),
        ("DELETE", "/openapi.yaml", KEY),
    ] {
        let response = send(&fake, method, path, bearer(key), Vec::new());
        let nosniff: Vec<&str> = response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-content-type-options"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(
            nosniff,
            ["nosniff"],
            "{method} {}",
            &path[..path.len().min(20)]
        );
    }
    let response = send(&fake, "GET", &long, bearer(KEY), Vec::new());
    assert_eq!(response.status, 404);
    assert!(response.body.len() < 1_000, "{} bytes", response.body.len());
}

#[test]
fn a_message_id_that_cannot_be_read_back_is_refused() {
    let fake = Fake::new();
    for id in ["a/b", "a?b", "a#b", "50%25", "%"] {
        let (status, problem) = fake.call(
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {}, "id": id })),
        );
        assert_eq!(status, 400, "{id}: {problem}");
        assert_eq!(problem["errors"][0]["path"], "id", "{problem}");
    }
    let (status, _) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt-ok_1:2" })),
    );
    assert_eq!(status, 202);
    let (status, _) = fake.call("GET", "/messages/evt-ok_1:2", None);
    assert_eq!(status, 200);
}

#[test]
fn a_malformed_retry_schedule_is_a_configuration_problem() {
    for bad in ["", "a,b", "0,604801", &vec!["1"; 21].join(",")] {
        let fake = Fake::new();
        fake.set_variable("retry_schedule", bad);
        let (status, problem) = fake.call("GET", "/webhooks", None);
        assert_eq!(
            (status, problem["code"].as_str()),
            (500, Some("invalid_configuration")),
            "{bad:?}"
        );
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("retry_schedule")
        );
    }
}

#[test]
fn the_multi_node_runtime_config_puts_the_store_in_redis_and_blocks_private_networks() {
    let config: toml::Table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/runtime-config.toml"
    ))
    .unwrap()
    .parse()
    .unwrap();
    let store = &config["key_value_store"]["default"];
    assert_eq!(store["type"].as_str(), Some("redis"));
    assert!(store["url"].as_str().unwrap().starts_with("redis://"));
    let blocked = config["outbound_networking"]["block_networks"]
        .as_array()
        .unwrap();
    assert!(
        blocked
            .iter()
            .any(|network| network.as_str() == Some("private"))
    );
}

/// A session that exercises every kind of update: creates (the index),
/// rotations racing another writer, events with retries (attempt counts,
/// queue lists, leases), pause and release, the gateway (marks, stats).
fn session_under(defect: SwapDefect) {
    let fake = Fake::in_plaintext();
    fake.defect.set(Some(defect));
    fake.set_variable("retry_schedule", "0,10");
    let (id, secret) = fake.create();
    let (other, _) = fake.create();
    let (_, listed) = fake.call("GET", "/webhooks", None);
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        2,
        "{defect:?}: {listed}"
    );

    // A rotation racing another: both new secrets and the old one sign.
    let now = fake.now_ms.get() / 1000;
    let raced = Rc::new(RefCell::new(String::new()));
    let (meddler_id, meddler_raced) = (id.clone(), raced.clone());
    *fake.meddler.borrow_mut() = Some(Box::new(move |kv| {
        *meddler_raced.borrow_mut() = rotate_in_store(kv, &meddler_id, now);
        false
    }));
    let (status, rotated) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
    assert_eq!(status, 200, "{defect:?}: {rotated}");
    let ours = rotated["signingSecret"].as_str().unwrap().to_string();
    let (_, sent) = fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(sent["attempt"]["succeeded"], true);
    let signature = fake.last_signature();
    assert_eq!(signature.split(' ').count(), 3, "{defect:?}: {signature}");
    let request = fake.sent.borrow().last().unwrap().clone();
    for key in [&secret, &ours, &*raced.borrow()] {
        let keyring = Keyring::from_records(&[SecretRecord::new(key.as_str())]).unwrap();
        keyring
            .verify(&request.headers, &request.body, now, 300)
            .unwrap_or_else(|error| panic!("{defect:?}: a secret was lost: {error}"));
    }

    // An event that fails once, then succeeds: two attempts, counted once each.
    let sent_before = fake.sent.borrow().len();
    fake.answer_with(500);
    let (status, _) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_defect" })),
    );
    assert_eq!(status, 202, "{defect:?}");
    fake.answer_with(204);
    fake.advance_seconds(12);
    fake.dispatch();
    fake.dispatch();
    let (_, message) = fake.call("GET", "/messages/evt_defect", None);
    for delivery in message["deliveries"].as_array().unwrap() {
        assert_eq!(delivery["status"], "succeeded", "{defect:?}: {message}");
        assert_eq!(delivery["attempts"], 2, "{defect:?}: {message}");
    }
    assert_eq!(fake.sent.borrow().len() - sent_before, 4, "{defect:?}");
    let (_, endpoint) = fake.call("GET", &format!("/webhooks/{other}"), None);
    assert_eq!(endpoint["consecutiveFailures"], 0, "{defect:?}");
    let (_, attempts) = fake.call("GET", &format!("/webhooks/{other}/attempts"), None);
    assert_eq!(attempts["data"].as_array().unwrap().len(), 2, "{defect:?}");

    // Held while paused, released once on unpausing.
    fake.call(
        "PATCH",
        &format!("/webhooks/{other}"),
        Some(json!({ "paused": true })),
    );
    fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_held" })),
    );
    let sent_before = fake.sent.borrow().len();
    fake.call(
        "PATCH",
        &format!("/webhooks/{other}"),
        Some(json!({ "paused": false })),
    );
    assert_eq!(fake.sent.borrow().len() - sent_before, 1, "{defect:?}");

    // The gateway: accepted once, refused as a replay, counted once each.
    // (The fake origin answers 204, as the receivers do here.)
    assert_eq!(deliver_inbound(&fake, "msg_defect"), 204, "{defect:?}");
    assert_eq!(deliver_inbound(&fake, "msg_defect"), 409, "{defect:?}");
    let (_, stats) = fake.call("GET", "/inbound/shop/stats", None);
    assert_eq!(stats["accepted"], 1, "{defect:?}: {stats}");
    assert_eq!(
        stats["rejected"]["duplicate_delivery"], 1,
        "{defect:?}: {stats}"
    );
}

#[test]
fn every_update_is_right_on_stores_whose_swap_misreports() {
    for defect in [
        SwapDefect::ReportsFailure,
        SwapDefect::ConflictReportsSuccess,
        SwapDefect::AbsentUpserts,
    ] {
        session_under(defect);
    }
}

/// A request with another key.
fn call_with(fake: &Fake, key: &str, method: &str, path: &str) -> (u16, Value) {
    status_and_json(&send(fake, method, path, bearer(key), Vec::new()))
}

#[test]
fn api_keys_are_minted_listed_used_and_revoked() {
    let fake = Fake::new();
    let (status, created) = fake.call("POST", "/api-keys", Some(json!({ "name": "ci" })));
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["apiKey"]["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("sgn_live_") && key.len() >= "sgn_live_".len() + 48);
    assert_eq!(created["apiKey"]["prefix"], key[..13]);
    // Stored by its hash only.
    for value in fake.entries.borrow().values() {
        assert!(!String::from_utf8_lossy(value).contains(&key));
    }

    // It works, for its organisation; its use is noted at most once a minute.
    assert_eq!(call_with(&fake, &key, "GET", "/webhooks").0, 200);
    let listed = |fake: &Fake| fake.call("GET", "/api-keys", None).1;
    let first_use = listed(&fake)["data"][0]["lastUsedAt"].clone();
    assert!(first_use.is_string(), "{}", listed(&fake));
    let before = fake.entries.borrow().clone();
    fake.advance_seconds(30);
    assert_eq!(call_with(&fake, &key, "GET", "/webhooks").0, 200);
    assert_eq!(
        *fake.entries.borrow(),
        before,
        "a use within the minute wrote"
    );
    fake.advance_seconds(31);
    assert_eq!(call_with(&fake, &key, "GET", "/webhooks").0, 200);
    assert_ne!(listed(&fake)["data"][0]["lastUsedAt"], first_use);

    // The bootstrap key is listed, not revocable here.
    let data = listed(&fake)["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["bootstrap"], true);
    assert_eq!(data[1]["prefix"], Value::Null);
    let bootstrap = data[1]["id"].as_str().unwrap().to_string();
    let (status, problem) = fake.call("DELETE", &format!("/api-keys/{bootstrap}"), None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("bootstrap_key"))
    );

    // Revoked: refused at once; listed as revoked.
    assert_eq!(fake.call("DELETE", &format!("/api-keys/{id}"), None).0, 204);
    let (status, problem) = call_with(&fake, &key, "GET", "/webhooks");
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    assert!(listed(&fake)["data"][0]["revokedAt"].is_string());
    assert_eq!(fake.call("DELETE", &format!("/api-keys/{id}"), None).0, 204);
    // A key without the prefix is never one, even with a valid hash.
    fake.set_variable(
        "api_keys",
        format!("{},acme:{}", api_key_entry("acme", KEY), {
            let entry = api_key_entry("acme", "plain_key_without_prefix");
            entry.split_once(':').unwrap().1.to_string()
        }),
    );
    assert_eq!(
        call_with(&fake, "plain_key_without_prefix", "GET", "/webhooks").0,
        401
    );
}

#[test]
fn answers_that_carry_a_secret_are_not_cached() {
    let fake = Fake::new();
    let post = |path: &str, body: Value| {
        send(
            &fake,
            "POST",
            path,
            bearer(KEY),
            body.to_string().into_bytes(),
        )
    };
    let created = post("/webhooks", json!({ "url": "https://example.com/hook" }));
    let id = serde_json::from_slice::<Value>(&created.body).unwrap()["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rotated = post(&format!("/webhooks/{id}/rotate"), json!({}));
    let minted = post("/api-keys", json!({ "name": "n" }));
    let listed = post("/webhooks/not-a-route/x", json!({}));
    for (what, response) in [
        ("create", &created),
        ("rotate", &rotated),
        ("api key", &minted),
    ] {
        assert!(
            response
                .headers
                .contains(&("cache-control".to_string(), "no-store".to_string())),
            "{what}: {:?}",
            response.headers
        );
    }
    assert!(
        !listed
            .headers
            .iter()
            .any(|(name, _)| name == "cache-control")
    );
}

/// Whether the last request sent verifies with `secret`.
fn last_send_verifies_with(fake: &Fake, secret: &str) -> bool {
    let request = fake.sent.borrow().last().unwrap().clone();
    let now = fake.now_ms.get() / 1000;
    Keyring::from_records(&[SecretRecord::new(secret)])
        .unwrap()
        .verify(&request.headers, &request.body, now, 0)
        .is_ok()
}

/// Every stored value, as text.
fn stored_text(fake: &Fake) -> String {
    fake.entries
        .borrow()
        .values()
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn keyrings_are_sealed_at_rest_and_the_sealing_key_rotates() {
    let fake = Fake::new();
    let (id, secret) = fake.create();
    let encoded = secret.trim_start_matches("whsec_");
    let stored = stored_text(&fake);
    assert!(
        !stored.contains("whsec_") && !stored.contains(encoded),
        "{stored}"
    );
    let test_send = |fake: &Fake| fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(test_send(&fake).0, 200);
    assert!(last_send_verifies_with(&fake, &secret));

    // A new sealing key first: the old one still opens; a write reseals.
    fake.set_variable("sealing_keys", format!("{SEAL_2},{SEAL_1}"));
    assert_eq!(test_send(&fake).0, 200);
    let sealed_with = |fake: &Fake| -> Value {
        let record: Value =
            serde_json::from_slice(&fake.entries.borrow()[&format!("endpoint/{id}")]).unwrap();
        record["secrets"]["sealed"]["key"].clone()
    };
    assert_eq!(sealed_with(&fake), "s1");
    fake.call(
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "description": "resealed" })),
    );
    assert_eq!(sealed_with(&fake), "s2");
    fake.set_variable("sealing_keys", SEAL_2);
    assert_eq!(test_send(&fake).0, 200);
    assert!(last_send_verifies_with(&fake, &secret));

    // A key that is gone is a configuration problem that names its id only.
    fake.set_variable("sealing_keys", SEAL_1);
    let (status, problem) = test_send(&fake);
    assert_eq!(
        (status, problem["code"].as_str()),
        (500, Some("invalid_configuration"))
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("s2") && !detail.contains("HxwdHh8"),
        "{detail}"
    );
}

#[test]
fn without_sealing_keys_no_secret_is_stored_or_used() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    fake.variables.borrow_mut().remove("sealing_keys");
    let (status, problem) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://example.com/a" })),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (500, Some("invalid_configuration")),
        "{problem}"
    );
    assert_eq!(
        fake.entries
            .borrow()
            .keys()
            .filter(|key| key.starts_with("endpoint/"))
            .count(),
        1
    );
    let (status, _) = fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(status, 500);
    assert!(fake.sent.borrow().is_empty());
    // Reading and changing what holds no secret still works.
    let (status, _) = fake.call("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(status, 200);

    // In clear only when asked for by name.
    let plain = Fake::in_plaintext();
    let (_, secret) = plain.create();
    assert!(stored_text(&plain).contains(&secret));
}

#[test]
fn a_tampered_sealed_keyring_is_refused_not_used() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    let key = format!("endpoint/{id}");
    let mut record: Value = serde_json::from_slice(&fake.entries.borrow()[&key]).unwrap();
    let data = record["secrets"]["sealed"]["data"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if data.starts_with('A') { "B" } else { "A" };
    record["secrets"]["sealed"]["data"] = json!(format!("{flipped}{}", &data[1..]));
    fake.entries
        .borrow_mut()
        .insert(key, serde_json::to_vec(&record).unwrap());
    let (status, problem) = fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (500, Some("invalid_keyring")),
        "{problem}"
    );
    let (status, problem) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
    assert_eq!(
        (status, problem["code"].as_str()),
        (500, Some("invalid_keyring")),
        "{problem}"
    );
    assert!(fake.sent.borrow().is_empty());
}

#[test]
fn sealed_rotations_are_right_on_stores_whose_swap_misreports() {
    for defect in [
        SwapDefect::ReportsFailure,
        SwapDefect::ConflictReportsSuccess,
        SwapDefect::AbsentUpserts,
    ] {
        let fake = Fake::new();
        fake.defect.set(Some(defect));
        let (id, first) = fake.create();
        let mut secrets = vec![first];
        for _ in 0..2 {
            let (status, rotated) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
            assert_eq!(status, 200, "{defect:?}: {rotated}");
            secrets.push(rotated["signingSecret"].as_str().unwrap().to_string());
        }
        fake.call("POST", &format!("/webhooks/{id}/test"), None);
        assert_eq!(fake.last_signature().split(' ').count(), 3, "{defect:?}");
        for secret in &secrets {
            assert!(last_send_verifies_with(&fake, secret), "{defect:?}");
        }
    }
}

/// Adds a second organisation, `globex`, beside `acme`; returns its key.
fn add_other_org(fake: &Fake) -> &'static str {
    let other = "sgn_live_other_org_key";
    fake.set_variable(
        "api_keys",
        format!(
            "{},{}",
            api_key_entry("acme", KEY),
            api_key_entry("globex", other)
        ),
    );
    other
}

#[test]
fn an_api_key_past_its_rate_is_429_with_retry_after_until_it_refills() {
    let fake = Fake::new();
    fake.set_variable("rate_limit_per_key", "5");
    let other = add_other_org(&fake);
    let get = |key: &str| send(&fake, "GET", "/webhooks", bearer(key), Vec::new());
    for _ in 0..5 {
        assert_eq!(get(KEY).status, 200);
    }
    let limited = get(KEY);
    let (status, problem) = status_and_json(&limited);
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("rate_limited")),
        "{problem}"
    );
    let retry_after = limited
        .headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .map(|(_, value)| value.as_str());
    assert_eq!(retry_after, Some("1"));
    // Another key has a bucket of its own.
    assert_eq!(get(other).status, 200);
    // A fifth of a second gives one token back (5 per second).
    fake.now_ms.set(fake.now_ms.get() + 200);
    assert_eq!(get(KEY).status, 200);
    assert_eq!(get(KEY).status, 429);
    // A second refills the burst, and no more than it.
    fake.advance_seconds(10);
    for _ in 0..5 {
        assert_eq!(get(KEY).status, 200);
    }
    assert_eq!(get(KEY).status, 429);
}

/// Mints a key with `minter` and returns the key and its id.
fn mint(fake: &Fake, minter: &str) -> (String, String) {
    let body = json!({ "name": "minted" }).to_string().into_bytes();
    let mut headers = bearer(minter);
    headers.push(("content-type".into(), "application/json".into()));
    let (status, created) = status_and_json(&send(fake, "POST", "/api-keys", headers, body));
    assert_eq!(status, 201, "{created}");
    (
        created["key"].as_str().unwrap().to_string(),
        created["apiKey"]["id"].as_str().unwrap().to_string(),
    )
}

#[test]
fn minted_keys_share_their_organisations_rate() {
    let fake = Fake::new();
    let keys: Vec<String> = (0..3).map(|_| mint(&fake, KEY).0).collect();
    fake.set_variable("rate_limit_per_key", "5");
    fake.advance_seconds(10);
    let get = |key: &str| send(&fake, "GET", "/webhooks", bearer(key), Vec::new()).status;
    // Three keys, one organisation: 5 requests in all, not 15.
    let statuses: Vec<u16> = (0..15).map(|n| get(&keys[n % 3])).collect();
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 5);
    let (status, problem) = status_and_json(&send(
        &fake,
        "GET",
        "/webhooks",
        bearer(&keys[0]),
        Vec::new(),
    ));
    assert_eq!(
        (status, problem["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("rate_limit_per_org"),
        "{problem}"
    );

    // The organisation's rate may be set apart from the key's.
    fake.set_variable("rate_limit_per_org", "12");
    fake.advance_seconds(10);
    let statuses: Vec<u16> = (0..15).map(|n| get(&keys[n % 3])).collect();
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 12);
    fake.set_variable("rate_limit_per_org", "0");
    fake.advance_seconds(10);
    let statuses: Vec<u16> = (0..18).map(|n| get(&keys[n % 3])).collect();
    assert_eq!(statuses.iter().filter(|status| **status == 200).count(), 15);
}

/// Runs `request`, which must be refused with 409 `quota_exceeded` and
/// store nothing.
fn assert_quota_refused(fake: &Fake, request: impl FnOnce() -> (u16, Value)) {
    let before = fake.entries.borrow().clone();
    let (status, problem) = request();
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("quota_exceeded")),
        "{problem}"
    );
    assert_eq!(
        *fake.entries.borrow(),
        before,
        "a refused request stored something"
    );
}

#[test]
fn an_organisation_has_at_most_max_api_keys_per_org_live_keys() {
    let fake = Fake::new();
    fake.set_variable("max_api_keys_per_org", "3");
    let minted: Vec<(String, String)> = (0..3).map(|_| mint(&fake, KEY)).collect();
    assert_quota_refused(&fake, || {
        fake.call("POST", "/api-keys", Some(json!({ "name": "4th" })))
    });
    // A minted key cannot mint past it either; another organisation can.
    let (status, _) = status_and_json(&send(
        &fake,
        "POST",
        "/api-keys",
        bearer(&minted[0].0),
        br#"{"name":"5th"}"#.to_vec(),
    ));
    assert_eq!(status, 409);
    // A revoked key no longer counts.
    assert_eq!(
        fake.call("DELETE", &format!("/api-keys/{}", minted[1].1), None)
            .0,
        204
    );
    mint(&fake, KEY);
    assert_eq!(
        fake.call("POST", "/api-keys", Some(json!({ "name": "n" })))
            .0,
        409
    );
}

#[test]
fn a_key_records_who_minted_it_and_outlives_its_minters_revocation() {
    let fake = Fake::new();
    let (parent, parent_id) = mint(&fake, KEY);
    let (child, child_id) = mint(&fake, &parent);
    let listed = fake.call("GET", "/api-keys", None).1;
    let minted_by = |id: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|key| key["id"] == id)
            .map(|key| key["mintedBy"].clone())
            .unwrap()
    };
    let bootstrap = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["bootstrap"] == true)
        .map(|key| key["id"].clone())
        .unwrap();
    assert_eq!(minted_by(&parent_id), bootstrap);
    assert_eq!(minted_by(&child_id), json!(parent_id));
    // Revoking a key does not revoke what it minted (docs/API.md): the
    // record says which keys to revoke after it.
    assert_eq!(
        fake.call("DELETE", &format!("/api-keys/{parent_id}"), None)
            .0,
        204
    );
    assert_eq!(call_with(&fake, &parent, "GET", "/webhooks").0, 401);
    assert_eq!(call_with(&fake, &child, "GET", "/webhooks").0, 200);
}

#[test]
fn an_organisation_past_its_endpoint_quota_is_refused() {
    let fake = Fake::new();
    fake.set_variable("max_endpoints_per_org", "2");
    fake.create();
    let (id, _) = fake.create();
    let (status, problem) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://example.com/3" })),
    );
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("quota_exceeded")),
        "{problem}"
    );
    fake.call("DELETE", &format!("/webhooks/{id}"), None);
    fake.create();
}

#[test]
fn an_index_entry_stays_bounded_however_often_types_change() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    for round in 0..30 {
        let types: Vec<String> = (0..100).map(|n| format!("type.{round}.{n}")).collect();
        let (status, _) = fake.call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({ "eventTypes": types })),
        );
        assert_eq!(status, 200);
    }
    let index = fake.entries.borrow()["org/acme/endpoints"].len();
    assert!(index < 100 * 20, "the index is {index} bytes");
    // Still a superset: an event of the endpoint's types reaches it.
    let (status, _) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "type.29.7", "data": {} })),
    );
    assert_eq!(status, 202);
    assert_eq!(fake.sent.borrow().len(), 1);
}

#[test]
fn an_endpoint_with_every_send_slot_held_waits_for_one() {
    let fake = Fake::new();
    fake.set_variable("max_in_flight_per_endpoint", "2");
    let (id, _) = fake.create();
    // Two sends to it are out elsewhere (other nodes), for a minute.
    let until = fake.now_ms.get() + 60_000;
    for n in 0..2 {
        let held = json!({ "until": until, "token": format!("elsewhere-{n}") });
        fake.entries
            .borrow_mut()
            .insert(format!("inflight/{id}/{n}"), held.to_string().into_bytes());
    }
    let (status, _) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": "evt_slots" })),
    );
    assert_eq!(status, 202);
    fake.dispatch();
    assert!(fake.sent.borrow().is_empty(), "sent past the limit");
    let (_, message) = fake.call("GET", "/messages/evt_slots", None);
    assert_eq!(message["deliveries"][0]["status"], "pending", "{message}");
    // One slot's lease runs out: the delivery goes, and its slot is free again.
    let other: Value = json!({ "until": fake.now_ms.get() - 1, "token": "elsewhere-1" });
    fake.entries
        .borrow_mut()
        .insert(format!("inflight/{id}/1"), other.to_string().into_bytes());
    fake.dispatch();
    assert_eq!(fake.sent.borrow().len(), 1);
    let slot: Value =
        serde_json::from_slice(&fake.entries.borrow()[&format!("inflight/{id}/1")]).unwrap();
    assert_eq!(slot["until"], 0, "{slot}");
    let (_, message) = fake.call("GET", "/messages/evt_slots", None);
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
}

#[test]
fn a_v1a_endpoint_signs_with_ed25519_and_shows_only_its_public_key() {
    let fake = Fake::new();
    let (status, created) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://example.com/hook", "signature": "v1a" })),
    );
    assert_eq!(status, 201, "{created}");
    assert!(created.get("signingSecret").is_none(), "{created}");
    let public = created["signingPublicKey"].as_str().unwrap().to_string();
    assert!(public.starts_with("whpk_"), "{public}");
    assert_eq!(created["endpoint"]["signature"], "v1a");
    assert_eq!(created["endpoint"]["signingPublicKey"], public.as_str());
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    // The private key is in the store, sealed; the public key is not secret.
    let stored = stored_text(&fake);
    assert!(!stored.contains("whsk_"), "{stored}");

    let test_send = |fake: &Fake| fake.call("POST", &format!("/webhooks/{id}/test"), None);
    assert_eq!(test_send(&fake).0, 200);
    let signature = fake.last_signature();
    assert!(
        signature.starts_with("v1a,") && !signature.contains(' '),
        "{signature}"
    );
    assert!(last_send_verifies_with(&fake, &public));

    // Rotation: a new key pair; the previous public key verifies through the grace.
    let (status, rotated) = fake.call("POST", &format!("/webhooks/{id}/rotate"), None);
    assert_eq!(status, 200, "{rotated}");
    let new_public = rotated["signingPublicKey"].as_str().unwrap().to_string();
    assert!(new_public.starts_with("whpk_") && new_public != public);
    assert!(rotated.get("signingSecret").is_none(), "{rotated}");
    let (_, shown) = fake.call("GET", &format!("/webhooks/{id}"), None);
    assert_eq!(shown["signingPublicKey"], new_public.as_str());
    assert_eq!(test_send(&fake).0, 200);
    assert_eq!(fake.last_signature().matches("v1a,").count(), 2);
    assert!(last_send_verifies_with(&fake, &public));
    assert!(last_send_verifies_with(&fake, &new_public));
    assert!(!stored_text(&fake).contains("whsk_"));

    // An HMAC endpoint says so; an unknown kind is a field error.
    let (_, plain) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://example.com/other" })),
    );
    assert_eq!(plain["endpoint"]["signature"], "v1");
    assert!(plain["endpoint"].get("signingPublicKey").is_none());
    let (status, problem) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://example.com/x", "signature": "v2" })),
    );
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["errors"][0]["path"], "signature");
}

#[test]
fn a_source_with_a_providers_scheme_verifies_it_and_passes_its_event_on() {
    let fake = Fake::new();
    let github_secret = "It's a Secret to Everybody";
    fake.set_variable(
        "inbound_sources",
        json!({ "repo": {
            "secrets": [{ "key": github_secret }],
            "forwardUrl": "https://origin.example/github",
            "scheme": "github",
        } })
        .to_string(),
    );
    let keyring = Keyring::from_records_for(
        hooksign::Scheme::Github,
        &[SecretRecord::new(github_secret)],
    )
    .unwrap();
    let post = |delivery: &str, signed: &[u8], sent: &[u8]| {
        let mut headers: Vec<(String, String)> = keyring
            .sign_headers(delivery, fake.now_ms.get() / 1000, signed)
            .unwrap()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        headers.push(("X-GitHub-Event".into(), "push".into()));
        status_and_json(&send(
            &fake,
            "POST",
            "/inbound/repo",
            headers,
            sent.to_vec(),
        ))
    };
    assert_eq!(post("d-1", b"{\"ref\":1}", b"{\"ref\":1}").0, 200);
    let forwarded = fake.sent.borrow().last().unwrap().clone();
    let header = |name: &str| {
        forwarded
            .headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    assert_eq!(header("webhook-id").as_deref(), Some("d-1"));
    assert_eq!(header("x-github-event").as_deref(), Some("push"));
    assert_eq!(header("hooksign-verified-secret").as_deref(), Some("0"));
    // A replayed delivery id is refused; a tampered body never forwarded.
    assert_eq!(post("d-1", b"{\"ref\":1}", b"{\"ref\":1}").0, 409);
    let before = fake.sent.borrow().len();
    let (status, problem) = post("d-2", b"{\"ref\":1}", b"{\"ref\":2}");
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("no_matching_signature"))
    );
    assert_eq!(fake.sent.borrow().len(), before);
    // Standard Webhooks headers mean nothing to a GitHub source.
    let (status, problem) = post_inbound_to(&fake, "repo");
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("missing_header"))
    );
}

/// A Standard Webhooks delivery signed with the `shop` secret, posted to `source`.
fn post_inbound_to(fake: &Fake, source: &str) -> (u16, Value) {
    let keyring = Keyring::from_records(&[SecretRecord::new(SHOP_SECRET)]).unwrap();
    let headers = keyring
        .sign_headers("msg_std", fake.now_ms.get() / 1000, b"{}")
        .unwrap()
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    status_and_json(&send(
        fake,
        "POST",
        &format!("/inbound/{source}"),
        headers,
        b"{}".to_vec(),
    ))
}

#[test]
fn a_sent_delivery_whose_attempt_cannot_be_recorded_is_not_sent_again() {
    let fake = Fake::new();
    let (id, _) = fake.create();
    // Every write of the endpoint's record meets another request's first,
    // so recording the attempt in it runs out of tries (store_busy).
    let key = format!("endpoint/{id}");
    *fake.meddler.borrow_mut() = Some(Box::new(move |kv| {
        if let Some(stored) = kv.get(&key) {
            let mut record: Value = serde_json::from_slice(stored).unwrap();
            let description = format!("{}.", record["description"].as_str().unwrap());
            record["description"] = json!(description);
            kv.insert(key.clone(), serde_json::to_vec(&record).unwrap());
        }
        true
    }));
    let (status, _) = fake.call(
        "POST",
        "/events",
        Some(json!({ "type": "order.paid", "data": {} })),
    );
    assert_eq!(status, 202);
    assert_eq!(fake.sent.borrow().len(), 1, "the first attempt was sent");
    *fake.meddler.borrow_mut() = None;
    // Past any lease: the receiver answered 2xx, so nothing is sent again.
    fake.advance_seconds(120);
    fake.dispatch();
    assert_eq!(
        fake.sent.borrow().len(),
        1,
        "a delivery that succeeded was sent again"
    );
}

#[test]
fn a_days_retention_names_its_organisations_and_old_lists_of_messages_still_prune() {
    let fake = three_events_kept_a_day();
    let day = fake.now_ms.get().div_euclid(86_400_000);
    let key = format!("retention/{day}");
    // One entry for the organisation, however many messages it logged.
    let retained: Value = serde_json::from_slice(&fake.entries.borrow()[&key]).unwrap();
    assert_eq!(retained, json!([{ "org": "acme" }]));
    // A list written before names each message's key.
    let old: Vec<String> = (0..3).map(|n| format!("message/acme/evt_{n}")).collect();
    fake.entries
        .borrow_mut()
        .insert(key, serde_json::to_vec(&old).unwrap());
    fake.advance_seconds(3 * 86_400);
    fake.dispatch();
    let left: Vec<String> = fake
        .entries
        .borrow()
        .keys()
        .filter(|key| {
            ["message/", "delivery/", "log/"]
                .iter()
                .any(|prefix| key.starts_with(prefix))
        })
        .cloned()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn gateway_counts_are_counts_of_their_own_and_the_old_record_still_adds_up() {
    let fake = Fake::new();
    // What the counters kept in one record before.
    let old = json!({
        "accepted": 2,
        "rejected": { "origin_timeout": 1 },
        "bySecret": { "0": 2 },
        "recent": ["t1", "t2", "t3"],
    });
    fake.entries.borrow_mut().insert(
        "inbound/shop/stats".into(),
        serde_json::to_vec(&old).unwrap(),
    );
    assert_eq!(deliver_inbound(&fake, "msg_1"), 200);
    assert_eq!(deliver_inbound(&fake, "msg_1"), 409, "a duplicate");
    let (_, stats) = fake.call("GET", "/inbound/shop/stats", None);
    assert_eq!(
        stats,
        json!({
            "accepted": 3,
            "rejected": { "origin_timeout": 1, "duplicate_delivery": 1 },
            "bySecret": { "0": 3 },
        })
    );
    // Nothing rewrote the old record: each count is an increment of its own.
    assert_eq!(
        fake.entries.borrow()["inbound/shop/stats"],
        serde_json::to_vec(&old).unwrap()
    );
}

#[test]
fn requests_their_headers_settle_are_answered_before_their_body() {
    let head = |method: &str, path: &str, key: Option<&str>| Request {
        method: method.into(),
        path: path.into(),
        query: None,
        headers: key.map(bearer).unwrap_or_default(),
        body: Vec::new(),
    };
    let status = |request: Request| {
        hooksign_edge::answer_before_body(&request).map(|response| {
            assert!(
                response
                    .headers
                    .iter()
                    .any(|(name, _)| name == "x-content-type-options")
            );
            response.status
        })
    };
    assert_eq!(status(head("POST", "/events", None)), Some(401));
    assert_eq!(
        status(head("POST", "/events", Some("no-prefix"))),
        Some(401)
    );
    assert_eq!(status(head("POST", "/nowhere", Some(KEY))), Some(404));
    assert_eq!(status(head("PUT", "/events", Some(KEY))), Some(405));
    // A key that may be valid, the gateway and open routes read their body.
    assert_eq!(status(head("POST", "/events", Some(KEY))), None);
    assert_eq!(status(head("POST", "/inbound/shop", None)), None);
    assert_eq!(status(head("GET", "/openapi.yaml", None)), None);
}

/// Posts an event of about `size` bytes with this id.
fn post_sized(fake: &Fake, id: &str, size: usize) -> (u16, Value) {
    let event = json!({ "type": "t", "id": id, "data": { "blob": "x".repeat(size) } });
    fake.call("POST", "/events", Some(event))
}

#[test]
fn a_message_stores_its_payload_once() {
    let fake = Fake::new();
    fake.create();
    assert_eq!(post_sized(&fake, "evt_big", 100_000).0, 202);
    let stored = fake.entries.borrow()["message/acme/evt_big"].len();
    // Before, the payload and the envelope holding it: 200,318 bytes; now 100,299.
    assert!(stored < 101_000, "{stored} bytes");
    let (status, message) = fake.call("GET", "/messages/evt_big", None);
    assert_eq!(status, 200);
    assert_eq!(
        message["data"]["blob"].as_str().map(str::len),
        Some(100_000)
    );
}

#[test]
fn an_organisation_past_max_stored_bytes_per_org_stores_nothing_more_until_pruned() {
    let fake = Fake::new();
    fake.set_variable("max_stored_bytes_per_org", "250000");
    fake.set_variable("retention_days", "1");
    assert_eq!(post_sized(&fake, "evt_1", 100_000).0, 202);
    assert_eq!(post_sized(&fake, "evt_2", 100_000).0, 202);
    assert_quota_refused(&fake, || post_sized(&fake, "evt_3", 100_000));
    // A repost of a stored id is still answered as before, and small
    // events still fit.
    assert_eq!(post_sized(&fake, "evt_2", 100_000).0, 200);
    assert_eq!(post_sized(&fake, "evt_small", 1_000).0, 202);
    // Another organisation has a budget of its own.
    let other = add_other_org(&fake);
    let event = json!({ "type": "t", "data": { "blob": "x".repeat(100_000) } });
    let posted = send(
        &fake,
        "POST",
        "/events",
        bearer(other),
        event.to_string().into_bytes(),
    );
    assert_eq!(posted.status, 202);
    // Pruned messages give their bytes back.
    fake.advance_seconds(3 * 86_400);
    fake.dispatch();
    assert_eq!(post_sized(&fake, "evt_3", 100_000).0, 202);
}

#[test]
fn an_organisation_has_at_most_max_endpoints_per_host_on_one_host() {
    let fake = Fake::new();
    fake.set_variable("max_endpoints_per_host", "2");
    let create = |url: &str| fake.call("POST", "/webhooks", Some(json!({ "url": url })));
    assert_eq!(create("https://a.example/1").0, 201);
    let (status, second) = create("https://A.example:8443/2");
    assert_eq!(status, 201);
    assert_quota_refused(&fake, || create("https://a.example/3"));
    let (status, other) = create("https://b.example/1");
    assert_eq!(status, 201);

    // A URL changed to a full host is refused; the endpoint keeps its own.
    let other_id = other["endpoint"]["id"].as_str().unwrap();
    let path = format!("/webhooks/{other_id}");
    let (status, _) = fake.call(
        "PATCH",
        &path,
        Some(json!({ "url": "https://a.example/4" })),
    );
    assert_eq!(status, 409);
    assert_eq!(
        fake.call("GET", &path, None).1["url"],
        "https://b.example/1"
    );
    // Changing within its host, or once the host has room, works.
    let second_id = second["endpoint"]["id"].as_str().unwrap();
    let second_path = format!("/webhooks/{second_id}");
    let (status, _) = fake.call(
        "PATCH",
        &second_path,
        Some(json!({ "url": "https://a.example/5" })),
    );
    assert_eq!(status, 200);
    assert_eq!(fake.call("DELETE", &second_path, None).0, 204);
    let (status, _) = fake.call(
        "PATCH",
        &path,
        Some(json!({ "url": "https://a.example/4" })),
    );
    assert_eq!(status, 200);
    assert_eq!(create("https://a.example/6").0, 409);
}

#[test]
fn a_sources_counts_are_read_by_its_organisation_only() {
    let fake = Fake::new();
    assert_eq!(deliver_inbound(&fake, "msg_1"), 200);
    let other = add_other_org(&fake);
    assert_eq!(fake.call("GET", "/inbound/shop/stats", None).0, 200);
    let (status, problem) = call_with(&fake, other, "GET", "/inbound/shop/stats");
    assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")));
    // A source that names no organisation shows its counts to none.
    fake.set_variable(
        "inbound_sources",
        json!({ "shop": { "secrets": [{ "key": SHOP_SECRET }], "forwardUrl": "https://origin.example/hook" } })
            .to_string(),
    );
    assert_eq!(fake.call("GET", "/inbound/shop/stats", None).0, 404);
}

#[test]
fn only_one_well_formed_bearer_header_authenticates() {
    let fake = Fake::new();
    let get = |headers: Vec<(&str, String)>| {
        let headers = headers
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        send(&fake, "GET", "/webhooks", headers, Vec::new()).status
    };
    assert_eq!(get(vec![("authorization", format!("Bearer {KEY}"))]), 200);
    for variant in [
        format!("Bearer\t{KEY}"),
        format!("Bearer {KEY} junk"),
        format!("Bearer {KEY}x"),
        format!("Basic {KEY}"),
        KEY.to_string(),
    ] {
        assert_eq!(
            get(vec![("authorization", variant.clone())]),
            401,
            "{variant:?}"
        );
    }
    // A second header never makes a refused first one pass.
    let twice = vec![
        ("authorization", "Bearer sgn_live_wrong".to_string()),
        ("authorization", format!("Bearer {KEY}")),
    ];
    assert_eq!(get(twice), 401);
}

#[test]
fn what_the_review_found_holding_keeps_holding() {
    let fake = Fake::new();
    // The dashboard: no framing, no referrer, no sniffing, and no answer
    // grants another origin anything.
    let mut page = Request {
        method: "GET".into(),
        path: "/dashboard".into(),
        query: None,
        headers: vec![("origin".into(), "https://evil.example".into())],
        body: Vec::new(),
    };
    let answer = futures::executor::block_on(handle(&fake.0, &page));
    let header = |response: &Response, name: &str| {
        response
            .headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
    };
    assert!(
        header(&answer, "content-security-policy")
            .is_some_and(|policy| policy.contains("frame-ancestors 'none'"))
    );
    assert_eq!(
        header(&answer, "referrer-policy").as_deref(),
        Some("no-referrer")
    );
    assert_eq!(
        header(&answer, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    page.method = "OPTIONS".into();
    page.path = "/webhooks".into();
    let preflight = futures::executor::block_on(handle(&fake.0, &page));
    for response in [&answer, &preflight] {
        assert!(
            response
                .headers
                .iter()
                .all(|(name, _)| !name.to_ascii_lowercase().starts_with("access-control-"))
        );
    }

    // 60,000 unknown fields: a short problem. Nesting past 128: invalid_json.
    let fields: serde_json::Map<String, Value> =
        (0..60_000).map(|n| (format!("f{n}"), json!(1))).collect();
    let answer = send(
        &fake,
        "POST",
        "/webhooks",
        bearer(KEY),
        Value::Object(fields).to_string().into_bytes(),
    );
    assert_eq!(answer.status, 400);
    assert!(answer.body.len() < 4096, "{} bytes", answer.body.len());
    let nested = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let body = format!(r#"{{"url":"https://example.com/h","description":{nested}}}"#);
    let (status, problem) = status_and_json(&send(
        &fake,
        "POST",
        "/webhooks",
        bearer(KEY),
        body.into_bytes(),
    ));
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_json"))
    );

    // A URL that carries credentials is refused.
    let (status, problem) = fake.call(
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://user:pass@example.com/h" })),
    );
    assert_eq!(
        (status, problem["errors"][0]["path"].as_str()),
        (400, Some("url")),
        "{problem}"
    );
}
