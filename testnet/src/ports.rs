//! Free ports on 127.0.0.1 for validators' HTTP APIs (TCP) and QUIC endpoints (UDP).
//!
//! The kernel picks each port (bind to port 0), and every socket of one allocation stays
//! open until all are picked, so the ports of one testnet are distinct. Two testnets made
//! at the same time get distinct ports for the same reason: a port the kernel handed out is
//! not handed out again while its socket is open, and after that only once the ephemeral
//! range wraps. A port can still be taken between allocation and the validator binding it;
//! the validator then fails to start, and the launcher reports that port.

use std::net::{SocketAddr, TcpListener, UdpSocket};

use crate::error::TestnetError;

/// One validator's ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatorPorts {
    pub api: SocketAddr,
    pub quic: SocketAddr,
}

const LOCALHOST: &str = "127.0.0.1:0";

/// `count` distinct API (TCP) and QUIC (UDP) addresses on 127.0.0.1.
pub fn allocate(count: usize) -> Result<Vec<ValidatorPorts>, TestnetError> {
    let mut tcp = Vec::with_capacity(count);
    let mut udp = Vec::with_capacity(count);
    for _ in 0..count {
        tcp.push(
            TcpListener::bind(LOCALHOST)
                .map_err(|source| TestnetError::NoFreePort { proto: "TCP", source })?,
        );
        udp.push(
            UdpSocket::bind(LOCALHOST).map_err(|source| TestnetError::NoFreePort { proto: "UDP", source })?,
        );
    }
    tcp.iter()
        .zip(&udp)
        .map(|(t, u)| {
            let api = t.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "TCP", source })?;
            let quic = u.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "UDP", source })?;
            Ok(ValidatorPorts { api, quic })
        })
        .collect()
}

/// One free TCP address on 127.0.0.1.
pub fn allocate_tcp() -> Result<SocketAddr, TestnetError> {
    TcpListener::bind(LOCALHOST)
        .and_then(|l| l.local_addr())
        .map_err(|source| TestnetError::NoFreePort { proto: "TCP", source })
}

/// Whether nothing listens on TCP `addr` (we can bind it).
pub fn tcp_free(addr: SocketAddr) -> bool {
    TcpListener::bind(addr).is_ok()
}

/// Whether nothing is bound to UDP `addr`.
pub fn udp_free(addr: SocketAddr) -> bool {
    UdpSocket::bind(addr).is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn allocated_ports_are_distinct_and_free() {
        let first = allocate(4).unwrap();
        let second = allocate(4).unwrap();
        let api: HashSet<_> = first.iter().chain(&second).map(|p| p.api.port()).collect();
        let quic: HashSet<_> = first.iter().chain(&second).map(|p| p.quic.port()).collect();
        assert_eq!(api.len(), 8);
        assert_eq!(quic.len(), 8);
        assert!(first.iter().all(|p| p.api.ip().is_loopback() && tcp_free(p.api) && udp_free(p.quic)));
    }

    #[test]
    fn a_bound_port_is_not_free() {
        let listener = TcpListener::bind(LOCALHOST).unwrap();
        assert!(!tcp_free(listener.local_addr().unwrap()));
        let socket = UdpSocket::bind(LOCALHOST).unwrap();
        assert!(!udp_free(socket.local_addr().unwrap()));
    }
}
