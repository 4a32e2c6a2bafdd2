//! `GET /v1/events`: committed blocks as server-sent events (`event: block`, `id: <height>`,
//! JSON [`BlockResponse`] data), resumable with `?from=<height>` or `Last-Event-ID`.
//!
//! Guarantee: a client sees each height at most once and in increasing order, and no height
//! is skipped that the node can still serve. The feed subscribes to live blocks *before*
//! reading stored ones, so a block committed while it replays is in the subscription; live
//! blocks at or below the last height sent are dropped as duplicates. When live delivery
//! falls behind (the subscription lagged, or a live block arrives ahead of the next height),
//! the feed goes back to replaying from the store, from the next height it owes the client.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bastion_client::api::BlockResponse;
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};

use super::error::HttpError;
use super::extract::ApiQuery;
use super::service::{ApiError, NodeApi};
use super::ApiState;

/// Blocks read from the store per `blocks_from` call while replaying.
pub const REPLAY_PAGE: usize = 64;
/// Interval of the keep-alive comments that stop proxies from closing an idle stream.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

const LAST_EVENT_ID: &str = "last-event-id";

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    from: Option<u64>,
}

pub async fn events<S: NodeApi>(
    State(state): State<ApiState<S>>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let resume = resume_height(&headers, query.from)?;
    let node = Arc::clone(&state.node);
    let live = node.subscribe_blocks();
    let next = match resume {
        Some(height) => height,
        // No position given: only what is committed from now on.
        None => node.block(None)?.map_or(0, |latest| latest.height.saturating_add(1)),
    };
    // The first page is read here so a node that cannot serve it answers with a status code,
    // not with a stream that ends at once.
    let first_page = node.blocks_from(next, REPLAY_PAGE)?;
    let feed = BlockFeed {
        node,
        live,
        next,
        queue: first_page.into(),
        mode: Mode::Replay,
        held: None,
        ended: false,
    };
    let blocks = futures::stream::unfold(feed, |mut feed| async move {
        let event = feed.next_event().await?;
        Some((Ok::<Event, Infallible>(event), feed))
    });
    let shutdown = state.shutdown.clone();
    let blocks = blocks.take_until(async move { shutdown.signalled().await });
    Ok(Sse::new(blocks).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL)).into_response())
}

/// The first height to send: `Last-Event-ID` + 1 wins over `?from`, because a reconnecting
/// `EventSource` repeats the original URL and adds the header.
fn resume_height(headers: &HeaderMap, from: Option<u64>) -> Result<Option<u64>, HttpError> {
    let Some(value) = headers.get(LAST_EVENT_ID) else {
        return Ok(from);
    };
    let text = value.to_str().map_err(|_| HttpError::bad_request("Last-Event-ID is not text"))?.trim();
    if text.is_empty() {
        return Ok(from);
    }
    let last = text
        .parse::<u64>()
        .map_err(|_| HttpError::bad_request(format!("Last-Event-ID must be a block height, got {text:?}")))?;
    Ok(Some(last.saturating_add(1)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Reading stored blocks from `next` on until the store has no more.
    Replay,
    /// Forwarding blocks from the subscription.
    Live,
}

/// One client's position in the chain of committed blocks.
struct BlockFeed<S> {
    node: Arc<S>,
    live: broadcast::Receiver<BlockResponse>,
    /// The next height the client is owed; everything below it has been sent or skipped.
    next: u64,
    /// Blocks ready to send, oldest first.
    queue: VecDeque<BlockResponse>,
    mode: Mode,
    /// A live block that arrived ahead of `next`; sent after the replay that fills the gap.
    held: Option<BlockResponse>,
    ended: bool,
}

impl<S: NodeApi> BlockFeed<S> {
    /// The next event for the client, `None` when the stream ends.
    async fn next_event(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(block) = self.queue.pop_front() {
                if block.height < self.next {
                    continue;
                }
                self.next = block.height.saturating_add(1);
                return Some(block_event(&block));
            }
            match self.mode {
                Mode::Replay => match self.node.blocks_from(self.next, REPLAY_PAGE) {
                    Ok(page) if page.is_empty() => {
                        self.mode = Mode::Live;
                        self.queue.extend(self.held.take());
                    }
                    Ok(page) => self.queue.extend(page),
                    Err(e) => {
                        self.ended = true;
                        return Some(error_event(&HttpError::from(e)));
                    }
                },
                Mode::Live => match self.live.recv().await {
                    Ok(block) if block.height < self.next => {}
                    Ok(block) if block.height == self.next => self.queue.push_back(block),
                    Ok(block) => {
                        self.held = Some(block);
                        self.mode = Mode::Replay;
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(
                            missed,
                            next = self.next,
                            "event stream lagged; replaying from the store"
                        );
                        self.mode = Mode::Replay;
                    }
                    Err(RecvError::Closed) => {
                        self.ended = true;
                        return None;
                    }
                },
            }
        }
    }
}

fn block_event(block: &BlockResponse) -> Event {
    match Event::default().event("block").id(block.height.to_string()).json_data(block) {
        Ok(event) => event,
        Err(e) => {
            let detail = format!("could not encode block {}: {e}", block.height);
            error_event(&HttpError::from(ApiError::Internal(detail)))
        }
    }
}

/// A failure after the stream started: one `error` event with the usual JSON error body,
/// after which the stream ends and the client resumes with `Last-Event-ID`.
fn error_event(err: &HttpError) -> Event {
    let data = serde_json::to_string(&err.body()).unwrap_or_default();
    Event::default().event("error").data(data)
}
