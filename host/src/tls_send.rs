//! An https request sent over a connection to an address the outbound
//! policy chose (the one it checked), with TLS for the request's own host
//! name: wasmtime-wasi-http's sender always resolves the name itself.
//! Timeouts follow the request's options as that sender's do.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// What a timeout of the options is when the guest sets none.
const UNSET: Duration = Duration::from_secs(600);

/// A request's timeouts, as wasmtime-wasi-http's sender reads them.
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub between_bytes: Duration,
}

impl Timeouts {
    /// The options' timeouts, [`UNSET`] where the guest set none.
    pub fn of(options: Option<&RequestOptions>) -> Timeouts {
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

/// The certificates https receivers must chain to.
pub type Roots = Arc<rustls::RootCertStore>;

/// The Web PKI roots.
pub fn web_pki() -> Roots {
    Arc::new(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    })
}

/// The Web PKI roots and the certificates of `pem`.
pub fn web_pki_and(pem: &[u8]) -> Result<Roots, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = (*web_pki()).clone();
    for certificate in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        let certificate = certificate.map_err(|_| "not PEM certificates".to_string())?;
        roots
            .add(certificate)
            .map_err(|_| "a certificate that cannot be a root".to_string())?;
    }
    Ok(Arc::new(roots))
}

/// Sends `request` (an https one) over TLS to `address`.
pub async fn send(
    mut request: hyper::Request<WasiBody>,
    options: Option<RequestOptions>,
    address: SocketAddr,
    roots: Roots,
) -> Exchange {
    let Timeouts {
        connect: connect_timeout,
        first_byte: first_byte_timeout,
        between_bytes: between_bytes_timeout,
    } = Timeouts::of(options.as_ref());

    let host = request
        .uri()
        .host()
        .ok_or(Error::HttpRequestUriInvalid)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = ServerName::try_from(host).map_err(|_| Error::HttpRequestUriInvalid)?;
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Tls(std::io::Error::other(error)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(Error::Tls)?;
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(TokioIo::new(tls)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The connection runs on its own while the answer streams.
    let driver = tokio::spawn(connection);

    // The request line carries the path only (no proxy here).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|incoming| between_bytes(incoming, between_bytes_timeout));
    let io = async move {
        match driver.await {
            Ok(result) => result.map_err(Error::from),
            Err(_) => Err(Error::HttpProtocolError),
        }
    };
    Ok((
        response,
        Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
    ))
}

/// `incoming` as a body that fails when no frame comes for `limit`.
pub fn between_bytes(incoming: Incoming, limit: Duration) -> WasiBody {
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
