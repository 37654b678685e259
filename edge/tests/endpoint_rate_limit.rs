//! An endpoint's own rate limit (issue #26, item 5): sends to it spaced by
//! a bucket in the store; a delivery over it waits, is not failed and does
//! not count toward auto-pause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hooksign_edge::testing::{FakePlatform, answer};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_rate_limit_test";

fn fake() -> FakePlatform {
    let platform = support::platform(KEY);
    platform.set_variable("auto_pause_after", "2");
    platform
}

fn call(fake: &FakePlatform, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::call(fake, KEY, method, path, body)
}

/// An endpoint that takes `per_second` sends a second, as created.
fn create_limited(fake: &FakePlatform, per_second: u32) -> Value {
    let body = json!({ "url": "https://r.example/hook", "rateLimitPerSecond": per_second });
    let (status, created) = call(fake, "POST", "/webhooks", Some(body));
    assert_eq!(status, 201, "{created}");
    created
}

#[test]
fn sends_over_the_limit_wait_for_a_later_second_and_fail_nothing() {
    let fake = fake();
    let created = create_limited(&fake, 3);
    assert_eq!(created["endpoint"]["rateLimitPerSecond"], 3);
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    *fake.responder.borrow_mut() = Box::new(|_, _| Ok(answer(200)));
    for n in 0..10 {
        call(
            &fake,
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": { "n": n }, "id": format!("m{n}") })),
        );
    }
    // Three in the first second, whoever sends them.
    support::dispatch(&fake);
    assert_eq!(fake.sent.borrow().len(), 3);
    let mut per_second = vec![3];
    for _ in 0..4 {
        fake.now_ms.set(fake.now_ms.get() + 1000);
        let before = fake.sent.borrow().len();
        support::dispatch(&fake);
        per_second.push(fake.sent.borrow().len() - before);
    }
    assert_eq!(per_second, [3, 3, 3, 1, 0]);
    // Waiting was no failure.
    let (_, endpoint) = call(&fake, "GET", &format!("/webhooks/{id}"), None);
    assert_eq!(
        (
            endpoint["paused"].as_bool(),
            endpoint["consecutiveFailures"].as_u64()
        ),
        (Some(false), Some(0))
    );
    let (_, message) = call(&fake, "GET", "/messages/m9", None);
    assert_eq!(message["deliveries"][0]["status"], "succeeded");
    assert_eq!(message["deliveries"][0]["attempts"], 1);
}

#[test]
fn the_limit_is_set_cleared_and_checked() {
    let fake = fake();
    let (_, created) = call(
        &fake,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://r.example/hook" })),
    );
    assert_eq!(created["endpoint"]["rateLimitPerSecond"], Value::Null);
    let path = format!("/webhooks/{}", created["endpoint"]["id"].as_str().unwrap());
    let (_, patched) = call(
        &fake,
        "PATCH",
        &path,
        Some(json!({ "rateLimitPerSecond": 5 })),
    );
    assert_eq!(patched["rateLimitPerSecond"], 5);
    let (_, patched) = call(
        &fake,
        "PATCH",
        &path,
        Some(json!({ "description": "kept" })),
    );
    assert_eq!(patched["rateLimitPerSecond"], 5);
    let (_, patched) = call(
        &fake,
        "PATCH",
        &path,
        Some(json!({ "rateLimitPerSecond": null })),
    );
    assert_eq!(patched["rateLimitPerSecond"], Value::Null);
    for bad in [json!(0), json!(10_001), json!("5"), json!(1.5)] {
        let (status, problem) = call(
            &fake,
            "PATCH",
            &path,
            Some(json!({ "rateLimitPerSecond": bad })),
        );
        assert_eq!(
            (status, problem["errors"][0]["path"].as_str()),
            (400, Some("rateLimitPerSecond")),
            "{bad}"
        );
    }
}

#[test]
fn a_first_attempt_held_back_by_the_limit_is_sent_later_though_its_request_crossed_a_second() {
    let fake = fake();
    create_limited(&fake, 1);
    *fake.responder.borrow_mut() = Box::new(|_, _| Ok(answer(200)));
    let second = fake.now_ms.get().div_euclid(1000) * 1000;
    fake.now_ms.set(second + 500);
    let event = |id: &str| Some(json!({ "type": "t", "data": {}, "id": id }));
    assert_eq!(call(&fake, "POST", "/events", event("first")).0, 202);
    // The next request starts in the second's last milliseconds (each
    // reading moves the clock one) and queues its delivery in the next;
    // its first attempt finds the limit spent and leaves the delivery to a
    // pass, which once found it listed in a second it was not due in.
    fake.now_ms.set(second + 997);
    fake.tick_ms.set(1);
    assert_eq!(call(&fake, "POST", "/events", event("second")).0, 202);
    fake.tick_ms.set(0);
    assert_eq!(fake.sent.borrow().len(), 1);
    fake.now_ms.set(second + 3000);
    support::dispatch(&fake);
    assert_eq!(fake.sent.borrow().len(), 2);
    let (_, message) = call(&fake, "GET", "/messages/second", None);
    assert_eq!(message["deliveries"][0]["status"], "succeeded", "{message}");
}
