//! Wire framing of transport messages.
//!
//! A frame is `len: u32 LE || version: u8 || payload`, where `len` counts the version byte
//! and the payload (so `len >= 1`) and the payload is the bincode encoding of one message
//! (fixed-width integers, little endian, no trailing bytes — the same bytes
//! `bincode::serialize` produces). Guarantees of [`read_frame`]:
//! * the length is checked against the limit *before* anything is allocated or read, so a
//!   peer cannot make us buffer more than `max_frame_bytes` per stream;
//! * a frame that is too large or truncated ends the stream ([`FrameError::is_fatal`]),
//!   because nothing after it can be trusted to be in sync; an empty frame or one with an
//!   unknown version is skipped whole and the stream stays usable;
//! * no input makes it panic.

use std::io;

use bincode::Options;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The protocol version byte carried by every frame.
pub const PROTOCOL_VERSION: u8 = 1;

/// Default bound on a frame's `len` field.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 << 20;

const LEN_BYTES: usize = 4;
const HEADER_BYTES: usize = LEN_BYTES + 1;

#[derive(Debug, Error)]
pub enum FrameError {
    #[error("stream error: {0}")]
    Io(#[from] io::Error),
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame (no version byte)")]
    Empty,
    #[error("unsupported frame version {0}")]
    BadVersion(u8),
    #[error("cannot decode the frame payload: {0}")]
    Decode(bincode::Error),
    #[error("cannot encode the message: {0}")]
    Encode(bincode::Error),
}

impl FrameError {
    /// Whether the stream must be abandoned: the reader no longer knows where the next
    /// frame starts, or the peer broke the size limit.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FrameError::Io(_) | FrameError::Truncated | FrameError::TooLarge { .. })
    }
}

/// The single bincode configuration of the wire format.
fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_little_endian().reject_trailing_bytes()
}

/// Encodes `msg` as one complete frame (header included), ready to be written as is and
/// shared between any number of destinations.
pub fn encode<M: Serialize>(msg: &M, max_frame_bytes: usize) -> Result<Bytes, FrameError> {
    let payload_len = codec().serialized_size(msg).map_err(FrameError::Encode)?;
    let len = usize::try_from(payload_len).unwrap_or(usize::MAX).saturating_add(1);
    if len > max_frame_bytes {
        return Err(FrameError::TooLarge { len, max: max_frame_bytes });
    }
    let len_field = u32::try_from(len).map_err(|_| FrameError::TooLarge { len, max: u32::MAX as usize })?;
    let mut frame = Vec::with_capacity(LEN_BYTES + len);
    frame.extend_from_slice(&len_field.to_le_bytes());
    frame.push(PROTOCOL_VERSION);
    codec().serialize_into(&mut frame, msg).map_err(FrameError::Encode)?;
    debug_assert_eq!(frame.len(), HEADER_BYTES - 1 + len);
    Ok(Bytes::from(frame))
}

/// Reads the next frame and returns its payload; `Ok(None)` when the stream ended cleanly
/// on a frame boundary.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut len_bytes = [0u8; LEN_BYTES];
    let mut filled = 0;
    while filled < LEN_BYTES {
        let rest = len_bytes.get_mut(filled..).ok_or(FrameError::Truncated)?;
        match reader.read(rest).await? {
            0 if filled == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated),
            n => filled += n,
        }
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > max_frame_bytes {
        return Err(FrameError::TooLarge { len, max: max_frame_bytes });
    }
    if len == 0 {
        return Err(FrameError::Empty);
    }
    let mut version = [0u8; 1];
    read_exact(reader, &mut version).await?;
    let mut payload = vec![0u8; len - 1];
    read_exact(reader, &mut payload).await?;
    match version {
        [PROTOCOL_VERSION] => Ok(Some(Bytes::from(payload))),
        [other] => Err(FrameError::BadVersion(other)),
    }
}

/// Decodes one message from a frame payload; the payload must be consumed exactly.
pub fn decode<M: DeserializeOwned>(payload: &[u8]) -> Result<M, FrameError> {
    codec().with_limit(payload.len() as u64).deserialize(payload).map_err(FrameError::Decode)
}

async fn read_exact<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    match reader.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(FrameError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Msg {
        round: u64,
        body: Vec<u8>,
    }

    fn frame_bytes(len: u32, version: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = len.to_le_bytes().to_vec();
        out.push(version);
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test]
    async fn round_trip_matches_plain_bincode() {
        let msg = Msg { round: 9, body: vec![1, 2, 3] };
        let frame = encode(&msg, 1024).expect("encode");
        let plain = bincode::serialize(&msg).expect("bincode");
        assert_eq!(frame.get(5..), Some(plain.as_slice()));
        let mut reader = frame.as_ref();
        let payload = read_frame(&mut reader, 1024).await.expect("read").expect("frame");
        assert_eq!(decode::<Msg>(&payload).expect("decode"), msg);
        assert!(read_frame(&mut reader, 1024).await.expect("eof").is_none());
    }

    #[tokio::test]
    async fn oversized_length_is_rejected_before_reading_the_body() {
        // Only the header exists: a reader that tried to read the body would see Truncated.
        let bytes = (1025u32).to_le_bytes();
        let err = read_frame(&mut bytes.as_ref(), 1024).await.expect_err("too large");
        assert!(matches!(err, FrameError::TooLarge { len: 1025, max: 1024 }));
        assert!(err.is_fatal());
        let err = read_frame(&mut u32::MAX.to_le_bytes().as_ref(), 1024).await.expect_err("max");
        assert!(matches!(err, FrameError::TooLarge { .. }));
    }

    #[tokio::test]
    async fn bad_version_and_garbage_are_skipped_and_the_stream_stays_in_sync() {
        let good = encode(&Msg { round: 1, body: vec![] }, 1024).expect("encode");
        let mut stream = frame_bytes(4, 2, &[0, 0, 0]);
        stream.extend_from_slice(&frame_bytes(4, PROTOCOL_VERSION, &[0xff, 0xff, 0xff]));
        stream.extend_from_slice(&0u32.to_le_bytes());
        stream.extend_from_slice(&good);
        let mut reader = stream.as_slice();
        let err = read_frame(&mut reader, 1024).await.expect_err("version");
        assert!(matches!(err, FrameError::BadVersion(2)) && !err.is_fatal());
        let garbage = read_frame(&mut reader, 1024).await.expect("read").expect("frame");
        assert!(matches!(decode::<Msg>(&garbage), Err(FrameError::Decode(_))));
        let err = read_frame(&mut reader, 1024).await.expect_err("empty");
        assert!(matches!(err, FrameError::Empty) && !err.is_fatal());
        let payload = read_frame(&mut reader, 1024).await.expect("read").expect("frame");
        assert_eq!(decode::<Msg>(&payload).expect("decode").round, 1);
    }

    #[tokio::test]
    async fn truncation_is_fatal() {
        let err = read_frame(&mut [5u8, 0].as_ref(), 1024).await.expect_err("short header");
        assert!(matches!(err, FrameError::Truncated) && err.is_fatal());
        let bytes = frame_bytes(10, PROTOCOL_VERSION, &[1, 2]);
        let err = read_frame(&mut bytes.as_slice(), 1024).await.expect_err("short body");
        assert!(matches!(err, FrameError::Truncated));
    }

    #[test]
    fn trailing_bytes_do_not_decode() {
        let mut bytes = bincode::serialize(&Msg { round: 1, body: vec![] }).expect("bincode");
        bytes.push(0);
        assert!(decode::<Msg>(&bytes).is_err());
    }

    #[test]
    fn encoder_refuses_frames_over_the_limit() {
        let msg = Msg { round: 1, body: vec![0; 100] };
        assert!(matches!(encode(&msg, 64), Err(FrameError::TooLarge { .. })));
        let exact = encode(&msg, 1024).expect("fits").len() - 4;
        assert!(encode(&msg, exact).is_ok());
        assert!(encode(&msg, exact - 1).is_err());
    }
}
