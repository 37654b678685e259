//! What the edge's newer test files share: an in-memory platform with the
//! organisation `acme` and its API key, requests through `handle` with
//! their follow-up sends, and dispatcher passes.

#![allow(dead_code, clippy::unwrap_used)]

use hooksign_edge::testing::FakePlatform;
use hooksign_edge::{Request, api_key_entry, handle};
use serde_json::Value;

/// A `sealing_keys` entry: a 32-byte key.
pub const SEAL: &str = "s1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The platform with `acme` (API key `key`), sealed secrets and no rate
/// limit (the clock stands still).
pub fn platform(key: &str) -> FakePlatform {
    let platform = FakePlatform::default();
    platform.set_variable("api_keys", api_key_entry("acme", key));
    platform.set_variable("sealing_keys", SEAL);
    platform.set_variable("rate_limit_per_key", "0");
    platform
}

/// A request with `key` as its bearer (`path` may hold a query).
pub fn request(key: &str, method: &str, path: &str, body: Option<Value>) -> Request {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query.to_string())),
        None => (path, None),
    };
    Request {
        method: method.into(),
        path: path.into(),
        query,
        headers: vec![("authorization".into(), format!("Bearer {key}"))],
        body: body
            .map(|body| body.to_string().into_bytes())
            .unwrap_or_default(),
    }
}

/// One [`request`], its follow-up sends made: the status and the raw body.
pub fn send(
    fake: &FakePlatform,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Vec<u8>) {
    let response = futures::executor::block_on(handle(fake, &request(key, method, path, body)));
    // As the component does once the answer is out.
    let _ = futures::executor::block_on(hooksign_edge::follow_up(fake, &response.follow_up));
    (response.status, response.body)
}

/// [`send`], the body as JSON (null if none).
pub fn call(
    fake: &FakePlatform,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, body) = send(fake, key, method, path, body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Creates an endpoint from `body` with `key`; its id.
pub fn create_endpoint(fake: &FakePlatform, key: &str, body: Value) -> String {
    let (status, created) = call(fake, key, "POST", "/webhooks", Some(body));
    assert_eq!(status, 201, "{created}");
    created["endpoint"]["id"].as_str().unwrap().to_string()
}

/// One dispatcher pass at the fake's time.
pub fn dispatch(fake: &FakePlatform) {
    futures::executor::block_on(hooksign_edge::dispatch(fake)).unwrap();
}
