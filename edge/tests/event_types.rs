//! The event-type catalogue (issue #26, item 7): types with a JSON Schema
//! for their data, checked at `POST /events`, and endpoints kept to listed
//! types once there are any.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use hooksign_edge::testing::FakePlatform;
use serde_json::{Value, json};

const KEY: &str = "sgn_live_event_types_test";

fn fake() -> FakePlatform {
    support::platform(KEY)
}

fn call(fake: &FakePlatform, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::call(fake, KEY, method, path, body)
}

fn invoice_schema() -> Value {
    json!({
        "type": "object",
        "required": ["invoice", "amount"],
        "properties": {
            "invoice": { "type": "string" },
            "amount": { "type": "integer", "minimum": 0 },
            "lines": { "type": "array", "items": { "type": "string" } },
        },
    })
}

#[test]
fn an_events_data_is_checked_against_its_types_schema() {
    let fake = fake();
    let body = json!({ "name": "invoice.paid", "description": "An invoice was paid", "schema": invoice_schema() });
    let (status, created) = call(&fake, "POST", "/event-types", Some(body));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["deprecated"], false);
    let good = json!({ "type": "invoice.paid", "data": { "invoice": "in_1", "amount": 12, "lines": ["a"] } });
    assert_eq!(call(&fake, "POST", "/events", Some(good)).0, 202);
    let bad = json!({ "type": "invoice.paid", "data": { "amount": -1, "lines": ["a", 2] } });
    let (status, problem) = call(&fake, "POST", "/events", Some(bad));
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("schema_mismatch")),
        "{problem}"
    );
    let mut paths: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["path"].as_str().unwrap())
        .collect();
    paths.sort_unstable();
    assert_eq!(paths, ["data", "data.amount", "data.lines.1"], "{problem}");
    // A type the catalogue does not list, or one without a schema, is not checked.
    assert_eq!(
        call(
            &fake,
            "POST",
            "/events",
            Some(json!({ "type": "other", "data": 1 }))
        )
        .0,
        202
    );
    // Nothing was stored for the refused event.
    let (_, log) = call(&fake, "GET", "/messages", None);
    assert_eq!(log["data"].as_array().unwrap().len(), 2);
}

#[test]
fn the_catalogue_is_created_listed_changed_and_deleted() {
    let fake = fake();
    for name in ["b.type", "a.type"] {
        assert_eq!(
            call(&fake, "POST", "/event-types", Some(json!({ "name": name }))).0,
            201
        );
    }
    let (status, problem) = call(
        &fake,
        "POST",
        "/event-types",
        Some(json!({ "name": "a.type" })),
    );
    assert_eq!((status, problem["code"].as_str()), (409, Some("conflict")));
    for (body, field) in [
        (json!({ "name": "hooksign.endpoint.disabled" }), "name"),
        (json!({ "name": "has space" }), "name"),
        (
            json!({ "name": "x", "schema": { "type": "no-such-type" } }),
            "schema",
        ),
        (json!({ "name": "x", "schema": [1] }), "schema"),
    ] {
        let (status, problem) = call(&fake, "POST", "/event-types", Some(body));
        assert_eq!(
            (status, problem["errors"][0]["path"].as_str()),
            (400, Some(field)),
            "{problem}"
        );
    }
    let (_, list) = call(&fake, "GET", "/event-types", None);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.type", "b.type"]);
    let (status, patched) = call(
        &fake,
        "PATCH",
        "/event-types/a.type",
        Some(json!({ "deprecated": true, "schema": { "type": "object" } })),
    );
    assert_eq!((status, patched["deprecated"].as_bool()), (200, Some(true)));
    assert_eq!(
        call(
            &fake,
            "POST",
            "/events",
            Some(json!({ "type": "a.type", "data": 1 }))
        )
        .0,
        422
    );
    call(
        &fake,
        "PATCH",
        "/event-types/a.type",
        Some(json!({ "schema": null })),
    );
    assert_eq!(
        call(
            &fake,
            "POST",
            "/events",
            Some(json!({ "type": "a.type", "data": 1 }))
        )
        .0,
        202
    );
    assert_eq!(call(&fake, "DELETE", "/event-types/a.type", None).0, 204);
    assert_eq!(call(&fake, "GET", "/event-types/a.type", None).0, 404);
    assert_eq!(call(&fake, "DELETE", "/event-types/a.type", None).0, 404);
}

#[test]
fn endpoints_subscribe_only_to_listed_types_once_there_is_a_catalogue() {
    let fake = fake();
    let create = |types: Value| {
        call(
            &fake,
            "POST",
            "/webhooks",
            Some(json!({ "url": "https://r.example/h", "eventTypes": types })),
        )
    };
    assert_eq!(create(json!(["anything"])).0, 201);
    call(
        &fake,
        "POST",
        "/event-types",
        Some(json!({ "name": "invoice.paid" })),
    );
    let (status, problem) = create(json!(["invoice.paid", "anything"]));
    assert_eq!(
        (status, problem["errors"][0]["path"].as_str()),
        (400, Some("eventTypes")),
        "{problem}"
    );
    assert_eq!(
        create(json!(["invoice.paid", "hooksign.endpoint.disabled"])).0,
        201
    );
    assert_eq!(create(json!([])).0, 201);
}
