//! hooksign's verification and signing against the compute limit (raw
//! HMAC-SHA256 over the same bytes), the peer crates, and the component
//! through wasmtime. `cargo bench -p hooksign-benches`; see BENCHMARKS.md.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac as _};
use hooksign::{Keyring, Secret, SecretRecord};
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
    target.join("wasm32-wasip2/release/hooksign_signer.wasm")
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
}

criterion_group! {
    name = benches;
    // Short runs keep the whole suite near three minutes on two cores.
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = raw_hmac, native, peers, component
}
criterion_main!(benches);
