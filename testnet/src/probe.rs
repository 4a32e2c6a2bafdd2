//! Asking a validator's HTTP API whether it is up, without an HTTP client library.
//!
//! The supervisor only needs `GET /health` and `GET /status` on 127.0.0.1, so it speaks
//! HTTP/1.0 over a `TcpStream` with short timeouts: the server closes the connection after
//! the answer and never uses chunked encoding, so reading to the end gives the body.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What `GET /health` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// 200: ready to serve.
    Ready,
    /// Answered, but not ready (503, or another status); the reason it gave.
    NotReady(String),
    /// No answer (connection refused, timeout, garbage).
    Unreachable(String),
}

impl Health {
    pub fn is_ready(&self) -> bool {
        matches!(self, Health::Ready)
    }

    /// A few words for a table column.
    pub fn summary(&self) -> String {
        match self {
            Health::Unreachable(_) => "unreachable".into(),
            other => other.describe(),
        }
    }

    /// A description with the reason, for errors and JSON.
    pub fn describe(&self) -> String {
        match self {
            Health::Ready => "ready".into(),
            Health::NotReady(reason) => format!("not ready: {reason}"),
            Health::Unreachable(reason) => format!("unreachable: {reason}"),
        }
    }
}

/// Largest answer read (a `/status` with a big committee is a few KiB).
const MAX_RESPONSE: u64 = 1024 * 1024;

/// `GET path` on `addr`: the status code and the body.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    // One write: a server may answer (and close) as soon as it has the request line.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.to_string()))
}

/// `GET /health`.
pub fn health(addr: SocketAddr, timeout: Duration) -> Health {
    match get(addr, "/health", timeout) {
        Ok((200, _)) => Health::Ready,
        Ok((status, body)) => {
            let reason = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {status}"));
            Health::NotReady(reason)
        }
        Err(e) => Health::Unreachable(e.to_string()),
    }
}

/// The committed height from `GET /status`, if the validator answers.
pub fn committed_height(addr: SocketAddr, timeout: Duration) -> Option<u64> {
    let (status, body) = get(addr, "/status", timeout).ok()?;
    if status != 200 {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&body).ok()?.get("committed_height")?.as_u64()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    fn serve_once(response: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(response.as_bytes());
            }
        });
        addr
    }

    #[test]
    fn reads_status_and_reason() {
        let t = Duration::from_secs(2);
        let ok = serve_once("HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{\"ready\":true}");
        assert_eq!(health(ok, t), Health::Ready);
        let busy = serve_once(
            "HTTP/1.0 503 Service Unavailable\r\n\r\n{\"ready\":false,\"reason\":\"catching up\"}",
        );
        assert_eq!(health(busy, t), Health::NotReady("catching up".into()));
        let status = serve_once("HTTP/1.0 200 OK\r\n\r\n{\"committed_height\":17}");
        assert_eq!(committed_height(status, t), Some(17));
    }

    #[test]
    fn nothing_listening_is_unreachable() {
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        assert!(matches!(health(addr, Duration::from_millis(500)), Health::Unreachable(_)));
    }
}
