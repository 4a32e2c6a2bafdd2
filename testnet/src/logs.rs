//! Reading validators' `node.log` files: the last lines for error reports, and following a
//! log as it grows.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

/// How many log lines a start-up failure shows.
pub const FAILURE_TAIL_LINES: usize = 20;

/// The line the supervisor appends to a validator's log before each start.
pub const START_MARKER: &str = "==> bastion testnet: starting";

/// The last `n` lines of the latest run in the log at `path` (from the last
/// [`START_MARKER`] on, so a failure report never shows an earlier run's lines).
pub fn tail_of_last_run(path: &Path, n: usize) -> Vec<String> {
    let mut lines = tail(path, n);
    if let Some(start) = lines.iter().rposition(|l| l.starts_with(START_MARKER)) {
        lines.drain(..start);
    }
    lines
}

/// The last `n` lines of the file at `path` (empty if it is missing). Reads at most the
/// last 256 KiB, so a huge log costs nothing.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    const WINDOW: u64 = 256 * 1024;
    let Ok(mut file) = std::fs::File::open(path) else { return Vec::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(WINDOW);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    // A window that starts mid-file starts mid-line: drop that partial first line.
    let skip = usize::from(start > 0);
    let first = skip.max(lines.len().saturating_sub(n)).min(lines.len());
    lines[first..].iter().map(|l| l.to_string()).collect()
}

/// Copies what is appended to `path` to `out` until `stop` returns true, polling every
/// `interval`. Starts at the current end of the file.
pub fn follow(
    path: &Path,
    out: &mut dyn std::io::Write,
    interval: Duration,
    mut stop: impl FnMut() -> bool,
) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut pos = file.seek(SeekFrom::End(0))?;
    let mut buf = Vec::new();
    while !stop() {
        let len = file.metadata()?.len();
        if len < pos {
            // Truncated (a reset): start again from the top.
            pos = file.seek(SeekFrom::Start(0))?;
        }
        buf.clear();
        pos += file.read_to_end(&mut buf)? as u64;
        if !buf.is_empty() {
            out.write_all(&buf)?;
            out.flush()?;
        }
        std::thread::sleep(interval);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_returns_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let last = tail(&path, 20);
        assert_eq!(last.len(), 20);
        assert_eq!(last.first().map(String::as_str), Some("line 30"));
        assert_eq!(last.last().map(String::as_str), Some("line 49"));
        assert_eq!(tail(&path, 100).len(), 50);
        assert!(tail(&dir.path().join("missing"), 5).is_empty());
    }

    #[test]
    fn the_last_run_starts_at_the_last_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.log");
        let text = format!("{START_MARKER} a\nold error\n{START_MARKER} b\nnew error\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(tail_of_last_run(&path, 20), vec![format!("{START_MARKER} b"), "new error".to_string()]);
    }
}
