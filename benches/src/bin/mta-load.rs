//! `mta-load`: an SMTP load generator. Sends `--messages` messages over `--concurrency`
//! connections to `--server` and prints throughput and an accept-latency histogram.
//!
//! A command line over [`benches::load::LoadConfig`]; bounded by `--messages` and
//! `--max-seconds`. See `docs/load-tools.md`.

#![allow(clippy::print_stdout, reason = "a command-line tool prints its report")]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use benches::load::{LoadConfig, Weighted, run};
use clap::Parser;

/// An SMTP load generator.
#[derive(Debug, Parser)]
#[command(name = "mta-load", version)]
struct Args {
    /// The SMTP server to load.
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: SocketAddr,
    /// Messages to send in all.
    #[arg(long, default_value_t = 10_000)]
    messages: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Body size in octets, or a weighted list such as "4096:80,102400:20".
    #[arg(long, default_value = "4096")]
    size: Weighted<usize>,
    /// Recipients per message (all at one domain).
    #[arg(long, default_value_t = 1)]
    recipients: usize,
    /// Recipient domains, weighted: "gmail.test:60,yahoo.test:40".
    #[arg(long, default_value = "load.test")]
    domains: Weighted<String>,
    /// Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.
    #[arg(long)]
    pipelining: bool,
    /// Send bodies with BDAT when the server offers CHUNKING.
    #[arg(long)]
    chunking: bool,
    /// STARTTLS on every connection (the certificate is not checked).
    #[arg(long)]
    tls: bool,
    /// Messages per connection before QUIT and reconnecting.
    #[arg(long, default_value_t = 100)]
    messages_per_connection: u32,
    /// Start no new message after this many seconds.
    #[arg(long)]
    max_seconds: Option<f64>,
    /// Longest wait for any reply, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// EHLO name.
    #[arg(long, default_value = "load.example")]
    helo: String,
    /// Reverse-path (MAIL FROM).
    #[arg(long, default_value = "bounces@load.example")]
    from: String,
    /// Seed for the random choices (sizes, domains), for repeatable runs.
    #[arg(long)]
    seed: Option<u64>,
    /// Offered load, messages per second over all connections (open loop; latency counts
    /// from when each message was due). Without it: as fast as the connections go.
    #[arg(long)]
    rate: Option<f64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = LoadConfig {
        server: args.server,
        messages: args.messages,
        concurrency: args.concurrency,
        sizes: args.size.clone(),
        recipients: args.recipients,
        domains: args.domains.clone(),
        pipelining: args.pipelining,
        chunking: args.chunking,
        tls: args.tls,
        messages_per_connection: args.messages_per_connection,
        max_duration: args
            .max_seconds
            .map(|s| Duration::from_secs_f64(s.max(0.0))),
        timeout: Duration::from_secs(args.timeout.max(1)),
        helo: args.helo.clone(),
        mail_from: args.from.clone(),
        seed: args.seed,
        rate: args.rate,
    };
    println!(
        "mta-load: {} messages to {} over {} connections (size {}, {} rcpt, domains {}, \
         pipelining {}, chunking {}, tls {})",
        args.messages,
        args.server,
        args.concurrency,
        args.size,
        args.recipients,
        args.domains,
        args.pipelining,
        args.chunking,
        args.tls
    );
    match run(config).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("mta-load: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_parse() {
        Args::command().debug_assert();
        let args = Args::try_parse_from([
            "mta-load",
            "--size",
            "4096:80,102400:20",
            "--domains",
            "gmail.test:60,yahoo.test:40",
            "--pipelining",
        ])
        .unwrap();
        assert_eq!(args.size.items(), [4096, 102_400]);
        assert_eq!(args.domains.items(), ["gmail.test", "yahoo.test"]);
        assert!(args.pipelining && !args.tls);
        assert!(Args::try_parse_from(["mta-load", "--size", "big"]).is_err());
    }
}
