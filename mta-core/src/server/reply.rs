//! Every reply the SMTP server sends, chosen here and only here.
//!
//! Each outcome (a command's success, a parse error, a policy refusal, a limit) maps to one
//! reply code and one enhanced status code (RFC 3463). Session code asks for a reply by
//! meaning (`Reply::too_many_recipients()`), never by number.

use std::borrow::Cow;

use smtp_proto::{
    AddressError, CommandError, DataError, EnhancedCode, ParamError, ReplyCode, SyntaxError,
};

/// A reply to send: code, enhanced code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    code: u16,
    enhanced: Option<(u8, u16, u16)>,
    text: Cow<'static, str>,
}

impl Reply {
    const fn new(code: u16, enhanced: (u8, u16, u16), text: &'static str) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: Cow::Borrowed(text),
        }
    }

    fn owned(code: u16, enhanced: (u8, u16, u16), text: String) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: Cow::Owned(text),
        }
    }

    /// True for 5xx replies to a client's mistake, which count towards `max_errors`.
    pub(crate) fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Appends the reply in wire form. Enhanced codes are sent on every reply but the
    /// greeting and EHLO/HELO ones (RFC 2034 leaves those out).
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let code = ReplyCode::new(self.code).expect("reply codes here are valid");
        let enhanced = self
            .enhanced
            .and_then(|(c, s, d)| EnhancedCode::new(c, s, d));
        smtp_proto::write_reply(out, code, enhanced, &self.text);
    }

    // ------------------------------------------------------------------ session

    /// The greeting.
    pub(crate) fn greeting(hostname: &str) -> Reply {
        Reply {
            code: 220,
            enhanced: None,
            text: Cow::Owned(format!("{hostname} ESMTP ready")),
        }
    }

    /// Reply to HELO.
    pub(crate) fn helo(hostname: &str) -> Reply {
        Reply {
            code: 250,
            enhanced: None,
            text: Cow::Owned(hostname.to_owned()),
        }
    }

    /// Reply to QUIT.
    pub(crate) fn bye() -> Reply {
        Reply::new(221, (2, 0, 0), "Bye")
    }

    /// Reply to RSET, NOOP, and the generic OK.
    pub(crate) fn ok() -> Reply {
        Reply::new(250, (2, 0, 0), "Ok")
    }

    /// Reply to an accepted MAIL.
    pub(crate) fn sender_ok() -> Reply {
        Reply::new(250, (2, 1, 0), "Sender ok")
    }

    /// Reply to an accepted RCPT.
    pub(crate) fn recipient_ok() -> Reply {
        Reply::new(250, (2, 1, 5), "Recipient ok")
    }

    /// Reply to DATA: go ahead.
    pub(crate) fn start_data() -> Reply {
        Reply {
            code: 354,
            enhanced: None,
            text: Cow::Borrowed("End data with <CR><LF>.<CR><LF>"),
        }
    }

    /// The message is durable: the promise.
    pub(crate) fn queued(id: &str) -> Reply {
        Reply::owned(250, (2, 0, 0), format!("Ok: queued as {id}"))
    }

    /// A BDAT chunk that is not the last was received.
    pub(crate) fn chunk_ok(size: u64) -> Reply {
        Reply::owned(250, (2, 0, 0), format!("{size} octets received"))
    }

    /// Reply to VRFY (RFC 5321 3.5.3: we neither confirm nor deny).
    pub(crate) fn cannot_vrfy() -> Reply {
        Reply::new(
            252,
            (2, 5, 0),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    /// Reply to EXPN and other commands we do not offer.
    pub(crate) fn not_implemented() -> Reply {
        Reply::new(502, (5, 5, 1), "Command not implemented")
    }

    /// Reply to HELP.
    pub(crate) fn help() -> Reply {
        Reply::new(214, (2, 0, 0), "See https://www.rfc-editor.org/rfc/rfc5321")
    }

    /// Reply to STARTTLS before the handshake.
    pub(crate) fn ready_for_tls() -> Reply {
        Reply::new(220, (2, 0, 0), "Ready to start TLS")
    }

    // ------------------------------------------------------------------ sequence

    /// MAIL before HELO/EHLO.
    pub(crate) fn need_helo() -> Reply {
        Reply::new(503, (5, 5, 1), "Send HELO/EHLO first")
    }

    /// MAIL inside a transaction.
    pub(crate) fn nested_mail() -> Reply {
        Reply::new(503, (5, 5, 1), "Nested MAIL command")
    }

    /// RCPT, DATA or BDAT before MAIL.
    pub(crate) fn need_mail() -> Reply {
        Reply::new(503, (5, 5, 1), "Need MAIL command first")
    }

    /// DATA or BDAT without any accepted recipient (RFC 2920 asks for 554 with DATA).
    pub(crate) fn no_valid_recipients() -> Reply {
        Reply::new(554, (5, 5, 1), "No valid recipients")
    }

    /// DATA after BDAT in the same transaction, or the other way round.
    pub(crate) fn data_bdat_mixed() -> Reply {
        Reply::new(
            503,
            (5, 5, 1),
            "DATA and BDAT cannot be mixed in one transaction",
        )
    }

    /// STARTTLS when TLS is already on, AUTH twice, AUTH inside a transaction.
    pub(crate) fn bad_sequence() -> Reply {
        Reply::new(503, (5, 5, 1), "Bad sequence of commands")
    }

    /// MAIL before STARTTLS on a listener that requires TLS.
    pub(crate) fn tls_required() -> Reply {
        Reply::new(530, (5, 7, 0), "Must issue a STARTTLS command first")
    }

    // ------------------------------------------------------------------ auth

    /// AUTH over plaintext (RFC 4954: 538).
    pub(crate) fn auth_needs_tls() -> Reply {
        Reply::new(
            538,
            (5, 7, 11),
            "Encryption required for requested authentication mechanism",
        )
    }

    /// AUTH when no users are configured, or with a mechanism we do not offer.
    pub(crate) fn auth_mechanism_unavailable() -> Reply {
        Reply::new(504, (5, 5, 4), "Unrecognized authentication type")
    }

    /// A SASL challenge (`334 base64`).
    pub(crate) fn auth_challenge(base64: &'static str) -> Reply {
        Reply {
            code: 334,
            enhanced: None,
            text: Cow::Borrowed(base64),
        }
    }

    /// AUTH succeeded.
    pub(crate) fn auth_ok() -> Reply {
        Reply::new(235, (2, 7, 0), "Authentication successful")
    }

    /// AUTH failed.
    pub(crate) fn auth_failed() -> Reply {
        Reply::new(535, (5, 7, 8), "Authentication credentials invalid")
    }

    /// The client cancelled AUTH with `*`, or sent something that is not base64.
    pub(crate) fn auth_cancelled() -> Reply {
        Reply::new(501, (5, 7, 0), "Authentication cancelled")
    }

    /// The password check could not run.
    pub(crate) fn auth_temporary_failure() -> Reply {
        Reply::new(454, (4, 7, 0), "Temporary authentication failure")
    }

    // ------------------------------------------------------------------ policy and limits

    /// A recipient we may not relay to for this client.
    pub(crate) fn relay_denied() -> Reply {
        Reply::new(554, (5, 7, 1), "Relay access denied")
    }

    /// One recipient too many.
    pub(crate) fn too_many_recipients() -> Reply {
        Reply::new(452, (4, 5, 3), "Too many recipients")
    }

    /// The declared or actual size is over the listener's limit.
    pub(crate) fn message_too_big() -> Reply {
        Reply::new(
            552,
            (5, 3, 4),
            "Message size exceeds fixed maximum message size",
        )
    }

    /// Too many connections (global or from this address).
    pub(crate) fn too_many_connections() -> Reply {
        Reply::new(421, (4, 3, 2), "Too many connections, try again later")
    }

    /// Too many errors in this session.
    pub(crate) fn too_many_errors() -> Reply {
        Reply::new(421, (4, 7, 0), "Too many errors, closing connection")
    }

    /// The client sent data before our greeting.
    pub(crate) fn pregreet() -> Reply {
        Reply::new(
            554,
            (5, 5, 1),
            "Protocol error: talking before the greeting",
        )
    }

    /// The client was idle for too long.
    pub(crate) fn timeout() -> Reply {
        Reply::new(421, (4, 4, 2), "Timeout, closing connection")
    }

    /// We are shutting down.
    pub(crate) fn shutting_down() -> Reply {
        Reply::new(421, (4, 3, 2), "Service shutting down, try again later")
    }

    /// The spool could not make the message durable.
    pub(crate) fn spool_failure() -> Reply {
        Reply::new(
            451,
            (4, 3, 0),
            "Temporary failure in the queue, try again later",
        )
    }

    /// A message DKIM cannot sign as its From header stands (two From fields, From
    /// domains that differ).
    pub(crate) fn unsignable(why: &str) -> Reply {
        Reply::owned(
            550,
            (5, 6, 0),
            format!("Message cannot be DKIM-signed: {why}"),
        )
    }

    /// Signing failed for a reason of ours.
    pub(crate) fn signing_failure() -> Reply {
        Reply::new(
            451,
            (4, 3, 0),
            "Temporary failure signing the message, try again later",
        )
    }

    /// A message with more `Received:` fields than `[server] max_hops`: a mail loop.
    pub(crate) fn too_many_hops() -> Reply {
        Reply::new(554, (5, 4, 6), "Too many hops: routing loop detected")
    }

    /// An X-MTA control header we cannot use.
    pub(crate) fn bad_control_header(name: &str) -> Reply {
        Reply::owned(550, (5, 6, 0), format!("Invalid {name} header"))
    }

    /// An ESMTP parameter we parsed but do not offer (BINARYMIME, REQUIRETLS).
    pub(crate) fn parameter_not_offered(name: &str) -> Reply {
        Reply::owned(555, (5, 5, 4), format!("{name} not supported"))
    }

    /// A non-ASCII recipient in a transaction without SMTPUTF8.
    pub(crate) fn utf8_not_permitted() -> Reply {
        Reply::new(553, (5, 6, 7), "Non-ASCII address requires SMTPUTF8")
    }

    // ------------------------------------------------------------------ parse errors

    /// The reply to a command line that did not parse. `in_rcpt` picks the enhanced code
    /// of address errors (5.1.3 for recipients, 5.1.7 for senders).
    pub(crate) fn command_error(error: &CommandError, in_rcpt: bool) -> Reply {
        match error {
            CommandError::LineTooLong => Reply::new(500, (5, 5, 6), "Line too long"),
            CommandError::BareLineFeed | CommandError::BareCarriageReturn => {
                Reply::new(500, (5, 5, 2), "Command lines must end with <CR><LF>")
            }
            CommandError::UnknownCommand => Reply::new(500, (5, 5, 1), "Command unrecognized"),
            CommandError::Syntax(s) => Reply::syntax(*s),
            CommandError::Address(a) => Reply::address(*a, in_rcpt),
            CommandError::Parameter(p) => Reply::parameter(p),
            CommandError::Utf8NotPermitted => Reply::utf8_not_permitted(),
            CommandError::UnknownMechanism => Reply::auth_mechanism_unavailable(),
            _ => Reply::new(500, (5, 5, 2), "Syntax error"),
        }
    }

    fn syntax(error: SyntaxError) -> Reply {
        let text = match error {
            SyntaxError::MissingArgument => "Syntax error: argument required",
            SyntaxError::UnexpectedArgument => "Syntax error: unexpected argument",
            SyntaxError::MissingPathKeyword => {
                "Syntax error: expected FROM:<address> or TO:<address>"
            }
            SyntaxError::InvalidHost => "Syntax error: invalid host name",
            SyntaxError::InvalidNumber => "Syntax error: invalid number",
            SyntaxError::InvalidBase64 => "Syntax error: invalid base64",
            SyntaxError::InvalidUtf8 => "Syntax error: invalid UTF-8",
            SyntaxError::NonAscii => "Syntax error: 8-bit characters not allowed here",
            SyntaxError::ControlCharacter => "Syntax error: control character",
            _ => "Syntax error",
        };
        Reply::new(501, (5, 5, 4), text)
    }

    fn address(error: AddressError, in_rcpt: bool) -> Reply {
        let detail = if in_rcpt { 3 } else { 7 };
        let text = match error {
            AddressError::MissingAngleBrackets => "Address must be enclosed in <>",
            AddressError::NullPath => "Null recipient not allowed",
            AddressError::LocalPartTooLong => "Local part too long",
            AddressError::DomainTooLong => "Domain too long",
            AddressError::PathTooLong => "Path too long",
            AddressError::InvalidLocalPart => "Invalid local part",
            AddressError::MissingDomain => "Address needs a domain",
            AddressError::InvalidDomain => "Invalid domain",
            AddressError::InvalidAddressLiteral => "Invalid address literal",
            AddressError::InvalidSourceRoute => "Invalid source route",
            AddressError::TrailingCharacters => "Unexpected characters after address",
            _ => "Invalid address",
        };
        Reply::new(553, (5, 1, detail), text)
    }

    fn parameter(error: &ParamError) -> Reply {
        let text = match error {
            ParamError::Unknown(name) => format!("Unsupported parameter {name}"),
            ParamError::Duplicate(name) => format!("Duplicate parameter {name}"),
            ParamError::InvalidValue(name) => format!("Invalid value for {name}"),
            _ => "Malformed parameter".to_owned(),
        };
        Reply::owned(555, (5, 5, 4), text)
    }

    /// The reply to a message body that was refused.
    pub(crate) fn data_error(error: DataError) -> Reply {
        match error {
            DataError::BareLineFeed | DataError::BareCarriageReturn => Reply::new(
                550,
                (5, 5, 2),
                "Message text must use <CR><LF> line ends (bare CR or LF refused)",
            ),
            DataError::LineTooLong => Reply::new(550, (5, 5, 6), "Message line too long"),
            DataError::TooLarge => Reply::message_too_big(),
            _ => Reply::new(550, (5, 6, 0), "Message refused"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_render_with_their_codes() {
        let cases: Vec<(Reply, &str)> = vec![
            (
                Reply::too_many_recipients(),
                "452 4.5.3 Too many recipients\r\n",
            ),
            (
                Reply::message_too_big(),
                "552 5.3.4 Message size exceeds fixed maximum message size\r\n",
            ),
            (
                Reply::too_many_connections(),
                "421 4.3.2 Too many connections, try again later\r\n",
            ),
            (Reply::relay_denied(), "554 5.7.1 Relay access denied\r\n"),
            (
                Reply::command_error(&CommandError::LineTooLong, false),
                "500 5.5.6 Line too long\r\n",
            ),
            (
                Reply::command_error(&CommandError::Address(AddressError::InvalidDomain), true),
                "553 5.1.3 Invalid domain\r\n",
            ),
            (
                Reply::command_error(&CommandError::Address(AddressError::InvalidDomain), false),
                "553 5.1.7 Invalid domain\r\n",
            ),
            (
                Reply::data_error(DataError::BareLineFeed),
                "550 5.5.2 Message text must use <CR><LF> line ends (bare CR or LF refused)\r\n",
            ),
            (
                Reply::greeting("mta.example"),
                "220 mta.example ESMTP ready\r\n",
            ),
            (
                Reply::start_data(),
                "354 End data with <CR><LF>.<CR><LF>\r\n",
            ),
        ];
        for (reply, wire) in cases {
            let mut out = Vec::new();
            reply.write_to(&mut out);
            assert_eq!(String::from_utf8(out).unwrap(), wire);
        }
    }
}
