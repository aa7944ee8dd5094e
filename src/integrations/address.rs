//! The outbound address policy of integrations: which peer addresses an integration may
//! be reached at. Link-local and cloud-metadata addresses (169.254.0.0/16, fe80::/10,
//! fd00:ec2::254, 100.100.100.200, and their IPv4-mapped / NAT64 forms), unspecified,
//! broadcast and multicast addresses are always refused; loopback and private ranges
//! (127/8, 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7, ::1) only when
//! `allow_private` is off (`--integrations-deny-private`; the default for non-loopback
//! HTTP binds).
//!
//! Hosts are checked after resolution and callers connect to the checked address
//! ([`AddressPolicy::resolve`] for PostgreSQL/Redis/the probe; the pooled HTTP client
//! through [`crate::runtime::http::AddressGuard`]). Odd IPv4 spellings (`127.1`,
//! `0x7f.0.0.1`, `2130706433`, `0177.0.0.1`) are read the way the OS resolver reads
//! them ([`normalise_host`]) before they are checked.
//!
//! Owns address classification only; it must not touch the registry, events or tools.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::runtime::http::{AddressGuard, AddressRefused};

/// The policy; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    pub allow_private: bool,
}

/// Why an address is special.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Private,
    Refused(&'static str),
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    // NAT64 well-known prefix 64:ff9b::/96
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    None
}

fn class_v4(ip: Ipv4Addr) -> Class {
    let o = ip.octets();
    if ip.is_link_local() {
        Class::Refused("a link-local / cloud-metadata address")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        Class::Refused("a cloud-metadata address")
    } else if ip.is_unspecified() || o[0] == 0 {
        Class::Refused("an unspecified (\"this host\") address")
    } else if ip.is_broadcast() || ip.is_multicast() {
        Class::Refused("a broadcast or multicast address")
    } else if ip.is_loopback()
        || ip.is_private()
        || (o[0] == 100 && (o[1] & 0xc0) == 64)
        || (o[0] == 198 && (o[1] & 0xfe) == 18)
    {
        Class::Private
    } else {
        Class::Public
    }
}

fn class(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => class_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return class_v4(v4);
            }
            let s = v6.segments();
            if (s[0] & 0xffc0) == 0xfe80 {
                Class::Refused("a link-local address")
            } else if v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Class::Refused("a cloud-metadata address")
            } else if v6.is_unspecified() {
                Class::Refused("an unspecified (\"this host\") address")
            } else if v6.is_multicast() {
                Class::Refused("a multicast address")
            } else if v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfec0 {
                Class::Private
            } else {
                Class::Public
            }
        }
    }
}

/// Why the outbound address policy refused a host or address.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AddressError {
    #[error(
        "{0} is a loopback or private address, refused by the outbound address policy (the server runs with --integrations-deny-private)"
    )]
    Private(IpAddr),
    #[error("{ip} is {what}, refused by the outbound address policy")]
    Refused { ip: IpAddr, what: &'static str },
    #[error("cannot resolve {host}: {reason}")]
    Unresolved { host: String, reason: String },
    #[error("{0} has no address")]
    NoAddress(String),
}

impl AddressPolicy {
    /// `Ok` when integrations may connect to `ip`, else the reason.
    pub fn check(&self, ip: IpAddr) -> Result<(), AddressError> {
        match class(ip) {
            Class::Public => Ok(()),
            Class::Private if self.allow_private => Ok(()),
            Class::Private => Err(AddressError::Private(ip)),
            Class::Refused(what) => Err(AddressError::Refused { ip, what }),
        }
    }

    /// Whether `ip` is refused whatever the flags (for validation at registration).
    pub fn always_refused(ip: IpAddr) -> Option<AddressError> {
        match class(ip) {
            Class::Refused(what) => Some(AddressError::Refused { ip, what }),
            _ => None,
        }
    }

    /// Resolves `host` (a name or an IP, odd spellings normalised) and returns the
    /// first allowed address: the one the caller must connect to.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, AddressError> {
        let host = normalise_host(host);
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| AddressError::Unresolved {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        let mut refusal = None;
        for addr in found {
            match self.check(addr.ip()) {
                Ok(()) => return Ok(addr),
                Err(reason) => {
                    refusal.get_or_insert(reason);
                }
            }
        }
        Err(refusal.unwrap_or(AddressError::NoAddress(host)))
    }
}

impl AddressGuard for AddressPolicy {
    fn check(&self, ip: IpAddr) -> Result<(), AddressRefused> {
        AddressPolicy::check(self, ip).map_err(|e| AddressRefused(e.to_string()))
    }
}

/// `host` as the OS resolver reads it: IPv4 in any inet_aton spelling (`127.1`,
/// `0x7f.1`, `2130706433`, octal parts) becomes dotted decimal, bracketed IPv6 loses its
/// brackets; names are lower-cased and left alone.
pub fn normalise_host(host: &str) -> String {
    let trimmed = host.trim().trim_end_matches('.');
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.to_string();
    }
    // The WHATWG host parser reads IPv4 the way inet_aton does.
    match url::Host::parse(bare) {
        Ok(url::Host::Ipv4(ip)) => ip.to_string(),
        Ok(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => bare.to_ascii_lowercase(),
    }
}

/// The literal IP a host spells, if any (after [`normalise_host`]).
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    normalise_host(host).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_forms_normalise_like_the_resolver() {
        for odd in [
            "127.1",
            "0x7f.0.0.1",
            "2130706433",
            "0177.0.0.1",
            "0x7f000001",
        ] {
            assert_eq!(normalise_host(odd), "127.0.0.1", "{odd}");
        }
        assert_eq!(normalise_host("[::ffff:127.0.0.1]"), "::ffff:127.0.0.1");
        assert_eq!(normalise_host("Example.COM"), "example.com");
    }

    #[test]
    fn classes() {
        let deny = AddressPolicy {
            allow_private: false,
        };
        let allow = AddressPolicy {
            allow_private: true,
        };
        for refused in [
            "169.254.169.254",
            "0.0.0.0",
            "::",
            "fe80::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
            "224.0.0.1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(allow.check(ip).is_err(), "{refused}");
        }
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "fd12::1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(allow.check(ip).is_ok(), "{private}");
            assert!(deny.check(ip).is_err(), "{private}");
        }
        assert!(deny.check("93.184.216.34".parse().unwrap()).is_ok());
    }
}
