//! Turns a finished SMTP transaction into the spool's [`queue::Envelope`].

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use queue::{BodyType, DsnParams, DsnRet, Envelope, Notify, Priority, Recipient, Tags};
use smtp_proto::{
    Body, ForwardPath, MailFlags, MailParams, NotifyOn, RcptParams, Ret, ReversePath,
};

use super::message::ControlTags;

/// What the envelope is made of.
pub(crate) struct EnvelopeInput<'a> {
    pub(crate) from: &'a ReversePath<'static>,
    pub(crate) params: &'a MailParams<'static>,
    pub(crate) rcpts: &'a [(ForwardPath<'static>, RcptParams<'static>)],
    pub(crate) tags: &'a ControlTags,
    /// Our host name: `<postmaster>` without a domain is our postmaster.
    pub(crate) hostname: &'a str,
    pub(crate) peer: IpAddr,
    /// Body size in octets, as stored.
    pub(crate) size: u64,
}

/// Builds the envelope of a message accepted now. Recipients given twice are kept once.
pub(crate) fn build_envelope(input: EnvelopeInput<'_>) -> Envelope {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let sender = match input.from {
        ReversePath::Null => String::new(),
        ReversePath::Mailbox(m) => m.to_string(),
    };
    let mut recipients: Vec<Recipient> = Vec::with_capacity(input.rcpts.len());
    for (to, params) in input.rcpts {
        let address = match to {
            ForwardPath::Postmaster => format!("postmaster@{}", input.hostname),
            ForwardPath::Mailbox(m) => m.to_string(),
        };
        if recipients.iter().any(|r| r.address == address) {
            continue;
        }
        let mut recipient = Recipient::new(address);
        recipient.notify = match params.notify {
            None => Notify::empty(),
            Some(smtp_proto::Notify::Never) => Notify::NEVER,
            Some(smtp_proto::Notify::On(on)) => {
                let mut n = Notify::empty();
                n.set(Notify::SUCCESS, on.contains(NotifyOn::SUCCESS));
                n.set(Notify::FAILURE, on.contains(NotifyOn::FAILURE));
                n.set(Notify::DELAY, on.contains(NotifyOn::DELAY));
                n
            }
        };
        recipient.orcpt = params
            .orcpt
            .as_ref()
            .map(|o| format!("{};{}", o.addr_type, o.address));
        recipients.push(recipient);
    }
    let mut envelope = Envelope::new(sender, recipients, now_ms);
    envelope.dsn = DsnParams {
        ret: input.params.ret.map(|r| match r {
            Ret::Full => DsnRet::Full,
            Ret::Headers => DsnRet::Headers,
        }),
        envid: input.params.envid.as_ref().map(|e| e.to_string()),
    };
    envelope.tags = Tags {
        tenant: input.tags.tenant.clone(),
        campaign: input.tags.campaign.clone(),
        pool: input.tags.pool.clone(),
    };
    envelope.priority = match input
        .tags
        .priority
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("high") => Priority::High,
        Some("bulk") => Priority::Bulk,
        _ => Priority::Normal,
    };
    envelope.smtputf8 = input.params.flags.contains(MailFlags::SMTPUTF8);
    envelope.body_type = match input.params.body {
        None | Some(Body::SevenBit) => BodyType::SevenBit,
        Some(Body::EightBitMime) => BodyType::EightBitMime,
        Some(Body::BinaryMime) => BodyType::BinaryMime,
    };
    envelope.size = input.size;
    envelope.received_from = input.peer.to_string();
    envelope
}
