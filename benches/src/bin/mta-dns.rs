//! `mta-dns`: a small authoritative DNS server for load and scale tests. Serves the MX, A,
//! AAAA and TXT records of a records file over UDP and TCP on one port, so the MTA under test
//! can resolve many destination domains without a real DNS setup.
//!
//! A command line over [`benches::dns::TestDns`]; runs until SIGINT/SIGTERM or
//! `--max-seconds`. See `docs/load-tools.md`.
//!
//! Records file, one record per line (`#` starts a comment):
//!
//! ```text
//! d0001.scale.test     MX   10 mx.d0001.scale.test
//! mx.d0001.scale.test  A    127.0.0.1
//! nomail.scale.test    MX   0 .
//! sel._domainkey.x     TXT  v=DKIM1; k=ed25519; p=...
//! ```

#![allow(clippy::print_stdout, reason = "a command-line tool prints its report")]
#![allow(clippy::print_stderr, reason = "a command-line tool reports errors")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use benches::dns::{Records, TestDns};
use clap::Parser;

/// An authoritative DNS server serving a records file.
#[derive(Debug, Parser)]
#[command(name = "mta-dns", version)]
struct Args {
    /// Address to serve on (UDP and TCP).
    #[arg(long, default_value = "127.0.0.1:5353")]
    listen: SocketAddr,
    /// The records file.
    #[arg(long)]
    records: PathBuf,
    /// TTL of every record, in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u32,
    /// Stop after this many seconds.
    #[arg(long)]
    max_seconds: Option<f64>,
}

/// Parses the records file; errors name the line.
fn parse_records(text: &str, ttl: u32) -> Result<(Records, usize), String> {
    let mut records = Records::new();
    records.ttl(ttl);
    let mut count = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |what: &str| format!("line {}: {what}: {raw:?}", index + 1);
        let mut fields = line.splitn(3, char::is_whitespace);
        let name = fields.next().unwrap_or("");
        let kind = fields.next().ok_or_else(|| at("no record type"))?;
        let data = fields.next().map(str::trim).unwrap_or("");
        if data.is_empty() {
            return Err(at("no record data"));
        }
        match kind.to_ascii_uppercase().as_str() {
            "MX" => {
                let (preference, exchange) = data
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| at("MX needs a preference and a host"))?;
                let preference = preference
                    .parse::<u16>()
                    .map_err(|_| at("MX preference is not a number 0..65535"))?;
                records.mx(name, preference, exchange.trim());
            }
            "A" => {
                let address = data.parse().map_err(|_| at("not an IPv4 address"))?;
                records.a(name, address);
            }
            "AAAA" => {
                let address = data.parse().map_err(|_| at("not an IPv6 address"))?;
                records.aaaa(name, address);
            }
            "TXT" => {
                records.txt(name, data);
            }
            _ => return Err(at("record type must be MX, A, AAAA or TXT")),
        }
        count += 1;
    }
    Ok((records, count))
}

async fn stop_signal(max_seconds: Option<f64>) {
    let deadline = async {
        match max_seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs_f64(s.max(0.0))).await,
            None => std::future::pending().await,
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = deadline => {}
        () = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let text = match std::fs::read_to_string(&args.records) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("mta-dns: cannot read {}: {e}", args.records.display());
            return ExitCode::FAILURE;
        }
    };
    let (records, count) = match parse_records(&text, args.ttl) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("mta-dns: {}: {e}", args.records.display());
            return ExitCode::FAILURE;
        }
    };
    let dns = match TestDns::start(args.listen, records).await {
        Ok(dns) => dns,
        Err(e) => {
            eprintln!("mta-dns: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "mta-dns: serving {count} records on {} (UDP and TCP)",
        dns.addr()
    );
    stop_signal(args.max_seconds).await;
    dns.stop().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_record_type_and_skips_comments() {
        let text = "# sites\n\
                    d1.test MX 10 mx.d1.test   # primary\n\
                    mx.d1.test A 127.0.0.1\n\
                    \n\
                    mx.d1.test AAAA ::1\n\
                    nomail.test MX 0 .\n\
                    s._domainkey.d1.test TXT v=DKIM1; k=ed25519; p=abc\n";
        let (_, count) = parse_records(text, 60).unwrap();
        assert_eq!(count, 5);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, want) in [
            ("d.test MX ten mx.d.test", "line 1: MX preference"),
            ("\nd.test A 127.0.0.300", "line 2: not an IPv4"),
            ("d.test CNAME x.test", "line 1: record type"),
            ("d.test MX", "line 1: no record data"),
            ("d.test", "line 1: no record type"),
            ("d.test MX 10", "line 1: MX needs"),
        ] {
            let err = parse_records(text, 60).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
