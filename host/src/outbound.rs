//! `hooksign serve`'s outbound policy: the edge component refuses internal
//! targets it can see (literal addresses, internal names), and the host
//! refuses the rest at send time, when a name resolves to an internal
//! address, unless the `allow_private_targets` variable is `true`. The
//! receiver gateway's origins (`forwardUrl` in `inbound_sources`) are the
//! operator's own and may be internal.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// Which outbound requests may reach internal addresses.
#[derive(Clone, Default)]
pub struct OutboundPolicy {
    allow_private: bool,
    /// `host:port` of every configured origin.
    origins: Arc<Vec<String>>,
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
        }
    }

    /// Whether a request to `authority` (`host:port`) needs its addresses
    /// checked.
    fn checks(&self, authority: &str) -> bool {
        !self.allow_private && !self.origins.iter().any(|origin| origin == authority)
    }
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

/// Refuses `authority` if any address it resolves to is internal.
pub async fn refuse_internal(authority: &str) -> Result<(), Error> {
    let addresses = tokio::net::lookup_host(authority)
        .await
        .map_err(|_| Error::DnsError {
            rcode: Some("the name did not resolve".into()),
            info_code: None,
        })?;
    let mut any = false;
    for address in addresses {
        any = true;
        if hooksign_edge::is_internal_ip(address.ip()) {
            return Err(Error::DestinationIpProhibited);
        }
    }
    if any {
        Ok(())
    } else {
        Err(Error::DestinationNotFound)
    }
}

/// What a send hook answers: the response and the task that feeds its body.
pub(crate) type Exchange = Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Exchange> + Send> {
        let check = authority_with_port(request.uri()).filter(|authority| self.checks(authority));
        Box::new(async move {
            // The connection resolves the name again: a name whose answer
            // changes in between (DNS rebinding) is not caught here.
            if let Some(authority) = check {
                refuse_internal(&authority).await?;
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
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
        for authority in ["localhost:80", "127.0.0.1:8080", "[::1]:443", "10.1.2.3:80"] {
            assert!(
                matches!(
                    run(refuse_internal(authority)),
                    Err(Error::DestinationIpProhibited)
                ),
                "{authority}"
            );
        }
        assert!(run(refuse_internal("93.184.215.14:443")).is_ok());
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
        assert!(!policy.checks("127.0.0.1:8080"));
        assert!(!policy.checks("origin.internal:443"));
        assert!(policy.checks("127.0.0.1:8081"));
        assert!(policy.checks("example.com:443"));

        let mut variables = variables;
        variables.insert("allow_private_targets".into(), "true".into());
        assert!(!OutboundPolicy::from_variables(&variables).checks("example.com:443"));
    }
}
