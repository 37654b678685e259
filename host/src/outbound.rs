//! `hooksign serve`'s outbound policy: the edge component refuses internal
//! targets it can see (literal addresses, internal names), and the host
//! refuses the rest at send time, when a name resolves to an internal
//! address, unless the `allow_private_targets` variable is `true`. The
//! receiver gateway's origins (`forwardUrl` in `inbound_sources`) are the
//! operator's own and may be internal: the gateway's forwards, marked by
//! the edge with [`hooksign_edge::GATEWAY_FORWARD_HEADER`], are spared
//! when they go to one; a tenant's endpoint at the same address is not.
//!
//! The node's own interface addresses are refused too, unless private
//! targets are allowed: a public address of the node reaches whatever
//! listens on it (its Redis, its admin ports) as loopback would.
//!
//! Every request connects to the address that was checked (plain http
//! keeps the name in `Host`, https in TLS's server name, `tls_send.rs`), so
//! a name that answers differently the second time (DNS rebinding) cannot
//! reach an internal address. Plain http goes over kept-alive connections
//! pooled by that address (`http_send.rs`), https over ones pooled by the
//! name and that address (`tls_send.rs`).

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::http_send::{Exchange, Pool, to_address};
use crate::tls_send::{self, TlsPool};

/// Which outbound requests may reach internal addresses.
#[derive(Clone, Default)]
pub struct OutboundPolicy {
    allow_private: bool,
    /// `host:port` of every configured origin.
    origins: Arc<Vec<String>>,
    /// Names answered without DNS (a test mode, `--resolve`).
    pinned: Arc<Vec<(String, std::net::IpAddr)>>,
    /// The node's own interface addresses.
    own: Arc<Vec<std::net::IpAddr>>,
    /// The node's kept-alive plain-http connections.
    pool: Pool,
    /// The node's kept-alive https connections, and the roots their
    /// certificates must chain to (the Web PKI's unless told otherwise).
    tls: TlsPool,
}

impl OutboundPolicy {
    /// The policy the service's variables ask for, read as the edge reads
    /// them. Variables the edge refuses give the strictest policy (every
    /// request is refused with 500 `invalid_configuration` anyway).
    pub fn from_variables(variables: &std::collections::HashMap<String, String>) -> OutboundPolicy {
        let Ok(config) = hooksign_edge::Config::from_variables(|name| variables.get(name).cloned())
        else {
            return OutboundPolicy::default();
        };
        let origins = config
            .inbound_sources
            .forward_urls()
            .filter_map(|url| url.parse::<hyper::Uri>().ok())
            .filter_map(|uri| authority_with_port(&uri))
            .collect();
        OutboundPolicy {
            allow_private: config.allow_private_targets,
            origins: Arc::new(origins),
            pinned: Arc::default(),
            own: Arc::default(),
            pool: Pool::default(),
            tls: TlsPool::default(),
        }
    }

    /// The policy, refusing these addresses of the node's own as well.
    pub fn refusing_own(mut self, own: Vec<std::net::IpAddr>) -> OutboundPolicy {
        self.own = Arc::new(own);
        self
    }

    /// The policy, trusting these roots for https.
    pub fn trusting(mut self, roots: tls_send::Roots) -> OutboundPolicy {
        self.tls = TlsPool::new(roots, self.tls.pools());
        self
    }

    /// The policy, answering these names with these addresses instead of
    /// DNS (for the check and for plain http's connection).
    pub fn pinning(mut self, pinned: Vec<(String, std::net::IpAddr)>) -> OutboundPolicy {
        self.pinned = Arc::new(pinned);
        self
    }

    /// The policy, keeping connections alive or not.
    pub fn pooling(mut self, pooling: bool) -> OutboundPolicy {
        self.pool = Pool::new(pooling);
        self.tls = self.tls.pooling(pooling);
        self
    }

    /// Whether `authority`'s name is answered without DNS.
    fn pins(&self, authority: &str) -> bool {
        authority
            .rsplit_once(':')
            .is_some_and(|(host, _)| self.pinned.iter().any(|(name, _)| name == host))
    }

    /// The address to connect to for `authority`: its first, refused if
    /// `checks` and any is internal.
    async fn address(&self, authority: &str, checks: bool) -> Result<std::net::SocketAddr, Error> {
        let addresses = self.resolve(authority).await?;
        if checks {
            return checked_address(&addresses, &self.own);
        }
        addresses.first().copied().ok_or(Error::DestinationNotFound)
    }

    /// The addresses of `authority` (`host:port`).
    async fn resolve(&self, authority: &str) -> Result<Vec<std::net::SocketAddr>, Error> {
        if let Some((host, port)) = authority.rsplit_once(':')
            && let Some((_, address)) = self.pinned.iter().find(|(name, _)| name == host)
            && let Ok(port) = port.parse()
        {
            return Ok(vec![std::net::SocketAddr::new(*address, port)]);
        }
        Ok(tokio::net::lookup_host(authority)
            .await
            .map_err(|_| Error::DnsError {
                rcode: Some("the name did not resolve".into()),
                info_code: None,
            })?
            .collect())
    }

    /// Whether a request to `authority` (`host:port`) needs its addresses
    /// checked; `forward`: the gateway marked it as its own.
    fn checks(&self, authority: &str, forward: bool) -> bool {
        let own_origin = forward && self.origins.iter().any(|origin| origin == authority);
        !(self.allow_private || own_origin)
    }
}

/// The addresses of the node's network interfaces (none if they cannot be
/// listed: the internal ranges are refused all the same).
pub fn own_addresses() -> Vec<std::net::IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut addresses: Vec<std::net::IpAddr> = interfaces
        .filter_map(|interface| interface.address)
        .filter_map(|address| {
            if let Some(v4) = address.as_sockaddr_in() {
                Some(std::net::IpAddr::V4(v4.ip()))
            } else {
                address
                    .as_sockaddr_in6()
                    .map(|v6| std::net::IpAddr::V6(v6.ip()).to_canonical())
            }
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    addresses
}

/// `host:port`, with the scheme's default port.
fn authority_with_port(uri: &hyper::Uri) -> Option<String> {
    let host = uri.host()?;
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(format!("{host}:{port}"))
}

/// The first of `addresses`; refused if any of them is internal or one
/// of the node's own.
fn checked_address(
    addresses: &[std::net::SocketAddr],
    own: &[std::net::IpAddr],
) -> Result<std::net::SocketAddr, Error> {
    if addresses.iter().any(|address| {
        hooksign_edge::is_internal_ip(address.ip()) || own.contains(&address.ip().to_canonical())
    }) {
        return Err(Error::DestinationIpProhibited);
    }
    addresses.first().copied().ok_or(Error::DestinationNotFound)
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Exchange> + Send> {
        let mut request = request;
        let forward = request
            .headers_mut()
            .remove(hooksign_edge::GATEWAY_FORWARD_HEADER)
            .is_some();
        let authority = authority_with_port(request.uri());
        let policy = self.clone();
        Box::new(async move {
            // Nothing to check is nothing to send.
            let authority = authority.ok_or(Error::HttpRequestUriInvalid)?;
            let checks = policy.checks(&authority, forward);
            if request.uri().scheme_str() == Some("https") {
                let address = policy.address(&authority, checks).await?;
                return policy.tls.send(request, options, address).await;
            }
            if checks || policy.pins(&authority) {
                let address = policy.address(&authority, checks).await?;
                request = to_address(request, address)?;
            }
            policy.pool.send(request, options).await
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn names_that_resolve_inside_are_refused() {
        // `localhost` resolves through the hosts file on every machine.
        let policy = OutboundPolicy::default();
        let check = |authority: &str| {
            run(policy.resolve(authority)).and_then(|addresses| checked_address(&addresses, &[]))
        };
        for authority in ["localhost:80", "127.0.0.1:8080", "[::1]:443", "10.1.2.3:80"] {
            assert!(
                matches!(check(authority), Err(Error::DestinationIpProhibited)),
                "{authority}"
            );
        }
        assert_eq!(
            check("93.184.215.14:443").ok(),
            "93.184.215.14:443".parse().ok()
        );
    }

    #[test]
    fn the_nodes_own_addresses_are_refused_unless_private_targets_are_allowed() {
        // Loopback is among them on every machine.
        let own = own_addresses();
        assert!(own.contains(&"127.0.0.1".parse().unwrap()), "{own:?}");
        // A public address of the node's own, and one that is not.
        let node: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let policy = OutboundPolicy::default()
            .pinning(vec![
                ("self.example".into(), node),
                ("other.example".into(), "198.51.100.9".parse().unwrap()),
            ])
            .refusing_own(vec![node]);
        let address = |authority: &str, checks| run(policy.address(authority, checks));
        assert!(matches!(
            address("self.example:6379", true),
            Err(Error::DestinationIpProhibited)
        ));
        assert!(matches!(
            address("203.0.113.7:80", true),
            Err(Error::DestinationIpProhibited)
        ));
        assert!(address("other.example:443", true).is_ok());
        assert!(address("self.example:6379", false).is_ok());
    }

    #[test]
    fn plain_http_goes_to_the_checked_address_with_its_name_kept() {
        let request = hyper::Request::post("http://hooks.example.com:8080/in?x=1")
            .header("host", "hooks.example.com:8080")
            .body(WasiBody::default())
            .unwrap();
        let sent = to_address(request, "93.184.215.14:8080".parse().unwrap()).unwrap();
        assert_eq!(sent.uri().to_string(), "http://93.184.215.14:8080/in?x=1");
        assert_eq!(sent.headers()["host"], "hooks.example.com:8080");
    }

    #[test]
    fn the_policy_spares_allowed_and_configured_origins() {
        let variables = [(
            "inbound_sources".to_string(),
            r#"{"shop":{"forwardUrl":"http://127.0.0.1:8080/in","secrets":[]},
                "tls":{"forwardUrl":"https://origin.internal/in","secrets":[]}}"#
                .to_string(),
        )]
        .into_iter()
        .collect();
        let policy = OutboundPolicy::from_variables(&variables);
        // The gateway's own forwards to its origins only.
        assert!(!policy.checks("127.0.0.1:8080", true));
        assert!(!policy.checks("origin.internal:443", true));
        assert!(policy.checks("127.0.0.1:8080", false));
        assert!(policy.checks("origin.internal:443", false));
        assert!(policy.checks("127.0.0.1:8081", true));
        assert!(policy.checks("example.com:443", true));

        let mut variables = variables;
        variables.insert("allow_private_targets".into(), "true".into());
        assert!(!OutboundPolicy::from_variables(&variables).checks("example.com:443", false));
    }
}
