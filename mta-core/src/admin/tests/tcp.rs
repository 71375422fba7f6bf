//! The TCP listener: the token is required for everything but `GET /metrics` and
//! `GET /v1/health`; state changes without it are refused (401) and never reach the
//! backend; with it they are accepted and attributed to `tcp:<ip>`.

use hyper::Method;

use super::{Harness, TOKEN, call, error};
use crate::admin::Client;
use crate::admin::types::{Health, QueueSummary};

/// Every state-changing request, with a valid body.
const CHANGES: &[(&str, &str, Option<&str>)] = &[
    (
        "POST",
        "/v1/suspend",
        Some(r#"{"scope":{"provider":"gmail"},"duration":"1h","reason":"test"}"#),
    ),
    ("DELETE", "/v1/suspend/s1", None),
    (
        "POST",
        "/v1/flush",
        Some(r#"{"filter":{"provider":"gmail"}}"#),
    ),
    (
        "POST",
        "/v1/bounce",
        Some(r#"{"filter":{"tenant":"globex"}}"#),
    ),
    (
        "POST",
        "/v1/suppressions",
        Some(r#"{"entries":[{"address":"x@example.com"}]}"#),
    ),
    ("DELETE", "/v1/suppressions?address=x%40example.com", None),
    ("POST", "/v1/reload", None),
];

/// Every read that shows mail data.
const READS: &[&str] = &[
    "/v1/queue",
    "/v1/messages/0000000000000000000000000000abcd",
    "/v1/suspend",
    "/v1/pools",
    "/v1/suppressions",
];

fn method(name: &str) -> Method {
    name.parse().unwrap()
}

#[tokio::test]
async fn state_changes_need_the_token() {
    let h = Harness::start_tcp().await;
    for token in [None, Some("wrong-token-0123456789"), Some("")] {
        for (m, path, body) in CHANGES {
            let (status, text) = error(&h.tcp(token), method(m), path, *body).await;
            assert_eq!(status, 401, "{m} {path} with {token:?}");
            assert!(text.contains("bearer token"), "{text}");
        }
    }
    assert!(
        h.backend.actions().is_empty(),
        "nothing reached the backend"
    );

    for (m, path, body) in CHANGES {
        let answer = h
            .tcp(Some(TOKEN))
            .send(method(m), path, body.map(|b| b.as_bytes().to_vec()))
            .await
            .unwrap();
        assert!(answer.status.is_success(), "{m} {path}: {}", answer.status);
    }
    let actions = h.backend.actions();
    assert_eq!(actions.len(), CHANGES.len());
    let local = Client::Tcp {
        ip: "127.0.0.1".parse().unwrap(),
    };
    assert!(actions.iter().all(|a| a.client == local), "{actions:?}");
    assert_eq!(local.to_string(), "tcp:127.0.0.1");
    h.stop().await;
}

#[tokio::test]
async fn reads_need_the_token_except_metrics_and_health() {
    let h = Harness::start_tcp().await;
    for path in READS {
        let (status, _) = error(&h.tcp(None), Method::GET, path, None).await;
        assert_eq!(status, 401, "{path}");
        let answer = h
            .tcp(Some(TOKEN))
            .send(Method::GET, path, None)
            .await
            .unwrap();
        assert_ne!(answer.status.as_u16(), 401, "{path}");
    }
    let (status, _): (u16, QueueSummary) =
        call(&h.tcp(Some(TOKEN)), Method::GET, "/v1/queue", None).await;
    assert_eq!(status, 200);
    let (status, _): (u16, Health) = call(&h.tcp(None), Method::GET, "/v1/health", None).await;
    assert_eq!(status, 200);
    let answer = h
        .tcp(None)
        .send(Method::GET, "/metrics", None)
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    let (status, _) = error(&h.tcp(None), Method::POST, "/metrics", None).await;
    assert_eq!(status, 401, "only GET is open");
    // The Unix socket on the same server needs no token.
    let (status, _): (u16, QueueSummary) = call(&h.unix(), Method::GET, "/v1/queue", None).await;
    assert_eq!(status, 200);
    h.stop().await;
}
