//! `mta-sink`: an SMTP sink that behaves like an ISP's MX, for load runs and manual tests.
//!
//! A command line over [`benches::sink::SinkConfig`]: it listens, prints its counters every
//! `--report-every` seconds and once more at the end, and ends on SIGINT/SIGTERM, after
//! `--max-seconds`, or once `--max-messages` messages were accepted. See
//! `docs/load-tools.md`.

#![allow(clippy::print_stdout, reason = "a command-line tool prints its report")]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use benches::sink::{
    BareLineEnds, BlockRule, GreetingRefusal, LimitScope, RateLimit, ReplySpec, Rule, Select, Sink,
    SinkConfig, SinkCounters, Stage, ThrottleAt,
};
use clap::{Parser, ValueEnum};
use smtp_proto::Extensions;
use tokio::time::Instant;

/// How often the end conditions are checked.
const POLL: Duration = Duration::from_millis(50);

/// An SMTP sink that acts like an ISP's MX.
#[derive(Debug, Parser)]
#[command(name = "mta-sink", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:2525")]
    listen: SocketAddr,
    /// Name in the greeting and the EHLO reply (and the TLS certificate).
    #[arg(long, default_value = "mx.sink.test")]
    hostname: String,
    /// Offer STARTTLS with a self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// Do not offer PIPELINING.
    #[arg(long)]
    no_pipelining: bool,
    /// Do not offer CHUNKING (BDAT is then refused).
    #[arg(long)]
    no_chunking: bool,
    /// Do not offer 8BITMIME (BODY=8BITMIME is then refused).
    #[arg(long)]
    no_8bitmime: bool,
    /// Do not offer SMTPUTF8.
    #[arg(long)]
    no_smtputf8: bool,
    /// Do not offer ENHANCEDSTATUSCODES (replies then carry none).
    #[arg(long)]
    no_enhanced_status_codes: bool,
    /// Largest message accepted, in octets (advertised with SIZE).
    #[arg(long, default_value_t = benches::sink::config::DEFAULT_MAX_MESSAGE_SIZE)]
    size_limit: u64,
    /// Most concurrent sessions; more get 421 4.3.2.
    #[arg(long, default_value_t = benches::sink::config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Most recipients per transaction; more get 452 4.5.3.
    #[arg(long, default_value_t = benches::sink::config::DEFAULT_MAX_RECIPIENTS)]
    max_recipients: usize,
    /// Seconds without input before a session is closed with 421 4.4.2.
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Defer this fraction (0..=1) of recipients (or of messages, with --rules-at data).
    #[arg(long, default_value_t = 0.0)]
    defer_fraction: f64,
    /// Defer the first N attempts of every recipient (greylisting).
    #[arg(long)]
    defer_first: Option<u32>,
    /// Reply for deferrals.
    #[arg(long, default_value = "451 4.7.1 Try again later")]
    defer_reply: ReplySpec,
    /// Bounce this fraction (0..=1) of recipients (or of messages, with --rules-at data).
    #[arg(long, default_value_t = 0.0)]
    bounce_fraction: f64,
    /// Bounce recipients with this local part (repeatable).
    #[arg(long)]
    bounce_local_part: Vec<String>,
    /// Reply for bounces.
    #[arg(
        long,
        default_value = "550 5.1.1 The email account that you tried to reach does not exist"
    )]
    bounce_reply: ReplySpec,
    /// Where the fraction rules apply: at each RCPT, or at the end of each message.
    #[arg(long, value_enum, default_value_t = RulesAt::Rcpt)]
    rules_at: RulesAt,
    /// Hidden rate limit: messages per second (GCRA) before throttling.
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Messages allowed back to back under the rate limit [default: the rate, rounded up].
    #[arg(long)]
    rate_burst: Option<u32>,
    /// Whose messages the rate limit counts together.
    #[arg(long, value_enum, default_value_t = Scope::Global)]
    rate_scope: Scope,
    /// Where throttled transactions are refused.
    #[arg(long, value_enum, default_value_t = At::Rcpt)]
    throttle_at: At,
    /// Throttle reply [default: Gmail-style 421 4.7.28 ... unusual rate ...].
    #[arg(long)]
    throttle_reply: Option<ReplySpec>,
    /// Keep the connection open after a throttle reply (default: close it).
    #[arg(long)]
    throttle_keep_open: bool,
    /// Block a client throttled more than K times within --block-window.
    #[arg(long)]
    block_after: Option<u32>,
    /// Window for counting throttled transactions, in seconds.
    #[arg(long, default_value_t = 60)]
    block_window: u64,
    /// How long a block lasts, in seconds.
    #[arg(long, default_value_t = 300)]
    block_for: u64,
    /// Refuse this fraction (0..=1) of connections at the greeting with 421.
    #[arg(long, default_value_t = 0.0)]
    greeting_421_fraction: f64,
    /// Delay before each command's reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Extra delay before the reply to the end of a message, in milliseconds.
    #[arg(long, default_value_t = 0)]
    data_delay_ms: u64,
    /// Accept bare CR/LF in message bodies (default: refuse with 550 5.5.2).
    #[arg(long)]
    accept_bare_lf: bool,
    /// Seed for the random choices, for repeatable runs.
    #[arg(long)]
    seed: Option<u64>,
    /// Print the counters every this many seconds (0: only at the end).
    #[arg(long, default_value_t = 1.0)]
    report_every: f64,
    /// Stop after this many seconds.
    #[arg(long)]
    max_seconds: Option<f64>,
    /// Stop once this many messages were accepted.
    #[arg(long)]
    max_messages: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RulesAt {
    Rcpt,
    Data,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Scope {
    Global,
    Ip,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum At {
    Mail,
    Rcpt,
    Data,
}

fn config(args: &Args) -> SinkConfig {
    let mut extensions = SinkConfig::default().extensions;
    for (off, ext) in [
        (args.no_pipelining, Extensions::PIPELINING),
        (args.no_chunking, Extensions::CHUNKING),
        (args.no_8bitmime, Extensions::EIGHT_BIT_MIME),
        (args.no_smtputf8, Extensions::SMTPUTF8),
        (
            args.no_enhanced_status_codes,
            Extensions::ENHANCED_STATUS_CODES,
        ),
    ] {
        if off {
            extensions.remove(ext);
        }
    }
    if args.tls {
        extensions.insert(Extensions::STARTTLS);
    }
    let stage = match args.rules_at {
        RulesAt::Rcpt => Stage::Rcpt,
        RulesAt::Data => Stage::Data,
    };
    let mut rules = Vec::new();
    if !args.bounce_local_part.is_empty() {
        rules.push(Rule {
            stage: Stage::Rcpt,
            select: Select::LocalParts(args.bounce_local_part.clone()),
            reply: args.bounce_reply.clone(),
        });
    }
    if let Some(n) = args.defer_first {
        rules.push(Rule {
            stage: Stage::Rcpt,
            select: Select::FirstAttempts(n),
            reply: args.defer_reply.clone(),
        });
    }
    if args.bounce_fraction > 0.0 {
        rules.push(Rule {
            stage,
            select: Select::Fraction(args.bounce_fraction),
            reply: args.bounce_reply.clone(),
        });
    }
    if args.defer_fraction > 0.0 {
        // Deferrals apply to what the bounce fraction left, so the two fractions add up.
        let fraction = (args.defer_fraction / (1.0 - args.bounce_fraction.min(0.999_999))).min(1.0);
        rules.push(Rule {
            stage,
            select: Select::Fraction(fraction),
            reply: args.defer_reply.clone(),
        });
    }
    let rate_limit = args.rate_limit.map(|per_second| {
        let default = RateLimit::per_second(per_second);
        RateLimit {
            burst: args.rate_burst.unwrap_or(default.burst),
            scope: match args.rate_scope {
                Scope::Global => LimitScope::Global,
                Scope::Ip => LimitScope::ClientIp,
            },
            at: match args.throttle_at {
                At::Mail => ThrottleAt::Mail,
                At::Rcpt => ThrottleAt::Rcpt,
                At::Data => ThrottleAt::Data,
            },
            reply: args.throttle_reply.clone().unwrap_or(default.reply.clone()),
            close: !args.throttle_keep_open,
            ..default
        }
    });
    let block = args.block_after.map(|after| BlockRule {
        window: Duration::from_secs(args.block_window),
        ..BlockRule::after(after, Duration::from_secs(args.block_for))
    });
    let greeting_refusal = (args.greeting_421_fraction > 0.0).then(|| GreetingRefusal {
        fraction: args.greeting_421_fraction,
        reply: ReplySpec::default_greeting_refusal(),
    });
    SinkConfig {
        listen: args.listen,
        hostname: args.hostname.clone(),
        extensions,
        max_message_size: args.size_limit,
        max_recipients: args.max_recipients,
        max_connections: args.max_connections,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        rules,
        rate_limit,
        block,
        greeting_refusal,
        command_delay: Duration::from_millis(args.delay_ms),
        data_delay: Duration::from_millis(args.data_delay_ms),
        bare_line_ends: if args.accept_bare_lf {
            BareLineEnds::Accept
        } else {
            BareLineEnds::Reject
        },
        seed: args.seed,
        ..SinkConfig::default()
    }
}

/// One report line: time since start, accepted messages per second since the last report
/// and overall, then every counter.
fn report(started: Instant, last: &mut (Instant, u64), counters: &SinkCounters) {
    let now = Instant::now();
    let interval = now.duration_since(last.0).as_secs_f64();
    let total = now.duration_since(started).as_secs_f64();
    let recent = counters.messages_accepted - last.1;
    let rate = if interval > 0.0 {
        recent as f64 / interval
    } else {
        0.0
    };
    let average = if total > 0.0 {
        counters.messages_accepted as f64 / total
    } else {
        0.0
    };
    println!("[{total:8.1} s] {rate:8.0} msg/s (avg {average:.0}) | {counters}");
    *last = (now, counters.messages_accepted);
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let sink = match Sink::start(config(&args)).await {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("mta-sink: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("mta-sink listening on {}", sink.addr());
    let started = Instant::now();
    let deadline = args
        .max_seconds
        .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
    let every = (args.report_every > 0.0).then(|| Duration::from_secs_f64(args.report_every));
    let mut next_report = every.map(|e| started + e);
    let mut last = (started, 0u64);
    let stats = sink.stats();
    let signal = terminated();
    tokio::pin!(signal);
    let why = loop {
        tokio::select! {
            _ = &mut signal => break "signal",
            _ = tokio::time::sleep(POLL) => {}
        }
        let now = Instant::now();
        let counters = stats.snapshot();
        if let (Some(at), Some(every)) = (next_report, every)
            && now >= at
        {
            report(started, &mut last, &counters);
            next_report = Some(at + every);
        }
        if deadline.is_some_and(|d| now >= d) {
            break "max-seconds";
        }
        if args
            .max_messages
            .is_some_and(|max| counters.messages_accepted >= max)
        {
            break "max-messages";
        }
    };
    let counters = stats.snapshot();
    sink.stop().await;
    report(started, &mut last, &counters);
    println!("mta-sink stopped ({why})");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_map_to_the_sink_configuration() {
        Args::command().debug_assert();
        let args = Args::try_parse_from([
            "mta-sink",
            "--listen",
            "127.0.0.2:0",
            "--tls",
            "--no-chunking",
            "--defer-fraction",
            "0.2",
            "--bounce-fraction",
            "0.5",
            "--bounce-local-part",
            "nouser",
            "--rules-at",
            "data",
            "--rate-limit",
            "50",
            "--throttle-at",
            "mail",
            "--block-after",
            "3",
            "--block-for",
            "10",
            "--defer-reply",
            "451 4.7.1 try later",
        ])
        .unwrap();
        let config = config(&args);
        assert_eq!(config.validate(), Ok(()));
        assert!(config.extensions.contains(Extensions::STARTTLS));
        assert!(!config.extensions.contains(Extensions::CHUNKING));
        let selects: Vec<(Stage, Select)> = config
            .rules
            .iter()
            .map(|r| (r.stage, r.select.clone()))
            .collect();
        // Deferring 0.2 of all after bouncing 0.5 means 0.4 of what is left.
        assert_eq!(
            selects,
            [
                (Stage::Rcpt, Select::LocalParts(vec!["nouser".into()])),
                (Stage::Data, Select::Fraction(0.5)),
                (Stage::Data, Select::Fraction(0.4)),
            ]
        );
        assert_eq!(config.rules[2].reply.to_string(), "451 4.7.1 try later");
        let limit = config.rate_limit.unwrap();
        assert_eq!(
            (limit.per_second, limit.burst, limit.at),
            (50.0, 50, ThrottleAt::Mail)
        );
        assert!(limit.close);
        let block = config.block.unwrap();
        assert_eq!((block.after, block.duration), (3, Duration::from_secs(10)));
        assert!(Args::try_parse_from(["mta-sink", "--defer-reply", "hello"]).is_err());
    }
}
