//! Metrics (issue #26, item 6) without a runtime: what a scrape says after
//! known traffic, its credential, and that nothing is counted without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;

use hooksign_edge::testing::{FakePlatform, answer};
use hooksign_edge::{Request, SendFailure, handle};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_metrics_test";
const TOKEN: &str = "metrics-token-0123456789abcdef0123456789";

fn fake(metrics: bool) -> FakePlatform {
    let platform = support::platform(KEY);
    platform.set_variable("retry_schedule", "0");
    if metrics {
        platform.set_variable("metrics_token", TOKEN);
    }
    platform
}

fn call_with(
    fake: &FakePlatform,
    bearer: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Vec<u8>) {
    support::send(fake, bearer, method, path, body)
}

/// Known traffic: an endpoint, a test send that succeeds, three events
/// whose attempts answer 200, 503 and no connection (each its last slot).
fn traffic(fake: &FakePlatform) {
    let (_, created) = call_with(
        fake,
        KEY,
        "POST",
        "/webhooks",
        Some(json!({ "url": "https://r.example/hook" })),
    );
    let created: Value = serde_json::from_slice(&created).unwrap();
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    call_with(fake, KEY, "POST", &format!("/webhooks/{id}/test"), None);
    *fake.responder.borrow_mut() = Box::new(|n, _| match n {
        1 => Ok(answer(200)),
        2 => Ok(answer(503)),
        _ => Err(SendFailure::Failed("refused".into())),
    });
    for _ in 0..3 {
        call_with(
            fake,
            KEY,
            "POST",
            "/events",
            Some(json!({ "type": "t", "data": {} })),
        );
    }
}

/// The samples of a scrape, by name and labels.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_scrape_adds_up_to_the_traffic() {
    let fake = fake(true);
    traffic(&fake);
    let (status, body) = call_with(&fake, TOKEN, "GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let samples = samples(&text);
    assert_eq!(samples["hooksign_events_accepted_total"], 3.0, "{text}");
    assert_eq!(
        samples["hooksign_attempts_total{outcome=\"succeeded\"}"],
        2.0
    );
    assert_eq!(
        samples["hooksign_attempts_total{outcome=\"failed_5xx\"}"],
        1.0
    );
    assert_eq!(
        samples["hooksign_attempts_total{outcome=\"connection_failed\"}"],
        1.0
    );
    assert_eq!(samples["hooksign_deliveries_failed_total"], 2.0);
    assert_eq!(
        samples["hooksign_request_duration_seconds_count{route=\"/events\"}"],
        3.0
    );
    assert_eq!(
        samples["hooksign_request_duration_seconds_count{route=\"/webhooks\"}"],
        1.0
    );
    assert_eq!(
        samples["hooksign_request_duration_seconds_bucket{route=\"/events\",le=\"+Inf\"}"],
        3.0
    );
    assert!(samples["hooksign_store_calls_total"] > 20.0);
    assert_eq!(samples["hooksign_store_errors_total"], 0.0);
}

#[test]
fn gateway_deliveries_are_counted_by_source_and_code() {
    let fake = fake(true);
    fake.set_variable(
        "inbound_sources",
        json!({ "shop": {
            "secrets": [{ "key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }],
            "forwardUrl": "https://origin.example/hook",
        } })
        .to_string(),
    );
    let headers = [
        ("webhook-id", "msg_1".to_string()),
        ("webhook-timestamp", (fake.now_ms.get() / 1000).to_string()),
        ("webhook-signature", "v1,bm90IGEgc2lnbmF0dXJl".to_string()),
    ];
    for _ in 0..2 {
        let request = Request {
            method: "POST".into(),
            path: "/inbound/shop".into(),
            query: None,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone()))
                .collect(),
            body: b"{}".to_vec(),
        };
        let response = futures::executor::block_on(handle(&fake, &request));
        assert_eq!(response.status, 401);
    }
    let (_, body) = call_with(&fake, TOKEN, "GET", "/metrics", None);
    let samples = samples(&String::from_utf8(body).unwrap());
    let refused = "hooksign_gateway_deliveries_total{source=\"shop\",outcome=\"refused\",code=\"no_matching_signature\"}";
    assert_eq!(samples[refused], 2.0, "{samples:#?}");
    assert_eq!(
        samples["hooksign_gateway_deliveries_total{source=\"shop\",outcome=\"accepted\"}"],
        0.0
    );
}

#[test]
fn the_scrape_needs_its_token_and_without_one_nothing_is_counted() {
    let fake = fake(false);
    traffic(&fake);
    assert_eq!(call_with(&fake, TOKEN, "GET", "/metrics", None).0, 404);
    assert!(
        fake.entries
            .borrow()
            .keys()
            .all(|key| !key.starts_with("metrics/"))
    );
    let fake = self::fake(true);
    assert_eq!(
        call_with(&fake, "wrong-token", "GET", "/metrics", None).0,
        401
    );
    assert_eq!(call_with(&fake, KEY, "GET", "/metrics", None).0, 401);
}
