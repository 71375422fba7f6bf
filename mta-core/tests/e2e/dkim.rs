//! DKIM end to end: a message relayed through the MTA arrives at the sink with signatures
//! that an independent verifier (Python's dkimpy) accepts, RSA and Ed25519 together.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use benches::dns::Records;
use benches::sink::SinkConfig;

use crate::world::World;

/// Verifies every DKIM-Signature of `message` with dkimpy, answering DNS from `records`
/// (name → TXT value). Returns dkimpy's verdict per signature.
fn dkimpy_verify(message: &[u8], records: &[(String, String)]) -> Vec<bool> {
    let script = r#"
import dkim, json, sys
records = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    value = records.get(name.rstrip("."))
    return value.encode() if value else None
message = sys.stdin.buffer.read()
count = sum(1 for line in message.split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))
def verify(i):
    # A fresh verifier per signature: dkimpy's DKIM object keeps state between verify calls.
    try:
        return bool(dkim.DKIM(message).verify(idx=i, dnsfunc=dnsfunc))
    except dkim.ValidationError:
        return False  # e.g. a body hash mismatch
print(json.dumps([verify(i) for i in range(count)]))
"#;
    let records: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let mut child = Command::new("python3")
        .args([
            "-c",
            script,
            &serde_json::Value::Object(records).to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with dkimpy (scripts/test installs it)");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dkimpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_messages_carry_signatures_dkimpy_verifies() {
    let mut r = Records::new();
    r.mx("dest.test", 10, "mx.dest.test")
        .a("mx.dest.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let sink = world.sink(2, SinkConfig::default()).await;
    // Two keys for the sender's domain (dual signing) and one for the tenant.
    let mut records = Vec::new();
    let mut config = String::new();
    for (domain, selector, algorithm, tenant) in [
        ("sender.test", "rsa2026", "rsa-2048", None),
        ("sender.test", "ed2026", "ed25519", None),
        ("esp.test", "t1", "ed25519", Some("acme")),
    ] {
        let key = dkim::generate_key(algorithm.parse().unwrap()).unwrap();
        let path = world.dir.path().join(format!("{domain}.{selector}.pem"));
        key.write_pem(&path).unwrap();
        records.push((
            format!("{selector}._domainkey.{domain}"),
            key.dns_txt.value().to_owned(),
        ));
        config.push_str(&format!(
            "[[dkim]]\ndomain = \"{domain}\"\nselector = \"{selector}\"\nkey = {path:?}\n"
        ));
        if let Some(tenant) = tenant {
            config.push_str(&format!("tenant = \"{tenant}\"\n"));
        }
    }
    world.start(&config, "").await;
    let messages: [(&str, &str); 3] = [
        (
            "plain",
            "From: News <news@sender.test>\r\nTo: a@dest.test\r\nSubject: plain\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <1@sender.test>\r\n\r\nHello.\r\n",
        ),
        (
            "folded, 8-bit, trailing blank lines, tenant",
            "From: \"Caf\u{e9}\" <news@sender.test>\r\nTo: a@dest.test,\r\n  b@dest.test\r\nSubject: a folded\r\n  subject line\r\nX-MTA-Tenant: acme\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCaf\u{e9} cr\u{e8}me \u{e0} 8 bits.\r\n   \r\n\r\n",
        ),
        (
            "empty body",
            "From: news@sender.test\r\nTo: a@dest.test\r\nSubject: empty\r\n\r\n",
        ),
    ];
    for (i, (what, body)) in messages.iter().enumerate() {
        world
            .send("bounces@sender.test", &["a@dest.test"], body)
            .await;
        let got = sink
            .wait_for_messages(i + 1, Duration::from_secs(20))
            .await
            .unwrap();
        let delivered = &got[i].body;
        let text = String::from_utf8_lossy(delivered);
        assert!(text.starts_with("DKIM-Signature:"), "{what}: {text}");
        let verdicts = dkimpy_verify(delivered, &records);
        let expected = if what.contains("tenant") { 3 } else { 2 };
        assert_eq!(
            verdicts.len(),
            expected,
            "{what}: signatures {verdicts:?}\n{text}"
        );
        assert!(
            verdicts.iter().all(|&ok| ok),
            "{what}: dkimpy rejected a signature {verdicts:?}\n{text}"
        );
    }
    // Tampering is caught: the same check fails once the body changes.
    let got = sink.messages();
    let mut tampered = got[0].body.clone();
    let at = tampered.len() - 4;
    tampered[at] = b'!';
    let verdicts = dkimpy_verify(&tampered, &records);
    assert!(
        verdicts.len() == 2 && verdicts.iter().all(|&ok| !ok),
        "a changed body still verified (or its signatures were not found): {verdicts:?}"
    );
    world.stop().await;
}

#[test]
fn keygen_writes_a_key_and_dns_prints_its_record() {
    use crate::common::mta_binary;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("example.com.s2026.pem");
    for algorithm in ["ed25519", "rsa-2048"] {
        let _ = std::fs::remove_file(&key);
        let out = Command::new(mta_binary())
            .args([
                "dkim",
                "keygen",
                "--domain",
                "example.com",
                "--selector",
                "s2026",
                "--algorithm",
                algorithm,
                "--out",
            ])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let record = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            record.starts_with("s2026._domainkey.example.com."),
            "{record}"
        );
        let k = if algorithm == "ed25519" {
            "k=ed25519"
        } else {
            "k=rsa"
        };
        assert!(record.contains("v=DKIM1") && record.contains(k), "{record}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The same record from the configuration.
        let config = dir.path().join("mta.toml");
        std::fs::write(
            &config,
            "[[dkim]]\ndomain = \"example.com\"\nselector = \"s2026\"\nkey = \"example.com.s2026.pem\"\n",
        )
        .unwrap();
        let out = Command::new(mta_binary())
            .args(["dkim", "dns", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), record);
    }
    // Never overwrites an existing key.
    let out = Command::new(mta_binary())
        .args([
            "dkim",
            "keygen",
            "--domain",
            "example.com",
            "--selector",
            "s2026",
            "--out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
}
