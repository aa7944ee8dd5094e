//! Secrets sealed at rest: XChaCha20-Poly1305 with the store key (`CORTEX_MCP_STORE_KEY`),
//! a random 192-bit nonce per value and the owner's id as associated data, so a sealed
//! value cannot be moved to another record undetected. What a shared store holds of a
//! credential is only this text.
//!
//! Owns the cipher and the text form (`v1.` + base64 of nonce and ciphertext); it must
//! not know what is sealed nor where the key comes from.

use base64::Engine;
use chacha20poly1305::{
    Key, XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::RngCore;

const VERSION: &str = "v1.";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a sealed value is not in the v1 form")]
    Form,
    #[error(
        "a sealed value does not open with this store key (another CORTEX_MCP_STORE_KEY sealed it, or it was altered)"
    )]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// Seals and opens values with one 32-byte key. Its `Debug` shows no key.
#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// `plaintext` sealed and bound to `context` (e.g. the owning record's id).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        ))
    }

    /// The plaintext of `sealed`, when it was sealed with this key for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let body = sealed.strip_prefix(VERSION).ok_or(SealError::Form)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Form)?;
        if bytes.len() < NONCE_LEN + 16 {
            return Err(SealError::Form);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_with_its_key_and_context_only() {
        let sealer = Sealer::new(&[7; 32]);
        let sealed = sealer.seal("id-1", b"canary-secret-value").unwrap();
        assert!(!sealed.contains("canary"));
        assert_eq!(
            sealer.open("id-1", &sealed).unwrap(),
            b"canary-secret-value"
        );
        assert!(matches!(sealer.open("id-2", &sealed), Err(SealError::Open)));
        let other = Sealer::new(&[8; 32]);
        assert!(matches!(other.open("id-1", &sealed), Err(SealError::Open)));
        assert_ne!(
            sealer.seal("id-1", b"x").unwrap(),
            sealer.seal("id-1", b"x").unwrap()
        );
        assert!(matches!(
            sealer.open("id-1", "v1.AAAA"),
            Err(SealError::Form)
        ));
    }
}
