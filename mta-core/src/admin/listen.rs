//! The admin listeners: the Unix socket (made owner-only before anyone can reach it, a
//! stale one replaced, a live one respected) and the optional loopback TCP socket.
//!
//! Invariants: the socket file is never reachable with a mode wider than 0600: it is bound
//! inside a fresh 0700 directory, set to 0600, and only then hard-linked to its path (a
//! link fails if the path exists, so two daemons racing cannot steal each other's socket);
//! an existing path is removed only if it is a socket nobody listens on; at stop the file
//! is removed only if it is still ours (same device and inode).

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

use super::AdminError;

/// What the kernel tells about the peer of a Unix connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UnixPeer {
    /// The peer's uid, if `SO_PEERCRED` answered.
    pub(crate) uid: Option<u32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for UnixPeer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        UnixPeer {
            uid: stream.io().peer_cred().ok().map(|cred| cred.uid()),
        }
    }
}

/// The bound Unix socket and the identity of its file.
#[derive(Debug)]
pub(crate) struct UnixSocket {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    dev: u64,
    ino: u64,
}

impl UnixSocket {
    /// Binds `path` with mode 0600, replacing a stale socket, refusing a live one.
    pub(crate) fn bind(path: &Path) -> Result<UnixSocket, AdminError> {
        let error = |source: io::Error| AdminError::Socket {
            path: path.to_owned(),
            source,
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(error)?;
        remove_if_stale(path)?;

        let private = parent.join(format!(".admin.{:08x}", rand::random::<u32>()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(error)?;
        let staged = private.join("s");
        let result = (|| {
            let listener = UnixListener::bind(&staged)?;
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::hard_link(&staged, path)?;
            Ok::<_, io::Error>(listener)
        })();
        let _ = std::fs::remove_file(&staged);
        let _ = std::fs::remove_dir(&private);
        let listener = match result {
            Ok(listener) => listener,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(AdminError::SocketInUse {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(error(e)),
        };
        let meta = std::fs::symlink_metadata(path).map_err(error)?;
        Ok(UnixSocket {
            listener,
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The identity of the socket file, to remove it later without the listener.
    pub(crate) fn file(&self) -> SocketFile {
        SocketFile {
            path: self.path.clone(),
            dev: self.dev,
            ino: self.ino,
        }
    }
}

/// The socket file as created, removed at stop if it is still the same file.
#[derive(Debug, Clone)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Removes the file if it is still ours.
    pub(crate) fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && meta.dev() == self.dev
            && meta.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes `path` if it is a socket nobody listens on; refuses anything else that exists.
fn remove_if_stale(path: &Path) -> Result<(), AdminError> {
    let error = |source: io::Error| AdminError::Socket {
        path: path.to_owned(),
        source,
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(error(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(AdminError::NotASocket {
            path: path.to_owned(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(AdminError::SocketInUse {
            path: path.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing a stale admin socket");
            std::fs::remove_file(path).map_err(error)
        }
        Err(e) => Err(error(e)),
    }
}
