//! What an endpoint's list of recent attempt ids costs each attempt (issue
//! #24): a test send (signed, sent, its attempt recorded on the endpoint's
//! record) handled natively on the in-memory platform, the endpoint's
//! record holding the 32 ids that confirmed stores keep against the same
//! record without them, as a truthful store keeps it.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use hooksign_edge::testing::{FakePlatform, SwapDefect};
use hooksign_edge::{Request, api_key_entry, handle};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_bench_deliver";

fn request(path: &str, body: Option<&Value>) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        query: None,
        headers: vec![("authorization".into(), format!("Bearer {KEY}"))],
        body: body
            .map(|body| body.to_string().into_bytes())
            .unwrap_or_default(),
    }
}

fn call(platform: &FakePlatform, path: &str, body: Option<&Value>) -> (u16, Value) {
    let response = futures::executor::block_on(handle(platform, &request(path, body)));
    let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, body)
}

fn deliver(c: &mut Criterion) {
    let platform = FakePlatform::default();
    platform.set_variable("api_keys", api_key_entry("acme", KEY));
    platform.set_variable("rate_limit_per_key", "0");
    platform.set_variable("insecure_plaintext_secrets", "true");
    let url = json!({ "url": "https://receiver.example/hook" });
    let (status, created) = call(&platform, "/webhooks", Some(&url));
    assert_eq!(status, 201, "{created}");
    let id = created["endpoint"]["id"].as_str().unwrap().to_string();
    let test = format!("/webhooks/{id}/test");
    let record = format!("endpoint/{id}");
    let send = || assert_eq!(call(&platform, &test, None).0, 200);
    platform.defect.set(Some(SwapDefect::ReportsFailure));
    for _ in 0..32 {
        send();
    }
    let with_ids = platform.entries.borrow()[&record].clone();
    platform.defect.set(None);
    send();
    let without = platform.entries.borrow()[&record].clone();

    let mut group = c.benchmark_group("test send, attempt recorded");
    for (name, stored) in [
        ("endpoint record with 32 recent attempt ids", with_ids),
        ("endpoint record without them", without),
    ] {
        // The record is put back before each send (a map insert, the same
        // in both rows), so that every send finds it as stored.
        group.bench_function(name, |b| {
            b.iter(|| {
                platform
                    .entries
                    .borrow_mut()
                    .insert(record.clone(), stored.clone());
                platform.sent.borrow_mut().clear();
                platform.reads.borrow_mut().clear();
                platform.batches.borrow_mut().clear();
                send();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, deliver);
criterion_main!(benches);
