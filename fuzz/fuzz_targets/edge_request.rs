//! The edge service's request handling (routing, path ids, query strings,
//! JSON bodies, webhook headers) over an in-memory platform: a run of up to
//! eight requests against one store. Every answer is a success or a problem
//! document with its status, never a panic or a 500, and every stored
//! endpoint stays whole with a valid keyring.
//!
//! Input: requests separated by NUL bytes, each `METHOD TARGET`, then header
//! lines up to an empty line, then the body. `{id}` in the target stands for
//! the newest endpoint created so far. Without an `authorization` header the
//! request carries the fuzz organisation's API key. `SIGNED` before the
//! method signs the body for the `shop` source (fresh id, the fake's time).
#![no_main]

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use hooksign::{Keyring, SecretRecord};
use hooksign_edge::{
    MemoryStore, OutboundRequest, OutboundResponse, Platform, Request, SendFailure, StoreError, api_key_entry,
    handle,
};
use libfuzzer_sys::fuzz_target;

const KEY: &str = "sgn_live_fuzz_0123456789abcdef";
const SHOP_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NOW_MS: i64 = 1_700_000_000_000;

struct Memory {
    kv: MemoryStore,
    sent: Cell<usize>,
}

impl Platform for Memory {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.kv.get(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.kv.set(key, value);
        Ok(())
    }

    fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        Ok(self.kv.compare_and_swap(key, expected, value))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.kv.delete(key);
        Ok(())
    }

    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "api_keys" => Some(api_key_entry("fuzz", KEY)),
            "allow_private_targets" => Some("true".into()),
            "inbound_sources" => Some(format!(
                r#"{{"shop":{{"secrets":[{{"key":"{SHOP_SECRET}"}}],"forwardUrl":"http://127.0.0.1:9/"}}}}"#
            )),
            _ => None,
        }
    }

    fn now_millis(&self) -> i64 {
        NOW_MS
    }

    fn send(
        &self,
        _request: OutboundRequest,
        _timeout_ms: u64,
    ) -> impl Future<Output = Result<OutboundResponse, SendFailure>> {
        // Every third delivery fails, so both outcomes are reached.
        let n = self.sent.get();
        self.sent.set(n + 1);
        std::future::ready(match n % 3 {
            2 => Err(SendFailure::Failed("refused".into())),
            _ => Ok(OutboundResponse {
                status: if n % 2 == 0 { 200 } else { 500 },
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"ok".to_vec(),
            }),
        })
    }
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
    let memory = Memory {
        kv: MemoryStore::default(),
        sent: Cell::new(0),
    };
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
            newest_id = created["endpoint"]["id"].as_str().unwrap().to_string();
        }
        // Whatever was stored is whole.
        for (key, value) in memory.kv.entries().iter() {
            let value: serde_json::Value = serde_json::from_slice(value).unwrap();
            if key.starts_with("endpoint/") {
                let records: Vec<SecretRecord> =
                    serde_json::from_value(value["secrets"].clone()).unwrap();
                Keyring::from_records(&records).unwrap();
            }
        }
    }
});
