//! A throwaway server's password: 128 random bits per instance, handed to the server only as a
//! SCRAM-SHA-256 secret (what `initdb --pwfile` and the image's `POSTGRES_PASSWORD` store as is),
//! and kept for the harness in the private state folder (`instance.json` and the libpq password
//! file `pgpass`, both `0600`).
//!
//! The secret is computed with one PBKDF2 iteration instead of PostgreSQL's 4096: iterations
//! slow the guessing of a password a person chose, and there is nothing to guess in 128 random
//! bits, while every test connection pays for them in the client (4096 HMAC-SHA-256 rounds took
//! 8 ms in a test build here, on a busy machine; a test process opens dozens of connections).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::EnvError;
use super::private;

/// PBKDF2 iterations of the stored secret (see the module's documentation).
const ITERATIONS: u32 = 1;

/// A fresh random password: 128 bits as 32 hexadecimal digits.
pub(crate) fn new_password() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The SCRAM-SHA-256 secret of `password` with a random salt, as PostgreSQL stores it:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802 and 7677). A password
/// already in this form is stored as it is, so the server never sees the password itself.
pub(crate) fn scram_secret(password: &str) -> String {
    secret_with_salt(password, &rand::random::<[u8; 16]>())
}

fn secret_with_salt(password: &str, salt: &[u8]) -> String {
    // SASLprep leaves an ASCII password as it is.
    let salted = salted_password(password.as_bytes(), salt, ITERATIONS);
    let stored_key = Sha256::digest(hmac(&salted, &[b"Client Key"]));
    let server_key = hmac(&salted, &[b"Server Key"]);
    format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// `Hi(password, salt, iterations)` of RFC 5802: PBKDF2 with HMAC-SHA-256, one block.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = hmac(password, &[salt, &1u32.to_be_bytes()]);
    let mut salted = block;
    for _ in 1..iterations {
        block = hmac(password, &[&block]);
        for (s, b) in salted.iter_mut().zip(block) {
            *s ^= b;
        }
    }
    salted
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`.
fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Writes `password` as the libpq password file `<dir>/pgpass` (`0600`, any host, port and
/// database, user `postgres`); its path.
pub(crate) fn write_passfile(dir: &Path, password: &str) -> Result<PathBuf, EnvError> {
    let path = dir.join("pgpass");
    private::write(&path, format!("*:*:*:postgres:{password}\n").as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_32_hex_digits_and_differ() {
        let (a, b) = (new_password(), new_password());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    /// The example of RFC 7677 (section 3): user "user", password "pencil", salt
    /// `W22ZaJ0SNY7soEsUEjb6gQ==`, 4096 iterations, whose ClientProof and ServerSignature
    /// follow from the keys checked here through the exchange's AuthMessage.
    #[test]
    fn the_secret_matches_rfc_7677_for_its_example() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(b"pencil", &salt, 4096);
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
                    r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
                    c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_key = hmac(&salted, &[b"Server Key"]);
        let signature = hmac(&server_key, &[auth.as_bytes()]);
        assert_eq!(
            STANDARD.encode(signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let client_key = hmac(&salted, &[b"Client Key"]);
        let client_signature = hmac(&Sha256::digest(client_key), &[auth.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        assert_eq!(
            STANDARD.encode(proof),
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
    }

    #[test]
    fn a_secret_has_postgresqls_layout() {
        let secret = secret_with_salt("pw", b"0123456789abcdef");
        let (head, keys) = secret.rsplit_once('$').unwrap();
        assert_eq!(head, "SCRAM-SHA-256$1:MDEyMzQ1Njc4OWFiY2RlZg==");
        let (stored, server) = keys.split_once(':').unwrap();
        assert_eq!(STANDARD.decode(stored).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(server).unwrap().len(), 32);
    }
}
