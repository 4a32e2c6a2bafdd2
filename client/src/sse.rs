//! An incremental parser of server-sent events (the `text/event-stream` format).
//!
//! Feed it bytes as they arrive, in chunks of any size (a chunk may end mid-line or
//! mid-character); it returns each complete event. It follows the WHATWG rules that
//! matter here: `event:`, `data:` (several lines join with `\n`), `id:`, comments (`:`),
//! one optional space after the colon, an event dispatched at a blank line, no dispatch
//! for an event without data. Lines end with `\n` or `\r\n`.

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `"message"` when absent.
    pub event: String,
    pub data: String,
    /// The last `id:` seen so far in the stream (ids persist across events).
    pub id: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
    /// The server's `retry:` hint, in milliseconds.
    retry_ms: Option<u64>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The reconnection delay the server asked for, if any.
    pub fn retry_ms(&self) -> Option<u64> {
        self.retry_ms
    }

    /// Consumes `chunk`; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if let Some(event) = self.process_line(&String::from_utf8_lossy(&line)) {
                    events.push(event);
                }
            } else {
                self.line.push(byte);
            }
        }
        events
    }

    fn process_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".to_string()),
                data,
                id: self.last_id.clone(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
            "retry" => self.retry_ms = value.parse().ok().or(self.retry_ms),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_anywhere() {
        let stream = b": keep-alive\r\nevent: block\r\nid: 7\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: plain\n\nevent: x\n\nretry: 1500\nid: 8\nevent: block\ndata:no-space\n\n";
        let expected = vec![
            SseEvent { event: "block".into(), data: "{\"a\":\n1}".into(), id: Some("7".into()) },
            SseEvent { event: "message".into(), data: "plain".into(), id: Some("7".into()) },
            SseEvent { event: "block".into(), data: "no-space".into(), id: Some("8".into()) },
        ];
        // Whole, and byte by byte: the same events.
        let mut whole = SseParser::new();
        assert_eq!(whole.push(stream), expected);
        assert_eq!(whole.retry_ms(), Some(1500));
        let mut bytewise = SseParser::new();
        let events: Vec<_> = stream.iter().flat_map(|b| bytewise.push(&[*b])).collect();
        assert_eq!(events, expected);
    }

    #[test]
    fn an_event_without_a_blank_line_is_not_dispatched() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"event: block\ndata: {}\n").is_empty());
        assert_eq!(parser.push(b"\n").len(), 1);
        // A multi-byte character split across chunks survives.
        let text = "data: é\n\n".as_bytes();
        assert!(parser.push(&text[..7]).is_empty());
        assert_eq!(parser.push(&text[7..])[0].data, "é");
    }
}
