//! The key ring: named signing keys in `$BASTION_HOME/keys/<name>.json` (default home
//! `~/.bastion`), in the key-pair JSON format of `bastion-crypto` (`{"public", "seed"}`),
//! readable by their owner only.
//!
//! The names `dev0` … `dev9` always mean the published dev keys
//! ([`bastion_testnet::dev_keys`]), whether or not the key ring has files for them, and
//! cannot be used for other keys. Key names are 1–32 characters of `A-Z a-z 0-9 _ - .`
//! (not starting with `.`), so a name is never mistaken for a 64-hex-digit address.

use std::path::{Path, PathBuf};

use bastion_crypto::KeyPair;
use bastion_ledger::Address;
use bastion_testnet::dev_keys::dev_key_by_name;
use thiserror::Error;

/// Environment variable naming the CLI's home directory.
pub const HOME_ENV: &str = "BASTION_HOME";

#[derive(Debug, Error)]
pub enum KeyringError {
    #[error("no home directory: set $BASTION_HOME or $HOME")]
    NoHome,
    #[error("invalid key name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("{name} is a reserved dev key name")]
    Reserved { name: String },
    #[error("key {name} already exists ({path})")]
    Exists { name: String, path: PathBuf },
    #[error("no key named {name} (looked in {dir}; dev0..dev9 are built in; make one with `bastion keys new {name}`)")]
    NotFound { name: String, dir: PathBuf },
    #[error("{input:?} is neither a key name nor a 64-hex-digit address")]
    NotAnAddress { input: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a key file: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Where a named key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    /// One of the published dev keys.
    Dev,
}

#[derive(Clone, Debug)]
pub struct NamedKey {
    pub name: String,
    pub key: KeyPair,
    pub source: KeySource,
}

impl NamedKey {
    pub fn address(&self) -> Address {
        Address::from_public_key(&self.key.public())
    }
}

#[derive(Clone, Debug)]
pub struct Keyring {
    home: PathBuf,
}

impl Keyring {
    /// The key ring under `$BASTION_HOME`, else `$HOME/.bastion`.
    pub fn from_env() -> Result<Self, KeyringError> {
        if let Some(home) = std::env::var_os(HOME_ENV).filter(|h| !h.is_empty()) {
            return Ok(Keyring { home: PathBuf::from(home) });
        }
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(KeyringError::NoHome)?;
        Ok(Keyring { home: PathBuf::from(home).join(".bastion") })
    }

    /// The key ring under `home` (its keys are in `home/keys`).
    pub fn at(home: &Path) -> Self {
        Keyring { home: home.to_path_buf() }
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.home.join("keys")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.keys_dir().join(format!("{name}.json"))
    }

    /// Makes a new random key named `name`.
    pub fn create(&self, name: &str) -> Result<NamedKey, KeyringError> {
        check_name(name)?;
        if dev_key_by_name(name).is_some() {
            return Err(KeyringError::Reserved { name: name.to_string() });
        }
        let path = self.path(name);
        let key = KeyPair::generate(&mut rand::rngs::OsRng);
        let json = serde_json::to_string_pretty(&key)
            .map_err(|e| KeyringError::Invalid { path: path.clone(), message: e.to_string() })?;
        let dir = self.keys_dir();
        std::fs::create_dir_all(&dir).map_err(|source| KeyringError::Io { path: dir.clone(), source })?;
        write_new_private(&path, json.as_bytes()).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => {
                KeyringError::Exists { name: name.to_string(), path: path.clone() }
            }
            _ => KeyringError::Io { path: path.clone(), source },
        })?;
        Ok(NamedKey { name: name.to_string(), key, source: KeySource::File(path) })
    }

    /// The key named `name`: a dev key, or a file in the key ring.
    pub fn get(&self, name: &str) -> Result<NamedKey, KeyringError> {
        if let Some(key) = dev_key_by_name(name) {
            return Ok(NamedKey { name: name.to_string(), key, source: KeySource::Dev });
        }
        check_name(name)?;
        let path = self.path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeyringError::NotFound { name: name.to_string(), dir: self.keys_dir() })
            }
            Err(source) => return Err(KeyringError::Io { path, source }),
        };
        let key = serde_json::from_str(&text)
            .map_err(|e| KeyringError::Invalid { path: path.clone(), message: e.to_string() })?;
        Ok(NamedKey { name: name.to_string(), key, source: KeySource::File(path) })
    }

    /// Every key: the key ring's files by name, then `dev0` … `dev9`.
    pub fn list(&self) -> Result<Vec<NamedKey>, KeyringError> {
        let dir = self.keys_dir();
        let mut names = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry.map_err(|source| KeyringError::Io { path: dir.clone(), source })?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if let Some(name) = file.strip_suffix(".json") {
                        if check_name(name).is_ok() && dev_key_by_name(name).is_none() {
                            names.push(name.to_string());
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(KeyringError::Io { path: dir, source }),
        }
        names.sort();
        let mut keys = names.iter().map(|n| self.get(n)).collect::<Result<Vec<_>, _>>()?;
        keys.extend(bastion_testnet::dev_keys::dev_keys().into_iter().map(|(name, key)| NamedKey {
            name,
            key,
            source: KeySource::Dev,
        }));
        Ok(keys)
    }

    /// An address given as 64 hex digits (optional `0x`) or as a key name.
    pub fn resolve_address(&self, input: &str) -> Result<Address, KeyringError> {
        if let Ok(address) = Address::from_hex(input) {
            return Ok(address);
        }
        match self.get(input) {
            Ok(key) => Ok(key.address()),
            Err(KeyringError::BadName { .. } | KeyringError::NotFound { .. }) => {
                Err(KeyringError::NotAnAddress { input: input.to_string() })
            }
            Err(e) => Err(e),
        }
    }
}

fn check_name(name: &str) -> Result<(), KeyringError> {
    let bad = |reason| Err(KeyringError::BadName { name: name.to_string(), reason });
    if name.is_empty() || name.len() > 32 {
        return bad("must be 1 to 32 characters");
    }
    if name.starts_with('.') {
        return bad("must not start with '.'");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return bad("only letters, digits, '_', '-' and '.' are allowed");
    }
    Ok(())
}

/// Creates `path` (failing if it exists) with owner-only permissions.
fn write_new_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_get_list_and_resolve() {
        let home = tempfile::tempdir().unwrap();
        let ring = Keyring::at(home.path());
        let alice = ring.create("alice").unwrap();
        assert!(matches!(ring.create("alice"), Err(KeyringError::Exists { .. })));
        assert!(matches!(ring.create("dev3"), Err(KeyringError::Reserved { .. })));
        assert!(matches!(ring.create("../evil"), Err(KeyringError::BadName { .. })));

        let path = home.path().join("keys/alice.json");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
        assert_eq!(mode & 0o077, 0);
        // The file is the crypto crate's key-pair JSON.
        let parsed: KeyPair = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(parsed.public(), alice.key.public());
        assert_eq!(ring.get("alice").unwrap().key.public(), alice.key.public());

        let names: Vec<String> = ring.list().unwrap().into_iter().map(|k| k.name).collect();
        assert_eq!(names.first().map(String::as_str), Some("alice"));
        assert_eq!(names.len(), 11);

        // Addresses: hex (with or without 0x), key names, dev names without files.
        let hex = alice.address().to_hex();
        assert_eq!(ring.resolve_address(&hex).unwrap(), alice.address());
        assert_eq!(ring.resolve_address(&format!("0x{hex}")).unwrap(), alice.address());
        assert_eq!(ring.resolve_address("alice").unwrap(), alice.address());
        let dev0 = bastion_testnet::dev_keys::dev_key(0).unwrap().public();
        assert_eq!(ring.resolve_address("dev0").unwrap(), Address::from_public_key(&dev0));
        assert!(matches!(ring.resolve_address("bob"), Err(KeyringError::NotAnAddress { .. })));
        assert!(matches!(ring.resolve_address("0x12"), Err(KeyringError::NotAnAddress { .. })));
        assert!(matches!(ring.get("bob"), Err(KeyringError::NotFound { .. })));
    }
}
