//! The `mta` command line.

// A command-line tool prints its results on standard output.
#![allow(clippy::print_stdout)]

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mta_core::config::Config;

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
    /// Print the embedded default configuration.
    DefaultConfig,
    /// Read a password on standard input and print its hash for a `[[user]]` `password_hash`.
    HashPassword,
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
