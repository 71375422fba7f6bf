//! The Unix socket (mode 0600, stale replaced, live or foreign files respected, removed at
//! stop) and the `[admin]` section.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use hyper::Method;

use super::memory::{MemoryBackend, default_queue};
use super::{Harness, call};
use crate::admin::types::Health;
use crate::admin::{AdminConfig, AdminConfigError, AdminError, AdminServer, build_recorder};

fn config(socket: PathBuf) -> AdminConfig {
    AdminConfig {
        socket,
        ..AdminConfig::default()
    }
}

async fn bind(config: &AdminConfig) -> Result<AdminServer, AdminError> {
    let backend = Arc::new(MemoryBackend::new(default_queue()));
    AdminServer::bind(config, backend, build_recorder().handle()).await
}

#[tokio::test]
async fn the_socket_is_owner_only_and_removed_at_stop() {
    let h = Harness::start().await;
    let meta = std::fs::symlink_metadata(&h.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dir = h.socket.parent().unwrap().to_owned();
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["admin.sock"], "no staging directory left behind");
    let socket = h.stop().await;
    assert!(!socket.exists(), "the socket is removed at stop");
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a dead process's socket is left behind");
    let server = bind(&config(path.clone())).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(server.serve(shutdown.clone()));
    let client = crate::ctl::AdminClient::new(crate::ctl::Target::Unix(path.clone()));
    let (status, _): (u16, Health) = call(&client, Method::GET, "/v1/health", None).await;
    assert_eq!(status, 200);
    shutdown.cancel();
    serving.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_live_socket_is_not_taken_over() {
    let h = Harness::start().await;
    let err = bind(&config(h.socket.clone())).await.err().unwrap();
    assert!(matches!(err, AdminError::SocketInUse { .. }), "{err}");
    assert!(
        err.to_string().contains("is an MTA already running?"),
        "{err}"
    );
    let (status, _): (u16, Health) = call(&h.unix(), Method::GET, "/v1/health", None).await;
    assert_eq!(status, 200, "the first server still serves");
    h.stop().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    std::fs::write(&path, "precious").unwrap();
    let err = bind(&config(path.clone())).await.err().unwrap();
    assert!(matches!(err, AdminError::NotASocket { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test]
async fn a_bad_tcp_address_fails_at_bind() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = AdminConfig {
        socket: dir.path().join("admin.sock"),
        address: Some(taken.local_addr().unwrap()),
        token: Some("0123456789abcdef".to_owned()),
    };
    let err = bind(&config).await.err().unwrap();
    assert!(matches!(err, AdminError::Tcp { .. }), "{err}");
}

#[test]
fn the_admin_section_parses_and_validates() {
    let config: AdminConfig = toml::from_str("").unwrap();
    assert_eq!(config, AdminConfig::default());
    assert_eq!(config.socket, PathBuf::from("data/admin.sock"));
    assert_eq!(config.address, None);
    assert!(config.validate().is_ok());

    let config: AdminConfig = toml::from_str(
        "socket = \"/run/mta/admin.sock\"\naddress = \"127.0.0.1:8025\"\ntoken = \"0123456789abcdef\"",
    )
    .unwrap();
    assert!(config.validate().is_ok());
    assert!(
        !format!("{config:?}").contains("0123456789abcdef"),
        "the token is redacted"
    );

    let err = toml::from_str::<AdminConfig>("sokcet = \"x\"").unwrap_err();
    assert!(err.to_string().contains("unknown field `sokcet`"), "{err}");

    let cases: &[(&str, &str)] = &[
        ("address = \"127.0.0.1:8025\"", "admin.token"),
        (
            "address = \"0.0.0.0:8025\"\ntoken = \"0123456789abcdef\"",
            "admin.address",
        ),
        ("address = \"[::1]:8025\"\ntoken = \"short\"", "admin.token"),
        ("token = \"0123456789 abcdef\"", "admin.token"),
        ("socket = \"\"", "admin.socket"),
    ];
    for (text, key) in cases {
        let config: AdminConfig = toml::from_str(text).unwrap();
        let err: AdminConfigError = config.validate().unwrap_err();
        assert_eq!(err.key, *key, "{text}: {err}");
    }
}
