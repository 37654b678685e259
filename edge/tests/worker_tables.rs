//! The Cloudflare Worker gateway (`hosts/workerd/worker.js`) answers as
//! hooksign's own gateway does, from tables it cannot import: its body
//! limit, problem type URI, every problem's status and title, and the
//! providers' headers it passes on must be the Rust tables' own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hooksign::Scheme;
use hooksign_edge::{Code, MAX_BODY_BYTES, PROBLEM_TYPE_BASE, passed_on};

fn worker() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hosts/workerd/worker.js"
    ))
    .unwrap()
}

/// The codes the worker answers with besides verification's.
const WORKER_CODES: [Code; 5] = [
    Code::MethodNotAllowed,
    Code::PayloadTooLarge,
    Code::InvalidConfiguration,
    Code::OriginTimeout,
    Code::OriginUnreachable,
];

/// `(status, code, title)` of every `problem(STATUS, "code", "Title"` call.
fn problem_calls(worker: &str) -> Vec<(u16, String, String)> {
    worker
        .match_indices("problem(")
        .filter_map(|(at, _)| {
            let arguments = &worker[at + "problem(".len()..];
            let mut parts = arguments.splitn(4, ',').map(str::trim);
            let status = parts.next()?.parse().ok()?;
            let code = parts.next()?.strip_prefix('"')?.strip_suffix('"')?;
            let title = parts.next()?.strip_prefix('"')?.strip_suffix('"')?;
            Some((status, code.to_string(), title.to_string()))
        })
        .collect()
}

#[test]
fn every_problem_the_worker_answers_has_the_rust_status_and_title() {
    let worker = worker();
    let calls = problem_calls(&worker);
    assert!(calls.len() >= 6, "{calls:?}");
    for (status, code, title) in calls {
        let known = WORKER_CODES
            .iter()
            .find(|known| known.as_str() == code)
            .unwrap_or_else(|| panic!("the worker answers {code}, not in WORKER_CODES"));
        assert_eq!(
            (status, title.as_str()),
            (known.status(), known.title()),
            "{code}"
        );
    }
}

#[test]
fn every_refusal_of_the_worker_is_the_rust_gateways() {
    let worker = worker();
    let table = &worker[worker.find("const REFUSALS = {").unwrap()..];
    let table = &table[..table.find("};").unwrap()];
    let mut listed = 0;
    for error in hooksign::Error::ALL {
        let code = Code::of_verification(error);
        if code == Code::InvalidConfiguration {
            continue;
        }
        let entry = format!(
            "\"{}\": [{}, \"{}\"],",
            error.code(),
            code.status(),
            code.title()
        );
        if table.contains(&format!("\"{}\":", error.code())) {
            assert!(table.contains(&entry), "the worker's {entry}");
            listed += 1;
        }
    }
    assert_eq!(
        listed,
        table.matches("\": [").count(),
        "an entry the library has no error for"
    );
    assert!(listed >= 6);
}

#[test]
fn the_worker_has_the_body_limit_type_uri_and_passed_on_headers() {
    let worker = worker();
    assert_eq!(MAX_BODY_BYTES, 1024 * 1024);
    assert!(worker.contains("const MAX_BODY_BYTES = 1024 * 1024;"));
    assert!(worker.contains(&format!("type: `{PROBLEM_TYPE_BASE}${{")));
    for (scheme, name) in [(Scheme::Github, "github"), (Scheme::Shopify, "shopify")] {
        let listed = passed_on(scheme)
            .iter()
            .map(|header| format!("\"{header}\""))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(worker.contains(&format!("{name}: [{listed}],")), "{name}");
    }
    for scheme in [Scheme::StandardWebhooks, Scheme::Stripe, Scheme::Slack] {
        assert!(passed_on(scheme).is_empty());
    }
}
