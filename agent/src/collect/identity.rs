//! The de-identified device identity: the pseudonym every batch carries instead of any
//! hardware identifier.
//!
//! State lives in `identity.key` in the state directory (0600): a random 256-bit device
//! secret, a random install id and a rotation salt. With `device_id` active the pseudonym
//! is HMAC-SHA256 over the machine-id and a stable hardware serial, keyed with the fleet
//! key when one is provisioned (so it survives reinstalls) or else with the device
//! secret. Without `device_id` no hardware identifier is read at all and the pseudonym is
//! the HMAC of the install id. Raw identifiers are only ever held in memory here.

use crate::unix::fsutil;
use assent_platform::device_id::DeviceIds;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt;

pub use assent_wire::{Derivation, Pseudonym};
use std::path::{Path, PathBuf};

/// The identity file in the state directory.
pub const IDENTITY_FILE: &str = "identity.key";

const FORMAT_VERSION: u8 = 1;
const SECRET_LEN: usize = 32;
const FILE_LEN: usize = 1 + 3 * SECRET_LEN;
/// Domain separation: a pseudonym from hardware ids never equals one from an install id.
const HARDWARE_CONTEXT: &[u8] = b"assent pseudonym v1 hardware\0";
const INSTALL_CONTEXT: &[u8] = b"assent pseudonym v1 install\0";

/// The secrets behind the pseudonym.
pub struct IdentityState {
    device_secret: [u8; SECRET_LEN],
    install_id: [u8; SECRET_LEN],
    rotation_salt: [u8; SECRET_LEN],
}

impl fmt::Debug for IdentityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentityState { .. }")
    }
}

/// Why the identity could not be loaded or created.
#[derive(Debug)]
pub enum IdentityError {
    Io(PathBuf, std::io::Error),
    Corrupt(PathBuf),
    Random,
    /// device_id is active but no machine-id or serial could be read.
    NoHardwareIds,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            IdentityError::Corrupt(p) => write!(
                f,
                "{}: not an identity file (wrong size or version); move it away and run `assent reset-id`",
                p.display()
            ),
            IdentityError::Random => f.write_str("the system random source failed"),
            IdentityError::NoHardwareIds => f.write_str(
                "device_id is active but no machine-id or hardware serial is readable",
            ),
        }
    }
}

impl std::error::Error for IdentityError {}

impl IdentityState {
    /// Loads the identity file, creating it on first start.
    pub fn load_or_create(state_dir: &Path) -> Result<IdentityState, IdentityError> {
        let path = state_dir.join(IDENTITY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => IdentityState::decode(&bytes).ok_or(IdentityError::Corrupt(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = IdentityState::random(false)?;
                state.save(state_dir)?;
                Ok(state)
            }
            Err(e) => Err(IdentityError::Io(path, e)),
        }
    }

    /// Replaces secret, install id and salt with fresh random values, so the old and new
    /// pseudonyms cannot be linked (also with a fleet key: the salt enters the HMAC).
    pub fn rotate(state_dir: &Path) -> Result<IdentityState, IdentityError> {
        let state = IdentityState::random(true)?;
        state.save(state_dir)?;
        Ok(state)
    }

    /// A fresh state. A first start has an all-zero salt, so a fleet-keyed pseudonym is
    /// the same on every install; a rotation draws a random salt.
    fn random(salted: bool) -> Result<IdentityState, IdentityError> {
        let rng = SystemRandom::new();
        let mut state = IdentityState {
            device_secret: [0; SECRET_LEN],
            install_id: [0; SECRET_LEN],
            rotation_salt: [0; SECRET_LEN],
        };
        rng.fill(&mut state.device_secret)
            .map_err(|_| IdentityError::Random)?;
        rng.fill(&mut state.install_id)
            .map_err(|_| IdentityError::Random)?;
        if salted {
            rng.fill(&mut state.rotation_salt)
                .map_err(|_| IdentityError::Random)?;
        }
        Ok(state)
    }

    fn decode(bytes: &[u8]) -> Option<IdentityState> {
        if bytes.len() != FILE_LEN || bytes[0] != FORMAT_VERSION {
            return None;
        }
        let mut state = IdentityState {
            device_secret: [0; SECRET_LEN],
            install_id: [0; SECRET_LEN],
            rotation_salt: [0; SECRET_LEN],
        };
        state
            .device_secret
            .copy_from_slice(&bytes[1..1 + SECRET_LEN]);
        state
            .install_id
            .copy_from_slice(&bytes[1 + SECRET_LEN..1 + 2 * SECRET_LEN]);
        state
            .rotation_salt
            .copy_from_slice(&bytes[1 + 2 * SECRET_LEN..]);
        Some(state)
    }

    fn save(&self, state_dir: &Path) -> Result<(), IdentityError> {
        let mut bytes = Vec::with_capacity(FILE_LEN);
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.device_secret);
        bytes.extend_from_slice(&self.install_id);
        bytes.extend_from_slice(&self.rotation_salt);
        let path = state_dir.join(IDENTITY_FILE);
        fsutil::write_atomic(&path, &bytes, 0o600).map_err(|e| IdentityError::Io(path, e))
    }

    /// The pseudonym without reading any hardware identifier (device_id not active).
    pub fn install_pseudonym(&self) -> Pseudonym {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.device_secret);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(INSTALL_CONTEXT);
        ctx.update(&self.install_id);
        pseudonym_from(ctx.sign().as_ref())
    }

    /// The pseudonym derived from hardware identifiers (device_id active).
    pub fn hardware_pseudonym(
        &self,
        ids: &DeviceIds,
        fleet_key: Option<&[u8]>,
    ) -> Result<(Pseudonym, Derivation), IdentityError> {
        let machine_id = ids.machine_id.present();
        let serial = ids.stable_serial();
        if machine_id.is_none() && serial.is_none() {
            return Err(IdentityError::NoHardwareIds);
        }
        let (key_bytes, derivation) = match fleet_key {
            Some(k) => (k, Derivation::HardwareFleetKey),
            None => (&self.device_secret[..], Derivation::HardwareDeviceSecret),
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, key_bytes);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(HARDWARE_CONTEXT);
        // Length-prefixed so that no two (machine-id, serial) pairs hash alike.
        for part in [machine_id, serial] {
            let bytes = part.map(|p| p.expose().as_bytes()).unwrap_or_default();
            ctx.update(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
            ctx.update(bytes);
        }
        ctx.update(&self.rotation_salt);
        Ok((pseudonym_from(ctx.sign().as_ref()), derivation))
    }
}

/// The device identity as every caller loads it (`collect`, the scheduler, the
/// uploader): the state directory made private, the secrets loaded or created on first
/// use, and the fleet key read when the config names one.
#[derive(Debug)]
pub struct Identity {
    pub state: IdentityState,
    fleet_key: Option<Vec<u8>>,
}

/// Why the identity could not be loaded: its own files, or the operator's fleet key.
#[derive(Debug)]
pub enum LoadError {
    State(IdentityError),
    FleetKey(FleetKeyError),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::State(e) => std::fmt::Display::fmt(e, f),
            LoadError::FleetKey(e) => std::fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for LoadError {}

/// Why the fleet key file is not usable.
#[derive(Debug)]
pub enum FleetKeyError {
    Read(PathBuf, std::io::Error),
    /// Fewer than 16 bytes once surrounding whitespace is dropped.
    TooShort(PathBuf),
}

impl fmt::Display for FleetKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetKeyError::Read(path, e) => {
                write!(f, "identity.fleet_key_file: {}: {e}", path.display())
            }
            FleetKeyError::TooShort(path) => write!(
                f,
                "identity.fleet_key_file: {}: a fleet key must hold at least 16 bytes",
                path.display()
            ),
        }
    }
}

impl std::error::Error for FleetKeyError {}

impl Identity {
    /// Loads the identity of the device `config` describes, creating it on first use
    /// (the device secret is not collected data).
    pub fn load(config: &crate::config::Config) -> Result<Identity, LoadError> {
        let dir = &config.state_dir;
        fsutil::ensure_private_dir(dir)
            .map_err(|e| LoadError::State(IdentityError::Io(dir.clone(), e)))?;
        let state = IdentityState::load_or_create(dir).map_err(LoadError::State)?;
        let fleet_key = match &config.identity.fleet_key_file {
            Some(path) => Some(read_fleet_key(path).map_err(LoadError::FleetKey)?),
            None => None,
        };
        Ok(Identity { state, fleet_key })
    }

    /// The pseudonym from hardware identifiers, when `ids` were read (device_id
    /// active), else from the install id: the one derivation used for collection and
    /// for sending.
    pub fn pseudonym(
        &self,
        ids: Option<&DeviceIds>,
    ) -> Result<(Pseudonym, Derivation), IdentityError> {
        match ids {
            Some(ids) => self
                .state
                .hardware_pseudonym(ids, self.fleet_key.as_deref()),
            None => Ok((self.state.install_pseudonym(), Derivation::InstallId)),
        }
    }
}

/// Reads the fleet key file: its bytes (surrounding whitespace dropped), at least 16.
pub fn read_fleet_key(path: &Path) -> Result<Vec<u8>, FleetKeyError> {
    let bytes = std::fs::read(path).map_err(|e| FleetKeyError::Read(path.to_path_buf(), e))?;
    let trimmed = bytes.trim_ascii();
    if trimmed.len() < 16 {
        return Err(FleetKeyError::TooShort(path.to_path_buf()));
    }
    Ok(trimmed.to_vec())
}

fn pseudonym_from(mac: &[u8]) -> Pseudonym {
    let text = base32_lower(mac, Pseudonym::LEN);
    // 32 bytes of HMAC give more than 26 base32 characters, all from the alphabet.
    Pseudonym::parse(&text)
        .unwrap_or_else(|_| unreachable!("base32 of an HMAC is a valid pseudonym"))
}

/// RFC 4648 base32 in lower case, cut to `chars` characters (no padding).
fn base32_lower(bytes: &[u8], chars: usize) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(chars);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 && out.len() < chars {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 && out.len() < chars {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use assent_platform::Root;

    #[test]
    fn one_load_path_creates_once_and_tells_a_bad_fleet_key_apart() {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            crate::config::Config::parse(Path::new("/etc/assent/assent.toml"), "").unwrap();
        config.state_dir = dir.path().join("state");
        let first = Identity::load(&config).unwrap();
        let again = Identity::load(&config).unwrap();
        assert_eq!(
            first.pseudonym(None).unwrap(),
            again.pseudonym(None).unwrap()
        );
        assert_eq!(
            first.pseudonym(None).unwrap(),
            (first.state.install_pseudonym(), Derivation::InstallId)
        );
        let key = dir.path().join("fleet.key");
        std::fs::write(&key, b"short").unwrap();
        config.identity.fleet_key_file = Some(key.clone());
        assert!(matches!(
            Identity::load(&config),
            Err(LoadError::FleetKey(_))
        ));
        std::fs::write(&key, b"0123456789abcdef0123").unwrap();
        let ids = assent_platform::device_id::read(&Root::at(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/roots/rpi4-raspios64"
        )));
        let (_, derivation) = Identity::load(&config)
            .unwrap()
            .pseudonym(Some(&ids))
            .unwrap();
        assert_eq!(derivation, Derivation::HardwareFleetKey);
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32_lower(b"foobar", 10), "mzxw6ytboi");
        assert_eq!(base32_lower(b"f", 1), "m");
    }

    #[test]
    fn identity_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = IdentityState::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = IdentityState::load_or_create(dir.path()).unwrap();
        assert_eq!(first.install_pseudonym(), second.install_pseudonym());
        let p = first.install_pseudonym();
        assert_eq!(p.as_str().len(), 26);
        assert!(p
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
    }

    #[test]
    fn a_corrupt_identity_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IDENTITY_FILE), b"junk").unwrap();
        assert!(matches!(
            IdentityState::load_or_create(dir.path()),
            Err(IdentityError::Corrupt(_))
        ));
    }

    fn fixture_ids() -> DeviceIds {
        let root = Root::at(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/roots/x86-gateway"
        ));
        assent_platform::device_id::read(&root)
    }

    #[test]
    fn fleet_key_pseudonym_is_stable_across_installs_until_reset() {
        let ids = fixture_ids();
        let key = b"fleet-key-0123456789abcdef";
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let install_a = IdentityState::load_or_create(a.path()).unwrap();
        let install_b = IdentityState::load_or_create(b.path()).unwrap();
        let (pa, da) = install_a.hardware_pseudonym(&ids, Some(key)).unwrap();
        let (pb, _) = install_b.hardware_pseudonym(&ids, Some(key)).unwrap();
        assert_eq!(da, Derivation::HardwareFleetKey);
        assert_eq!(pa, pb, "same hardware and fleet key, two installs");
        // Without a fleet key each install has its own secret.
        let (sa, _) = install_a.hardware_pseudonym(&ids, None).unwrap();
        let (sb, _) = install_b.hardware_pseudonym(&ids, None).unwrap();
        assert_ne!(sa, sb);
        // A reset unlinks, fleet key or not.
        let rotated = IdentityState::rotate(a.path()).unwrap();
        let (pr, _) = rotated.hardware_pseudonym(&ids, Some(key)).unwrap();
        assert_ne!(pr, pa);
        assert_ne!(rotated.install_pseudonym(), install_a.install_pseudonym());
    }

    #[test]
    fn the_pseudonym_contains_no_raw_identifier() {
        let ids = fixture_ids();
        let dir = tempfile::tempdir().unwrap();
        let state = IdentityState::load_or_create(dir.path()).unwrap();
        let (p, _) = state.hardware_pseudonym(&ids, None).unwrap();
        for raw in ids.exposed_values() {
            assert!(!p.as_str().contains(raw), "{p} contains {raw}");
        }
    }
}
