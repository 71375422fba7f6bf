//! Versioned snapshots: `{"version": N, "state": ...}` as JSON bytes.
//!
//! Invariants: a snapshot always carries the version it was written with; a reader refuses
//! a version it does not know with [`IpwarmError::SnapshotVersion`] rather than guessing; an
//! empty input is an error (the engine starts fresh when it has no snapshot at all).
//! JSON keeps snapshots readable by operators and stable across Rust versions.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::IpwarmError;

/// The snapshot format this build reads and writes.
pub const SNAPSHOT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Envelope<'a, T> {
    version: u32,
    state: &'a T,
}

#[derive(Deserialize)]
struct Header {
    version: u32,
}

#[derive(Deserialize)]
struct Body<T> {
    state: T,
}

/// Encodes a state with the current version.
pub(crate) fn encode<T: Serialize>(state: &T) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        version: SNAPSHOT_VERSION,
        state,
    })
    .expect("snapshot states serialise")
}

/// Decodes a state written by [`encode`], checking the version first.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, IpwarmError> {
    let header: Header =
        serde_json::from_slice(bytes).map_err(|source| IpwarmError::Snapshot { what, source })?;
    if header.version != SNAPSHOT_VERSION {
        return Err(IpwarmError::SnapshotVersion {
            what,
            found: header.version,
            supported: SNAPSHOT_VERSION,
        });
    }
    let body: Body<T> =
        serde_json::from_slice(bytes).map_err(|source| IpwarmError::Snapshot { what, source })?;
    Ok(body.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked() {
        let bytes = encode(&vec![1u32, 2, 3]);
        assert_eq!(bytes, br#"{"version":1,"state":[1,2,3]}"#);
        assert_eq!(decode::<Vec<u32>>(&bytes, "test").unwrap(), vec![1, 2, 3]);
        let table: [(&[u8], &str); 5] = [
            (
                br#"{"version":2,"state":[1]}"#,
                "version 2 is not supported",
            ),
            (b"", "invalid test snapshot"),
            (b"{", "invalid test snapshot"),
            (br#"{"state":[1]}"#, "invalid test snapshot"),
            (br#"{"version":1,"state":"x"}"#, "invalid test snapshot"),
        ];
        for (bytes, message) in table {
            let error = decode::<Vec<u32>>(bytes, "test").unwrap_err();
            assert!(error.to_string().contains(message), "{error}");
        }
    }
}
