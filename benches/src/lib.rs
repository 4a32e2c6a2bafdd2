//! Criterion benchmarks of the hot paths live in `benches/`; this library holds what the
//! benchmarks and the examples share.

use bastion_crypto::{BatchItem, Domain, KeyPair, PreparedKey, PublicKey, Signature, VerifyKey};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// The domain every benchmark signature is made under.
pub const DOMAIN: Domain = Domain("bastion/tx/v1");
/// Bytes of each signed message.
pub const MESSAGE_LEN: usize = 128;

/// `n` signed messages by `senders` distinct keys (round robin).
pub struct Workload {
    pub msgs: Vec<Vec<u8>>,
    /// The exact bytes signed (domain-prefixed), for the libraries that take raw messages.
    pub signed: Vec<Vec<u8>>,
    pub keys: Vec<PublicKey>,
    pub sigs: Vec<Signature>,
    pub prepared: Vec<PreparedKey>,
    pub dalek_keys: Vec<ed25519_dalek::VerifyingKey>,
    pub dalek_sigs: Vec<ed25519_dalek::Signature>,
}

impl Workload {
    pub fn new(n: usize, senders: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let pairs: Vec<KeyPair> = (0..senders).map(|_| KeyPair::generate(&mut rng)).collect();
        let mut w = Workload {
            msgs: Vec::new(),
            signed: Vec::new(),
            keys: Vec::new(),
            sigs: Vec::new(),
            prepared: Vec::new(),
            dalek_keys: Vec::new(),
            dalek_sigs: Vec::new(),
        };
        for i in 0..n {
            let pair = &pairs[i % senders];
            let mut msg = vec![0u8; MESSAGE_LEN];
            rng.fill_bytes(&mut msg);
            let sig = pair.sign(DOMAIN, &msg);
            w.signed.push(DOMAIN.signed_bytes(&msg));
            w.prepared.push(PreparedKey::new(&pair.public()).expect("valid key"));
            w.dalek_keys.push(ed25519_dalek::VerifyingKey::from_bytes(&pair.public().0).expect("valid key"));
            w.dalek_sigs.push(ed25519_dalek::Signature::from_bytes(&sig.0));
            w.keys.push(pair.public());
            w.sigs.push(sig);
            w.msgs.push(msg);
        }
        w
    }

    /// The batch with raw keys, as from fresh senders.
    pub fn raw_items(&self) -> Vec<BatchItem<'_>> {
        self.items(|i| VerifyKey::Raw(&self.keys[i]))
    }

    /// The batch with prepared keys, as for validators and cached senders.
    pub fn prepared_items(&self) -> Vec<BatchItem<'_>> {
        self.items(|i| VerifyKey::Prepared(&self.prepared[i]))
    }

    fn items<'a>(&'a self, key: impl Fn(usize) -> VerifyKey<'a>) -> Vec<BatchItem<'a>> {
        (0..self.msgs.len())
            .map(|i| BatchItem { domain: DOMAIN, msg: &self.msgs[i], key: key(i), sig: &self.sigs[i] })
            .collect()
    }

    pub fn signed_refs(&self) -> Vec<&[u8]> {
        self.signed.iter().map(Vec::as_slice).collect()
    }
}
