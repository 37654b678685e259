//! hooksign's verification and signing against the compute limit (raw
//! HMAC-SHA256 over the same bytes), the peer crates, and the component
//! through wasmtime. `cargo bench -p hooksign-benches`; see BENCHMARKS.md.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, Mac as _};
use hooksign::{HeaderValues, Keyring, Scheme, Secret, SecretRecord};
use hooksign_host::SignerComponent;
use sha2::Sha256;

const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";

struct Message {
    current: String,
    previous: String,
    timestamp: i64,
    body: Vec<u8>,
}

impl Message {
    fn new(len: usize) -> Message {
        Message {
            current: Secret::from_bytes(&[7; 32]).unwrap().to_text(),
            previous: Secret::from_bytes(&[9; 32]).unwrap().to_text(),
            timestamp: hooksign::unix_now(),
            // Printable JSON-ish text: the peers take bodies as text.
            body: (0..len)
                .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36])
                .collect(),
        }
    }

    fn keyring(&self, secrets: usize) -> Keyring {
        let mut records = vec![SecretRecord::new(self.current.as_str())];
        if secrets == 2 {
            records.push(SecretRecord {
                not_after: Some(self.timestamp + 3600),
                ..SecretRecord::new(self.previous.as_str())
            });
        }
        Keyring::from_records(&records).unwrap()
    }

    /// Headers with the matching signature last among `entries` entries.
    fn headers(&self, entries: usize) -> Vec<(String, String)> {
        let good = self
            .keyring(1)
            .sign(ID, self.timestamp, &self.body)
            .unwrap();
        let other = Keyring::from_records(&[SecretRecord::new(self.previous.as_str())])
            .unwrap()
            .sign(ID, self.timestamp, &self.body)
            .unwrap();
        let mut signature = vec![other; entries - 1];
        signature.push(good);
        vec![
            ("webhook-id".into(), ID.into()),
            ("webhook-timestamp".into(), self.timestamp.to_string()),
            ("webhook-signature".into(), signature.join(" ")),
        ]
    }

    fn header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in self.headers(1) {
            map.insert(
                http::HeaderName::try_from(name).unwrap(),
                http::HeaderValue::try_from(value).unwrap(),
            );
        }
        map
    }
}

fn raw_hmac(c: &mut Criterion) {
    for (label, len) in [("1KiB", 1024), ("64KiB", 65536)] {
        let message = Message::new(len);
        let keyed = Hmac::<Sha256>::new_from_slice(&[7; 32]).unwrap();
        let timestamp = message.timestamp.to_string();
        c.bench_function(&format!("raw_hmac/{label}"), |b| {
            b.iter(|| {
                let mut mac = keyed.clone();
                mac.update(ID.as_bytes());
                mac.update(b".");
                mac.update(timestamp.as_bytes());
                mac.update(b".");
                mac.update(black_box(&message.body));
                black_box(mac.finalize().into_bytes())
            })
        });
    }
}

fn native(c: &mut Criterion) {
    for (label, len) in [("0B", 0), ("1KiB", 1024), ("64KiB", 65536)] {
        let message = Message::new(len);
        for secrets in [1, 2] {
            let keyring = message.keyring(secrets);
            for entries in [1, 3] {
                let headers = message.headers(entries);
                c.bench_function(
                    &format!("native_verify/{label}/keyring{secrets}/entries{entries}"),
                    |b| {
                        b.iter(|| {
                            keyring
                                .verify(
                                    black_box(&headers),
                                    black_box(&message.body),
                                    message.timestamp,
                                    300,
                                )
                                .unwrap()
                        })
                    },
                );
            }
            if secrets == 2 {
                let headers = message.headers(1);
                let values = HeaderValues::find(Scheme::StandardWebhooks, &headers).unwrap();
                c.bench_function(
                    &format!("native_verify_values/{label}/keyring{secrets}/entries1"),
                    |b| {
                        b.iter(|| {
                            keyring
                                .verify_values(
                                    black_box(values),
                                    black_box(&message.body),
                                    message.timestamp,
                                    300,
                                )
                                .unwrap()
                        })
                    },
                );
            }
            c.bench_function(&format!("native_sign/{label}/keyring{secrets}"), |b| {
                b.iter(|| {
                    keyring
                        .sign(ID, message.timestamp, black_box(&message.body))
                        .unwrap()
                })
            });
        }
    }
}

/// A fixed Ed25519 key, as `whsk_` and `whpk_` text and as ed25519-dalek's.
fn ed25519_key() -> (SigningKey, String, String) {
    let key = SigningKey::from_bytes(&[5; 32]);
    let secret = Secret::parse(&format!(
        "whsk_{}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [5u8; 32])
    ))
    .unwrap();
    let public = secret.public_key().unwrap().to_text();
    (key, secret.to_text(), public)
}

/// Ed25519 `v1a` against bare ed25519-dalek over the same bytes (the
/// signed content already joined), 1 KiB.
fn ed25519(c: &mut Criterion) {
    let message = Message::new(1024);
    let (key, secret, public) = ed25519_key();
    let content = [
        ID.as_bytes(),
        b".",
        message.timestamp.to_string().as_bytes(),
        b".",
        &message.body,
    ]
    .concat();
    let signature = key.sign(&content);
    let verifying = key.verifying_key();
    c.bench_function("raw_ed25519_verify_strict/1KiB", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&content), &signature)
                .unwrap()
        })
    });
    c.bench_function("raw_ed25519_sign/1KiB", |b| {
        b.iter(|| key.sign(black_box(&content)))
    });
    let signer = Keyring::from_records(&[SecretRecord::new(secret.as_str())]).unwrap();
    let verifier = Keyring::from_records(&[SecretRecord::new(public.as_str())]).unwrap();
    let headers = signer
        .sign_headers(ID, message.timestamp, &message.body)
        .unwrap();
    c.bench_function("native_verify_v1a/1KiB/keyring1", |b| {
        b.iter(|| {
            verifier
                .verify(
                    black_box(&headers),
                    black_box(&message.body),
                    message.timestamp,
                    300,
                )
                .unwrap()
        })
    });
    c.bench_function("native_sign_v1a/1KiB/keyring1", |b| {
        b.iter(|| {
            signer
                .sign(ID, message.timestamp, black_box(&message.body))
                .unwrap()
        })
    });
}

fn peers(c: &mut Criterion) {
    for (label, len) in [("1KiB", 1024), ("64KiB", 65536)] {
        let message = Message::new(len);
        let headers = message.header_map();
        let svix = svix::webhooks::Webhook::new(&message.current).unwrap();
        let standard = standardwebhooks::Webhook::new(&message.current).unwrap();
        c.bench_function(&format!("svix_verify/{label}"), |b| {
            b.iter(|| svix.verify(black_box(&message.body), &headers).unwrap())
        });
        c.bench_function(&format!("standardwebhooks_verify/{label}"), |b| {
            b.iter(|| standard.verify(black_box(&message.body), &headers).unwrap())
        });
    }
}

fn component_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("wasm32-wasip2/component/hooksign_signer.wasm")
}

fn component(c: &mut Criterion) {
    for (variant, deadline) in [
        ("", Some(hooksign_host::DEFAULT_CALL_DEADLINE)),
        ("_no_deadline", None),
    ] {
        component_variant(c, variant, deadline);
    }
}

/// The component benchmarks with the host's default call deadline (epoch
/// interruption) and without it.
fn component_variant(c: &mut Criterion, variant: &str, deadline: Option<std::time::Duration>) {
    let component = SignerComponent::load_with(&component_path(), deadline)
        .expect("build the signer component first");
    for (label, len) in [("0B", 0), ("1KiB", 1024), ("64KiB", 65536)] {
        let message = Message::new(len);
        let records = vec![
            SecretRecord::new(message.current.as_str()),
            SecretRecord {
                not_after: Some(message.timestamp + 3600),
                ..SecretRecord::new(message.previous.as_str())
            },
        ];
        let headers = message.headers(1);
        let mut session = component.session().unwrap();
        let keyring = session.parse_keyring(&records).unwrap();
        c.bench_function(
            &format!("component_verify_reused{variant}/{label}/keyring2"),
            |b| {
                b.iter(|| {
                    session
                        .verify(
                            keyring,
                            black_box(&headers),
                            black_box(&message.body),
                            Some(message.timestamp),
                            Some(300),
                        )
                        .unwrap()
                })
            },
        );
        if len == 0 && deadline.is_some() {
            // A request as a receiver gets it: nine more headers, all passed.
            let mut request = headers.clone();
            for (name, value) in [
                ("host", "hooks.example.com"),
                ("user-agent", "Svix-Webhooks/1.24"),
                ("content-type", "application/json"),
                ("content-length", "0"),
                ("accept", "*/*"),
                ("accept-encoding", "gzip"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-request-id", "4bf92f3577b34da6a3ce929d0e0e4736"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
            ] {
                request.insert(0, (name.into(), value.into()));
            }
            c.bench_function("component_verify_reused/0B/keyring2/12headers", |b| {
                b.iter(|| {
                    session
                        .verify(
                            keyring,
                            black_box(&request),
                            black_box(&message.body),
                            Some(message.timestamp),
                            Some(300),
                        )
                        .unwrap()
                })
            });
        }
        let values = HeaderValues::find(Scheme::StandardWebhooks, &headers).unwrap();
        c.bench_function(
            &format!("component_verify_values_reused{variant}/{label}/keyring2"),
            |b| {
                b.iter(|| {
                    session
                        .verify_values(
                            keyring,
                            black_box(values),
                            black_box(&message.body),
                            Some(message.timestamp),
                            Some(300),
                        )
                        .unwrap()
                })
            },
        );
        if len == 1024 {
            c.bench_function(
                &format!("component_verify_fresh_instance{variant}/1KiB/keyring2"),
                |b| {
                    b.iter(|| {
                        let mut session = component.session().unwrap();
                        let keyring = session.parse_keyring(&records).unwrap();
                        session
                            .verify(
                                keyring,
                                &headers,
                                black_box(&message.body),
                                Some(message.timestamp),
                                Some(300),
                            )
                            .unwrap()
                    })
                },
            );
        }
    }
    c.bench_function(&format!("component_instantiate{variant}"), |b| {
        b.iter(|| black_box(component.session().unwrap()))
    });
    if deadline.is_some() {
        component_ed25519(c, &component);
    }
}

/// Ed25519 `v1a` sign and verify of 1 KiB through the component, instance
/// and keyring reused.
fn component_ed25519(c: &mut Criterion, component: &SignerComponent) {
    let message = Message::new(1024);
    let (_, secret, public) = ed25519_key();
    let mut session = component.session().unwrap();
    let signer = session
        .parse_keyring(&[SecretRecord::new(secret.as_str())])
        .unwrap();
    let verifier = session
        .parse_keyring(&[SecretRecord::new(public.as_str())])
        .unwrap();
    let signature = session
        .sign(signer, ID, message.timestamp, &message.body)
        .unwrap();
    let headers = vec![
        ("webhook-id".to_string(), ID.to_string()),
        ("webhook-timestamp".into(), message.timestamp.to_string()),
        ("webhook-signature".into(), signature),
    ];
    c.bench_function("component_verify_v1a_reused/1KiB/keyring1", |b| {
        b.iter(|| {
            session
                .verify(
                    verifier,
                    black_box(&headers),
                    black_box(&message.body),
                    Some(message.timestamp),
                    Some(300),
                )
                .unwrap()
        })
    });
    c.bench_function("component_sign_v1a_reused/1KiB/keyring1", |b| {
        b.iter(|| {
            session
                .sign(signer, ID, message.timestamp, black_box(&message.body))
                .unwrap()
        })
    });
}

criterion_group! {
    name = benches;
    // Short runs keep the whole suite near three minutes on two cores.
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = raw_hmac, native, ed25519, peers, component
}
criterion_main!(benches);
