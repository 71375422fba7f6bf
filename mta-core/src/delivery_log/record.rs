//! One delivery-log record: an event in a message's life, serialised as one JSON object.
//!
//! Invariants of the JSON form (what analytics and ipwarm rely on):
//! - keys appear in the order of the fields below, and a field that is `None` is absent
//!   (never `null`);
//! - `type` and `timestamp` are always present; `timestamp` is RFC 3339, UTC, milliseconds
//!   (`2026-11-26T12:00:00.000Z`);
//! - `recipient` is a string (one recipient per delivery event), `recipients` a list (only
//!   in `Reception` records);
//! - `queue_time` is seconds since reception, with millisecond precision.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RecordType {
    /// A message was accepted and spooled (one record per message, all recipients).
    Reception,
    /// A recipient was accepted by the next hop (2xx after DATA).
    Delivery,
    /// An attempt failed temporarily (4xx, connection or DNS trouble); it will be retried.
    TransientFailure,
    /// A recipient failed permanently (5xx, null MX, NXDOMAIN, suppression).
    Bounce,
    /// A recipient was still failing temporarily when the message reached its maximum age.
    Expiration,
    /// An operator acted on the message through the admin API (bounce, delete, suspend...).
    AdminAction,
}

/// One event. Build with [`Record::new`] and set the fields that apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// When it happened.
    #[serde(serialize_with = "rfc3339_millis")]
    pub timestamp: SystemTime,
    /// The spool id of the message (32 hex digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The envelope sender (`""` for a bounce).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The recipient this event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Every recipient of the message (`Reception` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipients: Option<Vec<String>>,
    /// The customer the message belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The campaign the message is part of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// The egress pool it was sent from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// The egress source (its name in the pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The egress source's IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The destination site (sorted MX host names, see `dns::site_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The mailbox provider the site belongs to (`gmail`, `yahoo`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The MX host talked to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mx_host: Option<String>,
    /// The MX host's IP address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mx_ip: Option<IpAddr>,
    /// TLS version and cipher of the connection, when TLS was used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// The SMTP reply code (`250`, `421`, `550`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_code: Option<u16>,
    /// The enhanced status code (`5.1.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enhanced_code: Option<String>,
    /// The reply text (lines of a multi-line reply joined by `\n`), or our own explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_text: Option<String>,
    /// Which delivery attempt this was for the recipient (1 for the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Time since reception.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "seconds_millis"
    )]
    pub queue_time: Option<Duration>,
    /// Message size in octets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The reply's classification (filled by ipwarm: `delivered`, `rate_limited`,
    /// `blocked`, `bad_recipient`...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// For `AdminAction`: what was done, to what, how much and by whom, starting with the
    /// verb (`bounce tenant=acme without DSNs (3 messages, 3 recipients) via ...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

impl Record {
    /// A record of `kind` at `timestamp`, every other field absent.
    pub fn new(kind: RecordType, timestamp: SystemTime) -> Record {
        Record {
            kind,
            timestamp,
            message_id: None,
            sender: None,
            recipient: None,
            recipients: None,
            tenant: None,
            campaign: None,
            pool: None,
            source: None,
            source_ip: None,
            site: None,
            provider: None,
            mx_host: None,
            mx_ip: None,
            tls: None,
            reply_code: None,
            enhanced_code: None,
            reply_text: None,
            attempt: None,
            queue_time: None,
            size: None,
            class: None,
            action: None,
        }
    }

    /// The record as one line of JSON, without the newline.
    pub fn to_json(&self) -> String {
        // Serialising this struct cannot fail: every field is a string, number, list of
        // strings or a value with an infallible Serialize.
        serde_json::to_string(self).expect("a delivery log record always serialises")
    }
}

/// Latest time humantime can print (9999-12-31T23:59:59.999Z).
const MAX_PRINTABLE: Duration = Duration::from_millis(253_402_300_799_999);

fn rfc3339_millis<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .min(MAX_PRINTABLE);
    s.collect_str(&humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch))
}

fn seconds_millis<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        // Whole milliseconds, shown as seconds: 1234 ms -> 1.234.
        Some(d) => s.serialize_f64(d.as_millis() as f64 / 1000.0),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// 2026-11-26T12:00:00.123Z
    const T: u64 = 1_795_694_400_123;

    #[test]
    fn records_serialise_exactly() {
        let reception = Record {
            message_id: Some("0199ab12cd34ef560000aabbccddeeff".into()),
            sender: Some("bounces+42@mail.example.com".into()),
            recipients: Some(vec!["a@example.org".into(), "b@example.net".into()]),
            tenant: Some("acme".into()),
            campaign: Some("weekly-42".into()),
            pool: Some("shared".into()),
            size: Some(4096),
            ..Record::new(RecordType::Reception, at(T))
        };
        let delivery = Record {
            message_id: Some("0199ab12cd34ef560000aabbccddeeff".into()),
            sender: Some("bounces+42@mail.example.com".into()),
            recipient: Some("a@example.org".into()),
            tenant: Some("acme".into()),
            pool: Some("shared".into()),
            source: Some("ip-1".into()),
            source_ip: Some("192.0.2.10".parse().unwrap()),
            site: Some("alt1.aspmx.l.google.com,aspmx.l.google.com".into()),
            provider: Some("gmail".into()),
            mx_host: Some("aspmx.l.google.com".into()),
            mx_ip: Some("2001:db8::25".parse().unwrap()),
            reply_code: Some(250),
            enhanced_code: Some("2.0.0".into()),
            reply_text: Some("OK 1700000000 x1si".into()),
            attempt: Some(1),
            queue_time: Some(Duration::from_millis(1_234)),
            size: Some(4096),
            class: Some("delivered".into()),
            ..Record::new(RecordType::Delivery, at(T))
        };
        let transient = Record {
            recipient: Some("b@example.net".into()),
            reply_code: Some(421),
            enhanced_code: Some("4.7.0".into()),
            reply_text: Some("Try again later\n\"too many\" connections".into()),
            attempt: Some(3),
            queue_time: Some(Duration::from_secs(3600)),
            ..Record::new(RecordType::TransientFailure, at(T))
        };
        let bounce = Record {
            recipient: Some("c@example.com".into()),
            enhanced_code: Some("5.1.10".into()),
            reply_text: Some("null MX".into()),
            ..Record::new(RecordType::Bounce, at(T))
        };
        let expiration = Record {
            recipient: Some("d@example.com".into()),
            queue_time: Some(Duration::from_secs(5 * 86_400)),
            ..Record::new(RecordType::Expiration, at(T))
        };
        let admin = Record {
            message_id: Some("0199ab12cd34ef560000aabbccddeeff".into()),
            action: Some("bounce".into()),
            ..Record::new(RecordType::AdminAction, at(T))
        };
        let table = [
            (
                reception,
                r#"{"type":"Reception","timestamp":"2026-11-26T12:00:00.123Z","message_id":"0199ab12cd34ef560000aabbccddeeff","sender":"bounces+42@mail.example.com","recipients":["a@example.org","b@example.net"],"tenant":"acme","campaign":"weekly-42","pool":"shared","size":4096}"#,
            ),
            (
                delivery,
                r#"{"type":"Delivery","timestamp":"2026-11-26T12:00:00.123Z","message_id":"0199ab12cd34ef560000aabbccddeeff","sender":"bounces+42@mail.example.com","recipient":"a@example.org","tenant":"acme","pool":"shared","source":"ip-1","source_ip":"192.0.2.10","site":"alt1.aspmx.l.google.com,aspmx.l.google.com","provider":"gmail","mx_host":"aspmx.l.google.com","mx_ip":"2001:db8::25","reply_code":250,"enhanced_code":"2.0.0","reply_text":"OK 1700000000 x1si","attempt":1,"queue_time":1.234,"size":4096,"class":"delivered"}"#,
            ),
            (
                transient,
                r#"{"type":"TransientFailure","timestamp":"2026-11-26T12:00:00.123Z","recipient":"b@example.net","reply_code":421,"enhanced_code":"4.7.0","reply_text":"Try again later\n\"too many\" connections","attempt":3,"queue_time":3600.0}"#,
            ),
            (
                bounce,
                r#"{"type":"Bounce","timestamp":"2026-11-26T12:00:00.123Z","recipient":"c@example.com","enhanced_code":"5.1.10","reply_text":"null MX"}"#,
            ),
            (
                expiration,
                r#"{"type":"Expiration","timestamp":"2026-11-26T12:00:00.123Z","recipient":"d@example.com","queue_time":432000.0}"#,
            ),
            (
                admin,
                r#"{"type":"AdminAction","timestamp":"2026-11-26T12:00:00.123Z","message_id":"0199ab12cd34ef560000aabbccddeeff","action":"bounce"}"#,
            ),
        ];
        for (record, json) in table {
            assert_eq!(record.to_json(), json, "{:?}", record.kind);
            // One line, whatever the reply text holds.
            assert!(!record.to_json().contains('\n'));
        }
    }

    #[test]
    fn timestamps_out_of_range_are_clamped() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        let record = Record::new(RecordType::Bounce, before);
        assert_eq!(
            record.to_json(),
            r#"{"type":"Bounce","timestamp":"1970-01-01T00:00:00.000Z"}"#
        );
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        let record = Record::new(RecordType::Bounce, far);
        assert_eq!(
            record.to_json(),
            r#"{"type":"Bounce","timestamp":"9999-12-31T23:59:59.999Z"}"#
        );
    }
}
