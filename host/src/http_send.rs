//! Plain-http requests over connections kept alive between sends, as a
//! Spin's outbound HTTP keeps them (hyper-util's pooled client): an
//! endpoint's next delivery, a fan-out's deliveries to one receiver and
//! the gateway's forwards to its origin skip a TCP handshake each
//! (BENCHMARKS.md). The request's URI names the address to connect to
//! (the outbound policy's checked one, or a name it need not check), and
//! connections are pooled by it. What https's sends share with these (the
//! pooled client, timeouts, errors) is here too; `tls_send.rs` adds TLS.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// How long an idle connection is kept: less than the 5 s that Node's
/// and Apache's servers keep one by default, so that hooksign, not the
/// receiver, closes it, and no POST is sent on a connection its receiver
/// is closing at that moment.
const IDLE: Duration = Duration::from_secs(4);

/// Idle connections kept per receiver (`host:port`, and for https its
/// name); one in use is never limited.
const IDLE_PER_RECEIVER: usize = 64;

/// What a timeout of the options is when the guest sets none.
const UNSET: Duration = Duration::from_secs(600);

/// A request's timeouts, as wasmtime-wasi-http's sender reads them.
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    /// The options' timeouts, [`UNSET`] where the guest set none.
    fn of(options: Option<&RequestOptions>) -> Timeouts {
        let option =
            |pick: fn(&RequestOptions) -> Option<Duration>| options.and_then(pick).unwrap_or(UNSET);
        Timeouts {
            connect: option(|options| options.connect_timeout),
            first_byte: option(|options| options.first_byte_timeout),
            between_bytes: option(|options| options.between_bytes_timeout),
        }
    }
}

/// What a send hook answers: the response and the task that feeds its body.
pub type Exchange = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

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
        Pool {
            client: pooled_client(connector, pooling),
        }
    }

    /// Sends `request` (a plain-http one) on a kept-alive connection to
    /// its URI's authority, or a new one ([`send_on`]).
    pub async fn send(
        &self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Exchange {
        send_on(&self.client, request, options).await
    }
}

/// The request sent to `address` instead of the name it named (its
/// `Host` header, set by wasmtime-wasi-http, keeps the name).
pub fn to_address(
    request: hyper::Request<WasiBody>,
    address: std::net::SocketAddr,
) -> Result<hyper::Request<WasiBody>, Error> {
    let (mut parts, body) = request.into_parts();
    let mut uri = hyper::Uri::builder()
        .scheme(parts.uri.scheme_str().unwrap_or("http"))
        .authority(address.to_string());
    if let Some(path) = parts.uri.path_and_query() {
        uri = uri.path_and_query(path.clone());
    }
    parts.uri = uri.build().map_err(|_| Error::HttpRequestUriInvalid)?;
    Ok(hyper::Request::from_parts(parts, body))
}

/// A client on `connector` that keeps connections alive, or (`pooling`
/// false) none.
pub fn pooled_client<C>(connector: C, pooling: bool) -> Client<C, WasiBody>
where
    C: Connect + Clone,
{
    let idle = if pooling { IDLE_PER_RECEIVER } else { 0 };
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(IDLE)
        .pool_max_idle_per_host(idle)
        .pool_timer(TokioTimer::new())
        .build(connector)
}

/// Sends `request` on `client`. The options' timeouts apply as
/// wasmtime-wasi-http's sender applies them: connecting and the answer's
/// head within the first two, each frame of its body within the third.
pub async fn send_on<C>(
    client: &Client<C, WasiBody>,
    request: hyper::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Exchange
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let timeouts = Timeouts::of(options.as_ref());
    let head_timeout = timeouts.connect.saturating_add(timeouts.first_byte);
    let response = tokio::time::timeout(head_timeout, client.request(request))
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

/// `incoming` as a body that fails when no frame comes for `limit`.
fn between_bytes(incoming: Incoming, limit: Duration) -> WasiBody {
    BetweenBytes {
        incoming,
        limit,
        timer: Box::pin(tokio::time::sleep(limit)),
    }
    .boxed_unsync()
}

/// A response body that fails when no frame comes for `limit`.
struct BetweenBytes {
    incoming: Incoming,
    limit: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.incoming).poll_frame(context) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.limit;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame.map(|frame| frame.map_err(Error::from)))
            }
            Poll::Pending => match this.timer.as_mut().poll(context) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }
}
