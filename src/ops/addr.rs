//! `--metrics-addr`: an `IP:PORT`, or `off`.
//!
//! Only IP addresses: a host name would be resolved at start, and a name
//! that resolves to a public address would expose the control routes without
//! anyone having written that address down.

use std::net::SocketAddr;
use std::str::FromStr;

/// Where the operator's endpoint listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenAddr {
    /// No endpoint.
    Off,
    /// Listen here (port 0: any free port).
    On(SocketAddr),
}

impl ListenAddr {
    /// The address to listen on, `None` when off.
    pub(crate) fn socket(self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Off => None,
            ListenAddr::On(a) => Some(a),
        }
    }
}

/// A `--metrics-addr` value that is neither `off` nor an `IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected IP:PORT (such as 127.0.0.1:9464 or [::1]:9464) or `off`, got {0:?}")]
pub(crate) struct ListenAddrError(pub String);

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<ListenAddr, ListenAddrError> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(ListenAddr::Off);
        }
        t.parse::<SocketAddr>()
            .map(ListenAddr::On)
            .map_err(|_| ListenAddrError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_off() {
        assert_eq!("off".parse(), Ok(ListenAddr::Off));
        assert_eq!(" OFF ".parse(), Ok(ListenAddr::Off));
        let a: ListenAddr = "127.0.0.1:9464".parse().unwrap();
        assert_eq!(a.socket(), Some("127.0.0.1:9464".parse().unwrap()));
        let v6: ListenAddr = "[::1]:0".parse().unwrap();
        assert_eq!(v6.socket().map(|a| a.port()), Some(0));
        for bad in [
            "",
            "9464",
            "localhost:9464",
            "127.0.0.1",
            "127.0.0.1:99999",
            "on",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad:?} accepted");
        }
    }
}
