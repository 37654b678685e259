//! The edge service's request handling (routing, path ids, query strings,
//! JSON bodies, webhook headers) over an in-memory platform: a run of up to
//! eight requests against one store. Every answer is a success or a problem
//! document with its status, never a panic or a 500, and every stored
//! endpoint stays whole with a sealed keyring (a sealed keyring that did
//! not open would make a test send a 500).
//!
//! Input: requests separated by NUL bytes, each `METHOD TARGET`, then header
//! lines up to an empty line, then the body. `{id}` in the target stands for
//! the newest endpoint created so far. Without an `authorization` header the
//! request carries the fuzz organisation's API key; the platform's routes
//! take the fuzz platform key (`sgn_plat_fuzz_…`) in one. `SIGNED` before the
//! method signs the body for the `shop` source (fresh id, the fake's time).
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use hooksign::{Keyring, SecretRecord};
use hooksign_edge::testing::{FakePlatform, answer};
use hooksign_edge::{Request, SendFailure, api_key_entry, handle, platform_key_entry};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "sgn_live_fuzz_0123456789abcdef";
/// The platform key a request names in its own `authorization` header.
const PLATFORM_KEY: &str = "sgn_plat_fuzz_0123456789abcdef";
const SHOP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW_MS: i64 = 1_700_000_000_000;

/// The in-memory platform: the fuzz organisation, private targets
/// allowed, the gateway source `shop`; every third send fails, and the
/// others answer 200 or 500, so that every outcome is reached.
fn platform() -> FakePlatform {
    let platform = FakePlatform::default();
    platform.now_ms.set(NOW_MS);
    platform.set_variable("api_keys", api_key_entry("fuzz", KEY));
    platform.set_variable("platform_keys", platform_key_entry(PLATFORM_KEY));
    platform.set_variable("metrics_token", "fuzz-metrics-token-0123456789abcdef");
    platform.set_variable("allow_private_targets", "true");
    platform.set_variable(
        "sealing_keys",
        "f1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    platform.set_variable(
        "inbound_sources",
        format!(
            r#"{{"shop":{{"secrets":[{{"key":"{SHOP_SECRET}"}}],"forwardUrl":"http://127.0.0.1:9/"}}}}"#
        ),
    );
    *platform.responder.borrow_mut() = Box::new(|n, _| match n % 3 {
        2 => Err(SendFailure::Failed("refused".into())),
        _ => Ok(answer(if n % 2 == 0 { 200 } else { 500 })),
    });
    platform
}

/// Runs a future that never waits: the platform answers at once.
fn run<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

/// One request of the input, or `None` for one without a request line.
fn parse(text: &[u8], newest_id: &str, n: usize) -> Option<Request> {
    let (head, body) = match text.windows(2).position(|pair| pair == b"\n\n") {
        Some(end) => (&text[..end], text[end + 2..].to_vec()),
        None => (text, Vec::new()),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let mut words = lines.next()?.split(' ');
    let mut method = words.next()?;
    let signed = method == "SIGNED";
    if signed {
        method = words.next()?;
    }
    let target = words.next().unwrap_or("/").replace("{id}", newest_id);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (target, None),
    };
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    {
        headers.push(("authorization".into(), format!("Bearer {KEY}")));
    }
    if signed {
        let keyring = Keyring::from_records(&[SecretRecord::new(SHOP_SECRET)]).ok()?;
        let signed = keyring
            .sign_headers(&format!("msg_fuzz_{n}"), NOW_MS / 1000, &body)
            .ok()?;
        headers.extend(
            signed
                .into_iter()
                .map(|(name, value)| (name.to_string(), value)),
        );
    }
    Some(Request {
        method: method.to_string(),
        path,
        query,
        headers,
        body,
    })
}

fuzz_target!(|data: &[u8]| {
    let memory = platform();
    let mut newest_id = String::from("00000000-0000-4000-8000-000000000000");
    for (n, text) in data.split(|byte| *byte == 0).take(8).enumerate() {
        let Some(request) = parse(text, &newest_id, n) else {
            continue;
        };
        let response = run(handle(&memory, &request));
        let content_type = response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.as_str());
        // The gateway passes the origin's own answers through (the fake
        // origin answers 500 at times); every other error is a problem
        // document, and none is a 500.
        let is_problem = content_type == Some("application/problem+json");
        let passed_through = request.path.starts_with("/inbound/") && !is_problem;
        if response.status >= 400 && !passed_through {
            assert!(is_problem, "{request:?}");
            let problem: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            assert_eq!(problem["status"], response.status);
            assert!(problem["code"].is_string());
            assert_ne!(response.status, 500, "{request:?}");
        }
        if response.status == 201 {
            let created: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
            // An endpoint's (organisations, keys and event types are created too).
            if let Some(id) = created["endpoint"]["id"].as_str() {
                newest_id = id.to_string();
            }
        }
        // Whatever was stored is whole: JSON, except the counters (the
        // gateway's claims, acceptances and refusals, the creation
        // counters, the logs', queues' and attempts' counts, the stored bytes, a
        // dashboard link's opens, the metrics but the last pass: 8
        // little-endian bytes);
        // every endpoint's keyring sealed.
        for (key, value) in memory.entries.borrow().iter() {
            let counter = key.contains("/claims/")
                || key.contains("/accepted/")
                || key.contains("/refused/")
                || key.starts_with("created/")
                || (key.starts_with("usage/") && key.ends_with("/bytes"))
                || ((key.starts_with("log/")
                    || key.starts_with("due/")
                    || key.starts_with("attempt/"))
                    && key.ends_with("/count"))
                || (key.starts_with("dashlink/") && key.ends_with("/opened"))
                || (key.starts_with("metrics/") && key != "metrics/last_pass");
            if counter {
                assert_eq!(value.len(), 8, "{key}");
                continue;
            }
            let value: serde_json::Value = serde_json::from_slice(value).unwrap();
            if key.starts_with("endpoint/") {
                let sealed = &value["secrets"]["sealed"];
                for field in ["key", "nonce", "data"] {
                    assert!(sealed[field].is_string(), "{key}: {value}");
                }
            }
        }
    }
});
