//! Every endpoint over the Unix socket: status, JSON, validation, and what reached the
//! backend.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use hyper::Method;
use queue::RecipientState;
use serde_json::{Value, json};

use super::memory::now;
use super::{Harness, call, error};
use crate::admin::Client;
use crate::admin::types::*;

/// The uid the server sees for this process.
fn my_uid(harness: &Harness) -> u32 {
    std::fs::metadata(harness.socket.parent().unwrap())
        .unwrap()
        .uid()
}

#[tokio::test]
async fn queue_summary_counts_by_provider_domain_source_and_tenant() {
    let h = Harness::start().await;
    let (status, s): (u16, QueueSummary) = call(&h.unix(), Method::GET, "/v1/queue", None).await;
    assert_eq!(status, 200);
    assert_eq!(s.generated_at, now());
    assert_eq!(
        (s.messages, s.total.recipients, s.total.deferred),
        (5, 7, 5)
    );
    assert_eq!(
        s.total.oldest,
        Some(now() - Duration::from_secs(3 * 86_400))
    );
    assert_eq!(s.age_buckets.len(), 8);
    assert_eq!(s.age_buckets[0].label, "<5m");
    let keys = |t: &ShapeTable| -> Vec<(String, u64)> {
        t.rows
            .iter()
            .map(|r| (r.key.clone(), r.recipients))
            .collect()
    };
    let owned = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
    };
    assert_eq!(
        keys(&s.by_provider),
        owned(&[("gmail", 4), ("other", 2), ("yahoo", 1)])
    );
    assert_eq!(
        keys(&s.by_domain),
        owned(&[
            ("gmail.com", 3),
            ("example.org", 2),
            ("googlemail.com", 1),
            ("yahoo.com", 1)
        ])
    );
    assert_eq!(
        keys(&s.by_source),
        owned(&[("ip-1", 3), ("ip-2", 3), ("(unassigned)", 1)])
    );
    assert_eq!(
        keys(&s.by_tenant),
        owned(&[("acme", 3), ("globex", 3), ("(none)", 1)])
    );
    let gmail = &s.by_provider.rows[0];
    assert_eq!(gmail.ages, [2, 1, 0, 1, 0, 0, 0, 0]);
    assert_eq!(gmail.deferred, 2);
    assert_eq!(gmail.oldest, Some(now() - Duration::from_secs(90 * 60)));

    let (_, s): (u16, QueueSummary) = call(
        &h.unix(),
        Method::GET,
        "/v1/queue?provider=gmail&tenant=acme",
        None,
    )
    .await;
    assert_eq!((s.messages, s.total.recipients), (2, 3));
    assert_eq!(s.filter.provider.as_deref(), Some("gmail"));

    let (_, s): (u16, QueueSummary) = call(
        &h.unix(),
        Method::GET,
        "/v1/queue?top=1&domain=EXAMPLE.org",
        None,
    )
    .await;
    assert_eq!(s.filter.domain.as_deref(), Some("example.org"));
    assert_eq!(s.total.recipients, 2);
    let (_, s): (u16, QueueSummary) = call(&h.unix(), Method::GET, "/v1/queue?top=1", None).await;
    assert_eq!(s.by_domain.rows.len(), 1);
    assert_eq!((s.by_domain.more_rows, s.by_domain.more_recipients), (3, 4));

    for (path, message) in [
        ("/v1/queue?top=0", "top must be between 1 and 1000"),
        ("/v1/queue?top=1001", "top must be between 1 and 1000"),
        ("/v1/queue?tennant=acme", "unknown field `tennant`"),
        ("/v1/queue?domain=", "domain must not be empty"),
        ("/v1/queue?top=many", "invalid digit"),
    ] {
        let (status, text) = error(&h.unix(), Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}");
        assert!(text.contains(message), "{path}: {text}");
    }
    h.stop().await;
}

#[tokio::test]
async fn messages_are_shown_or_not_found() {
    let h = Harness::start().await;
    let id = h.backend.message_ids()[0];
    let (status, m): (u16, MessageView) =
        call(&h.unix(), Method::GET, &format!("/v1/messages/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(m.id, id.to_string());
    assert_eq!(m.sender, "sender@esp.example");
    assert_eq!(m.tenant.as_deref(), Some("acme"));
    assert_eq!(m.campaign.as_deref(), Some("spring"));
    assert_eq!(m.created_at, now() - Duration::from_secs(120));
    assert_eq!(
        m.next_attempt_at,
        Some(now() - Duration::from_secs(120) + Duration::from_secs(600))
    );
    assert_eq!(m.priority, MessagePriority::Normal);
    assert_eq!(m.recipients.len(), 2);
    assert_eq!(m.recipients[0].address, "a@gmail.com");
    assert_eq!(m.recipients[0].status, RecipientStatus::Pending);
    assert_eq!(m.recipients[0].provider.as_deref(), Some("gmail"));
    assert_eq!(m.recipients[0].source.as_deref(), Some("ip-1"));

    let missing = "0000000000000000000000000000abcd";
    let (status, text) = error(
        &h.unix(),
        Method::GET,
        &format!("/v1/messages/{missing}"),
        None,
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (404, format!("no message {missing} in the queue").as_str())
    );
    let (status, text) = error(&h.unix(), Method::GET, "/v1/messages/bad%21id", None).await;
    assert_eq!((status, text.as_str()), (400, "not a valid id"));
    h.stop().await;
}

#[tokio::test]
async fn suspensions_are_made_listed_and_lifted() {
    let h = Harness::start().await;
    let uid = my_uid(&h);
    let body = r#"{"scope":{"provider":"gmail"},"duration":"1h","reason":"421 rate limited"}"#;
    let (status, s): (u16, Suspension) =
        call(&h.unix(), Method::POST, "/v1/suspend", Some(body)).await;
    assert_eq!(status, 201);
    assert_eq!(s.id, "s1");
    assert_eq!(s.scope, SuspensionScope::Provider("gmail".into()));
    assert_eq!(s.expires_at, now() + Duration::from_secs(3600));
    assert_eq!(s.created_by, format!("unix:uid={uid}"));
    let body =
        r#"{"scope":{"tenant":"acme","campaign":"spring"},"duration":"30m","reason":"complaints"}"#;
    let (status, _): (u16, Suspension) =
        call(&h.unix(), Method::POST, "/v1/suspend", Some(body)).await;
    assert_eq!(status, 201);

    let (status, list): (u16, SuspensionList) =
        call(&h.unix(), Method::GET, "/v1/suspend", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list.suspensions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s2", "s1"]);

    let (status, resumed): (u16, Resumed) =
        call(&h.unix(), Method::DELETE, "/v1/suspend/s1", None).await;
    assert_eq!((status, resumed.resumed.as_str()), (200, "s1"));
    let (status, text) = error(&h.unix(), Method::DELETE, "/v1/suspend/s1", None).await;
    assert_eq!((status, text.as_str()), (404, "no suspension s1"));

    let cases = [
        (
            r#"{"scope":{"provider":"gmail"},"duration":"1h"}"#,
            400,
            "missing field `reason`",
        ),
        (
            r#"{"scope":{"provider":"gmail","domain":"x.com"},"duration":"1h","reason":"x"}"#,
            400,
            "exactly one of",
        ),
        (
            r#"{"scope":{"campaign":"spring"},"duration":"1h","reason":"x"}"#,
            400,
            "needs its tenant",
        ),
        (
            r#"{"scope":{"provider":"gmail"},"duration":"0s","reason":"x"}"#,
            400,
            "between 1s and 30days",
        ),
        (
            r#"{"scope":{"provider":"gmail"},"duration":"31d","reason":"x"}"#,
            400,
            "between 1s and 30days",
        ),
        (
            r#"{"scope":{"provider":"gmail"},"duration":"soon","reason":"x"}"#,
            400,
            "invalid JSON at duration",
        ),
        (
            r#"{"scope":{"provider":"gmail"},"duration":"1h","reason":" "}"#,
            400,
            "reason must not be empty",
        ),
        (
            r#"{"scope":{"provider":"gmail"},"duration":"1h","reason":"x","force":true}"#,
            400,
            "unknown field `force`",
        ),
        (
            r#"{"scope":{"provider":"nosuch"},"duration":"1h","reason":"x"}"#,
            422,
            "unknown provider nosuch",
        ),
        ("not json", 400, "invalid JSON"),
        ("", 400, "a JSON body is required"),
    ];
    for (body, want_status, want) in cases {
        let (status, text) = error(&h.unix(), Method::POST, "/v1/suspend", Some(body)).await;
        assert_eq!(status, want_status, "{body}: {text}");
        assert!(text.contains(want), "{body}: {text}");
    }
    let actions = h.backend.actions();
    let endpoints: Vec<&str> = actions.iter().map(|a| a.endpoint).collect();
    assert_eq!(
        endpoints,
        [
            "POST /v1/suspend",
            "POST /v1/suspend",
            "DELETE /v1/suspend/{id}",
            "DELETE /v1/suspend/{id}"
        ]
    );
    assert!(
        actions
            .iter()
            .all(|a| a.client == Client::Unix { uid: Some(uid) })
    );
    h.stop().await;
}

#[tokio::test]
async fn flush_needs_a_filter_or_all() {
    let h = Harness::start().await;
    let (status, count): (u16, ActionCount) = call(
        &h.unix(),
        Method::POST,
        "/v1/flush",
        Some(r#"{"filter":{"provider":"gmail"}}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!((count.messages, count.recipients), (3, 4));
    let (_, count): (u16, ActionCount) = call(
        &h.unix(),
        Method::POST,
        "/v1/flush",
        Some(r#"{"filter":{"source":"(unassigned)"}}"#),
    )
    .await;
    assert_eq!((count.messages, count.recipients), (1, 1));
    let (_, count): (u16, ActionCount) = call(
        &h.unix(),
        Method::POST,
        "/v1/flush",
        Some(r#"{"all":true}"#),
    )
    .await;
    assert_eq!((count.messages, count.recipients), (5, 7));

    for (body, want) in [
        ("{}", "no filter given"),
        (r#"{"filter":{}}"#, "no filter given"),
        (
            r#"{"all":true,"filter":{"tenant":"acme"}}"#,
            "cannot be combined",
        ),
        (
            r#"{"filter":{"tennant":"acme"}}"#,
            "unknown field `tennant`",
        ),
        (
            r#"{"filter":{"domain":"a b"}}"#,
            "domain must not contain spaces",
        ),
    ] {
        let (status, text) = error(&h.unix(), Method::POST, "/v1/flush", Some(body)).await;
        assert_eq!(status, 400, "{body}");
        assert!(text.contains(want), "{body}: {text}");
    }
    let what: Vec<String> = h.backend.actions().into_iter().map(|a| a.what).collect();
    assert_eq!(
        what,
        ["provider=gmail", "source=(unassigned)", "everything"]
    );
    h.stop().await;
}

#[tokio::test]
async fn bounce_acts_on_its_slice_and_refuses_an_empty_filter() {
    let h = Harness::start().await;
    let ids = h.backend.message_ids();
    for body in ["{}", r#"{"dsn":false}"#, r#"{"filter":{}}"#] {
        let (status, text) = error(&h.unix(), Method::POST, "/v1/bounce", Some(body)).await;
        assert_eq!(status, 400, "{body}");
        assert!(text.contains("\"all\": true"), "{text}");
    }
    assert!(
        h.backend.actions().is_empty(),
        "nothing reached the backend"
    );

    let (status, result): (u16, BounceResult) = call(
        &h.unix(),
        Method::POST,
        "/v1/bounce",
        Some(r#"{"filter":{"tenant":"acme","campaign":"spring"},"dsn":false}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        result,
        BounceResult {
            messages: 1,
            recipients: 2,
            dsn: false
        }
    );
    assert!(
        h.backend
            .states(ids[0])
            .iter()
            .all(|(_, s)| *s == RecipientState::Failed)
    );
    assert!(
        h.backend
            .states(ids[1])
            .iter()
            .all(|(_, s)| *s == RecipientState::Pending)
    );

    let (_, result): (u16, BounceResult) = call(
        &h.unix(),
        Method::POST,
        "/v1/bounce",
        Some(r#"{"filter":{"domain":"example.org"}}"#),
    )
    .await;
    assert_eq!(
        (result.messages, result.recipients, result.dsn),
        (2, 2, true)
    );
    assert_eq!(
        h.backend.states(ids[2]),
        [
            ("d@yahoo.com".to_owned(), RecipientState::Pending),
            ("e@example.org".to_owned(), RecipientState::Failed)
        ]
    );
    let (_, result): (u16, BounceResult) = call(
        &h.unix(),
        Method::POST,
        "/v1/bounce",
        Some(r#"{"all":true}"#),
    )
    .await;
    assert_eq!((result.messages, result.recipients), (3, 3));
    let what: Vec<String> = h.backend.actions().into_iter().map(|a| a.what).collect();
    assert_eq!(
        what,
        [
            "tenant=acme campaign=spring dsn=false",
            "domain=example.org dsn=true",
            "everything dsn=true"
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn pools_are_passed_through() {
    let h = Harness::start().await;
    let (status, pools): (u16, PoolsView) = call(&h.unix(), Method::GET, "/v1/pools", None).await;
    assert_eq!(status, 200);
    assert_eq!(pools.sources.len(), 1);
    assert_eq!(pools.sources[0].warmup.as_ref().map(|w| w.day), Some(3));
    assert_eq!(
        pools.sources[0].providers[0].throttle.state,
        ThrottleState::Slowed
    );
    let (_, raw): (u16, Value) = call(&h.unix(), Method::GET, "/v1/pools", None).await;
    assert_eq!(
        raw["sources"][0]["providers"][0]["throttle"],
        json!({"state": "slowed", "until": "2026-03-01T12:30:00Z", "reason": "421 4.7.28 rate limited"})
    );
    h.backend.set_pools(PoolsView::default());
    let (_, raw): (u16, Value) = call(&h.unix(), Method::GET, "/v1/pools", None).await;
    assert_eq!(raw, json!({"sources": []}));
    h.stop().await;
}

#[tokio::test]
async fn suppressions_are_added_paged_and_removed() {
    let h = Harness::start().await;
    let body = r#"{"entries":[{"address":"User@Example.com","reason":"asked by phone"},{"address":"example.net.","tenant":"acme"}]}"#;
    let (status, change): (u16, SuppressionChange) =
        call(&h.unix(), Method::POST, "/v1/suppressions", Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!((change.changed, change.unchanged), (2, 0));
    let (_, change): (u16, SuppressionChange) =
        call(&h.unix(), Method::POST, "/v1/suppressions", Some(body)).await;
    assert_eq!((change.changed, change.unchanged), (0, 2));

    let (status, page): (u16, SuppressionPage) =
        call(&h.unix(), Method::GET, "/v1/suppressions", None).await;
    assert_eq!(status, 200);
    let addresses: Vec<&str> = page.entries.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(addresses, ["example.net", "user@example.com"]);
    assert_eq!(page.next, None);
    assert_eq!(page.entries[1].reason.as_deref(), Some("asked by phone"));
    assert_eq!(page.entries[0].tenant.as_deref(), Some("acme"));

    let (_, page): (u16, SuppressionPage) =
        call(&h.unix(), Method::GET, "/v1/suppressions?limit=1", None).await;
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.next.as_deref(), Some("example.net"));
    let (_, page): (u16, SuppressionPage) = call(
        &h.unix(),
        Method::GET,
        "/v1/suppressions?limit=1&after=example.net",
        None,
    )
    .await;
    assert_eq!(page.entries[0].address, "user@example.com");
    assert_eq!(page.next, None);
    let (_, page): (u16, SuppressionPage) =
        call(&h.unix(), Method::GET, "/v1/suppressions?tenant=acme", None).await;
    assert_eq!(page.entries.len(), 1);

    let (status, change): (u16, SuppressionChange) = call(
        &h.unix(),
        Method::DELETE,
        "/v1/suppressions?address=USER%40example.com",
        None,
    )
    .await;
    assert_eq!((status, change.changed), (200, 1));
    let (status, text) = error(
        &h.unix(),
        Method::DELETE,
        "/v1/suppressions?address=user%40example.com",
        None,
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (404, "user@example.com is not suppressed")
    );

    for (method, path, body, want) in [
        (
            Method::POST,
            "/v1/suppressions",
            Some(r#"{"entries":[]}"#),
            "between 1 and 10000",
        ),
        (
            Method::POST,
            "/v1/suppressions",
            Some(r#"{"entries":[{"address":"ok@x.com"},{"address":"a b@x.com"}]}"#),
            "entries[1]: address must not contain spaces",
        ),
        (
            Method::GET,
            "/v1/suppressions?limit=0",
            None,
            "limit must be between 1 and 10000",
        ),
        (
            Method::DELETE,
            "/v1/suppressions",
            None,
            "missing field `address`",
        ),
    ] {
        let (status, text) = error(&h.unix(), method, path, body).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains(want), "{path}: {text}");
    }
    h.stop().await;
}

#[tokio::test]
async fn reload_reports_or_refuses() {
    let h = Harness::start().await;
    let (status, report): (u16, ReloadReport) =
        call(&h.unix(), Method::POST, "/v1/reload", None).await;
    assert_eq!(status, 200);
    assert_eq!(report.needs_restart, ["listener"]);
    h.backend
        .set_reload(Err("listener[0]: unknown field `adress`".to_owned()));
    let (status, text) = error(&h.unix(), Method::POST, "/v1/reload", None).await;
    assert_eq!(
        (status, text.as_str()),
        (422, "listener[0]: unknown field `adress`")
    );
    assert_eq!(h.backend.actions().len(), 2);
    h.stop().await;
}

#[tokio::test]
async fn the_quarantine_is_listed_and_its_bodies_can_be_fetched() {
    use super::memory::{QUARANTINED, QUARANTINED_BODY};
    let h = Harness::start().await;
    let (status, list): (u16, QuarantineList) =
        call(&h.unix(), Method::GET, "/v1/quarantine", None).await;
    assert_eq!((status, list.total, list.entries.len()), (200, 2, 2));
    assert_eq!(list.entries[0].id.as_deref(), Some(QUARANTINED));
    assert_eq!(list.entries[0].kind, "body");
    assert_eq!(list.entries[0].size, QUARANTINED_BODY.len() as u64);

    let answer = h
        .unix()
        .send(Method::GET, &format!("/v1/quarantine/{QUARANTINED}"), None)
        .await
        .unwrap();
    assert_eq!(answer.status.as_u16(), 200);
    assert_eq!(&answer.body[..], QUARANTINED_BODY);

    let other = "0199ab12cd34ef560000aabbccddee00";
    let (status, text) = error(
        &h.unix(),
        Method::GET,
        &format!("/v1/quarantine/{other}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "{text}");
    let (status, _) = error(&h.unix(), Method::GET, "/v1/quarantine/a%20b", None).await;
    assert_eq!(status, 400);

    let path = format!("/v1/quarantine/{QUARANTINED}");
    let (status, discarded): (u16, Discarded) = call(&h.unix(), Method::DELETE, &path, None).await;
    assert_eq!(
        (status, discarded.discarded.as_str(), discarded.entries),
        (200, QUARANTINED, 2)
    );
    let (status, _) = error(&h.unix(), Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (_, list): (u16, QuarantineList) =
        call(&h.unix(), Method::GET, "/v1/quarantine", None).await;
    assert_eq!(list.total, 0);
    let actions = h.backend.actions();
    assert_eq!(
        actions.last().map(|a| (a.endpoint, a.what.as_str())),
        Some(("DELETE /v1/quarantine/{id}", QUARANTINED))
    );
    h.stop().await;
}

#[tokio::test]
async fn health_is_200_unless_failing() {
    let h = Harness::start().await;
    let (status, health): (u16, Health) = call(&h.unix(), Method::GET, "/v1/health", None).await;
    assert_eq!((status, health.status), (200, HealthStatus::Ok));
    let failing = Health::from_components(
        "0.1.0",
        now(),
        vec![
            ComponentHealth {
                name: "spool".into(),
                status: HealthStatus::Failing,
                detail: Some("fdatasync: I/O error".into()),
            },
            ComponentHealth {
                name: "delivery".into(),
                status: HealthStatus::Degraded,
                detail: None,
            },
        ],
    );
    assert_eq!(failing.status, HealthStatus::Failing);
    h.backend.set_health(failing.clone());
    let (status, health): (u16, Health) = call(&h.unix(), Method::GET, "/v1/health", None).await;
    assert_eq!((status, health), (503, failing));
    h.stop().await;
}

#[tokio::test]
async fn unknown_paths_methods_and_large_bodies_get_json_errors() {
    let h = Harness::start().await;
    let (status, text) = error(&h.unix(), Method::GET, "/v1/nothing", None).await;
    assert_eq!(status, 404, "{text}");
    let (status, _) = error(&h.unix(), Method::DELETE, "/v1/queue", None).await;
    assert_eq!(status, 405);
    let (status, _) = error(&h.unix(), Method::GET, "/v1/bounce", None).await;
    assert_eq!(status, 405);
    let big = format!(
        r#"{{"filter":{{"tenant":"{}"}}}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    let (status, _) = error(&h.unix(), Method::POST, "/v1/flush", Some(&big)).await;
    assert_eq!(status, 413);
    assert!(h.backend.actions().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn backend_errors_map_to_one_status_each() {
    let h = Harness::start().await;
    let io = std::io::Error::other("fdatasync failed");
    let cases: Vec<(crate::admin::BackendError, u16, &str)> = vec![
        (
            crate::admin::BackendError::Failed {
                what: "reading the spool",
                source: Box::new(io),
            },
            500,
            "reading the spool: fdatasync failed",
        ),
        (
            crate::admin::BackendError::Unsupported { what: "IP pools" },
            501,
            "not supported: IP pools",
        ),
        (
            crate::admin::BackendError::ShuttingDown,
            503,
            "the MTA is shutting down",
        ),
    ];
    for (backend_error, want_status, want) in cases {
        h.backend.fail_next_pools(backend_error);
        let (status, text) = error(&h.unix(), Method::GET, "/v1/pools", None).await;
        assert_eq!((status, text.as_str()), (want_status, want));
    }
    let (status, _): (u16, PoolsView) = call(&h.unix(), Method::GET, "/v1/pools", None).await;
    assert_eq!(status, 200);
    h.stop().await;
}
