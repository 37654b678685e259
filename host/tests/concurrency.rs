//! The edge service under concurrent requests through `hooksign serve`:
//! changes to one record are applied one after the other, none lost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::service::{API_KEY, Receiver, Service, local, verifies_with};
use serde_json::json;

/// Runs `each` on `threads` threads, `rounds` times per thread, the threads
/// released together at the start of every round; returns every result.
fn together<T: Send + 'static>(
    threads: usize,
    rounds: usize,
    each: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let each = Arc::new(each);
    let start = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (each, start) = (each.clone(), start.clone());
            std::thread::spawn(move || {
                (0..rounds)
                    .map(|round| {
                        start.wait();
                        each(thread * rounds + round)
                    })
                    .collect::<Vec<T>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect()
}

#[test]
fn concurrent_rotations_keep_every_secret_they_returned() {
    let service = Arc::new(Service::start(&local()));
    let receiver = Receiver::start();
    let endpoints: Vec<(String, String)> = (0..5).map(|_| service.create(&receiver.url)).collect();

    // Eight threads rotate each endpoint in turn, so eight rotations of one
    // endpoint run at once: with the original, nine secrets, within the ten
    // previous ones a keyring may keep.
    let rotations = {
        let service = service.clone();
        let ids: Vec<String> = endpoints.iter().map(|(id, _)| id.clone()).collect();
        together(8, 5, move |n| {
            let id = &ids[n % 5];
            let (status, rotated) = service.call(
                "POST",
                &format!("/webhooks/{id}/rotate"),
                Some(API_KEY),
                None,
            );
            assert_eq!(status, 200, "{rotated}");
            (
                id.clone(),
                rotated["signingSecret"].as_str().unwrap().to_string(),
            )
        })
    };

    // Every secret handed out is still usable: a test send is signed with
    // all nine, and each of them verifies it.
    for (id, first) in endpoints {
        let mut secrets = vec![first];
        secrets.extend(
            rotations
                .iter()
                .filter(|(rotated, _)| *rotated == id)
                .map(|(_, secret)| secret.clone()),
        );
        assert_eq!(secrets.len(), 9);
        service.ok("POST", &format!("/webhooks/{id}/test"), None);
        let delivery = receiver.last();
        let signatures = delivery.header("webhook-signature").unwrap().to_string();
        assert_eq!(signatures.split(' ').count(), 9, "{signatures}");
        for secret in &secrets {
            assert!(verifies_with(&delivery, secret, None), "a secret was lost");
        }
    }
}

#[test]
fn concurrent_creates_and_sends_lose_no_endpoint_and_no_attempt() {
    let service = Arc::new(Service::start(&local()));
    let receiver = Receiver::start();

    let created = {
        let (service, url) = (service.clone(), receiver.url.clone());
        together(4, 10, move |_| service.create(&url).0)
    };
    let listed = service.ok("GET", "/webhooks?limit=100", None);
    let listed: BTreeSet<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|endpoint| endpoint["id"].as_str().unwrap())
        .collect();
    let created_set: BTreeSet<&str> = created.iter().map(String::as_str).collect();
    assert_eq!(created_set.len(), 40);
    assert_eq!(listed, created_set);

    // Forty test sends to one endpoint at once: forty attempts, each its own.
    let id = created[0].clone();
    let sent = {
        let (service, id) = (service.clone(), id.clone());
        together(4, 10, move |_| {
            service.ok("POST", &format!("/webhooks/{id}/test"), None)["attempt"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
    };
    let attempts = service.ok("GET", &format!("/webhooks/{id}/attempts?limit=100"), None);
    let listed: BTreeSet<&str> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["id"].as_str().unwrap())
        .collect();
    let sent: BTreeSet<&str> = sent.iter().map(String::as_str).collect();
    assert_eq!(sent.len(), 40);
    assert_eq!(listed, sent);
}

#[test]
fn concurrent_patches_each_keep_their_field() {
    let service = Arc::new(Service::start(&local()));
    let ids: Vec<String> = (0..5)
        .map(|_| service.create("http://127.0.0.1:9/hook").0)
        .collect();
    let changes = [
        json!({ "description": "billing" }),
        json!({ "eventTypes": ["invoice.paid"] }),
        json!({ "paused": true }),
        json!({ "url": "http://127.0.0.1:9/other" }),
    ];
    // Four threads patch each endpoint in turn, each a different field.
    {
        let (service, ids, changes) = (service.clone(), ids.clone(), changes.clone());
        together(4, 5, move |n| {
            let (thread, round) = (n / 5, n % 5);
            service.ok(
                "PATCH",
                &format!("/webhooks/{}", ids[round]),
                Some(&changes[thread].to_string()),
            )
        });
    }
    for id in ids {
        let endpoint = service.ok("GET", &format!("/webhooks/{id}"), None);
        for change in &changes {
            for (field, value) in change.as_object().unwrap() {
                assert_eq!(&endpoint[field], value, "{endpoint}");
            }
        }
    }
}

#[test]
fn copies_of_one_delivery_arriving_together_are_forwarded_once() {
    let origin = Receiver::start();
    let secret = hooksign::Secret::generate().unwrap().to_text();
    let sources = json!({
        "shop": { "forwardUrl": origin.url, "secrets": [{ "key": secret }], "org": "acme" }
    })
    .to_string();
    let mut variables = local().to_vec();
    variables.push(("inbound_sources", &sources));
    let service = Arc::new(Service::start(&variables));

    // Five messages; six copies of each arrive together.
    let keyring = hooksign::Keyring::from_records(&[hooksign::SecretRecord::new(&secret)]).unwrap();
    let body = br#"{"type":"order.paid"}"#;
    let signed: Vec<_> = (0..5)
        .map(|message| {
            keyring
                .sign_headers(&format!("msg_{message}"), hooksign::unix_now(), body)
                .unwrap()
        })
        .collect();
    let statuses = {
        let service = service.clone();
        together(6, 5, move |n| {
            let message = n % 5;
            let status = service
                .raw_with_headers("/inbound/shop", &signed[message], body)
                .0;
            (message, status)
        })
    };
    for message in 0..5 {
        let mut answers: Vec<u16> = statuses
            .iter()
            .filter(|(of, _)| *of == message)
            .map(|(_, status)| *status)
            .collect();
        answers.sort_unstable();
        assert_eq!(answers, [200, 409, 409, 409, 409, 409], "message {message}");
    }
    assert_eq!(origin.count(), 5);
    let stats = service.ok("GET", "/inbound/shop/stats", None);
    assert_eq!(stats["accepted"], 5, "{stats}");
    assert_eq!(stats["rejected"]["duplicate_delivery"], 25, "{stats}");
}
