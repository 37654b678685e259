//! `GET /metrics` end to end (issue #26, item 6): two `hooksign serve`
//! nodes on one real Redis, known traffic through both, and each node's
//! scrape parsed by the Prometheus client library's own parser (Python
//! `prometheus-client`, `text_string_to_metric_families`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use common::redis::RedisServer;
use common::service::{API_KEY, Receiver, Service, local};
use serde_json::json;

const TOKEN: &str = "metrics-token-for-the-test-0123456789abcdef";

/// A scrape's samples as the Prometheus parser reads them, by name and
/// sorted labels (`name{a="1",b="2"}`).
fn parsed(text: &str) -> BTreeMap<String, f64> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with prometheus-client (tests/api/requirements.txt)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the parser refused the scrape:\n{text}"
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn scrape(service: &Service) -> BTreeMap<String, f64> {
    let (status, content_type, body) = service.raw("GET", "/metrics", Some(TOKEN), None);
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain; version=0.0.4"));
    parsed(&String::from_utf8(body).unwrap())
}

#[test]
fn every_nodes_scrape_adds_up_to_the_whole_services_traffic() {
    let redis = RedisServer::start(None);
    let mut variables = local().to_vec();
    variables.push(("metrics_token", TOKEN));
    let nodes = [
        Service::start_with(&variables, &["--store", &redis.url()]),
        Service::start_with(&variables, &["--store", &redis.url()]),
    ];
    let receiver = Receiver::start();
    receiver.answer(204);
    let (id, _) = nodes[0].create(&receiver.url);
    let failing = Receiver::start();
    failing.answer(500);
    nodes[1].create(&failing.url);
    // Five events, each to both endpoints, through both nodes.
    let mut messages = Vec::new();
    for n in 0..5 {
        let body = json!({ "type": "t", "data": { "n": n } }).to_string();
        let (status, accepted) = nodes[n % 2].call("POST", "/events", Some(API_KEY), Some(&body));
        assert_eq!(status, 202, "{accepted}");
        messages.push(accepted["id"].as_str().unwrap().to_string());
    }
    for message in &messages {
        nodes[0].message_when(message, |delivery| delivery["status"] != "pending");
    }
    nodes[1].ok("POST", &format!("/webhooks/{id}/test"), None);
    for node in &nodes {
        // A delivery's count follows the write of its status by a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut samples = scrape(node);
        while samples.get("hooksign_deliveries_failed_total") != Some(&4.0)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
            samples = scrape(node);
        }
        let value = |name: &str| {
            samples
                .get(name)
                .copied()
                .unwrap_or_else(|| panic!("no {name}: {samples:#?}"))
        };
        assert_eq!(value("hooksign_events_accepted_total"), 5.0);
        assert_eq!(value("hooksign_attempts_total{outcome=\"succeeded\"}"), 6.0);
        assert_eq!(
            value("hooksign_attempts_total{outcome=\"failed_5xx\"}"),
            5.0
        );
        // The fifth failure in a row paused the endpoint (auto_pause_after
        // 5): its delivery is held, not failed.
        assert_eq!(value("hooksign_deliveries_failed_total"), 4.0);
        assert_eq!(value("hooksign_deliveries_held"), 1.0);
        assert_eq!(
            value("hooksign_request_duration_seconds_count{route=\"/events\"}"),
            5.0
        );
        assert_eq!(
            value("hooksign_request_duration_seconds_bucket{le=\"+Inf\",route=\"/events\"}"),
            5.0
        );
        assert!(value("hooksign_request_duration_seconds_sum{route=\"/events\"}") > 0.0);
        assert!(value("hooksign_store_calls_total") > 50.0);
        assert_eq!(value("hooksign_store_errors_total"), 0.0);
        assert!(samples.contains_key("hooksign_dispatch_lag_seconds"));
    }
    // An API key is no metrics token.
    assert_eq!(nodes[0].call("GET", "/metrics", Some(API_KEY), None).0, 401);
}
