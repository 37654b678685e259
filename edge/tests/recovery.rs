//! Recovery after a receiver's outage (issue #26, item 4): the failed
//! deliveries of a window sent again, once each, in order; and a paused
//! endpoint's held deliveries, listed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hooksign_edge::api_key_entry;
use hooksign_edge::testing::{FakePlatform, answer};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_recovery_test";
const OTHER: &str = "sgn_live_recovery_other";

fn fake() -> FakePlatform {
    let platform = support::platform(KEY);
    platform.set_variable(
        "api_keys",
        format!(
            "{},{}",
            api_key_entry("acme", KEY),
            api_key_entry("globex", OTHER)
        ),
    );
    platform.set_variable("retry_schedule", "0");
    platform.set_variable("auto_pause_after", "1000");
    platform
}

fn call_as(
    fake: &FakePlatform,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    support::call(fake, key, method, path, body)
}

fn call(fake: &FakePlatform, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(fake, KEY, method, path, body)
}

/// An endpoint of acme's; its id.
fn endpoint(fake: &FakePlatform) -> String {
    support::create_endpoint(fake, KEY, json!({ "url": "https://r.example/hook" }))
}

/// Events `outage-0` to `outage-{count - 1}`, a second apart, that the
/// receiver fails; then it is back. When the outage began (Unix seconds).
fn outage(fake: &FakePlatform, count: usize) -> i64 {
    answering(fake, 500);
    let since = fake.now_ms.get() / 1000;
    for n in 0..count {
        post(fake, &format!("outage-{n}"));
        advance(fake, 1);
    }
    answering(fake, 200);
    since
}

fn answering(fake: &FakePlatform, status: u16) {
    *fake.responder.borrow_mut() = Box::new(move |_, _| Ok(answer(status)));
}

fn post(fake: &FakePlatform, id: &str) {
    let (status, body) = call(
        fake,
        "POST",
        "/events",
        Some(json!({ "type": "t", "data": {}, "id": id })),
    );
    assert_eq!(status, 202, "{body}");
}

/// The `webhook-id`s of the sends from the `from`th on.
fn sent_ids(fake: &FakePlatform, from: usize) -> Vec<String> {
    fake.sent.borrow()[from..]
        .iter()
        .map(|sent| {
            sent.headers
                .iter()
                .find(|(name, _)| name == "webhook-id")
                .unwrap()
                .1
                .clone()
        })
        .collect()
}

fn advance(fake: &FakePlatform, seconds: i64) {
    fake.now_ms.set(fake.now_ms.get() + seconds * 1000);
}

fn dispatch(fake: &FakePlatform) {
    support::dispatch(fake);
}

#[test]
fn recovery_sends_the_windows_failed_deliveries_once_each_in_order() {
    let fake = fake();
    let id = endpoint(&fake);
    answering(&fake, 500);
    post(&fake, "before-the-window");
    advance(&fake, 60);
    let since = outage(&fake, 5);
    post(&fake, "after-it");
    let (_, message) = call(&fake, "GET", "/messages/outage-0", None);
    assert_eq!(message["deliveries"][0]["status"], "failed");

    let sends = fake.sent.borrow().len();
    let window = json!({ "since": hooksign_rfc3339(since) });
    let (status, answer) = call(
        &fake,
        "POST",
        &format!("/webhooks/{id}/recover"),
        Some(window.clone()),
    );
    assert_eq!(
        (status, answer["count"].as_u64()),
        (202, Some(5)),
        "{answer}"
    );
    dispatch(&fake);
    assert_eq!(
        sent_ids(&fake, sends),
        ["outage-0", "outage-1", "outage-2", "outage-3", "outage-4"]
    );
    let (_, message) = call(&fake, "GET", "/messages/outage-3", None);
    assert_eq!(message["deliveries"][0]["status"], "succeeded");
    // Once each: nothing failed is left in the window, nothing more is sent.
    let (_, answer) = call(
        &fake,
        "POST",
        &format!("/webhooks/{id}/recover"),
        Some(window),
    );
    assert_eq!(answer["count"], 0);
    advance(&fake, 10);
    dispatch(&fake);
    assert_eq!(fake.sent.borrow().len(), sends + 5);
    let (_, message) = call(&fake, "GET", "/messages/before-the-window", None);
    assert_eq!(message["deliveries"][0]["status"], "failed");
}

#[test]
fn a_delivery_another_sender_holds_is_overtaken_by_none_of_its_endpoints_later_ones() {
    let fake = fake();
    let id = endpoint(&fake);
    let since = outage(&fake, 4);
    // Another sender (a dispatcher on another node) holds the oldest.
    let held_key = delivery_key(&fake, "outage-0");
    let until = fake.now_ms.get() + 60_000;
    edit(&fake, &held_key, |record| {
        record["lease"] = json!({ "token": "another-sender", "until": until });
    });
    let sends = fake.sent.borrow().len();
    let window = json!({ "since": hooksign_rfc3339(since) });
    let (status, _) = call(
        &fake,
        "POST",
        &format!("/webhooks/{id}/recover"),
        Some(window),
    );
    assert_eq!(status, 202);
    dispatch(&fake);
    assert_eq!(sent_ids(&fake, sends), Vec::<String>::new());
    // It is sent and its lease let go: the rest follow, in order.
    edit(&fake, &held_key, |record| {
        record["status"] = json!("succeeded");
        record["lease"] = Value::Null;
    });
    dispatch(&fake);
    assert_eq!(sent_ids(&fake, sends), ["outage-1", "outage-2", "outage-3"]);
}

#[test]
fn a_pass_sends_a_recovery_in_order_whatever_earlier_entries_list_its_deliveries() {
    let fake = fake();
    let id = endpoint(&fake);
    answering(&fake, 500);
    let since = fake.now_ms.get() / 1000;
    post(&fake, "outage-0");
    post(&fake, "outage-1");
    advance(&fake, 1);
    // The queue entries of these first attempts are in the second of the
    // recovery, and no pass has removed them yet.
    post(&fake, "outage-2");
    post(&fake, "outage-3");
    answering(&fake, 200);
    let sends = fake.sent.borrow().len();
    // The recovery's answer alone: a pass sends, not its follow-up.
    let window = json!({ "since": hooksign_rfc3339(since) });
    let request = support::request(
        KEY,
        "POST",
        &format!("/webhooks/{id}/recover"),
        Some(window),
    );
    let answered = futures::executor::block_on(hooksign_edge::handle(&fake, &request));
    assert_eq!(answered.status, 202);
    dispatch(&fake);
    assert_eq!(
        sent_ids(&fake, sends),
        ["outage-0", "outage-1", "outage-2", "outage-3"]
    );
}

/// The store key of a message's one delivery.
fn delivery_key(fake: &FakePlatform, message: &str) -> String {
    let prefix = format!("delivery/acme/{message}/");
    fake.entries
        .borrow()
        .keys()
        .find(|key| key.starts_with(&prefix))
        .unwrap()
        .clone()
}

/// Changes a stored JSON record in place.
fn edit(fake: &FakePlatform, key: &str, change: impl FnOnce(&mut Value)) {
    let mut entries = fake.entries.borrow_mut();
    let mut record: Value = serde_json::from_slice(&entries[key]).unwrap();
    change(&mut record);
    entries.insert(key.to_string(), serde_json::to_vec(&record).unwrap());
}

fn hooksign_rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
fn a_recovery_asks_for_a_window_of_its_own_endpoint() {
    let fake = fake();
    let path = format!("/webhooks/{}/recover", endpoint(&fake));
    for (body, field) in [
        (json!({}), "since"),
        (json!({ "since": "yesterday" }), "since"),
        (
            json!({ "since": "2026-01-01T00:00:00Z", "extra": 1 }),
            "extra",
        ),
    ] {
        let (status, problem) = call(&fake, "POST", &path, Some(body));
        assert_eq!(
            (status, problem["errors"][0]["path"].as_str()),
            (400, Some(field)),
            "{problem}"
        );
    }
    let window = json!({ "since": "2023-01-01T00:00:00Z" });
    assert_eq!(
        call_as(&fake, OTHER, "POST", &path, Some(window.clone())).0,
        404
    );
    assert_eq!(call(&fake, "POST", &path, Some(window)).1["count"], 0);
    let backwards = json!({ "since": "2023-01-02T00:00:00Z", "until": "2023-01-01T00:00:00Z" });
    assert_eq!(call(&fake, "POST", &path, Some(backwards)).1["count"], 0);
}

#[test]
fn a_paused_endpoints_held_deliveries_are_listed_in_order() {
    let fake = fake();
    let id = endpoint(&fake);
    call(
        &fake,
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "paused": true })),
    );
    for n in 0..3 {
        post(&fake, &format!("held-{n}"));
    }
    let (status, held) = call(&fake, "GET", &format!("/webhooks/{id}/held?limit=2"), None);
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["count"], 3);
    let ids: Vec<&str> = held["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|held| held["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["held-0", "held-1"]);
    assert_eq!(held["data"][0]["status"], "held");
    assert!(fake.sent.borrow().is_empty());
    // Unpaused, they go out, and none is held.
    call(
        &fake,
        "PATCH",
        &format!("/webhooks/{id}"),
        Some(json!({ "paused": false })),
    );
    assert_eq!(sent_ids(&fake, 0), ["held-0", "held-1", "held-2"]);
    let (_, held) = call(&fake, "GET", &format!("/webhooks/{id}/held"), None);
    assert_eq!(held["count"], 0);
}
