//! A small world for delivery tests: an authoritative DNS server with test zones, SMTP sinks
//! acting as MX hosts on 127.0.0.x (all on one port, as MX hosts share port 25), and the MTA
//! in-process, configured to use them.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use benches::dns::{Records, TestDns};
use benches::sink::{Sink, SinkConfig};
use mta_core::config::Config;
use mta_core::lifecycle::Running;
use queue::{MessageId, Spool};

use crate::common::{Client, queued_id};

pub struct World {
    pub dns: TestDns,
    /// The port every sink listens on (the MTA's `smtp_port`).
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub mta: Option<Running>,
}

impl World {
    /// DNS with `records`; no MTA yet.
    pub async fn new(records: Records) -> World {
        let dns = TestDns::start("127.0.0.1:0".parse().unwrap(), records)
            .await
            .expect("test DNS");
        let port = std::net::TcpListener::bind("127.0.0.2:0")
            .expect("bind 127.0.0.2")
            .local_addr()
            .unwrap()
            .port();
        World {
            dns,
            port,
            dir: tempfile::tempdir().unwrap(),
            mta: None,
        }
    }

    /// A sink on 127.0.0.`last`, on the world's port.
    pub async fn sink(&self, last: u8, mut config: SinkConfig) -> Sink {
        config.listen = SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), self.port));
        config.record_messages = true;
        Sink::start(config).await.expect("sink")
    }

    /// The configuration text: `extra` first (top-level keys, sections), then the world's
    /// own settings. `delivery` keys go inside `[delivery]`.
    pub fn config_text(&self, extra: &str, delivery: &str) -> String {
        // The world's fast retry and timeout settings, unless `delivery` sets its own.
        let defaults: String = [
            ("retry_initial", "\"1s\""),
            ("retry_max", "\"2s\""),
            ("idle_timeout", "\"1s\""),
            ("connect_timeout", "\"2s\""),
            ("command_timeout", "\"10s\""),
        ]
        .iter()
        .filter(|(key, _)| !delivery.contains(&format!("{key} =")))
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect();
        format!(
            "hostname = \"mta.test\"\n{extra}\n[spool]\npath = {:?}\n[[listener]]\naddress = \"127.0.0.1:0\"\n\
             [dns]\nnameservers = [\"{}\"]\ntimeout = \"2s\"\n\
             [delivery_log]\npath = {:?}\n[admin]\nsocket = {:?}\n\
             [delivery]\nsmtp_port = {}\n{defaults}{delivery}\n",
            self.dir.path().join("spool"),
            self.dns.addr(),
            self.log_path(),
            self.admin_socket(),
            self.port,
        )
    }

    /// Starts the MTA.
    pub async fn start(&mut self, extra: &str, delivery: &str) {
        let text = self.config_text(extra, delivery);
        let config = Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        self.mta = Some(
            mta_core::lifecycle::start(config, None)
                .await
                .expect("start mta"),
        );
    }

    /// Writes the configuration to a file and starts the MTA from it, so a reload re-reads
    /// that file; returns its path.
    pub async fn start_from_file(&mut self, extra: &str, delivery: &str) -> PathBuf {
        let path = self.dir.path().join("mta.toml");
        self.write_config(extra, delivery);
        let config = Config::from_file(&path).expect("config file");
        self.mta = Some(
            mta_core::lifecycle::start(config, Some(path.clone()))
                .await
                .expect("start mta"),
        );
        path
    }

    /// (Re)writes the configuration file `start_from_file` made.
    pub fn write_config(&self, extra: &str, delivery: &str) {
        let path = self.dir.path().join("mta.toml");
        std::fs::write(&path, self.config_text(extra, delivery)).expect("write config");
    }

    pub fn running(&self) -> &Running {
        self.mta.as_ref().expect("started")
    }

    /// A client that has said EHLO.
    pub async fn client(&self) -> Client {
        let mut c = Client::connect(self.running().addrs[0]).await;
        c.expect(220).await;
        c.cmd("EHLO injector.test", 250).await;
        c
    }

    /// Injects one message and returns its queue id.
    pub async fn send(&self, from: &str, to: &[&str], body: &str) -> MessageId {
        let mut c = self.client().await;
        let (code, text) = c.send_message(from, to, body.as_bytes()).await;
        assert_eq!(code, 250, "{text}");
        c.cmd("QUIT", 221).await;
        queued_id(&text)
    }

    pub fn admin_socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("log").join("delivery.jsonl")
    }

    /// The delivery log's records so far (a last line still being written is left out).
    pub fn log(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        complete
            .lines()
            .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
            .collect()
    }

    /// Waits (bounded) until the log has a record matching `predicate`; returns all records.
    pub async fn wait_log(
        &self,
        what: &str,
        predicate: impl Fn(&serde_json::Value) -> bool,
    ) -> Vec<serde_json::Value> {
        for _ in 0..300 {
            let log = self.log();
            if log.iter().any(&predicate) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no log record: {what}\n{:#?}", self.log());
    }

    /// Waits (bounded) until the message is gone from the spool (all recipients final).
    pub async fn wait_removed(&self, id: MessageId) {
        for _ in 0..300 {
            if self.running().spool.envelope(id).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "message {id} still in the spool: {:?}",
            self.running().spool.envelope(id)
        );
    }

    pub async fn stop(mut self) {
        if let Some(mta) = self.mta.take() {
            mta.stop().await.expect("stop");
        }
        self.dns.stop().await;
    }
}

/// Records where `kind` happened to `recipient`.
pub fn events<'a>(
    log: &'a [serde_json::Value],
    kind: &str,
    recipient: &str,
) -> Vec<&'a serde_json::Value> {
    log.iter()
        .filter(|r| r["type"] == kind && r["recipient"] == recipient)
        .collect()
}
