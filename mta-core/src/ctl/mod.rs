//! `mta ctl`: the command-line client of the admin API. It finds the daemon's Unix socket
//! (the `[admin] socket` of the configuration the daemon runs with, or `--socket`), sends
//! one request per command, and prints a readable table, or with `--json` the API's JSON
//! for scripts. See `docs/admin.md`.
//!
//! Files: `mod` (arguments, one function per command), `client` (HTTP over the socket,
//! [`CtlError`]), `render` (readable output), `table` (columns).
//!
//! Exit status: 0 on success; 1 with a message on standard error when the daemon cannot be
//! reached, refuses the request, or (for `health`) reports itself failing.

mod client;
mod render;
mod table;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use hyper::Method;
use serde::Serialize;

pub use client::CtlError;
pub(crate) use client::{AdminClient, Target, query_string};

use crate::admin::types::{
    ActionCount, BounceRequest, BounceResult, Discarded, Filter, FlushRequest, Health,
    HealthStatus, MessageView, NewSuppression, NewSuppressions, NewSuspension, PoolsView,
    QuarantineList, QueueSummary, ReloadReport, Resumed, SuppressionChange, SuppressionPage,
    Suspension, SuspensionList, SuspensionScope,
};

/// `mta ctl [--config FILE] [--socket PATH] [--json] COMMAND`.
#[derive(Debug, Clone, Args)]
pub struct CtlArgs {
    /// The configuration file the daemon runs with; its `[admin] socket` is used.
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
    /// The admin socket, overriding the configuration's.
    #[arg(long, global = true)]
    pub socket: Option<PathBuf>,
    /// Use the loopback TCP listener at this address (`[admin] address`) instead of the
    /// socket; the token is read from the `MTA_ADMIN_TOKEN` environment variable.
    #[arg(long, global = true, value_name = "ADDRESS", conflicts_with = "socket")]
    pub tcp: Option<SocketAddr>,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The commands of `mta ctl`.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// The queue's shape: pending recipients by provider, domain, source and tenant, in age
    /// buckets.
    Queue {
        /// Only this slice.
        #[command(flatten)]
        filter: FilterArgs,
        /// Rows per table (the largest first).
        #[arg(long, default_value_t = 25)]
        top: usize,
    },
    /// One message: envelope, recipients, attempts, last replies.
    Message {
        /// The message id (as in `250 2.0.0 Ok: queued as <id>`).
        id: String,
    },
    /// Suspend delivery to a domain, provider, source or tenant for a while.
    Suspend {
        /// What to suspend.
        #[command(flatten)]
        scope: ScopeArgs,
        /// Only this campaign of the tenant (with --tenant).
        #[arg(long, conflicts_with_all = ["domain", "provider", "source"])]
        campaign: Option<String>,
        /// For how long (`30m`, `1h`, `2d`; at most 30 days).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Why (shown in `mta ctl suspensions` and logged).
        #[arg(long)]
        reason: String,
    },
    /// List the suspensions in force.
    Suspensions,
    /// Lift a suspension.
    Resume {
        /// The suspension's id (from `mta ctl suspensions`).
        id: String,
    },
    /// Retry a slice of the queue now (suspensions and rate limits still apply).
    Flush {
        /// The slice.
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// Fail a slice of the queue now, with DSNs to the senders unless --no-dsn.
    Bounce {
        /// The slice.
        #[command(flatten)]
        selection: SelectionArgs,
        /// Do not send DSNs.
        #[arg(long)]
        no_dsn: bool,
    },
    /// Egress sources: warmup, daily allowance and use, throttling, per provider.
    Pools,
    /// List, add or remove suppressed addresses (list when no action is given).
    Suppressions {
        /// What to do.
        #[command(subcommand)]
        action: Option<SuppressionsCommand>,
    },
    /// List the damaged spool entries set aside when the spool was loaded; with an id,
    /// print that message's quarantined body (the raw message) instead.
    Quarantine {
        /// A message id from the list.
        id: Option<String>,
        /// Delete that message's entries from the quarantine (once dealt with).
        #[arg(long, requires = "id")]
        discard: bool,
    },
    /// Re-read the configuration file (as SIGHUP does).
    Reload,
    /// Whether the MTA works (exit status 1 when it is failing).
    Health,
    /// Print the Prometheus metrics.
    Metrics,
}

/// `mta ctl suppressions ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum SuppressionsCommand {
    /// List suppressions, a page at a time.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
        /// Only this address or domain.
        #[arg(long)]
        address: Option<String>,
        /// Start after this address (the `--after` printed at the end of a page).
        #[arg(long)]
        after: Option<String>,
        /// Entries per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Suppress addresses or domains.
    Add {
        /// Addresses (`user@example.com`) or domains (`example.com`).
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Only for this tenant (default: every tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove a suppression.
    Remove {
        /// The address or domain.
        address: String,
        /// The tenant it was added for (default: the entry for every tenant).
        #[arg(long)]
        tenant: Option<String>,
    },
}

/// Criteria of a slice (any combination).
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Recipient domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Mailbox provider (`gmail`, `other`).
    #[arg(long)]
    pub provider: Option<String>,
    /// Egress source.
    #[arg(long)]
    pub source: Option<String>,
    /// Tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Campaign.
    #[arg(long)]
    pub campaign: Option<String>,
}

/// Criteria of a slice, or `--all` for the whole queue (one or the other is required).
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = true)]
pub struct SelectionArgs {
    /// Recipient domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Mailbox provider (`gmail`, `other`).
    #[arg(long)]
    pub provider: Option<String>,
    /// Egress source.
    #[arg(long)]
    pub source: Option<String>,
    /// Tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// The whole queue.
    #[arg(long, conflicts_with_all = ["domain", "provider", "source", "tenant", "campaign"])]
    pub all: bool,
}

/// Exactly one of domain, provider, source or tenant.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// A recipient domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// A mailbox provider.
    #[arg(long)]
    pub provider: Option<String>,
    /// An egress source.
    #[arg(long)]
    pub source: Option<String>,
    /// A tenant (with --campaign: one of its campaigns).
    #[arg(long)]
    pub tenant: Option<String>,
}

impl From<FilterArgs> for Filter {
    fn from(a: FilterArgs) -> Filter {
        Filter {
            domain: a.domain,
            provider: a.provider,
            source: a.source,
            tenant: a.tenant,
            campaign: a.campaign,
        }
    }
}

impl SelectionArgs {
    fn filter(&self) -> Filter {
        Filter {
            domain: self.domain.clone(),
            provider: self.provider.clone(),
            source: self.source.clone(),
            tenant: self.tenant.clone(),
            campaign: self.campaign.clone(),
        }
    }
}

/// The environment variable holding the bearer token for `--address`.
pub const TOKEN_VARIABLE: &str = "MTA_ADMIN_TOKEN";

/// Runs a `mta ctl` command against the daemon at `socket` (the lead passes
/// `config.admin.socket`; `--socket` overrides it), printing to standard output.
pub fn run(args: CtlArgs, socket: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let mut stdout = std::io::stdout().lock();
    runtime.block_on(execute(&args, socket, &mut stdout))?;
    Ok(())
}

/// Runs a `mta ctl` command, writing its output to `out`.
pub async fn execute(args: &CtlArgs, socket: &Path, out: &mut dyn Write) -> Result<(), CtlError> {
    let target = match args.tcp {
        Some(address) => Target::Tcp {
            address,
            token: std::env::var(TOKEN_VARIABLE).ok(),
        },
        None => Target::Unix(args.socket.clone().unwrap_or_else(|| socket.to_owned())),
    };
    execute_with(&AdminClient::new(target), args, out).await
}

/// Runs a command with a given client (tests use TCP too).
pub(crate) async fn execute_with(
    client: &AdminClient,
    args: &CtlArgs,
    out: &mut dyn Write,
) -> Result<(), CtlError> {
    let json = args.json;
    match &args.command {
        CtlCommand::Queue { filter, top } => {
            let f = filter.clone();
            let top = top.to_string();
            let path = format!(
                "/v1/queue{}",
                query_string(&[
                    ("domain", f.domain.as_deref()),
                    ("provider", f.provider.as_deref()),
                    ("source", f.source.as_deref()),
                    ("tenant", f.tenant.as_deref()),
                    ("campaign", f.campaign.as_deref()),
                    ("top", Some(&top)),
                ])
            );
            let answer = client.send(Method::GET, &path, None).await?;
            show::<QueueSummary>(out, json, &answer, render::queue)
        }
        CtlCommand::Message { id } => {
            let path = format!("/v1/messages/{}", client::percent_encode(id));
            let answer = client.send(Method::GET, &path, None).await?;
            show::<MessageView>(out, json, &answer, render::message)
        }
        CtlCommand::Suspend {
            scope,
            campaign,
            duration,
            reason,
        } => {
            let scope = match (&scope.domain, &scope.provider, &scope.source, &scope.tenant) {
                (Some(d), _, _, _) => SuspensionScope::Domain(d.clone()),
                (_, Some(p), _, _) => SuspensionScope::Provider(p.clone()),
                (_, _, Some(s), _) => SuspensionScope::Source(s.clone()),
                (_, _, _, tenant) => SuspensionScope::Tenant {
                    tenant: tenant.clone().unwrap_or_default(),
                    campaign: campaign.clone(),
                },
            };
            let body = NewSuspension {
                scope,
                duration: *duration,
                reason: reason.clone(),
            };
            let answer = client
                .send(Method::POST, "/v1/suspend", Some(to_json(&body)))
                .await?;
            show::<Suspension>(out, json, &answer, render::suspended)
        }
        CtlCommand::Suspensions => {
            let answer = client.send(Method::GET, "/v1/suspend", None).await?;
            show::<SuspensionList>(out, json, &answer, render::suspensions)
        }
        CtlCommand::Resume { id } => {
            let path = format!("/v1/suspend/{}", client::percent_encode(id));
            let answer = client.send(Method::DELETE, &path, None).await?;
            show::<Resumed>(out, json, &answer, |r| {
                format!("resumed suspension {}\n", r.resumed)
            })
        }
        CtlCommand::Flush { selection } => {
            let body = FlushRequest {
                filter: selection.filter(),
                all: selection.all,
            };
            let answer = client
                .send(Method::POST, "/v1/flush", Some(to_json(&body)))
                .await?;
            show::<ActionCount>(out, json, &answer, render::flushed)
        }
        CtlCommand::Bounce { selection, no_dsn } => {
            let body = BounceRequest {
                filter: selection.filter(),
                all: selection.all,
                dsn: !no_dsn,
            };
            let answer = client
                .send(Method::POST, "/v1/bounce", Some(to_json(&body)))
                .await?;
            show::<BounceResult>(out, json, &answer, render::bounced)
        }
        CtlCommand::Pools => {
            let answer = client.send(Method::GET, "/v1/pools", None).await?;
            show::<PoolsView>(out, json, &answer, render::pools)
        }
        CtlCommand::Suppressions { action } => {
            suppressions(client, action.as_ref(), json, out).await
        }
        CtlCommand::Quarantine { id: None, .. } => {
            let answer = client.send(Method::GET, "/v1/quarantine", None).await?;
            show::<QuarantineList>(out, json, &answer, render::quarantine)
        }
        CtlCommand::Quarantine {
            id: Some(id),
            discard,
        } => {
            let path = format!("/v1/quarantine/{}", client::percent_encode(id));
            if *discard {
                let answer = client.send(Method::DELETE, &path, None).await?;
                show::<Discarded>(out, json, &answer, render::discarded)
            } else {
                // The raw message, as stored (also with --json).
                raw(out, &client.send(Method::GET, &path, None).await?)
            }
        }
        CtlCommand::Reload => {
            let answer = client.send(Method::POST, "/v1/reload", None).await?;
            show::<ReloadReport>(out, json, &answer, render::reloaded)
        }
        CtlCommand::Health => {
            let answer = client.send(Method::GET, "/v1/health", None).await?;
            if !answer.status.is_success() && answer.status.as_u16() != 503 {
                return Err(answer.refusal());
            }
            let health: Health = serde_json::from_slice(&answer.body)
                .map_err(|source| CtlError::Decode { source })?;
            if json {
                write_json(out, &answer.body)?;
            } else {
                write(out, &render::health(&health))?;
            }
            match health.status {
                HealthStatus::Failing => Err(CtlError::Unhealthy {
                    status: health.status,
                }),
                HealthStatus::Ok | HealthStatus::Degraded => Ok(()),
            }
        }
        CtlCommand::Metrics => raw(out, &client.send(Method::GET, "/metrics", None).await?),
    }
}

async fn suppressions(
    client: &AdminClient,
    action: Option<&SuppressionsCommand>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), CtlError> {
    let default_list = SuppressionsCommand::List {
        tenant: None,
        address: None,
        after: None,
        limit: 100,
    };
    match action.unwrap_or(&default_list) {
        SuppressionsCommand::List {
            tenant,
            address,
            after,
            limit,
        } => {
            let limit = limit.to_string();
            let path = format!(
                "/v1/suppressions{}",
                query_string(&[
                    ("tenant", tenant.as_deref()),
                    ("address", address.as_deref()),
                    ("after", after.as_deref()),
                    ("limit", Some(&limit)),
                ])
            );
            let answer = client.send(Method::GET, &path, None).await?;
            show::<SuppressionPage>(out, json, &answer, |page| {
                render::suppressions(page, tenant.as_deref())
            })
        }
        SuppressionsCommand::Add {
            addresses,
            tenant,
            reason,
        } => {
            let body = NewSuppressions {
                entries: addresses
                    .iter()
                    .map(|address| NewSuppression {
                        address: address.clone(),
                        tenant: tenant.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
            };
            let answer = client
                .send(Method::POST, "/v1/suppressions", Some(to_json(&body)))
                .await?;
            show::<SuppressionChange>(out, json, &answer, render::suppressions_added)
        }
        SuppressionsCommand::Remove { address, tenant } => {
            let path = format!(
                "/v1/suppressions{}",
                query_string(&[("address", Some(address)), ("tenant", tenant.as_deref())])
            );
            let answer = client.send(Method::DELETE, &path, None).await?;
            show::<SuppressionChange>(out, json, &answer, |_| render::suppression_removed(address))
        }
    }
}

/// Prints an answer: its JSON (pretty) with `--json`, else the rendering of its value.
fn show<T: serde::de::DeserializeOwned>(
    out: &mut dyn Write,
    json: bool,
    answer: &client::Answer,
    render: impl FnOnce(&T) -> String,
) -> Result<(), CtlError> {
    let value: T = answer.decode()?;
    if json {
        write_json(out, &answer.body)
    } else {
        write(out, &render(&value))
    }
}

/// Prints a successful answer's body as it is (metrics, a quarantined message).
fn raw(out: &mut dyn Write, answer: &client::Answer) -> Result<(), CtlError> {
    if !answer.status.is_success() {
        return Err(answer.refusal());
    }
    out.write_all(&answer.body)
        .and_then(|()| out.flush())
        .map_err(|source| CtlError::Output { source })
}

fn write_json(out: &mut dyn Write, body: &[u8]) -> Result<(), CtlError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|source| CtlError::Decode { source })?;
    let mut text =
        serde_json::to_string_pretty(&value).map_err(|source| CtlError::Decode { source })?;
    text.push('\n');
    write(out, &text)
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), CtlError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| CtlError::Output { source })
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("request bodies serialise")
}
