//! `hooksign serve`: the edge component served over HTTP/1.1 on wasmtime,
//! as Spin would run it: one pre-instantiated component, a fresh instance
//! per request, the key-value store and variables provided by the host.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hooksign_edge::{Code, ConfiguredToken, Problem};
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, Linker, Resource};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostIncomingRequest, HostResponseOutparam};

use crate::edge_imports::{self, EdgeState};
use crate::outbound::OutboundPolicy;
use crate::store::{Counting, Counts, Defect, Defective, KeyValueStore, RedisStore, SqliteStore};

/// What `hooksign serve` needs.
pub struct ServeOptions {
    /// The edge component.
    pub component: PathBuf,
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The embedded key-value store's directory.
    pub data: PathBuf,
    /// A shared store instead (`redis://…`, `rediss://…`).
    pub store_url: Option<String>,
    /// PEM certificates a `rediss://` store's must chain to, instead of the
    /// Web PKI roots.
    pub store_ca: Option<PathBuf>,
    /// A test mode: the store's compare-and-swap misreports this way.
    pub store_defect: Option<Defect>,
    /// Log each request's store calls when its instance ends.
    pub log_store_calls: bool,
    /// The Spin variables.
    pub variables: HashMap<String, String>,
    /// How long one request may take, response body included; past it the
    /// instance is dropped and the client gets 503 `request_timeout` (if
    /// nothing was sent yet).
    pub request_deadline: Duration,
    /// How often the dispatcher runs a pass (`POST /dispatch`); `None`:
    /// never, and only the accepting requests' first attempts are made.
    pub dispatch_every: Option<Duration>,
    /// How long a client may take to send a request's headers, and a
    /// kept-alive connection may sit idle, before it is closed.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive after its headers;
    /// past it the client gets 408 `body_timeout` and the connection closes.
    pub body_timeout: Duration,
    /// Open connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// A test mode: these names resolve to these addresses, not by DNS.
    pub resolve: Vec<(String, std::net::IpAddr)>,
    /// PEM certificates https receivers may chain to, besides the Web PKI.
    pub outbound_ca: Option<PathBuf>,
    /// Whether plain-http connections are kept alive between sends.
    pub connection_pooling: bool,
}

/// The default dispatch interval, in milliseconds.
pub const DEFAULT_DISPATCH_INTERVAL_MS: u64 = 1000;

/// Dispatch passes that may run at once: a pass waits for its slowest
/// receiver, and the next tick should not wait behind it.
const MAX_CONCURRENT_PASSES: usize = 2;

/// The default request deadline, in milliseconds: four default delivery
/// timeouts, so that a delivery that times out still gets its attempt
/// recorded.
pub const DEFAULT_REQUEST_DEADLINE_MS: u64 = 4 * hooksign_edge::DEFAULT_DELIVERY_TIMEOUT_MS;

/// `--header-timeout-ms` when not given: nginx's `client_header_timeout`
/// is 60 s; headers from a real client take milliseconds.
pub const DEFAULT_HEADER_TIMEOUT_MS: u64 = 10_000;

/// `--body-timeout-ms` when not given: a body is at most 1 MiB, so this
/// asks for 100 KB/s at the least.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;

/// `--max-connections` when not given.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The most instances a node holds at once, whatever `--max-connections`
/// says: each reserves 4 GiB of address space (not of memory) for its
/// linear memory, and a process has 128 TiB.
const MAX_INSTANCES: usize = 2048;

/// Instances at once: one per connection and one per dispatch pass. A
/// request past them (the connection's previous request still making its
/// first attempts after it answered) waits for one to end.
fn instances(max_connections: usize) -> u32 {
    let wanted = max_connections
        .saturating_add(MAX_CONCURRENT_PASSES)
        .min(MAX_INSTANCES);
    u32::try_from(wanted).unwrap_or(u32::MAX)
}

/// What of each instance slot's memory stays resident. With the kernel's
/// page scan, only the pages an instance wrote are reset, so keep as much
/// as a request writes: the edge's stack (1 MiB), its data and heap. Without
/// it every byte kept would be zeroed on each reuse, so keep only the first
/// 128 KiB, as the signer does.
fn keep_resident() -> usize {
    if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
        4 << 20
    } else {
        128 << 10
    }
}

/// Where `cargo build --profile component --target wasm32-wasip2 -p hooksign-http`
/// writes the edge component.
pub fn default_edge_component_path() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("wasm32-wasip2/component/hooksign_http.wasm")
}

struct Server {
    pre: ProxyPre<EdgeState>,
    /// One permit per slot of the engine's instance pool: a request takes
    /// one before it instantiates, and waits for one when all are taken.
    instance_slots: Arc<Semaphore>,
    store: Arc<dyn KeyValueStore>,
    variables: Arc<HashMap<String, String>>,
    outbound: OutboundPolicy,
    request_deadline: Duration,
    body_timeout: Duration,
    log_store_calls: bool,
    /// The store answers swaps truthfully (no test-mode defect): an
    /// instance's swaps may begin from the values it last saw.
    truthful_store: bool,
}

/// How a request's instance ended without a response.
enum Failure {
    Deadline,
    /// The body did not all arrive within the body timeout.
    SlowBody,
    Component(wasmtime::Error),
}

impl From<wasmtime::Error> for Failure {
    fn from(error: wasmtime::Error) -> Failure {
        Failure::Component(error)
    }
}

/// Serves until the process is stopped. Prints `hooksign: serving
/// http://ADDR` once listening.
pub fn serve(options: ServeOptions) -> Result<(), String> {
    // One worker thread per core, tokio's default: an instance waiting on
    // its store (Redis, or the SQLite store's driver) leaves its thread
    // to run others (BENCHMARKS.md, fifteenth and nineteenth rounds; more
    // threads did not help SQLite either).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(run(options))
}

async fn run(mut options: ServeOptions) -> Result<(), String> {
    let instances = instances(options.max_connections);
    let pre = load(&options.component, instances)
        .map_err(|error| format!("cannot load {}: {error:#}", options.component.display()))?;
    let store = open_store(&options)?;
    let mut variables = std::mem::take(&mut options.variables);
    // This host's stores answer compare-and-swap truthfully (its test mode
    // of Spin's defects aside): the component need not confirm each swap.
    if options.store_defect.is_none() {
        variables
            .entry(hooksign_edge::TRUTHFUL_SWAPS_VARIABLE.to_string())
            .or_insert_with(|| "true".to_string());
    }
    // The dispatcher's own credential when none is configured.
    let configured = variables.get("dispatch_token").map(String::as_str);
    let dispatch_token = match hooksign_edge::BearerToken::configured(configured) {
        ConfiguredToken::TooShort => {
            return Err(format!(
                "the dispatch_token variable must be at least {} characters",
                hooksign_edge::MIN_BEARER_TOKEN_LEN
            ));
        }
        ConfiguredToken::Token(token) => token.to_string(),
        ConfiguredToken::Unset => {
            let token = hooksign_edge::new_api_key()
                .map_err(|error| format!("cannot make a dispatch token: {error}"))?;
            variables.insert("dispatch_token".into(), token.clone());
            token
        }
    };
    let server = Arc::new(Server {
        pre,
        instance_slots: Arc::new(Semaphore::new(instances as usize)),
        store,
        outbound: outbound_policy(&options, &variables)?,
        variables: Arc::new(variables),
        request_deadline: options.request_deadline,
        body_timeout: options.body_timeout,
        log_store_calls: options.log_store_calls,
        truthful_store: options.store_defect.is_none(),
    });
    if let Some(every) = options.dispatch_every {
        tokio::spawn(dispatcher(server.clone(), every, dispatch_token));
    }
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", options.listen))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("cannot read the listening address: {error}"))?;
    println!("hooksign: serving http://{address}");
    accept(listener, server, &options).await
}

/// The store of `--store-url` (Redis) or `--data` (SQLite), misreporting
/// as `--store-defect` says.
fn open_store(options: &ServeOptions) -> Result<Arc<dyn KeyValueStore>, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let mut store: Arc<dyn KeyValueStore> = match &options.store_url {
        Some(url) => {
            let ca = options.store_ca.as_deref().map(read).transpose()?;
            Arc::new(RedisStore::open(url, ca)?)
        }
        None => Arc::new(SqliteStore::open(&options.data)?),
    };
    if let Some(defect) = options.store_defect {
        eprintln!("hooksign: test mode: the store's compare-and-swap misreports ({defect:?})");
        store = Arc::new(Defective {
            inner: store,
            defect,
        });
    }
    Ok(store)
}

/// The outbound policy of the variables, pinned names and extra roots.
fn outbound_policy(
    options: &ServeOptions,
    variables: &HashMap<String, String>,
) -> Result<OutboundPolicy, String> {
    let policy = OutboundPolicy::from_variables(variables)
        .pinning(options.resolve.clone())
        .refusing_own(crate::outbound::own_addresses())
        .pooling(options.connection_pooling);
    let Some(path) = &options.outbound_ca else {
        return Ok(policy);
    };
    let pem =
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let roots = crate::tls_send::web_pki_and(&pem)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    Ok(policy.trusting(roots))
}

/// Serves each connection in a task of its own, at most
/// `--max-connections` at once.
async fn accept(
    listener: TcpListener,
    server: Arc<Server>,
    options: &ServeOptions,
) -> Result<(), String> {
    let open = Arc::new(Semaphore::new(options.max_connections));
    loop {
        // At the cap, stop accepting: further clients wait in the backlog.
        let Ok(permit) = open.clone().acquire_owned().await else {
            return Err("the connection limit was closed".into());
        };
        let (connection, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("hooksign: accept failed: {error}");
                continue;
            }
        };
        let server = server.clone();
        let header_timeout = options.header_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(request).await) }
            });
            // The timer turns on hyper's header-read timeout, which also
            // closes a kept-alive connection that sends nothing: a client
            // that sends its headers a byte at a time cannot hold a
            // connection. A client that hangs up mid-request is not the
            // server's problem.
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(connection), service)
                .await;
            drop(permit);
        });
    }
}

/// Runs a dispatch pass every `every`, each in an instance of its own.
async fn dispatcher(server: Arc<Server>, every: Duration, token: String) {
    let passes = Arc::new(Semaphore::new(MAX_CONCURRENT_PASSES));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Ok(pass) = passes.clone().try_acquire_owned() else {
            continue;
        };
        let server = server.clone();
        let authorization = format!("Bearer {token}");
        tokio::spawn(async move {
            // A pass that found work is followed by another at once.
            while server.dispatch_pass(&authorization).await > 0 {}
            drop(pass);
        });
    }
}

fn load(path: &Path, instances: u32) -> wasmtime::Result<ProxyPre<EdgeState>> {
    // Guests yield to the runtime every epoch tick, so a request that
    // computes for ever cannot hold a worker thread past its deadline.
    // Instances come from a pool: a fresh one maps and faults in no memory
    // (BENCHMARKS.md, sixteenth round).
    let slots = crate::engine::InstancePool {
        instances,
        keep_resident: keep_resident(),
    };
    let engine = crate::engine::engine(true, slots)?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    edge_imports::add_to_linker(&mut linker)?;
    ProxyPre::new(linker.instantiate_pre(&component)?)
}

impl Server {
    /// Runs `POST /dispatch` in an instance of its own; returns how many
    /// attempts the pass made (0 when it failed, which it logs).
    async fn dispatch_pass(&self, authorization: &str) -> u64 {
        use http_body_util::BodyExt as _;
        let body = http_body_util::Empty::<bytes::Bytes>::new()
            .map_err(|never| -> hyper::Error { match never {} });
        let request = hyper::Request::post("http://127.0.0.1/dispatch")
            .header("authorization", authorization)
            .body(body);
        let response = match request {
            Ok(request) => self.run_instance(request).await,
            Err(error) => {
                eprintln!("hooksign: cannot build a dispatch request: {error}");
                return 0;
            }
        };
        let response = match response {
            Ok(response) if response.status().is_success() => response,
            Ok(response) => {
                eprintln!("hooksign: a dispatch pass answered {}", response.status());
                return 0;
            }
            Err(_) => {
                eprintln!("hooksign: a dispatch pass failed");
                return 0;
            }
        };
        let Ok(body) = response.into_body().collect().await else {
            return 0;
        };
        serde_json::from_slice::<serde_json::Value>(&body.to_bytes())
            .ok()
            .and_then(|report| report["attempted"].as_u64())
            .unwrap_or(0)
    }

    /// Runs one request in a fresh instance. A trap becomes a 500 problem,
    /// a request past its deadline a 503.
    async fn handle(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<HyperOutgoingBody> {
        match self.run_instance(request).await {
            Ok(response) => response,
            Err(Failure::Deadline) => {
                eprintln!(
                    "hooksign: a request ran past its {} ms deadline and was stopped",
                    self.request_deadline.as_millis()
                );
                problem_response(Problem::new(
                    Code::RequestTimeout,
                    format!(
                        "the request took longer than {} ms and was stopped",
                        self.request_deadline.as_millis()
                    ),
                ))
            }
            Err(Failure::SlowBody) => {
                eprintln!(
                    "hooksign: a request's body took longer than {} ms to arrive",
                    self.body_timeout.as_millis()
                );
                let mut response = problem_response(Problem::new(
                    Code::BodyTimeout,
                    format!(
                        "the request's body did not arrive within {} ms",
                        self.body_timeout.as_millis()
                    ),
                ));
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
                response
            }
            Err(Failure::Component(error)) => {
                eprintln!("hooksign: the component failed: {error:#}");
                problem_response(Problem::new(
                    Code::InternalError,
                    "the service failed while handling the request",
                ))
            }
        }
    }

    /// A store for one instance, once a slot of the pool is free; its
    /// store calls counted into `counts` if given.
    async fn pool_slot(&self, counts: Option<Arc<Counts>>) -> Result<PoolSlot, Failure> {
        let store: Arc<dyn KeyValueStore> = match counts {
            Some(counts) => Arc::new(Counting {
                inner: self.store.clone(),
                counts,
            }),
            None => self.store.clone(),
        };
        let mut state = EdgeState::new(store, self.variables.clone(), self.outbound.clone());
        if self.truthful_store {
            state = state.remembering_values();
        }
        let Ok(permit) = self.instance_slots.clone().acquire_owned().await else {
            return Err(wasmtime::Error::msg("the instance pool was closed").into());
        };
        let mut store = state.into_store(self.pre.engine());
        store.epoch_deadline_async_yield_and_update(1);
        Ok(PoolSlot {
            store,
            _permit: permit,
        })
    }

    async fn run_instance<B>(
        &self,
        request: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Failure>
    where
        B: hyper::body::Body<Data = bytes::Bytes, Error = hyper::Error> + Send + Unpin + 'static,
    {
        let (request, arrival) = crate::body_deadline::watch(request);
        // What the instance did, for its line of store calls.
        let counted = self.log_store_calls.then(|| {
            let what = format!("{} {}", request.method(), request.uri().path());
            (what, Arc::new(Counts::default()))
        });
        let mut slot = self
            .pool_slot(counted.as_ref().map(|(_, counts)| counts.clone()))
            .await?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = {
            use wasmtime_wasi_http::WasiHttpView as _;
            let mut http = slot.store.data_mut().http();
            let incoming = http.new_incoming_request(Scheme::Http, request)?;
            let outparam = http.new_response_outparam(sender)?;
            (incoming, outparam)
        };
        let pre = self.pre.clone();
        let deadline = self.request_deadline;
        // The instance runs on its own task, which also streams the response
        // body; the deadline covers all of it, and dropping the store on
        // timeout stops the instance and closes its connections.
        let task = tokio::spawn(async move {
            let ended = slot.run(pre, incoming, deadline).await;
            if let Some((what, counts)) = counted {
                eprintln!("hooksign: {what}: {}", counts.summary());
            }
            ended
        });
        // The component reads the whole body before it answers.
        let answered = tokio::select! {
            answered = receiver => answered,
            () = arrival.overdue(self.body_timeout) => {
                task.abort();
                return Err(Failure::SlowBody);
            }
        };
        match answered {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(Failure::Component(wasmtime::Error::msg(format!(
                "the component answered an error: {code:?}"
            )))),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::Error::msg("the component set no response").into()),
                Ok(Err(failure)) => Err(failure),
                Err(error) => Err(wasmtime::Error::msg(error.to_string()).into()),
            },
        }
    }
}

/// An instance's store and the permit for its slot of the pool. Fields
/// drop in order, also when the instance's task is aborted: the slot is
/// free again only once the store is gone.
struct PoolSlot {
    store: wasmtime::Store<EdgeState>,
    _permit: OwnedSemaphorePermit,
}

impl PoolSlot {
    /// Instantiates the component and has it handle the request, within
    /// `deadline`. Takes the slot whole, so that it is freed only when
    /// this ends (an `async move` block that used only the store would
    /// capture that field alone and free the slot at once).
    async fn run(
        mut self,
        pre: ProxyPre<EdgeState>,
        (request, outparam): (
            Resource<HostIncomingRequest>,
            Resource<HostResponseOutparam>,
        ),
        deadline: Duration,
    ) -> Result<(), Failure> {
        let run = async {
            let proxy = pre.instantiate_async(&mut self.store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut self.store, request, outparam)
                .await
        };
        match tokio::time::timeout(deadline, run).await {
            Ok(result) => result.map_err(Failure::Component),
            Err(_) => Err(Failure::Deadline),
        }
    }
}

/// A problem document the host answers itself; nothing of the request is echoed.
fn problem_response(problem: Problem) -> hyper::Response<HyperOutgoingBody> {
    use http_body_util::BodyExt as _;
    let problem = problem.into_response();
    let body = http_body_util::Full::new(bytes::Bytes::from(problem.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(problem.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in problem.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::try_from(name),
            hyper::header::HeaderValue::try_from(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
