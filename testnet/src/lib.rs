//! Genesis/config generation and supervision of local `bastion-node` processes.
