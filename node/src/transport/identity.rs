//! The TLS identity of a validator, derived from its ed25519 validator key.
//!
//! A validator's certificate is self-signed by its validator key and its
//! SubjectPublicKeyInfo *is* that key, so the committee's list of public keys is all a peer
//! needs to authenticate it: there is no CA, no hostname and nothing else to distribute.
//! The certificate's names and validity period carry no meaning and are never checked.
//!
//! This module also derives the endpoint's QUIC secrets from the validator key — the
//! stateless-reset key and the connection-ID validation key — so a validator that crashed
//! and restarted recognises the connection IDs its previous incarnation issued and resets
//! the connections its peers still hold (they reconnect at once instead of waiting for an
//! idle timeout).

use bastion_crypto::{KeyPair, PublicKey};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ParsedCertificate;

use super::TransportError;

/// DER of an Ed25519 PKCS#8 v1 private key (RFC 8410) up to the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, // SEQUENCE, 46 bytes
    0x02, 0x01, 0x00, // INTEGER 0 (version v1)
    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, // AlgorithmIdentifier { id-Ed25519 }
    0x04, 0x22, 0x04, 0x20, // OCTET STRING { OCTET STRING (32 bytes) }
];

/// DER of an Ed25519 SubjectPublicKeyInfo (RFC 8410) up to the 32-byte public key.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, // SEQUENCE, 42 bytes
    0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, // AlgorithmIdentifier { id-Ed25519 }
    0x03, 0x21, 0x00, // BIT STRING, 33 bytes, no unused bits
];

/// Domains of the endpoint secret derivations; never used for anything else.
const RESET_KEY_DOMAIN: &[u8] = b"bastion/transport/stateless-reset/v1";
const CID_KEY_DOMAIN: &[u8] = b"bastion/transport/connection-id/v1";

/// A validator's self-signed certificate and the matching private key.
pub struct TlsIdentity {
    public: PublicKey,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl TlsIdentity {
    /// Builds the certificate for `key`. Deterministic in the key except for the
    /// certificate's serial number, which nobody checks.
    pub fn new(key: &KeyPair) -> Result<Self, TransportError> {
        let public = key.public();
        let pkcs8 = PrivatePkcs8KeyDer::from(ed25519_pkcs8(&key.seed()));
        let signer = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
            .map_err(|e| TransportError::Identity(e.to_string()))?;
        if signer.public_key_raw() != public.as_bytes() {
            return Err(TransportError::Identity("rcgen derived a different public key".into()));
        }
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
            .map_err(|e| TransportError::Identity(e.to_string()))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("bastion validator {}", public.to_hex()));
        let cert = params.self_signed(&signer).map_err(|e| TransportError::Identity(e.to_string()))?;
        Ok(TlsIdentity { public, cert: cert.der().clone(), key: pkcs8 })
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn cert_chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone()]
    }

    pub fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// The ed25519 public key a certificate certifies, or `None` if the certificate does not
/// parse or its key is not an ed25519 key. Safe on any input.
pub fn certified_key(cert: &CertificateDer<'_>) -> Option<PublicKey> {
    let parsed = ParsedCertificate::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let raw = spki.as_ref().strip_prefix(&SPKI_ED25519_PREFIX[..])?;
    let bytes: [u8; 32] = raw.try_into().ok()?;
    Some(PublicKey(bytes))
}

/// The QUIC endpoint secrets of this validator, stable across restarts.
pub(crate) struct EndpointSecrets {
    /// Key of the stateless-reset tokens. Secret: whoever knew it could kill our connections.
    pub(crate) reset_key: ring::hmac::Key,
    /// Key that makes our connection IDs recognisable (a cheap filter, not a secret).
    pub(crate) cid_key: u64,
}

/// Derives the endpoint secrets with HMAC-SHA256 keyed by the validator's secret seed.
pub(crate) fn endpoint_secrets(key: &KeyPair) -> EndpointSecrets {
    let seed_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.seed());
    let reset = ring::hmac::sign(&seed_key, RESET_KEY_DOMAIN);
    let cid = ring::hmac::sign(&seed_key, CID_KEY_DOMAIN);
    EndpointSecrets {
        reset_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset.as_ref()),
        cid_key: cid.as_ref().first_chunk::<8>().map(|b| u64::from_le_bytes(*b)).unwrap_or_default(),
    }
}

fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = Vec::with_capacity(PKCS8_ED25519_PREFIX.len() + seed.len());
    der.extend_from_slice(&PKCS8_ED25519_PREFIX);
    der.extend_from_slice(seed);
    der
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_certifies_the_validator_key() {
        let key = KeyPair::from_seed([7; 32]);
        let identity = TlsIdentity::new(&key).expect("identity");
        let chain = identity.cert_chain();
        assert_eq!(chain.len(), 1);
        assert_eq!(chain.first().and_then(certified_key), Some(key.public()));
    }

    #[test]
    fn garbage_certificate_has_no_key() {
        assert_eq!(certified_key(&CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01])), None);
        assert_eq!(certified_key(&CertificateDer::from(Vec::new())), None);
    }
}
