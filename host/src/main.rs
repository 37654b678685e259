//! `hooksign`: sign, verify and rotate Standard Webhooks deliveries, serve
//! the edge API locally, configure it, and run test vectors against the
//! native library or the WebAssembly component. One function per command.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use hooksign::{
    DEFAULT_GRACE_SECONDS, DEFAULT_TOLERANCE_SECONDS, Keyring, Scheme, Secret, SecretRecord,
};
use hooksign_edge::InboundSource;
use hooksign_host::{ComponentBackend, SignerComponent, default_component_path};
use hooksign_vectors::{Native, run_files};

/// Sign and verify webhooks the Standard Webhooks way, with rotating
/// secrets; serve the webhook API on this machine.
#[derive(Parser)]
#[command(name = "hooksign", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The keyring, from `--secret` values or a keyring file.
#[derive(Args)]
struct KeyringArgs {
    /// A key, current first; repeat for a keyring. Standard Webhooks:
    /// `whsec_` (HMAC), `whsk_` (Ed25519 signing key) or `whpk_` (Ed25519
    /// public key, verify only); other schemes: the provider's secret.
    #[arg(
        long = "secret",
        value_name = "SECRET",
        required_unless_present = "keyring"
    )]
    secrets: Vec<String>,
    /// A keyring file: a JSON list of {"key", "notBefore"?, "notAfter"?}.
    #[arg(long, value_name = "FILE", conflicts_with = "secrets")]
    keyring: Option<PathBuf>,
    /// How deliveries are signed: standard-webhooks, stripe, github, slack
    /// or shopify.
    #[arg(long, value_name = "SCHEME", default_value = "standard-webhooks", value_parser = parse_scheme)]
    scheme: Scheme,
}

impl KeyringArgs {
    fn load(&self) -> Result<Keyring, Failure> {
        load_keyring(&self.secrets, self.keyring.as_deref(), self.scheme)
    }
}

fn parse_scheme(name: &str) -> Result<Scheme, String> {
    Scheme::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Scheme::ALL.iter().map(|scheme| scheme.name()).collect();
        format!("not one of {}", names.join(", "))
    })
}

/// The kind of key to make.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KeyKindArg {
    /// A shared secret, `whsec_` (signs `v1`).
    HmacSha256,
    /// An Ed25519 key pair, `whsk_` and its public `whpk_` (signs `v1a`).
    Ed25519,
}

impl KeyKindArg {
    fn generate(self) -> Result<Secret, Failure> {
        match self {
            KeyKindArg::HmacSha256 => Secret::generate(),
            KeyKindArg::Ed25519 => Secret::generate_ed25519(),
        }
        .map_err(|error| Failure::Usage(error.to_string()))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random secret (`whsec_` and base64 of 32 bytes), or an
    /// Ed25519 signing key (`whsk_`, its 32-byte seed) and, on a second
    /// line, its public key (`whpk_`).
    GenerateSecret {
        /// The kind of key.
        #[arg(long, value_enum, default_value_t = KeyKindArg::HmacSha256)]
        kind: KeyKindArg,
    },
    /// Sign a payload (FILE, or standard input) and print the scheme's headers.
    Sign {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// The message id (printable ASCII, no `.` or space).
        #[arg(long)]
        id: String,
        /// Unix seconds; default: now.
        #[arg(long)]
        timestamp: Option<i64>,
        /// The payload file; default: standard input.
        file: Option<PathBuf>,
    },
    /// Verify a delivery; prints the index of the secret that matched, or
    /// exits 1 with the error code.
    Verify {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// A received header, `name: value`; repeat for each.
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// The clock, Unix seconds; default: now.
        #[arg(long)]
        now: Option<i64>,
        /// Accepted timestamp distance in seconds (0 to 86400).
        #[arg(long, default_value_t = DEFAULT_TOLERANCE_SECONDS)]
        tolerance: u32,
        /// The payload file; default: standard input.
        file: Option<PathBuf>,
    },
    /// Rotate a keyring file's secrets and print the new keyring as JSON.
    Rotate {
        /// The keyring file: a JSON list of {"key", "notBefore"?, "notAfter"?}.
        #[arg(long, value_name = "FILE")]
        keyring: PathBuf,
        /// How long the previous secrets stay valid, in seconds (0 to 604800).
        #[arg(long, default_value_t = DEFAULT_GRACE_SECONDS)]
        grace: u32,
        /// The clock, Unix seconds; default: now.
        #[arg(long)]
        now: Option<i64>,
        /// The new secret; default: a freshly generated one of `--kind`.
        #[arg(long, value_name = "SECRET")]
        new_secret: Option<String>,
        /// The kind of key to generate when no `--new-secret` is given.
        #[arg(long, value_enum, default_value_t = KeyKindArg::HmacSha256, conflicts_with = "new_secret")]
        kind: KeyKindArg,
        /// The keyring's scheme (a provider's secret needs `--new-secret`).
        #[arg(long, value_name = "SCHEME", default_value = "standard-webhooks", value_parser = parse_scheme)]
        scheme: Scheme,
    },
    /// Serve the edge API (the Spin HTTP component) with an on-disk key-value store.
    Serve(ServeArgs),
    /// Configure the receiver gateway (`POST /inbound/{source}`).
    Inbound {
        #[command(subcommand)]
        command: InboundCommand,
    },
    /// Manage API keys for the edge service.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Make a platform key for the `platform_keys` variable.
    PlatformKey {
        #[command(subcommand)]
        command: PlatformKeyCommand,
    },
    /// Make a sealing key for the `sealing_keys` variable.
    SealingKey {
        #[command(subcommand)]
        command: SealingKeyCommand,
    },
    /// Run vector files; prints each failed case, then `N passed, N failed`.
    Vectors {
        /// Vector files (hooksign-vectors/1 JSON).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Which implementation to check.
        #[arg(long, value_enum, default_value_t = Engine::Native)]
        engine: Engine,
        /// The signer component, for `--engine component`
        /// [default: $CARGO_TARGET_DIR or target/, then wasm32-wasip2/component/hooksign_signer.wasm].
        #[arg(long, value_name = "PATH")]
        component: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InboundCommand {
    /// Print the `inbound_sources` value with this source added.
    Add {
        /// The source's name, as in `POST /inbound/{source}`.
        #[arg(long)]
        source: String,
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Where verified deliveries go (http or https).
        #[arg(long = "forward", value_name = "URL")]
        forward_url: String,
        /// Accepted timestamp distance in seconds (0 to 86400).
        #[arg(long)]
        tolerance: Option<u32>,
        /// The organisation whose API keys may read the source's counts
        /// (`GET /inbound/{source}/stats`); without it, none may.
        #[arg(long, value_name = "ORG")]
        org: Option<String>,
        /// An existing `inbound_sources` JSON file to add the source to.
        #[arg(long, value_name = "FILE")]
        into: Option<PathBuf>,
    },
}

/// `hooksign serve`'s flags.
#[derive(Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: std::net::SocketAddr,
    /// Directory of the embedded key-value store.
    #[arg(long, value_name = "DIR", default_value = ".hooksign")]
    data: PathBuf,
    /// A shared store instead, for several nodes: redis://[:PASSWORD@]HOST:PORT[/DB]
    /// (or rediss://).
    #[arg(long = "store", value_name = "URL")]
    store_url: Option<String>,
    /// PEM certificates to trust for a rediss:// store instead of the
    /// Web PKI roots (a private CA).
    #[arg(long, value_name = "FILE", requires = "store_url")]
    store_ca: Option<PathBuf>,
    /// Test mode: the store's compare-and-swap misreports as one of
    /// Spin's stores does (reports-failure, conflict-reports-success,
    /// absent-upserts).
    #[arg(long, value_name = "NAME", hide = true, value_parser = parse_defect)]
    store_defect: Option<hooksign_host::store::Defect>,
    /// Log each request's store calls (its first attempts included) when
    /// its instance ends: `hooksign: POST /events: 66 store calls (…)`.
    #[arg(long)]
    log_store_calls: bool,
    /// A Spin variable, `name=value`; overrides `SPIN_VARIABLE_<NAME>`.
    #[arg(long = "variable", value_name = "NAME=VALUE", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// The edge component
    /// [default: $CARGO_TARGET_DIR or target/, then wasm32-wasip2/component/hooksign_http.wasm].
    #[arg(long, value_name = "PATH")]
    component: Option<PathBuf>,
    /// How long one request may take before it is stopped with a 503.
    #[arg(long, value_name = "MS", default_value_t = hooksign_host::serve::DEFAULT_REQUEST_DEADLINE_MS)]
    request_timeout_ms: u64,
    /// How often the dispatcher sends due deliveries; 0 turns it off
    /// (accepted events still get their first attempt at once).
    #[arg(long, value_name = "MS", default_value_t = hooksign_host::serve::DEFAULT_DISPATCH_INTERVAL_MS)]
    dispatch_interval_ms: u64,
    /// How long a client may take to send a request's headers, and how
    /// long a kept-alive connection may sit idle, before it is closed.
    #[arg(long, value_name = "MS", default_value_t = hooksign_host::serve::DEFAULT_HEADER_TIMEOUT_MS)]
    header_timeout_ms: u64,
    /// How long a request's body may take to arrive after its headers
    /// (then 408 `body_timeout` and the connection is closed).
    #[arg(long, value_name = "MS", default_value_t = hooksign_host::serve::DEFAULT_BODY_TIMEOUT_MS)]
    body_timeout_ms: u64,
    /// Open connections at most; further ones wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = hooksign_host::serve::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// PEM certificates that https receivers may chain to, besides the
    /// Web PKI roots (receivers under a private CA).
    #[arg(long, value_name = "FILE")]
    outbound_ca: Option<PathBuf>,
    /// A new connection for every plain-http send, none kept alive (as
    /// Spin's `connection_pooling = false`): for receivers that cannot
    /// serve kept-alive connections.
    #[arg(long)]
    no_connection_pooling: bool,
    /// Test mode: NAME=ADDRESS answers the outbound check (and the
    /// connection) for NAME without DNS.
    #[arg(long, value_name = "NAME=ADDRESS", hide = true, value_parser = parse_pin)]
    resolve: Vec<(String, std::net::IpAddr)>,
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Print a new `sgn_live_…` key and its `api_keys` entry.
    New {
        /// The organisation the key belongs to.
        #[arg(long)]
        org: String,
    },
}

#[derive(Subcommand)]
enum PlatformKeyCommand {
    /// Print a new `sgn_plat_…` key and its `platform_keys` entry.
    New,
}

#[derive(Subcommand)]
enum SealingKeyCommand {
    /// Print a new `ID:BASE64` entry (32 random bytes): list it first in
    /// `sealing_keys` to seal with it, keep older ones after it to unseal.
    New {
        /// The key's id, recorded with everything it seals.
        #[arg(long, default_value = "k1")]
        id: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Engine {
    /// The Rust library, linked in.
    Native,
    /// The WebAssembly component, run by wasmtime.
    Component,
}

/// What went wrong, and the exit code it gets.
enum Failure {
    /// A contract error from signing, verification or rotation: exit 1.
    Contract(hooksign::Error),
    /// Some vectors failed: exit 1.
    VectorsFailed,
    /// Unusable input or environment: exit 2.
    Usage(String),
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Contract(error)) => {
            eprintln!("hooksign: {}: {error}", error.code());
            ExitCode::from(1)
        }
        Err(Failure::VectorsFailed) => ExitCode::from(1),
        Err(Failure::Usage(message)) => {
            eprintln!("hooksign: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::GenerateSecret { kind } => generate_secret(kind),
        Command::Sign {
            keyring,
            id,
            timestamp,
            file,
        } => sign(&keyring, &id, timestamp, file.as_deref()),
        Command::Verify {
            keyring,
            headers,
            now,
            tolerance,
            file,
        } => verify(&keyring, &headers, now, tolerance, file.as_deref()),
        Command::Rotate {
            keyring,
            grace,
            now,
            new_secret,
            kind,
            scheme,
        } => rotate(&keyring, grace, now, new_secret.as_deref(), kind, scheme),
        Command::Serve(args) => serve(args),
        Command::ApiKey {
            command: ApiKeyCommand::New { org },
        } => new_api_key(&org),
        Command::PlatformKey {
            command: PlatformKeyCommand::New,
        } => new_platform_key(),
        Command::SealingKey {
            command: SealingKeyCommand::New { id },
        } => new_sealing_key(&id),
        Command::Inbound {
            command:
                InboundCommand::Add {
                    source,
                    keyring,
                    forward_url,
                    tolerance,
                    org,
                    into,
                },
        } => add_inbound_source(
            source,
            &keyring,
            forward_url,
            tolerance,
            org,
            into.as_deref(),
        ),
        Command::Vectors {
            files,
            engine,
            component,
        } => vectors(&files, engine, component),
    }
}

fn generate_secret(kind: KeyKindArg) -> Result<(), Failure> {
    let secret = kind.generate()?;
    println!("{}", secret.to_text());
    if let Some(public) = secret.public_key() {
        println!("{}", public.to_text());
    }
    Ok(())
}

fn sign(
    keyring: &KeyringArgs,
    id: &str,
    timestamp: Option<i64>,
    file: Option<&Path>,
) -> Result<(), Failure> {
    let keyring = keyring.load()?;
    let payload = read_payload(file)?;
    let timestamp = timestamp.unwrap_or_else(hooksign::unix_now);
    let headers = keyring
        .sign_headers(id, timestamp, &payload)
        .map_err(Failure::Contract)?;
    for (name, value) in headers {
        println!("{name}: {value}");
    }
    Ok(())
}

fn verify(
    keyring: &KeyringArgs,
    headers: &[(String, String)],
    now: Option<i64>,
    tolerance: u32,
    file: Option<&Path>,
) -> Result<(), Failure> {
    let keyring = keyring.load()?;
    let payload = read_payload(file)?;
    let now = now.unwrap_or_else(hooksign::unix_now);
    let verified = keyring
        .verify(headers, &payload, now, tolerance)
        .map_err(Failure::Contract)?;
    println!("{}", verified.secret);
    Ok(())
}

fn rotate(
    keyring: &Path,
    grace: u32,
    now: Option<i64>,
    new_secret: Option<&str>,
    kind: KeyKindArg,
    scheme: Scheme,
) -> Result<(), Failure> {
    let keyring = load_keyring(&[], Some(keyring), scheme)?;
    let new_secret = match new_secret {
        Some(text) => Secret::parse_for(scheme, text).map_err(Failure::Contract)?,
        None if scheme == Scheme::StandardWebhooks => kind.generate()?,
        None => {
            return Err(Failure::Usage(format!(
                "{} issues its own secrets: pass the new one with --new-secret",
                scheme.name()
            )));
        }
    };
    let now = now.unwrap_or_else(hooksign::unix_now);
    let rotated = keyring
        .rotate(new_secret, now, grace)
        .map_err(Failure::Contract)?;
    let json = serde_json::to_string_pretty(&rotated.to_records())
        .map_err(|error| Failure::Usage(error.to_string()))?;
    println!("{json}");
    Ok(())
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    let millis = std::time::Duration::from_millis;
    let options = hooksign_host::serve::ServeOptions {
        component: args
            .component
            .unwrap_or_else(hooksign_host::serve::default_edge_component_path),
        listen: args.listen,
        data: args.data,
        store_url: args.store_url,
        store_ca: args.store_ca,
        store_defect: args.store_defect,
        log_store_calls: args.log_store_calls,
        variables: hooksign_host::variables_from(std::env::vars(), &args.variables),
        request_deadline: millis(args.request_timeout_ms),
        dispatch_every: (args.dispatch_interval_ms > 0).then(|| millis(args.dispatch_interval_ms)),
        header_timeout: millis(args.header_timeout_ms),
        body_timeout: millis(args.body_timeout_ms),
        max_connections: args.max_connections.max(1),
        resolve: args.resolve,
        outbound_ca: args.outbound_ca,
        connection_pooling: !args.no_connection_pooling,
    };
    hooksign_host::serve::serve(options).map_err(Failure::Usage)
}

fn new_api_key(org: &str) -> Result<(), Failure> {
    if !hooksign_edge::is_valid_organisation(org) {
        return Err(Failure::Usage(
            "an organisation name has no `:` or `,`".into(),
        ));
    }
    let key = hooksign_edge::new_api_key().map_err(|error| Failure::Usage(error.to_string()))?;
    println!("key:      {key}");
    println!("api_keys: {}", hooksign_edge::api_key_entry(org, &key));
    Ok(())
}

fn new_platform_key() -> Result<(), Failure> {
    let key =
        hooksign_edge::new_platform_key().map_err(|error| Failure::Usage(error.to_string()))?;
    println!("key:           {key}");
    println!("platform_keys: {}", hooksign_edge::platform_key_entry(&key));
    Ok(())
}

fn new_sealing_key(id: &str) -> Result<(), Failure> {
    let entry = hooksign_edge::new_sealing_key(id)
        .ok_or_else(|| Failure::Usage("a key id is 1 to 32 letters, digits, - or _".into()))?
        .map_err(|error| Failure::Usage(error.to_string()))?;
    println!("{entry}");
    Ok(())
}

fn add_inbound_source(
    name: String,
    keyring: &KeyringArgs,
    forward_url: String,
    tolerance: Option<u32>,
    org: Option<String>,
    into: Option<&Path>,
) -> Result<(), Failure> {
    let keyring = keyring.load()?;
    if tolerance.is_some_and(|seconds| seconds > hooksign::MAX_TOLERANCE_SECONDS) {
        return Err(Failure::Contract(hooksign::Error::InvalidInput));
    }
    if !(forward_url.starts_with("http://") || forward_url.starts_with("https://")) {
        return Err(Failure::Usage(
            "--forward takes an http or https URL".into(),
        ));
    }
    let mut sources: BTreeMap<String, InboundSource> = match into {
        None => BTreeMap::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| Failure::Usage(format!("{}: {error}", path.display())))?;
            serde_json::from_str(&text).map_err(|_| {
                Failure::Usage(format!("{}: not a JSON object of sources", path.display()))
            })?
        }
    };
    let source = InboundSource {
        secrets: keyring.to_records(),
        tolerance_seconds: tolerance,
        forward_url,
        scheme: keyring.scheme(),
        org,
    };
    sources.insert(name, source);
    let json =
        serde_json::to_string(&sources).map_err(|error| Failure::Usage(error.to_string()))?;
    println!("{json}");
    Ok(())
}

fn vectors(files: &[PathBuf], engine: Engine, component: Option<PathBuf>) -> Result<(), Failure> {
    let report = match engine {
        Engine::Native => run_files(files, &mut Native),
        Engine::Component => {
            let path = component.unwrap_or_else(default_component_path);
            let component =
                SignerComponent::load(&path).map_err(|error| Failure::Usage(error.to_string()))?;
            run_files(files, &mut ComponentBackend::new(&component))
        }
    }
    .map_err(|error| Failure::Usage(error.to_string()))?;
    for failure in &report.failures {
        println!("{failure}");
    }
    println!("{}", report.summary());
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::VectorsFailed)
    }
}

/// The keyring from `--secret` values or a keyring file. Errors name the
/// secret's position, never its text.
fn load_keyring(
    secrets: &[String],
    file: Option<&Path>,
    scheme: Scheme,
) -> Result<Keyring, Failure> {
    let records: Vec<SecretRecord> = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|error| Failure::Usage(format!("{}: {error}", path.display())))?;
            serde_json::from_str(&text).map_err(|error| {
                // serde_json's message may quote the input; report only where it failed.
                Failure::Usage(format!(
                    "{}: not a JSON list of secret records (line {}, column {})",
                    path.display(),
                    error.line(),
                    error.column()
                ))
            })?
        }
        None => secrets.iter().map(SecretRecord::new).collect(),
    };
    Keyring::from_records_for(scheme, &records).map_err(Failure::Contract)
}

fn read_payload(file: Option<&Path>) -> Result<Vec<u8>, Failure> {
    match file {
        Some(path) => std::fs::read(path)
            .map_err(|error| Failure::Usage(format!("{}: {error}", path.display()))),
        None => {
            let mut payload = Vec::new();
            std::io::stdin()
                .read_to_end(&mut payload)
                .map_err(|error| Failure::Usage(format!("standard input: {error}")))?;
            Ok(payload)
        }
    }
}

/// `NAME=ADDRESS` of `--resolve`.
fn parse_pin(text: &str) -> Result<(String, std::net::IpAddr), String> {
    let (name, address) = text
        .split_once('=')
        .ok_or_else(|| "expected NAME=ADDRESS".to_string())?;
    let address = address
        .parse()
        .map_err(|_| format!("{address} is not an IP address"))?;
    Ok((name.to_string(), address))
}

/// A store defect's name.
fn parse_defect(name: &str) -> Result<hooksign_host::store::Defect, String> {
    hooksign_host::store::Defect::named(name).ok_or_else(|| format!("no store defect {name}"))
}

/// `name=value`.
fn parse_variable(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| "a variable is `name=value`".to_string())?;
    Ok((name.trim().to_ascii_lowercase(), value.to_string()))
}

/// `name: value`, as curl takes it: the value is trimmed of surrounding spaces.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| "a header is `name: value`".to_string())?;
    let name = name.trim();
    if name.is_empty() {
        return Err("a header needs a name before the `:`".into());
    }
    Ok((name.to_string(), value.trim().to_string()))
}
