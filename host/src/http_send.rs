//! Plain-http requests over connections kept alive between sends, as a
//! Spin's outbound HTTP keeps them (hyper-util's pooled client): an
//! endpoint's next delivery, a fan-out's deliveries to one receiver and
//! the gateway's forwards to its origin skip a TCP handshake each
//! (BENCHMARKS.md). The request's URI names the address to connect to
//! (the outbound policy's checked one, or a name it need not check), and
//! connections are pooled by it.

use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::tls_send::{Exchange, Timeouts, between_bytes};

/// How long an idle connection is kept: less than the 5 s that Node's
/// and Apache's servers keep one by default, so that hooksign, not the
/// receiver, closes it, and no POST is sent on a connection its receiver
/// is closing at that moment.
const IDLE: Duration = Duration::from_secs(4);

/// Idle connections kept per receiver (`host:port`); one in use is never
/// limited.
const IDLE_PER_RECEIVER: usize = 64;

/// The node's kept-alive plain-http connections; clones share them.
#[derive(Clone)]
pub struct Pool {
    client: Client<HttpConnector, WasiBody>,
}

impl Default for Pool {
    fn default() -> Pool {
        Pool::new(true)
    }
}

impl Pool {
    /// Connections kept alive, or (`pooling` false) none kept: each send
    /// on a new one (`hooksign serve --no-connection-pooling`).
    pub fn new(pooling: bool) -> Pool {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let idle = if pooling { IDLE_PER_RECEIVER } else { 0 };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(IDLE)
            .pool_max_idle_per_host(idle)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Pool { client }
    }

    /// Sends `request` (a plain-http one) on a kept-alive connection to
    /// its URI's authority, or a new one. The options' timeouts apply as
    /// wasmtime-wasi-http's sender applies them: connecting and the
    /// answer's head within the first two, each frame of its body within
    /// the third.
    pub async fn send(
        &self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Exchange {
        let timeouts = Timeouts::of(options.as_ref());
        let head_timeout = timeouts.connect.saturating_add(timeouts.first_byte);
        let response = tokio::time::timeout(head_timeout, self.client.request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(|error| send_error(&error))?;
        let response = response.map(|incoming| between_bytes(incoming, timeouts.between_bytes));
        // The pool drives the connection itself.
        let io = async { Ok(()) };
        Ok((
            response,
            Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
        ))
    }
}

/// What the guest is told of a failed send: a refused or failed connect
/// as wasmtime-wasi-http's sender says it, a connection that ended before
/// its answer as terminated, anything else as a protocol error.
fn send_error(error: &hyper_util::client::legacy::Error) -> Error {
    use std::error::Error as _;
    let mut cause = error.source();
    while let Some(inner) = cause {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            let io = std::io::Error::new(io.kind(), io.to_string());
            return if error.is_connect() {
                Error::Connect(io)
            } else {
                Error::ConnectionTerminated
            };
        }
        if let Some(hyper) = inner.downcast_ref::<hyper::Error>()
            && (hyper.is_incomplete_message() || hyper.is_canceled() || hyper.is_closed())
        {
            return Error::ConnectionTerminated;
        }
        cause = inner.source();
    }
    if error.is_connect() {
        Error::Connect(std::io::Error::other(error.to_string()))
    } else {
        Error::HttpProtocolError
    }
}
