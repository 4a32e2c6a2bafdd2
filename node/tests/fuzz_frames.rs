//! Fuzz target of transport framing and message decoding (`transport::frame::read_frame`,
//! `frame::decode::<NetMessage>`); see `fuzz/harness.rs`. An input is the byte stream a
//! peer sends on one QUIC stream.
//!
//! What every input must satisfy:
//! * nothing panics; reading stops at the end of the stream or at the first fatal error;
//! * no frame is buffered past `max_frame_bytes`, and no forged length inside a payload makes
//!   decoding allocate more than a small bound;
//! * a stream delivered in small pieces reads exactly as when delivered whole;
//! * a payload that decodes re-encodes to the same frame (one encoding per message).

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bastion_client::certificate::sign_state_root;
use bastion_consensus::{
    Block, BlockInfo, Committee, ConsensusMessage, QuorumCert, SyncInfo, Timeout, Vote, VoteData,
};
use bastion_crypto::{sha256, Digest, KeyPair};
use bastion_ledger::{Address, TransactionBuilder};
use bastion_node::batch::Batch;
use bastion_node::transport::frame::{self, FrameError, PROTOCOL_VERSION};
use bastion_node::wire::NetMessage;
use bytes::Bytes;
use futures::executor::block_on;
use tokio::io::{AsyncRead, ReadBuf};

#[global_allocator]
static ALLOCATOR: harness::TrackingAllocator = harness::TrackingAllocator;

const TARGET: &str = "frames";
const CHAIN: &str = "bastion-fuzz";
/// Small, so that oversized frames are common among mutated inputs.
const MAX_FRAME: usize = 64 * 1024;
/// Frames read from one input at most.
const MAX_FRAMES: usize = 32;

fn key(i: u8) -> KeyPair {
    KeyPair::from_seed([i; 32])
}

fn frame_of(message: &NetMessage) -> Vec<u8> {
    frame::encode(message, MAX_FRAME).expect("seed messages fit a frame").to_vec()
}

fn raw_frame(len: u32, version: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = len.to_le_bytes().to_vec();
    out.push(version);
    out.extend_from_slice(payload);
    out
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let keys: Vec<KeyPair> = (0..4).map(key).collect();
    let publics: Vec<_> = keys.iter().map(KeyPair::public).collect();
    let committee = Committee::new(CHAIN, &publics).expect("committee");
    let genesis_qc = QuorumCert::genesis(&committee);
    let block = Block::new(&committee, &keys[1], 1, 1, genesis_qc.clone(), None, vec![sha256(b"batch")]);
    let data = VoteData { block: block.info(), parent: BlockInfo::genesis(CHAIN) };
    let votes: Vec<Vote> = (0..3).map(|i| Vote::new(data, i, &keys[usize::from(i)], CHAIN)).collect();
    let qc = QuorumCert::from_votes(data, &votes.iter().collect::<Vec<_>>(), 4);
    let timeout = Timeout::new(2, qc.clone(), 2, &keys[2], CHAIN);
    let tx = TransactionBuilder::new(CHAIN, key(9)).transfer(Address([7; 32]), 5).expect("tx");
    let batch = Batch {
        author: 1,
        seq: 3,
        txs: vec![Bytes::from(tx.to_bytes().expect("tx")), Bytes::from_static(b"opaque")],
    };
    let root = Digest([5; 32]);
    let messages = [
        ("proposal.bin", NetMessage::Consensus(ConsensusMessage::Proposal(block.clone()))),
        ("vote.bin", NetMessage::Consensus(ConsensusMessage::Vote(votes[0].clone()))),
        ("timeout.bin", NetMessage::Consensus(ConsensusMessage::Timeout { timeout, last_tc: None })),
        (
            "block_request.bin",
            NetMessage::Consensus(ConsensusMessage::BlockRequest { digest: block.digest, count: 64 }),
        ),
        (
            "block_response.bin",
            NetMessage::Consensus(ConsensusMessage::BlockResponse { blocks: vec![block] }),
        ),
        (
            "sync_info.bin",
            NetMessage::Consensus(ConsensusMessage::SyncInfo(SyncInfo { highest_qc: qc, highest_tc: None })),
        ),
        ("batch.bin", NetMessage::Batch(batch)),
        ("batch_request.bin", NetMessage::BatchRequest(vec![Digest([1; 32]), Digest([2; 32])])),
        (
            "state_vote.bin",
            NetMessage::StateVote {
                height: 9,
                state_root: root,
                signer: 3,
                signature: sign_state_root(&keys[3], CHAIN, 9, &root),
            },
        ),
    ];
    let mut seeds: Vec<(&str, Vec<u8>)> = messages.iter().map(|(name, m)| (*name, frame_of(m))).collect();
    let vote = frame_of(&NetMessage::Consensus(ConsensusMessage::Vote(votes[1].clone())));
    let state_vote = seeds[8].1.clone();
    seeds.extend([
        ("two_frames.bin", [vote.clone(), state_vote].concat()),
        ("oversized_len.bin", raw_frame(u32::MAX, PROTOCOL_VERSION, &[0; 16])),
        ("just_over_limit.bin", raw_frame(MAX_FRAME as u32 + 1, PROTOCOL_VERSION, &[0; 16])),
        ("empty_frame_then_vote.bin", [0u32.to_le_bytes().to_vec(), vote.clone()].concat()),
        ("bad_version_then_vote.bin", [raw_frame(3, 7, &[1, 2]), vote.clone()].concat()),
        ("truncated.bin", vote[..vote.len() / 2].to_vec()),
        // A batch request claiming 2^61 digests in a 20-byte payload.
        (
            "forged_count.bin",
            raw_frame(17, PROTOCOL_VERSION, &[2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0]),
        ),
    ]);
    seeds
}

/// Delivers its bytes a few at a time, like a network stream.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.step.min(self.bytes.len()).min(buf.remaining());
        let (now, later) = self.bytes.split_at(n);
        buf.put_slice(now);
        self.bytes = later;
        self.step = self.step % 7 + 1;
        Poll::Ready(Ok(()))
    }
}

/// What reading one frame gave, in a comparable form.
#[derive(Debug, PartialEq)]
enum Outcome {
    End,
    Payload(Bytes),
    Skipped(String),
    Fatal(String),
}

fn read_all<R: AsyncRead + Unpin>(mut reader: R) -> Result<Vec<Outcome>, String> {
    let mut outcomes = Vec::new();
    for _ in 0..MAX_FRAMES {
        let (read, peak) =
            harness::largest_allocation(|| block_on(frame::read_frame(&mut reader, MAX_FRAME)));
        if peak > MAX_FRAME + 4096 {
            return Err(format!("reading a frame allocated {peak} bytes at once (limit {MAX_FRAME})"));
        }
        let outcome = match read {
            Ok(None) => Outcome::End,
            Ok(Some(payload)) => Outcome::Payload(payload),
            Err(e) if e.is_fatal() => Outcome::Fatal(e.to_string()),
            Err(e) => Outcome::Skipped(e.to_string()),
        };
        let stop = matches!(outcome, Outcome::End | Outcome::Fatal(_));
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    Ok(outcomes)
}

fn check_payload(payload: &Bytes) -> Result<(), String> {
    if payload.len() >= MAX_FRAME {
        return Err(format!("a payload of {} bytes passed a limit of {MAX_FRAME}", payload.len()));
    }
    let (decoded, peak) = harness::largest_allocation(|| frame::decode::<NetMessage>(payload));
    if peak > (1 << 20) + 8 * payload.len() + 4096 {
        return Err(format!("decoding {} bytes allocated {peak} bytes at once", payload.len()));
    }
    match decoded {
        Ok(message) => {
            let again = frame::encode(&message, MAX_FRAME).map_err(|e| format!("cannot re-encode: {e}"))?;
            if again.get(5..) != Some(payload.as_ref()) {
                return Err(format!("{message:?} re-encodes differently"));
            }
            Ok(())
        }
        Err(FrameError::Decode(_)) => Ok(()),
        Err(other) => Err(format!("decoding failed with a non-decode error: {other}")),
    }
}

#[test]
fn fuzz_frame_stream() {
    harness::ensure_seeds(TARGET, &seeds());
    harness::run(TARGET, 20_000, 256, |input| {
        let whole = read_all(input)?;
        let trickled = read_all(Trickle { bytes: input, step: 1 })?;
        if whole != trickled {
            return Err(format!("delivery in pieces changed the frames: {whole:?} vs {trickled:?}"));
        }
        whole.iter().try_for_each(|outcome| match outcome {
            Outcome::Payload(payload) => check_payload(payload),
            _ => Ok(()),
        })
    });
}

#[test]
fn oversized_frame_headers_are_refused_before_allocating() {
    for len in [MAX_FRAME as u32 + 1, u32::MAX] {
        let header = len.to_le_bytes();
        let (read, peak) =
            harness::largest_allocation(|| block_on(frame::read_frame(&mut header.as_slice(), MAX_FRAME)));
        assert!(matches!(read, Err(FrameError::TooLarge { .. })), "{read:?}");
        assert!(peak < 4096, "refusing a {len}-byte frame allocated {peak} bytes");
    }
}
