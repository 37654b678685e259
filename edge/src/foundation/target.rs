//! Which webhook targets are internal: literal addresses in every IPv4 and
//! IPv6 form, single-label and internal names. Names that resolve inside
//! are the host's to refuse (`host/src/outbound.rs` under `hooksign serve`).

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
            // A single label (`redis`, `orders-svc`) is a name on the
            // local network's search path, never a public host.
            !name.contains('.')
                || name.ends_with(".localhost")
                || name.ends_with(".internal")
                || name.ends_with(".local")
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
/// service), shared, unspecified, multicast, reserved or broadcast, and
/// the IETF protocol and benchmarking ranges.
fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        || a >= 240 // reserved, RFC 1112 (broadcast among them)
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, RFC 6890
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
}

/// The IPv4 address an IPv6 one carries, for the forms that route to it:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-translated `::ffff:0:a.b.c.d`
/// (RFC 2765), IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`
/// (RFC 6052) and 6to4 `2002:AABB:CCDD::` (RFC 3056).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let last_32 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    match segments {
        [0, 0, 0, 0, 0, 0, high, low] if (high, low) > (0, 1) => Some(last_32(high, low)),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(last_32(high, low)),
        [0, 0, 0, 0, 0xffff, 0, high, low] => Some(last_32(high, low)),
        [0x2002, high, low, ..] => Some(last_32(high, low)),
        _ => None,
    }
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_internal_v4(v4);
    }
    let [first, second, third, fourth, ..] = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local, deprecated (RFC 3879)
        || [first, second, third, fourth] == [0x100, 0, 0, 0] // discard-only, RFC 6666
        || (first == 0x2001 && second == 0xdb8) // documentation, RFC 3849
        || (first == 0x64 && second == 0xff9b) // NAT64 for local use, RFC 8215
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS IPv6 metadata
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(text: &str) -> bool {
        text.parse::<IpAddr>().is_ok_and(is_internal_ip)
    }

    #[test]
    fn internal_addresses_in_every_form_are_internal() {
        for address in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "fec0::1",
            "100::1",
            "2001:db8::1",
        ] {
            assert!(internal(address), "{address}");
        }
        for address in [
            "93.184.215.14",
            "8.8.8.8",
            "198.20.0.1",
            "192.0.2.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::8.8.8.8",
        ] {
            assert!(!internal(address), "{address}");
        }
    }

    #[test]
    fn single_label_and_internal_names_are_refused_unless_allowed() {
        for url in [
            "http://redis:6379/",
            "http://orders-svc:8080/admin",
            "http://localhost/",
            "http://metadata/",
            "http://db.internal/",
            "http://printer.local./",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/latest",
        ] {
            assert!(
                matches!(check_target(url, false), Err(TargetError::Forbidden)),
                "{url}"
            );
            assert!(check_target(url, true).is_ok(), "{url}");
        }
        assert!(check_target("https://hooks.example.com/x", false).is_ok());
        // No host of its own: `url` reads the path's first segment as one.
        assert!(check_target("http:///x", false).is_err());
        assert!(matches!(
            check_target("http://", false),
            Err(TargetError::Invalid(_))
        ));
    }
}
