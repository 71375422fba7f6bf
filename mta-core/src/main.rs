//! The `mta` command line.

// A command-line tool prints its results on standard output.
#![allow(clippy::print_stdout)]

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mta_core::config::Config;

/// With the `mimalloc` feature: mimalloc instead of glibc malloc (per-thread heaps, so
/// bodies and records allocated on one thread and freed on another do not contend on glibc's
/// arena locks). A trade of memory for CPU, measured in docs/performance.md.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mta",
    version,
    about = "A durable, fast mail transfer agent for bulk senders"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the MTA (on the embedded default configuration when no --config is given).
    Run {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Check the configuration and exit.
        #[arg(long)]
        validate: bool,
    },
    /// Talk to a running MTA through its admin socket.
    Ctl(Box<mta_core::ctl::CtlArgs>),
    /// DKIM keys: make one, or print the DNS records of the configured ones.
    #[command(subcommand)]
    Dkim(DkimCmd),
    /// Print the embedded default configuration.
    DefaultConfig,
    /// Read a password on standard input and print its hash for a `[[user]]` `password_hash`.
    HashPassword,
}

#[derive(Subcommand)]
enum DkimCmd {
    /// Generate a key, write it as PEM, and print the DNS TXT record to publish.
    Keygen {
        /// The signing domain (`example.com`).
        #[arg(long)]
        domain: String,
        /// The selector (`s2026`).
        #[arg(long)]
        selector: String,
        /// rsa-2048, rsa-3072, rsa-4096 or ed25519.
        #[arg(long, default_value = "rsa-2048")]
        algorithm: dkim::KeyAlgorithm,
        /// Where to write the key (default `DOMAIN.SELECTOR.pem`); never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the DNS TXT record of every key in the configuration.
    Dns {
        /// The configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mta: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Run { config, validate } => {
            let config_path = config.clone();
            let config = match &config {
                Some(path) => Config::from_file(path)?,
                None => Config::embedded_default(),
            };
            config.check_files()?;
            if validate {
                eprintln!("mta: configuration ok");
                return Ok(());
            }
            init_logging();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("mta")
                .build()
                .context("starting the runtime")?;
            runtime.block_on(mta_core::lifecycle::run(config, config_path))
        }
        Cmd::Ctl(args) => {
            let config = match &args.config {
                Some(path) => Config::from_file(path)?,
                None => Config::embedded_default(),
            };
            mta_core::ctl::run(*args, &config.admin.socket)
        }
        Cmd::Dkim(DkimCmd::Keygen {
            domain,
            selector,
            algorithm,
            out,
        }) => {
            let key = dkim::generate_key(algorithm).context("generating the key")?;
            let path = out.unwrap_or_else(|| PathBuf::from(format!("{domain}.{selector}.pem")));
            key.write_pem(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "mta: key written to {} (mode 0600); publish this record:",
                path.display()
            );
            println!("{}", key.dns_record(&domain, &selector));
            Ok(())
        }
        Cmd::Dkim(DkimCmd::Dns { config }) => {
            let config = match &config {
                Some(path) => Config::from_file(path)?,
                None => Config::embedded_default(),
            };
            let signer = config.signer().context("loading DKIM keys")?;
            for record in signer.dns_records() {
                println!("{record}");
            }
            Ok(())
        }
        Cmd::DefaultConfig => {
            print!("{}", mta_core::config::DEFAULT_CONFIG);
            Ok(())
        }
        Cmd::HashPassword => {
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("reading the password")?;
            let password = password.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!password.is_empty(), "empty password");
            let hash = mta_core::server::hash_password(password.as_bytes())
                .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            println!("{hash}");
            Ok(())
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("MTA_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
