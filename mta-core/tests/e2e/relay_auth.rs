//! Relay policy for untrusted clients, and STARTTLS + AUTH for relay users.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::common::{TestServer, cheap_hash};

fn untrusted_config() -> String {
    format!(
        "accept_domains = [\"ours.test\"]\n[[user]]\nname = \"app\"\npassword_hash = \"{}\"\n",
        cheap_hash("s3cret")
    )
}

#[tokio::test]
async fn untrusted_clients_cannot_relay() {
    let server = TestServer::start_with(&untrusted_config(), "relay_networks = []").await;
    let mut c = server.client().await;
    c.cmd("EHLO outsider.test", 250).await;
    c.cmd("MAIL FROM:<someone@elsewhere.test>", 250).await;
    c.cmd("RCPT TO:<bounces@ours.test>", 250).await;
    c.cmd("RCPT TO:<Bounces@OURS.TEST>", 250).await;
    c.cmd("RCPT TO:<postmaster>", 250).await;
    for trick in [
        "<victim@elsewhere.test>",
        "<u%victim.test@ours.test>",
        "<\"u@victim.test\"@ours.test>",
        "<victim.test!u@ours.test>",
        "<@ours.test:u@victim.test>",
        "<u@[127.0.0.1]>",
    ] {
        let text = c.cmd(&format!("RCPT TO:{trick}"), 554).await;
        assert!(text.contains("5.7.1"), "{trick}: {text}");
    }
    // A trailing dot is a syntax error, not a different domain.
    c.cmd("RCPT TO:<u@ours.test.>", 553).await;
    // A source route through us to a local recipient is stripped and accepted.
    c.cmd("RCPT TO:<@evil.test:u@ours.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(b"Subject: bounce\r\nX-MTA-Tenant: forged\r\n\r\nx\r\n.\r\n")
        .await;
    let queued = c.expect(250).await;
    let (envelope, body) = server.stored(&queued);
    assert_eq!(
        envelope.tags.tenant, None,
        "untrusted clients do not set tags"
    );
    assert!(!String::from_utf8(body).unwrap().contains("X-MTA-Tenant"));
    server.stop().await;
}

#[tokio::test]
async fn auth_is_offered_only_after_tls_and_then_allows_relay() {
    let server = TestServer::start_with(&untrusted_config(), "relay_networks = []").await;
    let mut c = server.client().await;
    let ehlo = c.cmd("EHLO app.test", 250).await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    let plain = STANDARD.encode(b"\0app\0s3cret");
    let text = c.cmd(&format!("AUTH PLAIN {plain}"), 538).await;
    assert!(text.contains("5.7.11"), "{text}");
    c.starttls().await;
    let ehlo = c.cmd("EHLO app.test", 250).await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    c.cmd("MAIL FROM:<app@ours.test>", 250).await;
    c.cmd("RCPT TO:<customer@elsewhere.test>", 554).await;
    c.cmd("RSET", 250).await;
    let wrong = STANDARD.encode(b"\0app\0wrong");
    let text = c.cmd(&format!("AUTH PLAIN {wrong}"), 535).await;
    assert!(text.contains("5.7.8"), "{text}");
    let text = c.cmd(&format!("AUTH PLAIN {plain}"), 235).await;
    assert!(text.contains("2.7.0"), "{text}");
    c.cmd(&format!("AUTH PLAIN {plain}"), 503).await;
    c.cmd("MAIL FROM:<app@ours.test>", 250).await;
    c.cmd("RCPT TO:<customer@elsewhere.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(b"Subject: relayed\r\nX-MTA-Tenant: acme\r\n\r\nhello\r\n.\r\n")
        .await;
    let queued = c.expect(250).await;
    let (envelope, body) = server.stored(&queued);
    assert_eq!(envelope.tags.tenant.as_deref(), Some("acme"));
    assert!(String::from_utf8(body).unwrap().contains("with ESMTPSA id"));
    server.stop().await;
}

#[tokio::test]
async fn auth_login_and_cancel() {
    let server = TestServer::start_with(&untrusted_config(), "relay_networks = []").await;
    let mut c = server.client().await;
    c.cmd("EHLO app.test", 250).await;
    c.starttls().await;
    c.cmd("EHLO app.test", 250).await;
    // Cancelled exchange.
    let text = c.cmd("AUTH LOGIN", 334).await;
    assert!(text.contains("VXNlcm5hbWU6"), "{text}");
    c.cmd("*", 501).await;
    // PLAIN without initial response.
    c.cmd("AUTH PLAIN", 334).await;
    c.cmd(&STANDARD.encode(b"\0app\0nope"), 535).await;
    // LOGIN, the full exchange.
    c.cmd("AUTH LOGIN", 334).await;
    let text = c.cmd(&STANDARD.encode(b"app"), 334).await;
    assert!(text.contains("UGFzc3dvcmQ6"), "{text}");
    c.cmd(&STANDARD.encode(b"s3cret"), 235).await;
    c.cmd("MAIL FROM:<app@ours.test>", 250).await;
    c.cmd("RCPT TO:<customer@elsewhere.test>", 250).await;
    // Unknown users fail like wrong passwords.
    let mut c2 = server.client().await;
    c2.cmd("EHLO x.test", 250).await;
    c2.starttls().await;
    c2.cmd("EHLO x.test", 250).await;
    c2.cmd(
        &format!("AUTH PLAIN {}", STANDARD.encode(b"\0ghost\0s3cret")),
        535,
    )
    .await;
    drop((c, c2));
    server.stop().await;
}
