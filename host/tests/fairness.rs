//! Fairness across organisations, end to end through `hooksign serve`: a
//! hostile organisation whose endpoints never answer beside a quiet one
//! whose delivery is due for a retry.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::service::{API_KEY, OTHER_KEY, Receiver, Service};
use serde_json::json;

const TIMEOUT_MS: u64 = 2_000;
const RETRY_AFTER_S: u64 = 3;

/// A receiver that accepts connections and never answers; returns its URL.
fn silent_receiver() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/silent", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            held.push(stream);
        }
    });
    url
}

/// Another organisation's hanging endpoints delay a due retry by at most
/// one delivery timeout and the pass that was running when it fell due
/// (the dispatch layer's bound: a pass starts sends for its first second
/// only, `dispatch::PASS_BUDGET_MS`, and the next pass sends the quiet
/// organisation first).
#[test]
fn hanging_endpoints_of_one_organisation_delay_another_retry_by_one_timeout() {
    let timeout = TIMEOUT_MS.to_string();
    let schedule = format!("0,{RETRY_AFTER_S},{RETRY_AFTER_S}");
    let service = Service::start(&[
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", timeout.as_str()),
        ("retry_schedule", schedule.as_str()),
        ("dispatch_concurrency", "2"),
    ]);
    let silent = silent_receiver();
    for n in 0..24 {
        service.create(&format!("{silent}/{n}"));
    }
    let quiet = Receiver::start();
    quiet.script(&[500]);
    quiet.answer(204);
    let (status, created) = service.call(
        "POST",
        "/webhooks",
        Some(OTHER_KEY),
        Some(&json!({ "url": quiet.url }).to_string()),
    );
    assert_eq!(status, 201, "{created}");
    // The hostile organisation: 2 events to its 24 silent endpoints.
    for n in 0..2 {
        let body = json!({ "type": "flood", "data": {}, "id": format!("flood_{n}") });
        let (status, answer) =
            service.call("POST", "/events", Some(API_KEY), Some(&body.to_string()));
        assert_eq!(status, 202, "{answer}");
    }
    // Let the flood's sends take the dispatcher's slots.
    std::thread::sleep(Duration::from_millis(1_500));
    let body = json!({ "type": "quiet", "data": {}, "id": "quiet_1" });
    let (status, answer) =
        service.call("POST", "/events", Some(OTHER_KEY), Some(&body.to_string()));
    assert_eq!(status, 202, "{answer}");
    assert_eq!(quiet.wait_for(1, 10), 1, "the first attempt never came");
    let failed_at = Instant::now();
    assert_eq!(quiet.wait_for(2, 60), 2, "the retry never came");
    let waited = failed_at.elapsed();
    // The slot with its jitter, one timeout, the pass budget and a tick
    // of the dispatcher, and half a second for the machine.
    let bound = Duration::from_millis(RETRY_AFTER_S * 1_100 + TIMEOUT_MS + 2_000 + 500);
    println!("the retry came {waited:?} after the failure (bound {bound:?})");
    assert!(
        waited <= bound,
        "the retry waited {waited:?}, bound {bound:?}"
    );
}

/// An event's first attempts keep `dispatch_concurrency` sends out, each
/// endpoint's taking the next free slot: a hanging endpoint holds its own
/// slot only, not the endpoints after it (which waited, before, for the
/// whole group of sends it was started with).
#[test]
fn a_hanging_endpoint_holds_up_no_other_first_attempt_of_its_event() {
    let service = Service::start(&[
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", "60000"),
        ("dispatch_concurrency", "2"),
    ]);
    let receiver = Receiver::start();
    for n in 0..5 {
        service.create(&format!("{}/{n}", receiver.url));
    }
    // Created last, it is sent to first (the newest endpoint is listed
    // first).
    service.create(&silent_receiver());
    let body = json!({ "type": "fan", "data": {}, "id": "fan_1" });
    let (status, answer) = service.call("POST", "/events", Some(API_KEY), Some(&body.to_string()));
    assert_eq!(status, 202, "{answer}");
    // The silent endpoint's send lasts a minute; the five others go
    // through the other slot meanwhile.
    assert_eq!(
        receiver.wait_for(5, 20),
        5,
        "held up behind the silent endpoint"
    );
}
