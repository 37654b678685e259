//! https requests sent over connections to the address the outbound policy
//! chose (the one it checked), with TLS for the request's own host name
//! (wasmtime-wasi-http's sender always resolves the name itself), kept
//! alive between sends. Timeouts follow the request's options as that
//! sender's do.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::ServerName;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use crate::http_send::{Exchange, pooled_client, send_on, to_address};

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

/// Receiver names whose clients are kept at most; past it the map starts
/// again (a dropped client's idle connections close on their own timers).
const NAMES_KEPT: usize = 1024;

/// An https client for one receiver name: its connections' TLS checks the
/// certificate against that name, whatever address they go to.
type NamedClient = Client<HttpsConnector<HttpConnector>, WasiBody>;

/// The node's https connections, kept alive between sends as plain
/// http's are (`http_send.rs`): a client per receiver name, its pool keyed
/// by the address connected to, so that a connection is reused only for
/// the name its certificate was checked under and the address the outbound
/// policy chose. Each name's client keeps one TLS configuration, so that a
/// new connection resumes an earlier session instead of a full handshake.
#[derive(Clone)]
pub struct TlsPool {
    roots: Roots,
    pooling: bool,
    clients: Arc<Mutex<HashMap<String, NamedClient>>>,
}

impl Default for TlsPool {
    fn default() -> TlsPool {
        TlsPool::new(web_pki(), true)
    }
}

impl TlsPool {
    /// Connections to receivers whose certificates chain to `roots`, kept
    /// alive or (`pooling` false) none kept.
    pub fn new(roots: Roots, pooling: bool) -> TlsPool {
        TlsPool {
            roots,
            pooling,
            clients: Arc::default(),
        }
    }

    /// The same roots, connections kept alive or not.
    pub fn pooling(&self, pooling: bool) -> TlsPool {
        TlsPool::new(self.roots.clone(), pooling)
    }

    /// Whether connections are kept alive.
    pub fn pools(&self) -> bool {
        self.pooling
    }

    /// Sends `request` (an https one) over TLS to `address`, on a
    /// kept-alive connection there for the request's host name or a new
    /// one, within the request's timeouts ([`send_on`]).
    pub async fn send(
        &self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        address: SocketAddr,
    ) -> Exchange {
        let host = request
            .uri()
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let client = self.client(host)?;
        // The URI names the address, so the pool keys by it.
        send_on(&client, to_address(request, address)?, options).await
    }

    /// The client for `host`, made on its first send.
    fn client(&self, host: String) -> Result<NamedClient, Error> {
        let mut clients = self.clients.lock().map_err(|_| {
            Error::Tls(std::io::Error::other("the https clients' lock is poisoned"))
        })?;
        if let Some(client) = clients.get(&host) {
            return Ok(client.clone());
        }
        let name = ServerName::try_from(host.clone()).map_err(|_| Error::HttpRequestUriInvalid)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| Error::Tls(std::io::Error::other(error)))?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        // The scheme is https; the connector below it makes the TCP part.
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .with_server_name_resolver(FixedServerNameResolver::new(name))
            .enable_http1()
            .wrap_connector(http);
        let client = pooled_client(connector, self.pooling);
        if clients.len() >= NAMES_KEPT {
            clients.clear();
        }
        clients.insert(host, client.clone());
        Ok(client)
    }
}
