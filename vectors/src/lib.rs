//! The hooksign vector format (docs/SPEC.md section 6) and a runner that checks
//! every case against a [`Backend`]: the native library here, the
//! WebAssembly component in `hooksign-host`.

#![forbid(unsafe_code)]

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hooksign::{Error, HeaderValues, Scheme, SecretRecord};
use serde::Deserialize;
use serde_json::{Map, Value, json};

mod native;

pub use native::Native;

/// The `format` every vector file declares.
pub const FORMAT: &str = "hooksign-vectors/1";

/// A parsed vector file.
#[derive(Debug, Clone)]
pub struct VectorFile {
    /// What the file covers.
    pub description: String,
    /// Its cases, in file order.
    pub cases: Vec<Case>,
}

/// One named case: an operation and what it must produce.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique within its file.
    pub name: String,
    /// The operation and its inputs.
    pub input: Input,
    /// The expected outcome.
    pub expect: Outcome,
}

/// An operation with its inputs.
#[derive(Debug, Clone)]
pub enum Input {
    /// Sign a payload with a keyring.
    Sign(SignInput),
    /// Verify a delivery against a keyring.
    Verify(VerifyInput),
    /// Rotate a keyring to a new secret.
    Rotate(RotateInput),
    /// List the secrets usable at a time.
    Active(ActiveInput),
}

/// Inputs of a `sign` case.
#[derive(Debug, Clone)]
pub struct SignInput {
    /// The keyring's scheme (`scheme`, default Standard Webhooks).
    pub scheme: Scheme,
    /// The keyring, current secret first.
    pub secrets: Vec<SecretRecord>,
    /// The message id.
    pub id: String,
    /// The message time, Unix seconds.
    pub timestamp: i64,
    /// The raw body.
    pub payload: Vec<u8>,
}

/// Inputs of a `verify` case.
#[derive(Debug, Clone)]
pub struct VerifyInput {
    /// The keyring's scheme (`scheme`, default Standard Webhooks).
    pub scheme: Scheme,
    /// The keyring, current secret first.
    pub secrets: Vec<SecretRecord>,
    /// Header name and value pairs, as received.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub payload: Vec<u8>,
    /// The clock.
    pub now: i64,
    /// The tolerance, if not the default.
    pub tolerance_seconds: Option<u32>,
}

/// Inputs of a `rotate` case.
#[derive(Debug, Clone)]
pub struct RotateInput {
    /// The keyring's scheme (`scheme`, default Standard Webhooks).
    pub scheme: Scheme,
    /// The keyring before rotation.
    pub secrets: Vec<SecretRecord>,
    /// The clock.
    pub now: i64,
    /// The grace, if not the default.
    pub grace_seconds: Option<u32>,
    /// The secret to add, in text form.
    pub new_secret: String,
}

/// Inputs of an `active` case.
#[derive(Debug, Clone)]
pub struct ActiveInput {
    /// The keyring's scheme (`scheme`, default Standard Webhooks).
    pub scheme: Scheme,
    /// The keyring.
    pub secrets: Vec<SecretRecord>,
    /// The clock.
    pub now: i64,
}

/// What an operation produced, in the shape of a vector's `expect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A `webhook-signature` value.
    Signature(String),
    /// Verification succeeded with the secret at this keyring index.
    Verified {
        /// Keyring index of the matching secret.
        secret: u64,
    },
    /// The keyring after a rotation.
    Secrets(Vec<SecretRecord>),
    /// Indices of the usable secrets.
    Active(Vec<u64>),
    /// The operation failed with this contract error.
    Error(Error),
}

impl Outcome {
    /// The outcome in the vector file's `expect` form.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Signature(signature) => json!({ "signature": signature }),
            Outcome::Verified { secret } => json!({ "ok": { "secret": secret } }),
            Outcome::Secrets(secrets) => json!({ "secrets": secrets }),
            Outcome::Active(active) => json!({ "active": active }),
            Outcome::Error(error) => json!({ "error": error.code() }),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// Runs operations. A backend returns `Err` only when it could not run the
/// operation at all (a trap, a host failure): contract errors are
/// [`Outcome::Error`].
pub trait Backend {
    /// Signs with a keyring.
    fn sign(&mut self, input: &SignInput) -> Result<Outcome, String>;
    /// Verifies a delivery.
    fn verify(&mut self, input: &VerifyInput) -> Result<Outcome, String>;
    /// Verifies a delivery from the values of the headers its scheme reads,
    /// found in its headers by [`HeaderValues::find`].
    fn verify_values(
        &mut self,
        input: &VerifyInput,
        values: HeaderValues<'_>,
    ) -> Result<Outcome, String>;
    /// Rotates a keyring.
    fn rotate(&mut self, input: &RotateInput) -> Result<Outcome, String>;
    /// Lists usable secrets.
    fn active(&mut self, input: &ActiveInput) -> Result<Outcome, String>;
}

/// A case whose outcome differed from its expectation.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The case's name.
    pub name: String,
    /// The expectation, as JSON.
    pub expected: String,
    /// What the backend produced, or why it could not run.
    pub got: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.name, self.expected, self.got
        )
    }
}

/// The result of running cases.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// How many cases matched their expectation.
    pub passed: usize,
    /// The cases that did not.
    pub failures: Vec<Failure>,
}

impl Report {
    /// Adds another report's counts to this one.
    pub fn merge(&mut self, other: Report) {
        self.passed += other.passed;
        self.failures.extend(other.failures);
    }

    /// The closing line, `N passed, N failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failures.len())
    }
}

/// Runs every case of a file against a backend.
pub fn run(file: &VectorFile, backend: &mut dyn Backend) -> Report {
    let mut report = Report::default();
    for case in &file.cases {
        let got = match &case.input {
            Input::Sign(input) => backend.sign(input),
            Input::Verify(input) => verify_both_ways(backend, input, &case.expect),
            Input::Rotate(input) => backend.rotate(input),
            Input::Active(input) => backend.active(input),
        };
        match got {
            Ok(outcome) if outcome == case.expect => report.passed += 1,
            Ok(outcome) => report.failures.push(Failure {
                name: case.name.clone(),
                expected: case.expect.to_string(),
                got: outcome.to_string(),
            }),
            Err(failure) => report.failures.push(Failure {
                name: case.name.clone(),
                expected: case.expect.to_string(),
                got: format!("backend failure: {failure}"),
            }),
        }
    }
    report
}

/// A verify case through `verify`, then, where the headers hold the values
/// its scheme reads, through `verify-values`: the first outcome that is not
/// the expected one, the second marked as such.
fn verify_both_ways(
    backend: &mut dyn Backend,
    input: &VerifyInput,
    expect: &Outcome,
) -> Result<Outcome, String> {
    let outcome = backend.verify(input)?;
    if outcome != *expect {
        return Ok(outcome);
    }
    let Ok(values) = HeaderValues::find(input.scheme, &input.headers) else {
        return Ok(outcome);
    };
    match backend.verify_values(input, values)? {
        same if same == outcome => Ok(outcome),
        other => Err(format!("verify-values gave {other}")),
    }
}

/// Runs every case of every file against a backend.
pub fn run_files(files: &[PathBuf], backend: &mut dyn Backend) -> Result<Report, LoadError> {
    let mut report = Report::default();
    for path in files {
        let file = load(path)?;
        if file.cases.is_empty() {
            return Err(LoadError(format!("{}: no cases", path.display())));
        }
        report.merge(run(&file, backend));
    }
    Ok(report)
}

/// The project's vector files (`tests/vectors/*.json`), sorted.
pub fn project_files() -> Result<Vec<PathBuf>, LoadError> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let entries = std::fs::read_dir(&dir)
        .map_err(|error| LoadError(format!("{}: {error}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| LoadError(format!("{}: {error}", dir.display())))?
            .path();
        if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(LoadError(format!("{}: no vector files", dir.display())));
    }
    Ok(files)
}

/// Why a vector file could not be read.
#[derive(Debug)]
pub struct LoadError(String);

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// Reads and parses a vector file.
pub fn load(path: &Path) -> Result<VectorFile, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| LoadError(format!("{}: {error}", path.display())))?;
    parse(&text).map_err(|LoadError(message)| LoadError(format!("{}: {message}", path.display())))
}

/// Parses vector-file JSON. Unknown formats, ops, fields and error codes
/// are errors, so that a typo cannot silently skip a check.
pub fn parse(text: &str) -> Result<VectorFile, LoadError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawFile {
        format: String,
        description: String,
        cases: Vec<Map<String, Value>>,
    }
    let raw: RawFile = serde_json::from_str(text).map_err(|error| LoadError(error.to_string()))?;
    if raw.format != FORMAT {
        return Err(LoadError(format!(
            "format is {:?}, not {FORMAT:?}",
            raw.format
        )));
    }
    let mut cases: Vec<Case> = Vec::with_capacity(raw.cases.len());
    for (position, fields) in raw.cases.into_iter().enumerate() {
        let case = parse_case(fields)
            .map_err(|message| LoadError(format!("case {position}: {message}")))?;
        if cases.iter().any(|earlier| earlier.name == case.name) {
            return Err(LoadError(format!(
                "case {position}: name {:?} is used twice",
                case.name
            )));
        }
        cases.push(case);
    }
    Ok(VectorFile {
        description: raw.description,
        cases,
    })
}

fn parse_case(mut fields: Map<String, Value>) -> Result<Case, String> {
    let name = match fields.remove("name") {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => return Err("no \"name\" string".into()),
    };
    let in_case = |message: String| format!("{name:?}: {message}");
    let op = match fields.remove("op") {
        Some(Value::String(op)) => op,
        _ => return Err(in_case("no \"op\" string".into())),
    };
    let fields = Value::Object(fields);
    let (input, expect) = match op.as_str() {
        "sign" => {
            let raw: RawSign = from_value(fields).map_err(in_case)?;
            let payload = payload(raw.payload, raw.payload_base64).map_err(in_case)?;
            let expect = expectation(raw.expect, &["signature"]).map_err(in_case)?;
            let input = SignInput {
                scheme: raw.scheme,
                secrets: raw.secrets,
                id: raw.id,
                timestamp: raw.timestamp,
                payload,
            };
            (Input::Sign(input), expect)
        }
        "verify" => {
            let raw: RawVerify = from_value(fields).map_err(in_case)?;
            let payload = payload(raw.payload, raw.payload_base64).map_err(in_case)?;
            let expect = expectation(raw.expect, &["ok"]).map_err(in_case)?;
            let input = VerifyInput {
                scheme: raw.scheme,
                secrets: raw.secrets,
                headers: raw
                    .headers
                    .into_iter()
                    .map(|[name, value]| (name, value))
                    .collect(),
                payload,
                now: raw.now,
                tolerance_seconds: raw.tolerance_seconds,
            };
            (Input::Verify(input), expect)
        }
        "rotate" => {
            let raw: RawRotate = from_value(fields).map_err(in_case)?;
            let expect = expectation(raw.expect, &["secrets"]).map_err(in_case)?;
            let input = RotateInput {
                scheme: raw.scheme,
                secrets: raw.secrets,
                now: raw.now,
                grace_seconds: raw.grace_seconds,
                new_secret: raw.new_secret,
            };
            (Input::Rotate(input), expect)
        }
        "active" => {
            let raw: RawActive = from_value(fields).map_err(in_case)?;
            let expect = expectation(raw.expect, &["active"]).map_err(in_case)?;
            let input = ActiveInput {
                scheme: raw.scheme,
                secrets: raw.secrets,
                now: raw.now,
            };
            (Input::Active(input), expect)
        }
        other => return Err(in_case(format!("unknown op {other:?}"))),
    };
    Ok(Case {
        name,
        input,
        expect,
    })
}

fn from_value<T: serde::de::DeserializeOwned>(fields: Value) -> Result<T, String> {
    serde_json::from_value(fields).map_err(|error| error.to_string())
}

fn payload(text: Option<String>, base64: Option<String>) -> Result<Vec<u8>, String> {
    match (text, base64) {
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(encoded)) => BASE64
            .decode(encoded)
            .map_err(|error| format!("payloadBase64: {error}")),
        _ => Err("exactly one of \"payload\" and \"payloadBase64\" is required".into()),
    }
}

/// Parses an `expect` object: `{"error": CODE}` (not for `active`) or the
/// op's own success form, named by `success`.
fn expectation(expect: Map<String, Value>, success: &[&str]) -> Result<Outcome, String> {
    let mut entries = expect.into_iter();
    let (Some((key, value)), None) = (entries.next(), entries.next()) else {
        return Err("\"expect\" must have exactly one field".into());
    };
    let bad = |error: serde_json::Error| format!("expect.{key}: {error}");
    let outcome = match key.as_str() {
        "error" if success != ["active"] => {
            let code: String = serde_json::from_value(value).map_err(bad)?;
            Outcome::Error(Error::from_code(&code).ok_or(format!("unknown error code {code:?}"))?)
        }
        "signature" => Outcome::Signature(serde_json::from_value(value).map_err(bad)?),
        "ok" => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Ok {
                secret: u64,
            }
            let ok: Ok = serde_json::from_value(value).map_err(bad)?;
            Outcome::Verified { secret: ok.secret }
        }
        "secrets" => Outcome::Secrets(serde_json::from_value(value).map_err(bad)?),
        "active" => Outcome::Active(serde_json::from_value(value).map_err(bad)?),
        _ => return Err(format!("unknown expectation {key:?}")),
    };
    if !success.contains(&key.as_str()) && !matches!(outcome, Outcome::Error(_)) {
        return Err(format!("expectation {key:?} does not fit this op"));
    }
    Ok(outcome)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSign {
    #[serde(default)]
    scheme: Scheme,
    secrets: Vec<SecretRecord>,
    id: String,
    timestamp: i64,
    payload: Option<String>,
    payload_base64: Option<String>,
    expect: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawVerify {
    #[serde(default)]
    scheme: Scheme,
    secrets: Vec<SecretRecord>,
    headers: Vec<[String; 2]>,
    payload: Option<String>,
    payload_base64: Option<String>,
    now: i64,
    tolerance_seconds: Option<u32>,
    expect: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRotate {
    #[serde(default)]
    scheme: Scheme,
    secrets: Vec<SecretRecord>,
    now: i64,
    grace_seconds: Option<u32>,
    new_secret: String,
    expect: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawActive {
    #[serde(default)]
    scheme: Scheme,
    secrets: Vec<SecretRecord>,
    now: i64,
    expect: Map<String, Value>,
}
