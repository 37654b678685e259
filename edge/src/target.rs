use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why a URL cannot be a webhook target.
pub enum TargetError {
    /// Not an absolute http or https URL with a host.
    Invalid(&'static str),
    /// Loopback, private, link-local or a cloud metadata address.
    Forbidden,
}

/// Parses a target URL and refuses internal addresses unless allowed.
///
/// Only literal addresses and well-known internal names are refused here: the
/// component cannot resolve names, so a public name that resolves to a
/// private address is for the host's outbound policy.
pub fn check_target(text: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = Url::parse(text).map_err(|_| TargetError::Invalid("is not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Invalid("must be http or https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Invalid("must not carry credentials"));
    }
    let internal = match url.host() {
        None => return Err(TargetError::Invalid("has no host")),
        Some(Host::Ipv4(ip)) => is_internal_v4(ip),
        Some(Host::Ipv6(ip)) => is_internal_v6(ip),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost"
                || name.ends_with(".localhost")
                || name.ends_with(".internal")
                || name.ends_with(".local")
                || name == "metadata"
        }
    };
    if internal && !allow_private {
        return Err(TargetError::Forbidden);
    }
    Ok(url)
}

/// An address a webhook target may not resolve to unless private targets
/// are allowed: loopback, private, link-local (the cloud metadata services
/// among them), shared, unspecified, broadcast, IPv6 unique-local.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_internal_v4(ip),
        IpAddr::V6(ip) => is_internal_v6(ip),
    }
}

/// Loopback, private, link-local (which holds the 169.254.169.254 metadata
/// service), shared, unspecified or broadcast.
fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || a == 0
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS IPv6 metadata
}
