//! The readable output of each `mta ctl` command (the `--json` output is the API's JSON,
//! pretty-printed, instead).

use std::fmt::Write as _;

use super::table::{Table, or_dash, short_duration, time};
use crate::admin::types::{
    ActionCount, BounceResult, Discarded, Health, MessageView, PoolsView, QuarantineList,
    QueueSummary, ReloadReport, ShapeTable, SuppressionChange, SuppressionOrigin, SuppressionPage,
    Suspension, SuspensionList, ThrottleState,
};

/// `mta ctl queue`.
pub(crate) fn queue(summary: &QueueSummary) -> String {
    let mut out = String::new();
    let total = &summary.total;
    if total.recipients == 0 {
        if summary.filter.is_empty() {
            out.push_str("the queue is empty\n");
        } else {
            let _ = writeln!(out, "nothing queued matches {}", summary.filter);
        }
        return out;
    }
    let oldest = total
        .oldest
        .and_then(|o| summary.generated_at.duration_since(o).ok())
        .map(short_duration)
        .unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(
        out,
        "{} messages, {} recipients queued ({} deferred), oldest {oldest}, at {}",
        summary.messages,
        total.recipients,
        total.deferred,
        time(summary.generated_at)
    );
    if !summary.filter.is_empty() {
        let _ = writeln!(out, "filter: {}", summary.filter);
    }
    for (heading, table) in [
        ("PROVIDER", &summary.by_provider),
        ("DOMAIN", &summary.by_domain),
        ("SOURCE", &summary.by_source),
        ("TENANT", &summary.by_tenant),
    ] {
        out.push('\n');
        out.push_str(&shape_table(heading, table, summary));
    }
    out
}

fn shape_table(heading: &str, shape: &ShapeTable, summary: &QueueSummary) -> String {
    let mut columns = vec![
        heading.to_owned(),
        "#TOTAL".to_owned(),
        "#DEFERRED".to_owned(),
        "#OLDEST".to_owned(),
    ];
    columns.extend(summary.age_buckets.iter().map(|b| format!("#{}", b.label)));
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut table = Table::new(&columns);
    for row in &shape.rows {
        let oldest = row
            .oldest
            .and_then(|o| summary.generated_at.duration_since(o).ok())
            .map(short_duration)
            .unwrap_or_else(|| "-".to_owned());
        let mut cells = vec![
            row.key.clone(),
            row.recipients.to_string(),
            row.deferred.to_string(),
            oldest,
        ];
        cells.extend(row.ages.iter().map(u64::to_string));
        table.row(cells);
    }
    let mut out = table.render();
    if shape.more_rows > 0 {
        let _ = writeln!(
            out,
            "... {} more, {} recipients (use --top)",
            shape.more_rows, shape.more_recipients
        );
    }
    out
}

/// `mta ctl message ID`.
pub(crate) fn message(m: &MessageView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "message {}", m.id);
    let fields: [(&str, String); 10] = [
        ("sender", format!("<{}>", m.sender)),
        ("size", m.size.to_string()),
        ("created", time(m.created_at)),
        (
            "next attempt",
            m.next_attempt_at
                .map(time)
                .unwrap_or_else(|| "-".to_owned()),
        ),
        ("attempts", m.attempts.to_string()),
        ("priority", format!("{:?}", m.priority).to_lowercase()),
        ("tenant", or_dash(m.tenant.as_deref())),
        ("campaign", or_dash(m.campaign.as_deref())),
        ("pool", or_dash(m.pool.as_deref())),
        ("received from", m.received_from.clone()),
    ];
    for (key, value) in fields {
        let _ = writeln!(out, "  {key:<14}{value}");
    }
    out.push('\n');
    let mut table = Table::new(&[
        "RECIPIENT",
        "STATUS",
        "#ATTEMPTS",
        "PROVIDER",
        "SOURCE",
        "LAST REPLY",
    ]);
    for r in &m.recipients {
        table.row(vec![
            r.address.clone(),
            format!("{:?}", r.status).to_lowercase(),
            r.attempts.to_string(),
            or_dash(r.provider.as_deref()),
            or_dash(r.source.as_deref()),
            or_dash(r.last_reply.as_deref()),
        ]);
    }
    out.push_str(&table.render());
    out
}

/// `mta ctl suspend ...`.
pub(crate) fn suspended(s: &Suspension) -> String {
    format!(
        "suspended {} until {} (id {})\n",
        s.scope,
        time(s.expires_at),
        s.id
    )
}

/// `mta ctl suspensions`.
pub(crate) fn suspensions(list: &SuspensionList) -> String {
    if list.suspensions.is_empty() {
        return "no suspensions\n".to_owned();
    }
    let mut table = Table::new(&["ID", "SCOPE", "UNTIL", "BY", "REASON"]);
    for s in &list.suspensions {
        table.row(vec![
            s.id.clone(),
            s.scope.to_string(),
            time(s.expires_at),
            s.created_by.clone(),
            s.reason.clone(),
        ]);
    }
    table.render()
}

/// `mta ctl quarantine`.
pub(crate) fn quarantine(list: &QuarantineList) -> String {
    if list.total == 0 {
        return "the quarantine is empty\n".to_owned();
    }
    let mut table = Table::new(&["ID", "KIND", "SIZE", "REASON"]);
    for entry in &list.entries {
        table.row(vec![
            or_dash(entry.id.as_deref()),
            entry.kind.clone(),
            entry.size.to_string(),
            entry.reason.clone(),
        ]);
    }
    let mut out = table.render();
    if list.total > list.entries.len() {
        let _ = writeln!(
            out,
            "{} of {} entries shown",
            list.entries.len(),
            list.total
        );
    }
    out
}

/// `mta ctl quarantine ID --discard`.
pub(crate) fn discarded(d: &Discarded) -> String {
    let entries = if d.entries == 1 { "entry" } else { "entries" };
    format!(
        "discarded {} quarantined {entries} of {}\n",
        d.entries, d.discarded
    )
}

/// `mta ctl flush ...`.
pub(crate) fn flushed(count: &ActionCount) -> String {
    format!(
        "{} recipients in {} messages will be retried now\n",
        count.recipients, count.messages
    )
}

/// `mta ctl bounce ...`.
pub(crate) fn bounced(result: &BounceResult) -> String {
    format!(
        "bounced {} recipients in {} messages, {}\n",
        result.recipients,
        result.messages,
        if result.dsn {
            "with DSNs to the senders owed one"
        } else {
            "without DSNs"
        }
    )
}

/// `mta ctl pools`.
pub(crate) fn pools(view: &PoolsView) -> String {
    if view.sources.is_empty() {
        return "no egress sources reported\n".to_owned();
    }
    let mut sources = Table::new(&["SOURCE", "ADDRESS", "POOL", "WARMUP"]);
    let mut providers = Table::new(&[
        "SOURCE",
        "PROVIDER",
        "#ALLOWANCE",
        "#USED",
        "#CONNECTIONS",
        "#QUEUED",
        "RATE",
        "THROTTLE",
    ]);
    for s in &view.sources {
        let warmup = match &s.warmup {
            Some(w) => format!("day {}/{}", w.day, w.days),
            None => "-".to_owned(),
        };
        sources.row(vec![
            s.name.clone(),
            s.address
                .map(|a| a.to_string())
                .unwrap_or_else(|| "-".to_owned()),
            or_dash(s.pool.as_deref()),
            warmup,
        ]);
        for p in &s.providers {
            let mut throttle = match p.throttle.state {
                ThrottleState::Open => "open".to_owned(),
                ThrottleState::Slowed => "slowed".to_owned(),
                ThrottleState::Paused => "paused".to_owned(),
            };
            if let Some(until) = p.throttle.until {
                let _ = write!(throttle, " until {}", time(until));
            }
            if let Some(reason) = &p.throttle.reason {
                let _ = write!(throttle, ": {reason}");
            }
            providers.row(vec![
                s.name.clone(),
                p.provider.clone(),
                p.allowance
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                p.used.to_string(),
                match p.max_connections {
                    Some(max) => format!("{}/{max}", p.connections),
                    None => p.connections.to_string(),
                },
                p.queued.to_string(),
                p.rate_per_min
                    .map(|r| format!("{r}/min"))
                    .unwrap_or_else(|| "-".to_owned()),
                throttle,
            ]);
        }
    }
    let mut out = sources.render();
    if view.sources.iter().any(|s| !s.providers.is_empty()) {
        out.push('\n');
        out.push_str(&providers.render());
    }
    out
}

/// `mta ctl suppressions [list]`.
pub(crate) fn suppressions(page: &SuppressionPage, tenant: Option<&str>) -> String {
    if page.entries.is_empty() {
        return "no suppressions\n".to_owned();
    }
    let mut table = Table::new(&["ADDRESS", "TENANT", "ORIGIN", "ADDED", "REASON"]);
    for s in &page.entries {
        let origin = match s.origin {
            SuppressionOrigin::Manual => "manual",
            SuppressionOrigin::Bounce => "bounce",
            SuppressionOrigin::Complaint => "complaint",
            SuppressionOrigin::Unsubscribe => "unsubscribe",
        };
        table.row(vec![
            s.address.clone(),
            s.tenant.clone().unwrap_or_else(|| "(all)".to_owned()),
            origin.to_owned(),
            time(s.created_at),
            or_dash(s.reason.as_deref()),
        ]);
    }
    let mut out = table.render();
    if let Some(next) = &page.next {
        let tenant = tenant.map(|t| format!(" --tenant {t}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "more: mta ctl suppressions list{tenant} --after {next}"
        );
    }
    out
}

/// `mta ctl suppressions add ...`.
pub(crate) fn suppressions_added(change: &SuppressionChange) -> String {
    format!(
        "added {} suppressions ({} already present)\n",
        change.changed, change.unchanged
    )
}

/// `mta ctl suppressions remove ...`.
pub(crate) fn suppression_removed(address: &str) -> String {
    format!("removed the suppression of {address}\n")
}

/// `mta ctl reload`.
pub(crate) fn reloaded(report: &ReloadReport) -> String {
    let mut out = String::from("configuration reloaded\n");
    if !report.applied.is_empty() {
        out.push_str("applied:\n");
        for line in &report.applied {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !report.needs_restart.is_empty() {
        out.push_str("needs a restart to take effect:\n");
        for line in &report.needs_restart {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// `mta ctl health`.
pub(crate) fn health(h: &Health) -> String {
    let mut out = format!(
        "{} (mta {}, started {})\n",
        h.status,
        h.version,
        time(h.started_at)
    );
    if !h.components.is_empty() {
        out.push('\n');
        let mut table = Table::new(&["COMPONENT", "STATUS", "DETAIL"]);
        for c in &h.components {
            table.row(vec![
                c.name.clone(),
                c.status.to_string(),
                or_dash(c.detail.as_deref()),
            ]);
        }
        out.push_str(&table.render());
    }
    out
}
