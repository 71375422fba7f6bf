//! Every DSN built here is parsed by an independent MIME implementation, Python's `email`
//! package, and the structure it sees is checked field by field: content types, the report
//! type, each block of the delivery-status part, and the returned content.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::{BodyType, DsnRet, Envelope, Recipient};
use serde_json::{Value, json};
use smtp_proto::EnhancedCode;

use super::*;

/// Parses a message from stdin with Python's `email` package and prints its structure as
/// JSON. Header values are unfolded and runs of whitespace collapsed.
const PARSER: &str = r#"
import sys, json, email
from email import policy

def norm(value):
    return ' '.join(str(value).split())

def fields(msg):
    return [[k, norm(v)] for k, v in msg.items()]

def blocks(text):
    out, cur = [], []
    for line in text.replace('\r\n', '\n').split('\n'):
        if line.strip() == '':
            if cur:
                out.append('\n'.join(cur)); cur = []
        else:
            cur.append(line)
    if cur:
        out.append('\n'.join(cur))
    return [fields(email.message_from_string(b + '\n', policy=policy.default)) for b in out]

raw = sys.stdin.buffer.read()
text = raw.decode('utf-8')
msg = email.message_from_string(text, policy=policy.default)
defects = []
for part in msg.walk():
    defects += [type(d).__name__ for d in part.defects]
out = {
    'headers': fields(msg),
    'content_type': msg.get_content_type(),
    'report_type': msg.get_param('report-type'),
    'is_multipart': msg.is_multipart(),
    'defects': defects,
    'parts': [],
}
for part in msg.iter_parts():
    ct = part.get_content_type()
    p = {
        'content_type': ct,
        'charset': part.get_param('charset'),
        'cte': part.get('Content-Transfer-Encoding'),
        'description': part.get('Content-Description'),
    }
    if ct == 'text/plain' or ct == 'text/rfc822-headers':
        p['text'] = part.get_payload()
    elif ct == 'message/delivery-status':
        p['blocks'] = [fields(b) for b in part.get_payload()]
    elif ct == 'message/global-delivery-status':
        inner = part.get_payload()[0]
        p['blocks'] = [fields(inner)] + blocks(inner.get_payload())
    elif ct in ('message/rfc822', 'message/global', 'message/global-headers'):
        inner = part.get_payload()[0]
        p['inner_headers'] = fields(inner)
        p['inner_body'] = inner.get_payload()
    out['parts'].append(p)
print(json.dumps(out))
"#;

fn parse(message: &[u8]) -> Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(PARSER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed to run the DSN tests");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(message)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Checks what must hold for every DSN, whatever Python thinks: CRLF only, short lines.
fn check_wire_form(message: &[u8]) {
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(
                message.get(i.wrapping_sub(1)),
                Some(&b'\r'),
                "bare LF at {i}"
            );
        }
        if b == b'\r' {
            assert_eq!(message.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
    }
    for line in message.split(|&b| b == b'\n') {
        assert!(line.len() <= 1000, "line over 998 octets");
    }
    assert!(message.ends_with(b"\r\n"));
}

fn header<'a>(fields: &'a Value, name: &str) -> Option<&'a str> {
    fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|f| f[1].as_str().unwrap())
}

fn names(fields: &Value) -> Vec<&str> {
    fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap())
        .collect()
}

fn code(text: &str) -> EnhancedCode {
    EnhancedCode::parse_prefix(text.as_bytes()).unwrap().0
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// 2026-11-26 12:00:00 UTC.
const NOW: u64 = 1_795_694_400;

const ORIGINAL: &[u8] = b"From: News <news@mail.example.com>\r\n\
To: b@example.org\r\n\
Subject: Your weekly digest\r\n\
Message-ID: <20261126.42@mail.example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
Hello,\r\n\
this is the digest.\r\n";

fn envelope(recipients: &[&str]) -> Envelope {
    let mut env = Envelope::new(
        "bounces+42@mail.example.com",
        recipients.iter().map(|r| Recipient::new(*r)).collect(),
        (NOW - 3_600) * 1000,
    );
    env.size = ORIGINAL.len() as u64;
    env
}

fn failed(address: &str, status: &str, host: &str, reply: &str) -> RecipientOutcome {
    RecipientOutcome {
        remote_mta: Some(host.to_owned()),
        diagnostic: Some(Diagnostic::Smtp(reply.to_owned())),
        last_attempt: Some(at(NOW - 60)),
        ..RecipientOutcome::failed(address, code(status))
    }
}

fn input<'a>(
    envelope: &'a Envelope,
    original: Original<'a>,
    recipients: &'a [RecipientOutcome],
) -> DsnInput<'a> {
    DsnInput {
        reporting_mta: "mta.example.net",
        envelope,
        original,
        recipients,
        now: at(NOW),
        id: "0199ab12cd34ef560000aabbccddeeff",
        return_limit: DEFAULT_RETURN_LIMIT,
    }
}

#[test]
fn one_failed_recipient() {
    let env = envelope(&["b@example.org"]);
    let outcomes = [failed(
        "b@example.org",
        "5.1.1",
        "mx.example.org",
        "550-5.1.1 The email account that you tried to reach does not exist.\r\n\
         550 5.1.1 Please try double-checking the recipient's address.",
    )];
    let dsn = build_dsn_message(&input(&env, Original::Full(ORIGINAL), &outcomes));
    assert_eq!(dsn.kind, ReportKind::Failure);
    assert!(dsn.returned_full);
    assert!(!dsn.smtputf8);
    assert_eq!(dsn.body_type, BodyType::SevenBit);
    assert_eq!(
        build_dsn(&input(&env, Original::Full(ORIGINAL), &outcomes)),
        dsn.message,
        "deterministic"
    );
    check_wire_form(&dsn.message);
    let parsed = parse(&dsn.message);

    assert_eq!(parsed["defects"], json!([]));
    assert_eq!(parsed["content_type"], "multipart/report");
    assert_eq!(parsed["report_type"], "delivery-status");
    let h = &parsed["headers"];
    assert_eq!(
        names(h),
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "Auto-Submitted",
            "MIME-Version",
            "Content-Type"
        ]
    );
    let expected = [
        (
            "From",
            "Mail Delivery System <MAILER-DAEMON@mta.example.net>",
        ),
        // Python shows the address without its brackets; the raw field is checked below.
        ("To", "bounces+42@mail.example.com"),
        ("Subject", "Undelivered Mail Returned to Sender"),
        ("Date", "Thu, 26 Nov 2026 12:00:00 +0000"),
        (
            "Message-ID",
            "<1795694400000.0199ab12cd34ef560000aabbccddeeff@mta.example.net>",
        ),
        ("In-Reply-To", "<20261126.42@mail.example.com>"),
        ("References", "<20261126.42@mail.example.com>"),
        ("Auto-Submitted", "auto-replied"),
        ("MIME-Version", "1.0"),
    ];
    for (name, value) in expected {
        assert_eq!(header(h, name), Some(value), "{name}");
    }
    assert!(
        memchr::memmem::find(&dsn.message, b"\r\nTo: <bounces+42@mail.example.com>\r\n").is_some()
    );

    let parts = parsed["parts"].as_array().unwrap();
    let types: Vec<&str> = parts
        .iter()
        .map(|p| p["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["text/plain", "message/delivery-status", "message/rfc822"]
    );
    assert_eq!(parts[0]["charset"], "us-ascii");
    let text = parts[0]["text"].as_str().unwrap();
    assert!(
        text.contains("This is the mail system at host mta.example.net."),
        "{text}"
    );
    assert!(
        text.contains("<b@example.org>: delivery failed (5.1.1)"),
        "{text}"
    );
    assert!(text.contains("host mx.example.org said:"), "{text}");
    assert!(
        text.contains("550 5.1.1 Please try double-checking"),
        "{text}"
    );

    let blocks = parts[1]["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        blocks[0],
        json!([
            ["Reporting-MTA", "dns; mta.example.net"],
            ["Arrival-Date", "Thu, 26 Nov 2026 11:00:00 +0000"]
        ])
    );
    assert_eq!(
        blocks[1],
        json!([
            ["Final-Recipient", "rfc822; b@example.org"],
            ["Action", "failed"],
            ["Status", "5.1.1"],
            ["Remote-MTA", "dns; mx.example.org"],
            [
                "Diagnostic-Code",
                "smtp; 550-5.1.1 The email account that you tried to reach does not exist. \
                 550 5.1.1 Please try double-checking the recipient's address."
            ],
            ["Last-Attempt-Date", "Thu, 26 Nov 2026 11:59:00 +0000"]
        ])
    );

    assert_eq!(parts[2]["description"], "Undelivered Message");
    assert_eq!(
        header(&parts[2]["inner_headers"], "Subject"),
        Some("Your weekly digest")
    );
    assert_eq!(parts[2]["inner_body"], "Hello,\r\nthis is the digest.\r\n");
    // The original comes back byte for byte.
    assert!(
        memchr::memmem::find(&dsn.message, ORIGINAL).is_some(),
        "original returned unchanged"
    );
}

#[test]
fn several_recipients_in_one_report() {
    let env = envelope(&["a@example.org", "b@example.org", "c@example.net"]);
    let outcomes = [
        failed(
            "a@example.org",
            "5.1.1",
            "mx.example.org",
            "550 5.1.1 No such user",
        ),
        failed(
            "b@example.org",
            "5.2.2",
            "mx.example.org",
            "552 5.2.2 Mailbox full",
        ),
        RecipientOutcome {
            diagnostic: Some(Diagnostic::Mta(
                "Domain example.net does not exist (NXDOMAIN)".into(),
            )),
            ..RecipientOutcome::failed("c@example.net", code("5.1.2"))
        },
    ];
    let dsn = build_dsn(&input(&env, Original::Full(ORIGINAL), &outcomes));
    check_wire_form(&dsn);
    let parsed = parse(&dsn);
    assert_eq!(parsed["defects"], json!([]));
    let blocks = parsed["parts"][1]["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 4, "per-message block and three recipients");
    let table = [
        (
            "rfc822; a@example.org",
            "5.1.1",
            Some("dns; mx.example.org"),
            "smtp; 550 5.1.1 No such user",
        ),
        (
            "rfc822; b@example.org",
            "5.2.2",
            Some("dns; mx.example.org"),
            "smtp; 552 5.2.2 Mailbox full",
        ),
        (
            "rfc822; c@example.net",
            "5.1.2",
            None,
            "x-mta; Domain example.net does not exist (NXDOMAIN)",
        ),
    ];
    for (block, (recipient, status, remote, diagnostic)) in blocks[1..].iter().zip(table) {
        assert_eq!(header(block, "Final-Recipient"), Some(recipient));
        assert_eq!(header(block, "Action"), Some("failed"));
        assert_eq!(header(block, "Status"), Some(status));
        assert_eq!(header(block, "Remote-MTA"), remote, "{recipient}");
        assert_eq!(header(block, "Diagnostic-Code"), Some(diagnostic));
    }
    let text = parsed["parts"][0]["text"].as_str().unwrap();
    for address in ["<a@example.org>", "<b@example.org>", "<c@example.net>"] {
        assert!(text.contains(address), "{address} in {text}");
    }
}

#[test]
fn returned_content_follows_ret_and_the_size_limit() {
    let outcomes = [failed(
        "b@example.org",
        "5.1.1",
        "mx.example.org",
        "550 5.1.1 No",
    )];
    let headers_only = "From: News <news@mail.example.com>\r\nTo: b@example.org\r\n\
Subject: Your weekly digest\r\nMessage-ID: <20261126.42@mail.example.com>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n";
    // (RET, original given, return limit, expected part type)
    let table = [
        (None, true, DEFAULT_RETURN_LIMIT, "message/rfc822"),
        (
            Some(DsnRet::Full),
            true,
            DEFAULT_RETURN_LIMIT,
            "message/rfc822",
        ),
        (
            Some(DsnRet::Headers),
            true,
            DEFAULT_RETURN_LIMIT,
            "text/rfc822-headers",
        ),
        // Too large to return whole, even with RET=FULL.
        (Some(DsnRet::Full), true, 100, "text/rfc822-headers"),
        (None, true, 100, "text/rfc822-headers"),
        // Only the headers were read from the spool.
        (
            Some(DsnRet::Full),
            false,
            DEFAULT_RETURN_LIMIT,
            "text/rfc822-headers",
        ),
    ];
    for (ret, full, limit, expected) in table {
        let mut env = envelope(&["b@example.org"]);
        env.dsn.ret = ret;
        let original = if full {
            Original::Full(ORIGINAL)
        } else {
            Original::Headers(headers_only.as_bytes())
        };
        let mut dsn_input = input(&env, original, &outcomes);
        dsn_input.return_limit = limit;
        let dsn = build_dsn_message(&dsn_input);
        check_wire_form(&dsn.message);
        let parsed = parse(&dsn.message);
        assert_eq!(parsed["defects"], json!([]), "{ret:?} {full} {limit}");
        let part = &parsed["parts"][2];
        assert_eq!(part["content_type"], expected, "{ret:?} {full} {limit}");
        assert_eq!(dsn.returned_full, expected == "message/rfc822");
        if expected == "text/rfc822-headers" {
            assert_eq!(part["text"], headers_only, "{ret:?} {full} {limit}");
            assert_eq!(part["description"], "Undelivered Message Headers");
            let text = parsed["parts"][0]["text"].as_str().unwrap();
            assert!(text.contains("Its headers are attached below."));
        }
    }
}

#[test]
fn envid_and_orcpt_are_reported_decoded() {
    let mut env = envelope(&["b+filter@example.org"]);
    env.dsn.envid = Some("QQ314159+2Bcampaign+3D42".into());
    let outcomes = [RecipientOutcome {
        orcpt: Some("rfc822;b+2Bfilter@example.org".into()),
        ..failed(
            "b+filter@example.org",
            "5.1.1",
            "mx.example.org",
            "550 5.1.1 No",
        )
    }];
    let dsn = build_dsn(&input(&env, Original::Full(ORIGINAL), &outcomes));
    let parsed = parse(&dsn);
    let blocks = &parsed["parts"][1]["blocks"];
    assert_eq!(
        blocks[0],
        json!([
            ["Reporting-MTA", "dns; mta.example.net"],
            ["Original-Envelope-Id", "QQ314159+campaign=42"],
            ["Arrival-Date", "Thu, 26 Nov 2026 11:00:00 +0000"]
        ])
    );
    assert_eq!(
        names(&blocks[1])[..2],
        ["Original-Recipient", "Final-Recipient"]
    );
    assert_eq!(
        header(&blocks[1], "Original-Recipient"),
        Some("rfc822;b+filter@example.org")
    );
    assert_eq!(
        header(&blocks[1], "Final-Recipient"),
        Some("rfc822; b+filter@example.org")
    );
}

#[test]
fn delay_report() {
    let env = envelope(&["b@example.org"]);
    let outcomes = [RecipientOutcome {
        action: Action::Delayed,
        will_retry_until: Some(at(NOW + 4 * 86_400)),
        ..failed(
            "b@example.org",
            "4.4.1",
            "mx.example.org",
            "421 4.4.1 Connection timed out",
        )
    }];
    let dsn = build_dsn_message(&input(&env, Original::Full(ORIGINAL), &outcomes));
    assert_eq!(dsn.kind, ReportKind::Delay);
    assert!(!dsn.returned_full, "delay reports return headers only");
    check_wire_form(&dsn.message);
    let parsed = parse(&dsn.message);
    assert_eq!(parsed["defects"], json!([]));
    assert_eq!(
        header(&parsed["headers"], "Subject"),
        Some("Delivery Status Notification (Delay)")
    );
    let parts = &parsed["parts"];
    assert_eq!(parts[2]["content_type"], "text/rfc822-headers");
    let block = &parts[1]["blocks"][1];
    assert_eq!(
        *block,
        json!([
            ["Final-Recipient", "rfc822; b@example.org"],
            ["Action", "delayed"],
            ["Status", "4.4.1"],
            ["Remote-MTA", "dns; mx.example.org"],
            ["Diagnostic-Code", "smtp; 421 4.4.1 Connection timed out"],
            ["Last-Attempt-Date", "Thu, 26 Nov 2026 11:59:00 +0000"],
            ["Will-Retry-Until", "Mon, 30 Nov 2026 12:00:00 +0000"]
        ])
    );
    let text = parts[0]["text"].as_str().unwrap();
    assert!(text.contains("could not be delivered yet"), "{text}");
    assert!(
        text.contains("will retry until Mon, 30 Nov 2026 12:00:00 +0000"),
        "{text}"
    );
}

#[test]
fn success_report() {
    let env = envelope(&["b@example.org"]);
    let outcomes = [RecipientOutcome {
        action: Action::Delivered,
        ..failed(
            "b@example.org",
            "2.0.0",
            "mx.example.org",
            "250 2.0.0 OK queued",
        )
    }];
    let dsn = build_dsn_message(&input(&env, Original::Full(ORIGINAL), &outcomes));
    assert_eq!(dsn.kind, ReportKind::Success);
    let parsed = parse(&dsn.message);
    assert_eq!(
        header(&parsed["headers"], "Subject"),
        Some("Successful Mail Delivery Report")
    );
    assert_eq!(
        header(&parsed["parts"][1]["blocks"][1], "Action"),
        Some("delivered")
    );
    assert_eq!(parsed["parts"][2]["content_type"], "text/rfc822-headers");
}

#[test]
fn utf8_original_gets_a_global_report() {
    let original = "From: Ünïcode Sender <sénder@exämple.com>\r\n\
To: δοκιμή@παράδειγμα.δοκιμή\r\n\
Subject: Grüße aus Köln\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Schöne Grüße, καλημέρα.\r\n";
    let mut env = Envelope::new(
        "sénder@exämple.com",
        vec![Recipient::new("δοκιμή@παράδειγμα.δοκιμή")],
        (NOW - 60) * 1000,
    );
    env.smtputf8 = true;
    env.body_type = BodyType::EightBitMime;
    let outcomes = [RecipientOutcome {
        orcpt: Some("utf-8;δοκιμή@παράδειγμα.δοκιμή".into()),
        ..failed(
            "δοκιμή@παράδειγμα.δοκιμή",
            "5.1.1",
            "mx.xn--hxajbheg2az3al.xn--jxalpdlp",
            "550 5.1.1 Unknown user δοκιμή",
        )
    }];
    let dsn = build_dsn_message(&input(&env, Original::Full(original.as_bytes()), &outcomes));
    assert!(dsn.smtputf8);
    assert_eq!(dsn.body_type, BodyType::EightBitMime);
    check_wire_form(&dsn.message);
    let parsed = parse(&dsn.message);
    assert_eq!(parsed["defects"], json!([]));
    assert_eq!(parsed["report_type"], "global-delivery-status");
    assert_eq!(header(&parsed["headers"], "To"), Some("sénder@exämple.com"));
    let parts = parsed["parts"].as_array().unwrap();
    let types: Vec<&str> = parts
        .iter()
        .map(|p| p["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "text/plain",
            "message/global-delivery-status",
            "message/global"
        ]
    );
    assert_eq!(parts[0]["charset"], "utf-8");
    assert_eq!(parts[0]["cte"], "8bit");
    assert!(
        parts[0]["text"]
            .as_str()
            .unwrap()
            .contains("<δοκιμή@παράδειγμα.δοκιμή>")
    );
    let blocks = parts[1]["blocks"].as_array().unwrap();
    assert_eq!(
        header(&blocks[0], "Reporting-MTA"),
        Some("dns; mta.example.net")
    );
    assert_eq!(
        blocks[1],
        json!([
            ["Original-Recipient", "utf-8;δοκιμή@παράδειγμα.δοκιμή"],
            ["Final-Recipient", "utf-8; δοκιμή@παράδειγμα.δοκιμή"],
            ["Action", "failed"],
            ["Status", "5.1.1"],
            ["Remote-MTA", "dns; mx.xn--hxajbheg2az3al.xn--jxalpdlp"],
            ["Diagnostic-Code", "smtp; 550 5.1.1 Unknown user δοκιμή"],
            ["Last-Attempt-Date", "Thu, 26 Nov 2026 11:59:00 +0000"]
        ])
    );
    assert_eq!(parts[2]["cte"], "8bit");
    assert_eq!(
        header(&parts[2]["inner_headers"], "Subject"),
        Some("Grüße aus Köln")
    );
    assert_eq!(parts[2]["inner_body"], "Schöne Grüße, καλημέρα.\r\n");
}

#[test]
fn input_cannot_inject_fields_or_break_lines() {
    let env = envelope(&["b@example.org"]);
    let outcomes = [RecipientOutcome {
        remote_mta: Some("mx.example.org\r\nBcc: victim@example.com".into()),
        ..failed(
            "b@example.org\r\nX-Injected: yes",
            "5.7.1",
            "unused",
            "550 5.7.1 Rejected\rBcc: another@example.com\n\n\nStatus: 2.0.0",
        )
    }];
    let dsn = build_dsn(&input(&env, Original::Full(ORIGINAL), &outcomes));
    check_wire_form(&dsn);
    let parsed = parse(&dsn);
    let block = &parsed["parts"][1]["blocks"][1];
    assert_eq!(
        names(block),
        [
            "Final-Recipient",
            "Action",
            "Status",
            "Remote-MTA",
            "Diagnostic-Code",
            "Last-Attempt-Date"
        ]
    );
    assert_eq!(header(block, "Status"), Some("5.7.1"));
    assert_eq!(
        header(block, "Remote-MTA"),
        Some("dns; mx.example.org Bcc: victim@example.com")
    );
    assert!(header(&parsed["headers"], "Bcc").is_none());
}
