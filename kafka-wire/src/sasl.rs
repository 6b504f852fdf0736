//! SASL mechanisms: PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802/7677),
//! as pure message builders. The exchange itself (SaslHandshake, then
//! SaslAuthenticate round trips) is driven by [`crate::connection`].
//!
//! SCRAM is written here (a few HMACs) rather than pulled in from a SASL
//! framework: Kafka uses it without channel binding and without SASLprep of
//! the password, exactly like Kafka's own Java client.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::config::SaslMechanism;

/// Kafka refuses SCRAM credentials with fewer iterations; so does its client.
const MIN_ITERATIONS: u32 = 4096;
/// Guard against a hostile server making the client spin.
const MAX_ITERATIONS: u32 = 10_000_000;

/// `\0username\0password`.
pub(crate) fn plain_message(username: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(username.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

/// The client side of one SCRAM exchange.
pub(crate) struct ScramClient {
    mechanism: SaslMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
    /// Set by [`ScramClient::client_final`]: the signature the server must send.
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A new exchange with the client nonce `nonce` (printable, no comma).
    pub(crate) fn new(
        mechanism: SaslMechanism,
        username: &str,
        password: &str,
        nonce: String,
    ) -> Self {
        let user = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={user},r={nonce}"),
            nonce,
            expected_server_signature: None,
        }
    }

    /// A random 32-byte nonce, base64.
    pub(crate) fn random_nonce() -> Result<String, String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| format!("no randomness for the scram nonce: {e}"))?;
        Ok(B64.encode(raw))
    }

    /// The client-first message (no channel binding: `n,,`).
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message answering the server-first message.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "server-first message is not utf-8".to_string())?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in server_first.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = Some(v),
                Some(("e", v)) => return Err(format!("server error: {v}")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first message without nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err("server nonce does not extend the client nonce".to_string());
        }
        let salt = B64
            .decode(salt.ok_or("server-first message without salt")?)
            .map_err(|e| format!("invalid salt: {e}"))?;
        let iterations: u32 = iterations
            .ok_or("server-first message without iteration count")?
            .parse()
            .map_err(|_| "invalid iteration count".to_string())?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "iteration count {iterations} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        let m = self.mechanism;
        let salted = hi(m, self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(m, &salted, b"Client Key");
        let stored_key = hash(m, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac(m, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac(m, &salted, b"Server Key");
        self.expected_server_signature = Some(hmac(m, &server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (`v=<signature>`).
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "server-final message is not utf-8".to_string())?;
        let expected = self
            .expected_server_signature
            .as_ref()
            .ok_or("server-final message before client-final")?;
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("e", v)) => return Err(format!("server error: {v}")),
                Some(("v", v)) => {
                    let got = B64
                        .decode(v)
                        .map_err(|e| format!("invalid server signature: {e}"))?;
                    return if &got == expected {
                        Ok(())
                    } else {
                        Err(
                            "server signature mismatch (the server does not know the password)"
                                .to_string(),
                        )
                    };
                }
                _ => {}
            }
        }
        Err("server-final message without signature".to_string())
    }
}

fn hmac(m: SaslMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
    // `new_from_slice` accepts keys of any length for HMAC; the error arm is unreachable
    // in practice and yields an empty MAC (authentication then fails cleanly).
    match m {
        SaslMechanism::ScramSha512 => Hmac::<Sha512>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            })
            .unwrap_or_default(),
        _ => Hmac::<Sha256>::new_from_slice(key)
            .map(|mut mac| {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            })
            .unwrap_or_default(),
    }
}

fn hash(m: SaslMechanism, data: &[u8]) -> Vec<u8> {
    match m {
        SaslMechanism::ScramSha512 => Sha512::digest(data).to_vec(),
        _ => Sha256::digest(data).to_vec(),
    }
}

/// RFC 5802 `Hi()`: PBKDF2 with HMAC, one output block.
fn hi(m: SaslMechanism, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(m, password, &first);
    let mut out = u.clone();
    for _ in 1..iterations {
        u = hmac(m, password, &u);
        for (o, x) in out.iter_mut().zip(&u) {
            *o ^= x;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        assert_eq!(plain_message("u", "p"), b"\0u\0p".to_vec());
    }

    /// The SCRAM-SHA-256 example exchange of RFC 7677 section 3.
    #[test]
    fn scram_sha256_rfc7677_vector() {
        let mut c = ScramClient::new(
            SaslMechanism::ScramSha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".to_string(),
        );
        assert_eq!(
            c.client_first(),
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec()
        );
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c
            .verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert!(c.verify_server_final(b"e=invalid-proof").is_err());
    }

    #[test]
    fn scram_rejects_bad_server_first() {
        let mut c = ScramClient::new(SaslMechanism::ScramSha512, "a=b,c", "pw", "abc".to_string());
        assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=abc".to_vec());
        assert!(c.client_final(b"r=xyz123,s=QUJD,i=4096").is_err()); // foreign nonce
        assert!(c.client_final(b"r=abc,s=QUJD,i=4096").is_err()); // nonce not extended
        assert!(c.client_final(b"r=abcdef,s=QUJD,i=1").is_err()); // too few iterations
        assert!(c.client_final(b"r=abcdef,i=4096").is_err()); // no salt
        let fin = c.client_final(b"r=abcdef,s=QUJD,i=4096").unwrap();
        assert!(String::from_utf8(fin)
            .unwrap()
            .starts_with("c=biws,r=abcdef,p="));
        assert!(ScramClient::random_nonce().unwrap().len() >= 40);
    }
}
