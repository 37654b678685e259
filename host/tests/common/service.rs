//! A running `hooksign serve` and a webhook receiver, for the end-to-end tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hooksign::{Keyring, SecretRecord};
use serde_json::{Value, json};

/// The `sealing_keys` of every test service: one 32-byte key.
pub const SEALING_KEYS: &str = "t1:7ubNnUJ1IsD+rWWw2P3ZmX8HTLrN1oJKzw1TPnE4yQk=";

pub const API_KEY: &str = "sgn_live_acme_test_key_0123456789";
pub const OTHER_KEY: &str = "sgn_live_globex_test_key_9876543210";

/// A running `hooksign serve`, stopped on drop.
pub struct Service {
    child: Child,
    /// The store's directory, when the service owns it.
    own_data: Option<tempfile::TempDir>,
    data: std::path::PathBuf,
    pub base: String,
    /// Everything the service printed (stdout and stderr), as it arrives.
    pub log: Arc<Mutex<String>>,
    /// The threads that collect the output.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Service {
    /// Starts on a store of its own (a temporary directory, removed with it).
    pub fn start(variables: &[(&str, &str)]) -> Service {
        Service::start_with(variables, &[])
    }

    /// Starts on a store of its own, with more `hooksign serve` arguments.
    pub fn start_with(variables: &[(&str, &str)], arguments: &[&str]) -> Service {
        let data = tempfile::tempdir().unwrap();
        let mut service = Service::start_in(data.path(), variables, arguments);
        service.own_data = Some(data);
        service
    }

    /// The service's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The store's directory.
    pub fn data(&self) -> &Path {
        &self.data
    }

    /// Starts on the store in `data`, which outlives it (for restarts and
    /// several services on one store).
    pub fn start_in(data: &Path, variables: &[(&str, &str)], arguments: &[&str]) -> Service {
        let api_keys = format!(
            "{},{}",
            hooksign_edge::api_key_entry("acme", API_KEY),
            hooksign_edge::api_key_entry("globex", OTHER_KEY)
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_hooksign"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--component")
            .arg(super::edge_component_path())
            .args(arguments)
            .env("SPIN_VARIABLE_API_KEYS", api_keys)
            .env("SPIN_VARIABLE_SEALING_KEYS", SEALING_KEYS)
            // Tests and the load bench send far more than a client would,
            // to many endpoints on one local receiver; the limits have tests
            // of their own (`--variable` overrides these).
            .env("SPIN_VARIABLE_RATE_LIMIT_PER_KEY", "0")
            .env("SPIN_VARIABLE_MAX_ENDPOINTS_PER_HOST", "1000")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in variables {
            command.args(["--variable", &format!("{name}={value}")]);
        }
        // scripts/test runs the concurrency, fault and multi-node tests
        // again with each of the misreporting stores of Spin.
        if let Ok(defect) = std::env::var("HOOKSIGN_TEST_STORE_DEFECT") {
            command.args(["--store-defect", &defect]);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("hooksign: serving ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let log = Arc::new(Mutex::new(line));
        // Keep what it prints, and pass stderr on to the test's output.
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let readers = [
            (Box::new(stdout) as Box<dyn BufRead + Send>, false),
            (Box::new(stderr), true),
        ]
        .into_iter()
        .map(|(reader, echo)| {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in reader.lines().map_while(Result::ok) {
                    if echo {
                        eprintln!("{line}");
                    }
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                }
            })
        })
        .collect();
        Service {
            child,
            own_data: None,
            data: data.to_path_buf(),
            base,
            log,
            readers,
        }
    }

    /// Stops the service and returns everything it printed, to the last line.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in std::mem::take(&mut self.readers) {
            reader.join().unwrap();
        }
        self.log.lock().unwrap().clone()
    }

    /// Whether the service prints `text` within a few seconds (its output
    /// is collected on other threads, a moment after it is written).
    pub fn logs_soon(&self, text: &str) -> bool {
        let waited = std::time::Instant::now();
        while waited.elapsed() < Duration::from_secs(5) {
            if self.log.lock().unwrap().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        let (status, _, bytes) = self.raw(method, path, key, body.map(str::as_bytes));
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    pub fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, String, Vec<u8>) {
        let mut request = ureq::request(method, &format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.set("authorization", &format!("Bearer {key}"));
        }
        let result = match body {
            Some(body) => request
                .set("content-type", "application/json")
                .send_bytes(body),
            None => request.call(),
        };
        answer(result, &format!("{method} {path}"))
    }

    /// POSTs raw bytes with the given headers and no API key.
    pub fn raw_with_headers(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, String, Vec<u8>) {
        let mut request = ureq::post(&format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.set(name, value);
        }
        answer(request.send_bytes(body), &format!("POST {path}"))
    }

    pub fn ok(&self, method: &str, path: &str, body: Option<&str>) -> Value {
        let (status, value) = self.call(method, path, Some(API_KEY), body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        value
    }

    /// Creates an endpoint for `url`; returns its id and signing secret.
    pub fn create(&self, url: &str) -> (String, String) {
        let created = self.ok(
            "POST",
            "/webhooks",
            Some(&json!({ "url": url }).to_string()),
        );
        (
            created["endpoint"]["id"].as_str().unwrap().to_string(),
            created["signingSecret"].as_str().unwrap().to_string(),
        )
    }

    /// Posts an event and waits for its first attempts; returns the message.
    pub fn event(&self, event_type: &str) -> Value {
        let accepted = self.ok(
            "POST",
            "/events",
            Some(&json!({ "type": event_type, "data": { "n": 1 } }).to_string()),
        );
        self.first_attempts(accepted["id"].as_str().unwrap())
    }

    /// The message once each delivery has had its first attempt or is held
    /// (they follow the 202 in the accepting request), waiting up to 15 s.
    pub fn first_attempts(&self, id: &str) -> Value {
        self.message_when(id, |delivery| {
            delivery["attempts"].as_u64() > Some(0) || delivery["status"] != "pending"
        })
    }

    /// The message once `done` holds for every delivery, waiting up to 15 s.
    pub fn message_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let message = self.ok("GET", &format!("/messages/{id}"), None);
            let settled = message["deliveries"].as_array().unwrap().iter().all(&done);
            if settled || std::time::Instant::now() > deadline {
                return message;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Status, full content type and body of an answer; an error status is an
/// answer too, a failed exchange is not.
fn answer(result: Result<ureq::Response, ureq::Error>, what: &str) -> (u16, String, Vec<u8>) {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("{what}: {error}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_string();
    let mut bytes = Vec::new();
    response.into_reader().read_to_end(&mut bytes).unwrap();
    (status, content_type, bytes)
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request target (path and query).
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A webhook receiver on loopback that records requests and answers with a
/// settable status after a settable delay.
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    /// Statuses for the next requests, in order, before `status` again.
    script: Arc<Mutex<std::collections::VecDeque<u16>>>,
    pub delay_ms: Arc<AtomicU64>,
    /// Requests taken at once (0: any number); the rest wait, unrecorded.
    workers: Arc<Workers>,
}

/// A count of busy workers, up to a limit.
#[derive(Default)]
struct Workers {
    limit: AtomicU64,
    busy: Mutex<u64>,
    freed: std::sync::Condvar,
}

impl Workers {
    /// Waits for a free worker; runs `work` on it.
    fn with<T>(&self, work: impl FnOnce() -> T) -> T {
        let limit = self.limit.load(Ordering::SeqCst);
        if limit == 0 {
            return work();
        }
        let mut busy = self.busy.lock().unwrap();
        while *busy >= limit {
            busy = self.freed.wait(busy).unwrap();
        }
        *busy += 1;
        drop(busy);
        let done = work();
        *self.busy.lock().unwrap() -= 1;
        self.freed.notify_one();
        done
    }
}

impl Receiver {
    pub fn start() -> Receiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let script = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let workers = Arc::new(Workers::default());
        let (log, answer, scripted, delay, taken) = (
            received.clone(),
            status.clone(),
            script.clone(),
            delay_ms.clone(),
            workers.clone(),
        );
        // A thread per connection: a slow answer does not hold up the next
        // request (a retry sent after a timeout).
        let served = super::http_server::serve(move |request| {
            taken.with(|| {
                let status = {
                    // Recorded and scripted under one lock: the n-th request
                    // gets the n-th scripted status.
                    let mut log = log.lock().unwrap();
                    log.push(Received {
                        path: request.path,
                        headers: request.headers,
                        body: request.body,
                    });
                    scripted
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or_else(|| answer.load(Ordering::SeqCst))
                };
                std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
                super::http_server::Response::text(status, "received")
            })
        });
        Receiver {
            url: format!("http://{}/hook", served.address),
            received,
            status,
            script,
            delay_ms,
            workers,
        }
    }

    /// Takes at most `count` requests at once, as a receiver with that
    /// many workers: the rest wait, unrecorded, until one is free.
    pub fn workers(&self, count: u64) {
        self.workers.limit.store(count, Ordering::SeqCst);
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Answers the next requests with these statuses, in order.
    pub fn script(&self, statuses: &[u16]) {
        self.script.lock().unwrap().extend(statuses);
    }

    /// Waits up to `seconds` for at least `count` requests; returns the count.
    pub fn wait_for(&self, count: usize, seconds: u64) -> usize {
        let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
        while self.count() < count && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.count()
    }

    pub fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the receiver got nothing")
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// Receivers on loopback, short timeouts, one attempt per delivery (the
/// durable-delivery tests set their own schedule).
pub fn local() -> [(&'static str, &'static str); 3] {
    [
        ("allow_private_targets", "true"),
        ("delivery_timeout_ms", "1500"),
        ("retry_schedule", "0"),
    ]
}

/// Verifies a received delivery with one secret, at the current time.
pub fn verifies_with(received: &Received, secret: &str, signature: Option<&str>) -> bool {
    let keyring = Keyring::from_records(&[SecretRecord::new(secret)]).unwrap();
    let mut headers = received.headers.clone();
    if let Some(signature) = signature {
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("webhook-signature"));
        headers.push(("webhook-signature".into(), signature.into()));
    }
    keyring.verify_now(&headers, &received.body, 300).is_ok()
}
