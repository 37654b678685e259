//! Operational events (issue #26, item 3): the service's own events about
//! an organisation's endpoints and deliveries, sent as events to its other
//! endpoints that list them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::cell::Cell;
use std::rc::Rc;

use hooksign_edge::testing::{FakePlatform, answer};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_operational_test";
const BROKEN: &str = "https://broken.example/hook";
const WATCHER: &str = "https://watcher.example/ops";
const EVERYTHING: &str = "https://everything.example/all";

fn fake(schedule: &str, pause_after: &str) -> FakePlatform {
    let platform = support::platform(KEY);
    platform.set_variable("retry_schedule", schedule);
    platform.set_variable("auto_pause_after", pause_after);
    platform
}

fn call(fake: &FakePlatform, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::call(fake, KEY, method, path, body)
}

fn create(fake: &FakePlatform, url: &str, event_types: Value) -> String {
    let body = json!({ "url": url, "eventTypes": event_types });
    let (status, created) = call(fake, "POST", "/webhooks", Some(body));
    assert_eq!(status, 201, "{created}");
    created["endpoint"]["id"].as_str().unwrap().to_string()
}

/// The broken endpoint answers `broken`, every other 200.
fn broken_answers(fake: &FakePlatform, broken: u16) {
    *fake.responder.borrow_mut() =
        Box::new(move |_, request| Ok(answer(if request.url == BROKEN { broken } else { 200 })));
}

/// The envelopes sent to `url`, in order.
fn sent_to(fake: &FakePlatform, url: &str) -> Vec<Value> {
    fake.sent
        .borrow()
        .iter()
        .filter(|sent| sent.url == url)
        .map(|sent| serde_json::from_slice(&sent.body).unwrap())
        .collect()
}

fn dispatch(fake: &FakePlatform) {
    support::dispatch(fake);
}

fn post(fake: &FakePlatform) {
    let (status, body) = call(
        fake,
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {} })),
    );
    assert_eq!(status, 202, "{body}");
}

#[test]
fn an_auto_paused_endpoint_is_announced_once_to_the_endpoints_that_listen() {
    let fake = fake("0", "2");
    let broken = create(&fake, BROKEN, json!(["t"]));
    create(&fake, WATCHER, json!(["hooksign.endpoint.disabled"]));
    create(&fake, EVERYTHING, json!([]));
    broken_answers(&fake, 500);
    post(&fake);
    post(&fake);
    dispatch(&fake);
    let announced = sent_to(&fake, WATCHER);
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0]["type"], "hooksign.endpoint.disabled");
    assert_eq!(announced[0]["data"]["endpointId"], broken.as_str());
    assert_eq!(announced[0]["data"]["consecutiveFailures"], 2);
    assert_eq!(
        announced[0]["data"]["reason"],
        "2 consecutive deliveries failed"
    );
    // An endpoint that takes every type takes none of the service's own,
    // and the broken one is never told about itself.
    assert!(
        sent_to(&fake, EVERYTHING)
            .iter()
            .all(|sent| sent["type"] == "t")
    );
    assert!(
        sent_to(&fake, BROKEN)
            .iter()
            .all(|sent| sent["type"] == "t")
    );
    // It is in the message log like any event.
    let (_, log) = call(
        &fake,
        "GET",
        "/messages?type=hooksign.endpoint.disabled",
        None,
    );
    assert_eq!(log["data"].as_array().unwrap().len(), 1);
}

#[test]
fn an_attempt_that_loses_its_write_to_the_one_that_paused_the_endpoint_announces_nothing() {
    let fake = fake("0", "2");
    let broken = create(&fake, BROKEN, json!(["t"]));
    create(&fake, WATCHER, json!(["hooksign.endpoint.disabled"]));
    broken_answers(&fake, 500);
    post(&fake);
    // Between this attempt's read of the endpoint and its write, another
    // attempt's failure pauses it (two attempts recording at once).
    let sent_twice = Rc::new(Cell::new(false));
    let seen = sent_twice.clone();
    *fake.responder.borrow_mut() = Box::new(move |n, _| {
        seen.set(n == 1);
        Ok(answer(500))
    });
    let key = format!("endpoint/{broken}");
    *fake.meddler.borrow_mut() = Some(Box::new(move |entries| {
        if !sent_twice.get() {
            return true;
        }
        let mut record: Value = serde_json::from_slice(&entries[&key]).unwrap();
        record["paused"] = json!(true);
        record["pausedReason"] = json!("2 consecutive deliveries failed");
        record["consecutiveFailures"] = json!(2);
        entries.insert(key.clone(), serde_json::to_vec(&record).unwrap());
        false
    }));
    post(&fake);
    assert!(
        fake.meddler.borrow().is_none(),
        "the other attempt paused it"
    );
    dispatch(&fake);
    let (_, endpoint) = call(&fake, "GET", &format!("/webhooks/{broken}"), None);
    assert_eq!(endpoint["consecutiveFailures"], 3, "{endpoint}");
    // The pause was the other attempt's to announce.
    assert_eq!(sent_to(&fake, WATCHER), Vec::<Value>::new());
}

#[test]
fn an_exhausted_delivery_and_a_recovered_one_are_announced() {
    let fake = fake("0,5", "1000");
    let broken = create(&fake, BROKEN, json!(["t"]));
    let types = json!([
        "hooksign.message.attempt.exhausted",
        "hooksign.message.attempt.recovered"
    ]);
    create(&fake, WATCHER, types);
    broken_answers(&fake, 503);
    post(&fake);
    // The retry fails too: the last slot.
    fake.now_ms.set(fake.now_ms.get() + 6_000);
    dispatch(&fake);
    dispatch(&fake);
    let announced = sent_to(&fake, WATCHER);
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert_eq!(announced[0]["type"], "hooksign.message.attempt.exhausted");
    assert_eq!(announced[0]["data"]["endpointId"], broken.as_str());
    assert_eq!(announced[0]["data"]["attempts"], 2);
    assert_eq!(
        announced[0]["data"]["lastError"],
        "the endpoint answered 503"
    );
    // Another event fails once, then its retry succeeds.
    post(&fake);
    broken_answers(&fake, 200);
    fake.now_ms.set(fake.now_ms.get() + 6_000);
    dispatch(&fake);
    // The announcement is queued by that pass, and sent by the next.
    dispatch(&fake);
    let announced = sent_to(&fake, WATCHER);
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert_eq!(announced[1]["type"], "hooksign.message.attempt.recovered");
    assert_eq!(announced[1]["data"]["attempts"], 2);
}

#[test]
fn operational_deliveries_raise_none_themselves_and_the_types_are_reserved() {
    let fake = fake("0", "1000");
    create(
        &fake,
        BROKEN,
        json!(["t", "hooksign.message.attempt.exhausted"]),
    );
    create(
        &fake,
        WATCHER,
        json!(["t", "hooksign.message.attempt.exhausted"]),
    );
    // Both fail everything: each one's exhausted delivery goes to the other,
    // and fails there, and that raises nothing more.
    *fake.responder.borrow_mut() = Box::new(|_, _| Ok(answer(500)));
    post(&fake);
    for _ in 0..3 {
        dispatch(&fake);
    }
    let (_, log) = call(
        &fake,
        "GET",
        "/messages?type=hooksign.message.attempt.exhausted",
        None,
    );
    assert_eq!(log["data"].as_array().unwrap().len(), 2);
    let body = json!({ "type": "hooksign.endpoint.disabled", "data": {} });
    let (status, problem) = call(&fake, "POST", "/events", Some(body));
    assert_eq!(
        (status, problem["errors"][0]["path"].as_str()),
        (400, Some("type"))
    );
}
