//! Certificate pinning to committee keys: the rustls verifiers and TLS configurations.
//!
//! There is no PKI. A peer is accepted iff
//! 1. it presents exactly one certificate whose SubjectPublicKeyInfo is an ed25519 key,
//! 2. that key is admitted by the pin — the dialled validator's key on the client side
//!    ([`KeyPin::Exactly`]), any committee key on the server side ([`KeyPin::AnyOf`]) —
//! 3. and the TLS 1.3 handshake signature verifies under that key with scheme ed25519
//!    (checked by rustls's ring provider), which proves the peer holds the private key.
//!
//! Names, validity periods and extensions of the certificate are ignored: the key is the
//! identity. Both sides authenticate (the server requires a client certificate), session
//! resumption is off so every connection goes through this check, and the ALPN is
//! [`ALPN`]. Only the ring crypto provider is used.

use std::sync::Arc;

use bastion_crypto::PublicKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, PeerIncompatible, SignatureScheme,
};

use super::identity::{certified_key, TlsIdentity};
use super::TransportError;

/// The one application protocol spoken on validator connections.
pub const ALPN: &[u8] = b"bastion/1";

/// Which peer keys a verifier admits.
#[derive(Debug, Clone)]
pub enum KeyPin {
    /// Exactly this key: the validator we dialled.
    Exactly(PublicKey),
    /// Any of these keys: the committee, for incoming connections.
    AnyOf(Arc<[PublicKey]>),
}

impl KeyPin {
    pub fn admits(&self, key: &PublicKey) -> bool {
        match self {
            KeyPin::Exactly(expected) => expected == key,
            KeyPin::AnyOf(keys) => keys.contains(key),
        }
    }
}

/// The rustls verifier for both directions; see the module documentation for the rule.
#[derive(Debug)]
struct PinnedKeyVerifier {
    pin: KeyPin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedKeyVerifier {
    fn new(pin: KeyPin, provider: &CryptoProvider) -> Self {
        PinnedKeyVerifier { pin, algorithms: provider.signature_verification_algorithms }
    }

    fn check_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), Error> {
        if !intermediates.is_empty() {
            return Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
        }
        let key =
            certified_key(end_entity).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if !self.pin.admits(&key) {
            return Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
        }
        Ok(())
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if dss.scheme != SignatureScheme::ED25519 {
            return Err(Error::PeerIncompatible(PeerIncompatible::NoSignatureSchemesInCommon));
        }
        // rustls passes the certificate it already verified; re-checking the pin keeps the
        // rule in one place even if that ever changed.
        self.check_certificate(cert, &[])?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for PinnedKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check_certificate(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(PeerIncompatible::Tls13RequiredForQuic))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PinnedKeyVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check_certificate(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(PeerIncompatible::Tls13RequiredForQuic))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS configuration for accepting connections from committee members.
pub fn server_tls_config(
    identity: &TlsIdentity,
    committee: Arc<[PublicKey]>,
) -> Result<rustls::ServerConfig, TransportError> {
    let provider = ring_provider();
    let verifier = PinnedKeyVerifier::new(KeyPin::AnyOf(committee), &provider);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(identity.cert_chain(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}

/// TLS configuration for dialling the validator whose key is `peer`.
pub fn client_tls_config(
    identity: &TlsIdentity,
    peer: PublicKey,
) -> Result<rustls::ClientConfig, TransportError> {
    let provider = ring_provider();
    let verifier = PinnedKeyVerifier::new(KeyPin::Exactly(peer), &provider);
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(identity.cert_chain(), identity.private_key())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_early_data = false;
    Ok(config)
}
