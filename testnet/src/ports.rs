//! Free ports on 127.0.0.1 for validators' HTTP APIs (TCP) and QUIC endpoints (UDP).
//!
//! Ports are drawn from below the kernel's ephemeral range (`ip_local_port_range`, 32768
//! and up by default). A port handed out there stays free until its validator binds it:
//! no outgoing connection (a readiness probe, an HTTP client, another test) can take it as
//! its source port in the meantime, which is what happened to ports the kernel picked from
//! the ephemeral range. Each process walks the window from a random start, one number per
//! port, so the testnets one process makes never share a port until the window wraps, and
//! two processes share one only if their walks meet. Every socket of one allocation stays
//! bound until all its ports are picked, so a port in use elsewhere is skipped. Where the
//! ephemeral range leaves no room below it, the kernel picks (bind to port 0).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::sync::Mutex;

use rand::Rng;

use crate::error::TestnetError;

/// One validator's ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidatorPorts {
    pub api: SocketAddr,
    pub quic: SocketAddr,
}

const LOCALHOST: &str = "127.0.0.1:0";

/// The lowest port handed out (well above the registered services most hosts run).
const WINDOW_LOW: u16 = 20_000;

/// Fewer free numbers than this below the ephemeral range: let the kernel pick.
const MIN_WINDOW: u16 = 1_000;

/// The next number this process tries (`None` until the first allocation).
static CURSOR: Mutex<Option<u16>> = Mutex::new(None);

/// `[low, high)`: the ports below the ephemeral range that testnets use, if there is room.
fn window() -> Option<(u16, u16)> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let ephemeral_low: u16 = range.split_whitespace().next()?.parse().ok()?;
    (ephemeral_low >= WINDOW_LOW.saturating_add(MIN_WINDOW)).then_some((WINDOW_LOW, ephemeral_low))
}

/// Binds the next port of the window that `bind` accepts, walking at most the whole window.
fn next_in_window<S>(
    (low, high): (u16, u16),
    mut bind: impl FnMut(SocketAddr) -> std::io::Result<S>,
) -> Option<S> {
    let mut cursor = CURSOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let span = high - low;
    let mut port = cursor.unwrap_or_else(|| rand::thread_rng().gen_range(low..high));
    for _ in 0..span {
        if !(low..high).contains(&port) {
            port = low;
        }
        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        port = port.wrapping_add(1);
        if let Ok(socket) = bind(addr) {
            *cursor = Some(port);
            return Some(socket);
        }
    }
    None
}

fn bind_tcp() -> Result<TcpListener, TestnetError> {
    window()
        .and_then(|w| next_in_window(w, TcpListener::bind))
        .map_or_else(|| TcpListener::bind(LOCALHOST), Ok)
        .map_err(|source| TestnetError::NoFreePort { proto: "TCP", source })
}

fn bind_udp() -> Result<UdpSocket, TestnetError> {
    window()
        .and_then(|w| next_in_window(w, UdpSocket::bind))
        .map_or_else(|| UdpSocket::bind(LOCALHOST), Ok)
        .map_err(|source| TestnetError::NoFreePort { proto: "UDP", source })
}

/// `count` distinct API (TCP) and QUIC (UDP) addresses on 127.0.0.1.
pub fn allocate(count: usize) -> Result<Vec<ValidatorPorts>, TestnetError> {
    let mut held = Vec::with_capacity(count);
    for _ in 0..count {
        held.push((bind_tcp()?, bind_udp()?));
    }
    held.iter()
        .map(|(t, u)| {
            let api = t.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "TCP", source })?;
            let quic = u.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "UDP", source })?;
            Ok(ValidatorPorts { api, quic })
        })
        .collect()
}

/// One free TCP address on 127.0.0.1.
pub fn allocate_tcp() -> Result<SocketAddr, TestnetError> {
    bind_tcp()?.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "TCP", source })
}

/// One free UDP address on 127.0.0.1.
pub fn allocate_udp() -> Result<SocketAddr, TestnetError> {
    bind_udp()?.local_addr().map_err(|source| TestnetError::NoFreePort { proto: "UDP", source })
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
    fn ports_come_from_below_the_ephemeral_range() {
        // An outgoing connection's source port is drawn from the ephemeral range; a port
        // from there could be taken between allocation and the validator binding it.
        let Some((low, high)) = window() else { return };
        for p in allocate(8).unwrap() {
            assert!((low..high).contains(&p.api.port()), "{p:?} outside {low}..{high}");
            assert!((low..high).contains(&p.quic.port()), "{p:?} outside {low}..{high}");
        }
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        let Some(window) = window() else { return };
        let squatter = TcpListener::bind(allocate_tcp().unwrap()).unwrap();
        let taken = squatter.local_addr().unwrap().port();
        *CURSOR.lock().unwrap() = Some(taken);
        let next = next_in_window(window, TcpListener::bind).unwrap();
        assert_ne!(next.local_addr().unwrap().port(), taken);
    }

    #[test]
    fn a_bound_port_is_not_free() {
        let listener = TcpListener::bind(LOCALHOST).unwrap();
        assert!(!tcp_free(listener.local_addr().unwrap()));
        let socket = UdpSocket::bind(LOCALHOST).unwrap();
        assert!(!udp_free(socket.local_addr().unwrap()));
    }
}
