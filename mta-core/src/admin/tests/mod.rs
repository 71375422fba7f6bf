//! Tests of the admin API and of `mta ctl` against a real server: an in-memory backend
//! (`memory`), a real Unix socket in a temporary directory and real TCP on 127.0.0.1:0.
//!
//! `endpoints` checks every endpoint's status and JSON, `tcp` the token rules, `socket` the
//! socket's mode, staleness and removal, `metrics` the exporter (with `promtool check
//! metrics` from Debian's `prometheus` package) and the catalogue, `ctl` every command's
//! output and errors.

mod ctl;
mod endpoints;
mod memory;
mod metrics;
mod socket;
mod tcp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::Method;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{AdminConfig, AdminError, AdminServer, build_recorder};
use crate::ctl::{AdminClient, Target};
use memory::MemoryBackend;

/// The token of the TCP listener in tests.
const TOKEN: &str = "test-token-0123456789";

/// A running admin server over a memory backend.
struct Harness {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    tcp: Option<SocketAddr>,
    backend: Arc<MemoryBackend>,
    shutdown: CancellationToken,
    serving: JoinHandle<Result<(), AdminError>>,
}

impl Harness {
    /// A server on a Unix socket only, with the default queue.
    async fn start() -> Harness {
        Harness::start_with(false, build_recorder().handle()).await
    }

    /// A server on a Unix socket and on 127.0.0.1:0 with [`TOKEN`].
    async fn start_tcp() -> Harness {
        Harness::start_with(true, build_recorder().handle()).await
    }

    async fn start_with(tcp: bool, metrics: PrometheusHandle) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run").join("admin.sock");
        let config = AdminConfig {
            socket: socket.clone(),
            address: tcp.then(|| "127.0.0.1:0".parse().unwrap()),
            token: tcp.then(|| TOKEN.to_owned()),
        };
        let backend = Arc::new(MemoryBackend::new(memory::default_queue()));
        let server = AdminServer::bind(&config, backend.clone(), metrics)
            .await
            .unwrap();
        assert_eq!(server.socket_path(), socket);
        let tcp = server.tcp_addr();
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(server.serve(shutdown.clone()));
        Harness {
            _dir: dir,
            socket,
            tcp,
            backend,
            shutdown,
            serving,
        }
    }

    fn unix(&self) -> AdminClient {
        AdminClient::new(Target::Unix(self.socket.clone()))
    }

    fn tcp(&self, token: Option<&str>) -> AdminClient {
        AdminClient::new(Target::Tcp {
            address: self.tcp.expect("TCP is on"),
            token: token.map(str::to_owned),
        })
    }

    /// Stops the server and waits for it.
    async fn stop(self) -> PathBuf {
        self.shutdown.cancel();
        self.serving.await.unwrap().unwrap();
        self.socket.clone()
    }
}

/// Sends a request and returns the status and the body parsed as `T`.
async fn call<T: DeserializeOwned>(
    client: &AdminClient,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (u16, T) {
    let answer = client
        .send(method, path, body.map(|b| b.as_bytes().to_vec()))
        .await
        .unwrap();
    let value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("{path}: {e}: {}", String::from_utf8_lossy(&answer.body)));
    (answer.status.as_u16(), value)
}

/// The `error` of an error answer, with its status.
async fn error(
    client: &AdminClient,
    method: Method,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let (status, body): (u16, crate::admin::types::ApiErrorBody) =
        call(client, method, path, body).await;
    assert_eq!(body.status, status);
    (status, body.error)
}
