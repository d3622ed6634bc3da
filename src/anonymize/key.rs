//! The secret key and the keyed pseudo-random function every transformer draws from.
//!
//! Every output is a function of (key, domain, input, mapping version): keyed blake3 is
//! the PRF, called once per distinct value, and every further choice a transformer makes
//! is drawn from a small fast generator (xoshiro256++) whose whole 256-bit state is that
//! PRF output. The generator only stretches the PRF's output, so without the key its draws
//! are as unpredictable as the PRF itself, and it costs nothing to set up per value.
//!
//! xoshiro256++ is not a cryptographic generator: enough of its output gives its state.
//! For one value's few draws that state is the PRF output of that value, which reveals
//! neither the key nor the input. A stream drawn long from one seed whose results can be
//! seen together (a keyed shuffle of a whole list) uses [`DomainKey::long_rng`], ChaCha20.
//!
//! [`MAPPING_VERSION`] names this contract. It is part of every domain key, so a change of
//! version changes every output, and it is in every report and in the config hash, so a
//! report always says which mapping made a copy and a config hash recorded under another
//! mapping never matches. The key itself never appears in a config, a report or a log;
//! its id (a hash) does.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The version of the mapping from (key, domain, input) to output.
///
/// 1: a ChaCha8 stream per distinct value (up to 0.x). 2: xoshiro256++ seeded from the
/// keyed blake3 hash, with the version in every domain key. Bump it whenever any
/// transformer's output for some input changes, and say so in the CHANGELOG.
pub const MAPPING_VERSION: u32 = 2;

/// The generator a transformer draws its choices from, for one value.
pub type ValueRng = Xoshiro256PlusPlus;

/// The environment variable read when the config names no other source.
pub const DEFAULT_KEY_VAR: &str = "DATAFORGE_KEY";

/// A 256-bit key derived from the secret the user supplied.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {})", self.id())
    }
}

/// Where the key was looked for, when it was not found.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "no anonymization key: set the environment variable {0} to a secret (at least 16 \
         characters; the same key gives the same output), or name another variable or a \
         key file in the config's [key] section"
    )]
    MissingVar(String),
    #[error("the anonymization key in {var} is {len} characters; use at least 16")]
    TooShort { var: String, len: usize },
    #[error("cannot read the key file {path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Key {
    /// Derives the key from secret material (any length).
    pub fn from_secret(secret: &[u8]) -> Key {
        Key(blake3::derive_key("dataforge anonymize key v1", secret))
    }

    /// Reads the secret from environment variable `var`.
    pub fn from_env(var: &str) -> Result<Key, KeyError> {
        let v = std::env::var(var).map_err(|_| KeyError::MissingVar(var.to_string()))?;
        let v = v.trim();
        if v.is_empty() {
            return Err(KeyError::MissingVar(var.to_string()));
        }
        if v.chars().count() < 16 {
            return Err(KeyError::TooShort {
                var: var.to_string(),
                len: v.chars().count(),
            });
        }
        Ok(Key::from_secret(v.as_bytes()))
    }

    /// Reads the secret from a file (its whole content, trailing newline ignored).
    pub fn from_file(path: &str) -> Result<Key, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::File {
            path: path.to_string(),
            source,
        })?;
        let trimmed = bytes.trim_ascii_end();
        if trimmed.len() < 16 {
            return Err(KeyError::TooShort {
                var: path.to_string(),
                len: trimmed.len(),
            });
        }
        Ok(Key::from_secret(trimmed))
    }

    /// A public id for reports: a hash of the key, never the key.
    pub fn id(&self) -> String {
        let h = blake3::keyed_hash(&self.0, b"dataforge key id");
        h.to_hex()[..16].to_string()
    }

    /// The key for one domain: every column anonymized under the same domain maps a
    /// value to the same output.
    pub fn domain(&self, domain: &str) -> DomainKey {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(format!("mapping {MAPPING_VERSION}\0").as_bytes());
        h.update(domain.as_bytes());
        DomainKey(*h.finalize().as_bytes())
    }
}

/// The PRF for one domain.
#[derive(Clone)]
pub struct DomainKey([u8; 32]);

impl DomainKey {
    /// Keyed blake3 of `input`.
    pub fn hash(&self, input: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.0, input).as_bytes()
    }

    /// The first 8 bytes of [`hash`](Self::hash) as a number.
    pub fn hash_u64(&self, input: &[u8]) -> u64 {
        let h = self.hash(input);
        u64::from_le_bytes(h[..8].try_into().expect("8 bytes"))
    }

    /// A random stream that is a function of (key, domain, input).
    pub fn rng(&self, input: &[u8]) -> ValueRng {
        stream(self.hash(input))
    }

    /// A cryptographic stream that is a function of (key, domain, input), for the few
    /// streams drawn long whose draws can be seen together (a keyed shuffle of a list):
    /// there, xoshiro's output would give away its state and so the rest of the stream.
    pub fn long_rng(&self, input: &[u8]) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed(self.hash(input))
    }

    /// A sub-key, for transformers that need several independent functions.
    pub fn sub(&self, label: &str) -> DomainKey {
        DomainKey(self.hash(label.as_bytes()))
    }
}

/// The stream [`DomainKey::rng`] gives for an input whose hash is `hash`, for a
/// transformer that also uses the hash itself and so must not compute it twice.
pub fn stream(hash: [u8; 32]) -> ValueRng {
    ValueRng::from_seed(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_and_ids_hide_the_key() {
        let k = Key::from_secret(b"0123456789abcdef");
        assert_ne!(k.domain("a").hash(b"x"), k.domain("b").hash(b"x"));
        assert_eq!(k.domain("a").hash(b"x"), k.domain("a").hash(b"x"));
        assert_eq!(k.id().len(), 16);
        assert!(!format!("{k:?}").contains("0123456789abcdef"));
    }
}
