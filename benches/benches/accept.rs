//! What the event-type catalogue adds to accepting an event (issue #26,
//! item 7): `POST /events` handled natively on the in-memory platform, an
//! event whose type has no schema against one whose type has a JSON Schema
//! (compiled and checked per event). No endpoint subscribes, so only the
//! accept is timed.

use criterion::{Criterion, criterion_group, criterion_main};
use hooksign_edge::testing::FakePlatform;
use hooksign_edge::{Request, api_key_entry, handle};
use serde_json::{Value, json};

const KEY: &str = "sgn_live_bench_accept";

fn request(path: &str, body: &Value) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        query: None,
        headers: vec![("authorization".into(), format!("Bearer {KEY}"))],
        body: body.to_string().into_bytes(),
    }
}

fn platform(schema: Option<Value>) -> FakePlatform {
    let platform = FakePlatform::default();
    platform.set_variable("api_keys", api_key_entry("acme", KEY));
    platform.set_variable("rate_limit_per_key", "0");
    platform.set_variable("insecure_plaintext_secrets", "true");
    let mut body = json!({ "name": "invoice.paid" });
    if let Some(schema) = schema {
        body["schema"] = schema;
    }
    let created = futures::executor::block_on(handle(&platform, &request("/event-types", &body)));
    assert_eq!(created.status, 201);
    platform
}

fn accept(c: &mut Criterion) {
    let schema = json!({
        "type": "object",
        "required": ["invoice", "amount", "currency"],
        "properties": {
            "invoice": { "type": "string", "pattern": "^in_[a-z0-9]+$" },
            "amount": { "type": "integer", "minimum": 0 },
            "currency": { "enum": ["eur", "usd", "gbp"] },
            "lines": { "type": "array", "items": { "type": "object" } },
        },
    });
    let event = json!({ "type": "invoice.paid", "data": {
        "invoice": "in_42", "amount": 1200, "currency": "eur",
        "lines": [{ "sku": "a", "n": 2 }, { "sku": "b", "n": 1 }],
    } });
    let mut group = c.benchmark_group("accept an event");
    for (name, schema) in [
        ("type without a schema", None),
        ("type with a JSON Schema", Some(schema)),
    ] {
        let platform = platform(schema);
        group.bench_function(name, |b| {
            b.iter(|| {
                let response =
                    futures::executor::block_on(handle(&platform, &request("/events", &event)));
                assert_eq!(response.status, 202);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, accept);
criterion_main!(benches);
