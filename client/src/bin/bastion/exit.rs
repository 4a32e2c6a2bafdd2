//! Exit codes by class of outcome (listed in `bastion --help`; see `args::EXIT_CODES`).

use bastion_client::api::TxStatus;
use bastion_client::discovery::DiscoveryError;
use bastion_client::{ClientError, VerifyError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Usage or local error, or a node-side internal error.
    Local,
    /// No node answered, or it is not ready.
    Unreachable,
    /// The node refused the request (4xx), or the transaction was rejected or expired.
    Rejected,
    /// Timed out waiting; the transaction is still pending.
    Pending,
    /// A proof did not verify.
    Unverified,
    /// The transaction committed but failed.
    TxFailed,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Success => 0,
            Exit::Local => 1,
            Exit::Unreachable => 2,
            Exit::Rejected => 3,
            Exit::Pending => 4,
            Exit::Unverified => 5,
            Exit::TxFailed => 6,
        }
    }

    /// The exit for a transaction's status after waiting for it.
    pub fn of_status(status: TxStatus) -> Exit {
        match status {
            TxStatus::CommittedOk => Exit::Success,
            TxStatus::CommittedFailed => Exit::TxFailed,
            TxStatus::Expired | TxStatus::Rejected => Exit::Rejected,
            TxStatus::Pending => Exit::Pending,
        }
    }

    /// The class of an error, from the first typed error in its chain.
    pub fn classify(error: &anyhow::Error) -> Exit {
        for cause in error.chain() {
            if let Some(e) = cause.downcast_ref::<ClientError>() {
                return Self::of_client_error(e);
            }
            if cause.downcast_ref::<DiscoveryError>().is_some() {
                return Exit::Unreachable;
            }
            if cause.downcast_ref::<VerifyError>().is_some() {
                return Exit::Unverified;
            }
        }
        Exit::Local
    }

    pub fn of_client_error(error: &ClientError) -> Exit {
        if error.is_unavailable() {
            Exit::Unreachable
        } else if error.is_rejection() {
            Exit::Rejected
        } else {
            Exit::Local
        }
    }
}

#[cfg(test)]
mod tests {
    use bastion_client::api::ErrorBody;

    use super::*;

    fn api(status: u16) -> anyhow::Error {
        ClientError::Api {
            url: "u".into(),
            status,
            body: ErrorBody { code: "c".into(), message: "m".into() },
            retry_after: None,
        }
        .into()
    }

    #[test]
    fn errors_map_to_their_class() {
        assert_eq!(Exit::classify(&api(409)), Exit::Rejected);
        assert_eq!(Exit::classify(&api(429)), Exit::Rejected);
        assert_eq!(Exit::classify(&api(503)), Exit::Unreachable);
        assert_eq!(Exit::classify(&api(500)), Exit::Local);
        let unreachable: anyhow::Error =
            ClientError::Unreachable { url: "u".into(), reason: "refused".into() }.into();
        assert_eq!(Exit::classify(&unreachable.context("while sending")), Exit::Unreachable);
        assert_eq!(Exit::classify(&DiscoveryError { tried: vec![] }.into()), Exit::Unreachable);
        assert_eq!(Exit::classify(&VerifyError::NoProof.into()), Exit::Unverified);
        assert_eq!(Exit::classify(&anyhow::anyhow!("bad file")), Exit::Local);
        assert_eq!(Exit::of_status(TxStatus::Pending).code(), 4);
        assert_eq!(Exit::of_status(TxStatus::CommittedFailed).code(), 6);
        assert_eq!(Exit::of_status(TxStatus::Expired).code(), 3);
    }
}
