//! AUTH PLAIN and LOGIN (RFC 4954, RFC 4616): decoding the SASL messages and checking
//! passwords against the configured argon2 hashes.
//!
//! Invariants: passwords are only ever compared through the PHC hash; an unknown user costs
//! the same hash computation as a known one (no user enumeration by timing); the check runs on
//! the blocking pool, never on a reactor thread.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::UserConfig;

/// The relay users, by name, with their PHC hashes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Users {
    hashes: Arc<HashMap<String, String>>,
    /// A hash of a random password, checked for unknown users so their timing matches.
    decoy: Arc<String>,
}

impl Users {
    /// The users of the configuration.
    pub(crate) fn new(users: &[UserConfig]) -> Self {
        let hashes = users
            .iter()
            .map(|u| (u.name.clone(), u.password_hash.clone()))
            .collect();
        // Same parameters as the first configured user, if any, so timings match.
        let decoy = users
            .first()
            .map(|u| u.password_hash.clone())
            .unwrap_or_default();
        Users {
            hashes: Arc::new(hashes),
            decoy: Arc::new(decoy),
        }
    }

    /// True when at least one user is configured (AUTH is offered).
    pub(crate) fn any(&self) -> bool {
        !self.hashes.is_empty()
    }

    /// Checks a user's password. Runs the hash on the blocking pool.
    pub(crate) async fn verify(
        &self,
        user: String,
        password: Vec<u8>,
    ) -> Result<bool, tokio::task::JoinError> {
        let hashes = self.hashes.clone();
        let decoy = self.decoy.clone();
        tokio::task::spawn_blocking(move || {
            let (hash, known) = match hashes.get(&user) {
                Some(h) => (h.as_str(), true),
                None => (decoy.as_str(), false),
            };
            let ok = PasswordHash::new(hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(&password, &parsed)
                        .is_ok()
                })
                .unwrap_or(false);
            ok && known
        })
        .await
    }
}

/// Decodes base64 SASL data.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

/// Splits a PLAIN message `authzid NUL authcid NUL passwd` into (user, password). An
/// authorization identity other than the user's own is refused.
pub(crate) fn parse_plain(message: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let authzid = parts.next()?;
    let authcid = parts.next()?;
    let password = parts.next()?;
    if authcid.is_empty() || (!authzid.is_empty() && authzid != authcid) {
        return None;
    }
    Some((String::from_utf8(authcid.to_vec()).ok()?, password.to_vec()))
}

/// Hashes a password for the `password_hash` key (argon2id, default parameters).
pub fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password, &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_split_exactly() {
        type Row = (&'static [u8], Option<(&'static str, &'static [u8])>);
        let table: [Row; 6] = [
            (b"\0app\0secret", Some(("app", b"secret"))),
            (b"app\0app\0secret", Some(("app", b"secret"))),
            (b"other\0app\0secret", None),
            (b"\0\0secret", None),
            (b"\0app", None),
            (b"\0app\0pass\0with-nul", Some(("app", b"pass\0with-nul"))),
        ];
        for (input, expected) in table {
            let got = parse_plain(input);
            let expected = expected.map(|(u, p)| (u.to_owned(), p.to_vec()));
            assert_eq!(got, expected, "{input:?}");
        }
    }

    #[tokio::test]
    async fn passwords_verify_against_their_hash_only() {
        let hash = hash_password(b"correct horse").unwrap();
        let users = Users::new(&[UserConfig {
            name: "app".into(),
            password_hash: hash,
        }]);
        assert!(
            users
                .verify("app".into(), b"correct horse".to_vec())
                .await
                .unwrap()
        );
        assert!(!users.verify("app".into(), b"wrong".to_vec()).await.unwrap());
        assert!(
            !users
                .verify("nobody".into(), b"correct horse".to_vec())
                .await
                .unwrap()
        );
    }
}
