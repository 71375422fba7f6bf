//! The admin API client of `mta ctl`: one HTTP/1.1 request per connection over the Unix
//! socket (or loopback TCP with a bearer token), answers decoded from JSON, errors turned
//! into [`CtlError`]s an operator can act on.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::admin::types::{ApiErrorBody, HealthStatus};

/// Why a `mta ctl` command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CtlError {
    /// Nothing listens on the socket (no file, or a stale one).
    #[error("cannot reach the MTA at {}: is `mta run` running?", socket.display())]
    Unreachable {
        /// The socket path tried.
        socket: PathBuf,
        /// The connect error.
        source: io::Error,
    },
    /// The socket exists but this user may not open it (mode 0600).
    #[error(
        "permission denied on {}: run `mta ctl` as the user that runs the MTA (or root)",
        socket.display()
    )]
    PermissionDenied {
        /// The socket path.
        socket: PathBuf,
        /// The connect error.
        source: io::Error,
    },
    /// Nothing listens on the TCP address (`--address`).
    #[error("cannot reach the MTA at {address}: is `mta run` running with [admin] address set?")]
    TcpUnreachable {
        /// The address tried.
        address: SocketAddr,
        /// The connect error.
        source: io::Error,
    },
    /// The HTTP exchange failed (the daemon closed the connection, or stopped).
    #[error("the connection to the MTA failed")]
    Http {
        /// The error.
        source: hyper::Error,
    },
    /// The MTA answered with an error.
    #[error("the MTA refused ({status}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The MTA's explanation.
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the MTA")]
    Decode {
        /// The error.
        source: serde_json::Error,
    },
    /// `mta ctl health`: the MTA answered, and is failing.
    #[error("the MTA is {status}")]
    Unhealthy {
        /// Its status.
        status: HealthStatus,
    },
    /// Standard output could not be written.
    #[error("writing the output")]
    Output {
        /// The error.
        source: io::Error,
    },
}

/// Where the admin API is.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// The Unix socket.
    Unix(PathBuf),
    /// Loopback TCP, with the token if any.
    Tcp {
        address: SocketAddr,
        token: Option<String>,
    },
}

/// An answer: status and body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as `T` if the status is a success; the MTA's error otherwise.
    pub(crate) fn decode<T: DeserializeOwned>(&self) -> Result<T, CtlError> {
        if !self.status.is_success() {
            return Err(self.refusal());
        }
        serde_json::from_slice(&self.body).map_err(|source| CtlError::Decode { source })
    }

    /// The error an unsuccessful answer stands for.
    pub(crate) fn refusal(&self) -> CtlError {
        let message = match serde_json::from_slice::<ApiErrorBody>(&self.body) {
            Ok(body) => body.error,
            Err(_) => String::from_utf8_lossy(&self.body).trim().to_owned(),
        };
        CtlError::Refused {
            status: self.status.as_u16(),
            message,
        }
    }
}

/// A client of the admin API.
#[derive(Debug, Clone)]
pub(crate) struct AdminClient {
    target: Target,
}

impl AdminClient {
    pub(crate) fn new(target: Target) -> AdminClient {
        AdminClient { target }
    }

    /// Sends one request and reads the whole answer.
    pub(crate) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, CtlError> {
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(HOST, "localhost")
            .header(USER_AGENT, concat!("mta-ctl/", env!("CARGO_PKG_VERSION")));
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Target::Tcp {
            token: Some(token), ..
        } = &self.target
        {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .expect("method, path and headers are valid");
        match &self.target {
            Target::Unix(socket) => {
                let stream = tokio::net::UnixStream::connect(socket)
                    .await
                    .map_err(|source| match source.kind() {
                        io::ErrorKind::PermissionDenied => CtlError::PermissionDenied {
                            socket: socket.clone(),
                            source,
                        },
                        _ => CtlError::Unreachable {
                            socket: socket.clone(),
                            source,
                        },
                    })?;
                exchange(stream, request).await
            }
            Target::Tcp { address, .. } => {
                let stream = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(|source| CtlError::TcpUnreachable {
                        address: *address,
                        source,
                    })?;
                exchange(stream, request).await
            }
        }
    }
}

/// One HTTP/1.1 exchange on a fresh connection.
async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<Answer, CtlError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let http = |source| CtlError::Http { source };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender.send_request(request).await.map_err(http)?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(http)?
            .to_bytes();
        Ok(Answer { status, body })
    }
    .await;
    drop(sender);
    driver.abort();
    result
}

/// `?key=value&...` of the pairs that have a value, percent-encoded (empty when none).
pub(crate) fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let mut out = String::new();
    for (key, value) in pairs {
        let Some(value) = value else { continue };
        out.push(if out.is_empty() { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_encoded() {
        assert_eq!(query_string(&[("a", None)]), "");
        assert_eq!(
            query_string(&[
                ("address", Some("u+x@example.com")),
                ("tenant", None),
                ("limit", Some("5"))
            ]),
            "?address=u%2Bx%40example.com&limit=5"
        );
        assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
    }
}
