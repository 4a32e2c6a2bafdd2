//! Ed25519 key pairs, public keys and signatures with domain separation.
//!
//! Every signature is made over `len(domain) || domain || message`, where the domain names
//! what is signed (`"bastion/vote/v1"`, `"bastion/tx/v1"`, ...). A signature made for one
//! domain never verifies in another.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::hex_array;
use crate::CryptoError;

/// What a signature is for; part of every signed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain(pub &'static str);

impl Domain {
    /// Bytes that precede the message in the signed data.
    pub(crate) fn prefix(&self) -> ([u8; 1], &'static [u8]) {
        // A longer tag would wrap its length byte and make the prefix ambiguous. Tags are
        // compile-time constants, so this fires in the first test that uses a bad one.
        assert!(self.0.len() <= usize::from(u8::MAX), "domain tag longer than 255 bytes");
        ([self.0.len() as u8], self.0.as_bytes())
    }

    /// The exact bytes an ed25519 signature in this domain covers: `len(tag) ‖ tag ‖ msg`.
    pub fn signed_bytes(&self, msg: &[u8]) -> Vec<u8> {
        let (len, tag) = self.prefix();
        let mut out = Vec::with_capacity(1 + tag.len() + msg.len());
        out.extend_from_slice(&len);
        out.extend_from_slice(tag);
        out.extend_from_slice(msg);
        out
    }
}

/// A compressed ed25519 public key (32 bytes). Not checked to be on the curve until used.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Ok(PublicKey(hex_array(s)?))
    }
}

/// An ed25519 signature `R || S` (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        Ok(Signature(hex_array(s)?))
    }
}

/// An ed25519 signing key. Serializes (JSON) as `{"public": hex, "seed": hex}`.
#[derive(Clone)]
pub struct KeyPair {
    signing: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl KeyPair {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_seed(seed)
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = PublicKey(signing.verifying_key().to_bytes());
        KeyPair { signing, public }
    }

    pub fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn sign(&self, domain: Domain, msg: &[u8]) -> Signature {
        Signature(self.signing.sign(&domain.signed_bytes(msg)).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({:?})", self.public)
    }
}

#[derive(Serialize, Deserialize)]
struct KeyPairFile {
    public: String,
    seed: String,
}

impl Serialize for KeyPair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        KeyPairFile { public: self.public.to_hex(), seed: hex::encode(self.seed()) }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for KeyPair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = KeyPairFile::deserialize(d)?;
        let seed: [u8; 32] = hex_array(&file.seed).map_err(serde::de::Error::custom)?;
        let public = PublicKey::from_hex(&file.public).map_err(serde::de::Error::custom)?;
        let pair = KeyPair::from_seed(seed);
        if pair.public != public {
            return Err(serde::de::Error::custom("public key does not match the seed"));
        }
        Ok(pair)
    }
}

macro_rules! hex_serde {
    ($ty:ident, $len:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", &self.to_hex()[..12])
            }
        }

        impl FromStr for $ty {
            type Err = CryptoError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::from_hex(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.to_hex())
                } else {
                    s.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct BytesVisitor;
                impl<'de> serde::de::Visitor<'de> for BytesVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} bytes or a hex string", $len)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        $ty::from_hex(v).map_err(E::custom)
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<$ty, E> {
                        let arr: [u8; $len] = v.try_into().map_err(|_| E::invalid_length(v.len(), &self))?;
                        Ok($ty(arr))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<$ty, A::Error> {
                        let mut arr = [0u8; $len];
                        for (i, b) in arr.iter_mut().enumerate() {
                            *b = seq
                                .next_element()?
                                .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                        }
                        Ok($ty(arr))
                    }
                }
                if d.is_human_readable() {
                    d.deserialize_str(BytesVisitor)
                } else {
                    d.deserialize_bytes(BytesVisitor)
                }
            }
        }
    };
}

hex_serde!(PublicKey, 32);
hex_serde!(Signature, 64);
