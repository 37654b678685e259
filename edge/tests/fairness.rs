//! Fairness across organisations in the store: what a quiet organisation's
//! event costs does not grow with another organisation's traffic, and a
//! queue written before organisations had lists of their own still drains.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hooksign_edge::testing::FakePlatform;
use hooksign_edge::{Request, api_key_entry, handle};
use serde_json::{Value, json};

const FLOOD_KEY: &str = "sgn_live_flood_key";
const QUIET_KEY: &str = "sgn_live_quiet_key";

fn platform() -> FakePlatform {
    let platform = FakePlatform::default();
    platform.set_variable(
        "api_keys",
        format!(
            "{},{}",
            api_key_entry("flood", FLOOD_KEY),
            api_key_entry("quiet", QUIET_KEY)
        ),
    );
    platform.set_variable(
        "sealing_keys",
        "s1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    platform.set_variable("rate_limit_per_key", "0");
    platform.set_variable("max_endpoints_per_host", "1000");
    platform
}

/// One request as `key`, with the sends that follow its answer.
fn call(platform: &FakePlatform, key: &str, method: &str, path: &str, body: Value) -> u16 {
    let request = Request {
        method: method.into(),
        path: path.into(),
        query: None,
        headers: vec![("authorization".into(), format!("Bearer {key}"))],
        body: body.to_string().into_bytes(),
    };
    let response = futures::executor::block_on(handle(platform, &request));
    futures::executor::block_on(hooksign_edge::follow_up(platform, &response.follow_up)).unwrap();
    response.status
}

fn create(platform: &FakePlatform, key: &str, n: usize) {
    let url = format!("https://example.com/hook/{n}");
    assert_eq!(
        call(platform, key, "POST", "/webhooks", json!({ "url": url })),
        201
    );
}

fn event(platform: &FakePlatform, key: &str, id: &str) {
    let body = json!({ "type": "t", "data": {}, "id": id });
    assert_eq!(call(platform, key, "POST", "/events", body), 202);
}

/// Bytes read and bytes written by the quiet organisation's event, posted
/// in the second in which the flooding organisation posted `floods`
/// events to its 20 endpoints.
fn quiet_event_cost(floods: usize) -> (usize, usize) {
    let platform = platform();
    for n in 0..20 {
        create(&platform, FLOOD_KEY, n);
    }
    create(&platform, QUIET_KEY, 0);
    for n in 0..floods {
        event(&platform, FLOOD_KEY, &format!("flood_{n}"));
    }
    let before: BTreeMap<String, Vec<u8>> = platform.entries.borrow().clone();
    let reads_before = platform.reads.borrow().len();
    event(&platform, QUIET_KEY, "quiet_1");
    let read: usize = platform.reads.borrow()[reads_before..]
        .iter()
        .filter_map(|key| before.get(key))
        .map(Vec::len)
        .sum();
    let written = platform.bytes_changed_since(&before, "");
    (read, written)
}

#[test]
fn a_quiet_event_costs_the_same_beside_a_flood_of_any_size() {
    let small = quiet_event_cost(1);
    let large = quiet_event_cost(25);
    assert_eq!(
        small, large,
        "(bytes read, bytes written) by the quiet event beside 20 and 500 deliveries"
    );
}

/// A retry listed in the shared queue of before (`queue/seconds`,
/// `queue/{second}`) is still sent, and the old lists are dropped once
/// drained.
#[test]
fn a_retry_in_the_shared_queue_of_before_is_sent_and_its_lists_dropped() {
    let platform = platform();
    platform.set_variable("retry_schedule", "0,10");
    create(&platform, QUIET_KEY, 0);
    platform.answer_with(500);
    event(&platform, QUIET_KEY, "old_queue");
    // Rewrite the queue as it was stored before: one shared list a second.
    let mut entries = platform.entries.borrow_mut();
    let due: Vec<(String, Vec<u8>)> = entries
        .iter()
        .filter(|(key, _)| key.starts_with("due/"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let mut seconds = Vec::new();
    for (key, value) in &due {
        entries.remove(key);
        // `due/{second}/{org}/{n}`: one shared list of the second.
        let parts: Vec<&str> = key.split('/').collect();
        if let [_, second, _org, n] = parts[..]
            && n.parse::<i64>().is_ok()
        {
            let second: i64 = second.parse().unwrap();
            seconds.push(second);
            entries.insert(format!("queue/{second}"), value.clone());
        }
    }
    assert_eq!(
        seconds.len(),
        2,
        "the first attempt's second and the retry's"
    );
    entries.insert(
        "queue/seconds".into(),
        serde_json::to_vec(&seconds).unwrap(),
    );
    drop(entries);
    platform.answer_with(204);
    platform.now_ms.set(platform.now_ms.get() + 12_000);
    let pass = || futures::executor::block_on(hooksign_edge::dispatch(&platform)).unwrap();
    assert_eq!(pass().attempted, 1, "the retry");
    assert_eq!(platform.sent.borrow().len(), 2);
    platform.now_ms.set(platform.now_ms.get() + 200_000);
    pass();
    pass();
    let entries = platform.entries.borrow();
    let left: Vec<&String> = entries
        .keys()
        .filter(|key| key.starts_with("queue/"))
        .collect();
    assert_eq!(left, ["queue/seconds"]);
    assert_eq!(entries["queue/seconds"], b"[]");
}

/// Bytes one more event writes to the queue after `before` events of its
/// organisation in the same second.
fn next_queue_write(before: usize) -> usize {
    let platform = platform();
    create(&platform, QUIET_KEY, 0);
    for n in 0..before {
        event(&platform, QUIET_KEY, &format!("busy_{n:03}"));
    }
    let stored: BTreeMap<String, Vec<u8>> = platform.entries.borrow().clone();
    event(&platform, QUIET_KEY, "next_one");
    platform.bytes_changed_since(&stored, "due/")
}

#[test]
fn an_event_writes_as_much_to_a_busy_seconds_queue_as_to_a_quiet_ones() {
    assert_eq!(next_queue_write(1), next_queue_write(200));
}
