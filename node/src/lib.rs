//! The Bastion validator node (transport, mempool, storage, execution driver, API); built in issue "Validator node".

pub mod transport;
