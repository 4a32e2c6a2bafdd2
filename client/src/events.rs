//! [`BlockStream`]: committed blocks from `GET /v1/events`, resumed across disconnections.
//!
//! The node sends each committed block as a server-sent event named `block` whose id is
//! the height and whose data is a [`BlockResponse`]. The stream remembers the next height
//! it expects; when the connection drops it reconnects with `?from=<next height>` (and
//! `Last-Event-ID`), so no block is skipped, and drops any block it already delivered, so
//! none is repeated. Blocks come out in height order as the node sent them.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};

use crate::api::BlockResponse;
use crate::client::{api_error, unreachable, Client};
use crate::error::ClientError;
use crate::sse::SseParser;

/// Consecutive failed reconnections before the stream gives up with an error.
pub const MAX_RECONNECTS: u32 = 5;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

pub struct BlockStream {
    client: Client,
    /// The next height to deliver (`None`: live, from whatever comes next).
    next_height: Option<u64>,
    body: Option<ByteStream>,
    parser: SseParser,
    queue: VecDeque<BlockResponse>,
    failures: u32,
}

impl BlockStream {
    pub(crate) async fn connect(client: Client, from: Option<u64>) -> Result<Self, ClientError> {
        let mut stream = BlockStream {
            client,
            next_height: from,
            body: None,
            parser: SseParser::new(),
            queue: VecDeque::new(),
            failures: 0,
        };
        stream.open().await?;
        Ok(stream)
    }

    /// The height the stream would resume from.
    pub fn next_height(&self) -> Option<u64> {
        self.next_height
    }

    fn events_url(&self) -> String {
        match self.next_height {
            Some(h) => self.client.url(&format!("/v1/events?from={h}")),
            None => self.client.url("/v1/events"),
        }
    }

    async fn open(&mut self) -> Result<(), ClientError> {
        let url = self.events_url();
        // No overall timeout: the stream is meant to stay open.
        let mut request = self
            .client
            .http()
            .get(&url)
            .header("accept", "text/event-stream")
            .timeout(Duration::from_secs(u64::from(u32::MAX)));
        if let Some(h) = self.next_height.and_then(|h| h.checked_sub(1)) {
            request = request.header("last-event-id", h.to_string());
        }
        let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let headers = response.headers().clone();
            let body = response.bytes().await.unwrap_or_default();
            return Err(api_error(&url, status, &headers, &body));
        }
        self.body = Some(Box::pin(response.bytes_stream()));
        self.parser = SseParser::new();
        Ok(())
    }

    /// The next block, `None` never (the stream reconnects), or an error once reconnecting
    /// failed [`MAX_RECONNECTS`] times in a row or the node refused the request.
    pub async fn next(&mut self) -> Option<Result<BlockResponse, ClientError>> {
        loop {
            if let Some(block) = self.queue.pop_front() {
                return Some(Ok(block));
            }
            let Some(body) = self.body.as_mut() else {
                if let Err(e) = self.reconnect().await {
                    return Some(Err(e));
                }
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = self.accept(&chunk) {
                        return Some(Err(e));
                    }
                }
                // Dropped or ended: resume from the next height.
                Some(Err(_)) | None => self.body = None,
            }
        }
    }

    /// Into a `futures` stream of the same items.
    pub fn into_stream(self) -> impl Stream<Item = Result<BlockResponse, ClientError>> + Send {
        futures_util::stream::unfold(self, |mut s| async move { s.next().await.map(|item| (item, s)) })
    }

    fn accept(&mut self, chunk: &[u8]) -> Result<(), ClientError> {
        for event in self.parser.push(chunk) {
            if event.event != "block" && event.event != "message" {
                continue;
            }
            let block: BlockResponse =
                serde_json::from_str(&event.data).map_err(|e| ClientError::Decode {
                    url: self.events_url(),
                    status: 200,
                    reason: format!("bad block event: {e}"),
                })?;
            if self.next_height.is_some_and(|next| block.height < next) {
                continue;
            }
            self.next_height = Some(block.height + 1);
            self.failures = 0;
            self.queue.push_back(block);
        }
        Ok(())
    }

    async fn reconnect(&mut self) -> Result<(), ClientError> {
        loop {
            let backoff = self
                .parser
                .retry_ms()
                .map(Duration::from_millis)
                .unwrap_or(Duration::from_millis(250) * 2u32.pow(self.failures.min(4)));
            tokio::time::sleep(backoff).await;
            match self.open().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_rejection() => return Err(e),
                Err(e) => {
                    self.failures += 1;
                    if self.failures >= MAX_RECONNECTS {
                        self.failures = 0;
                        return Err(ClientError::Stream {
                            url: self.events_url(),
                            reason: format!("gave up after {MAX_RECONNECTS} reconnection attempts: {e}"),
                        });
                    }
                }
            }
        }
    }
}
