//! SMTP commands: the typed value of one command line, its parser and its encoder.
//!
//! [`parse_command`] takes one line without its CRLF. Framing (finding the line end, limits,
//! pipelining) is the job of [`crate::parser::CommandParser`]. Verbs are case-insensitive;
//! arguments follow RFC 5321 strictly where strictness protects (paths, parameters) and
//! tolerate harmless variations seen in the wild (a space after `FROM:`, extra spaces between
//! parameters).

use std::borrow::Cow;

use crate::address::{
    ForwardPath, Path, ReversePath, parse_address_literal, parse_path, validate_domain,
};
use crate::auth::{Mechanism, is_base64};
use crate::error::{AddressError, CommandError, SyntaxError};
use crate::limits::CommandLimits;
use crate::params::{MailFlags, MailParams, RcptParams, parse_mail_params, parse_rcpt_params};

/// One SMTP command, borrowing from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO domain`.
    Helo {
        /// The client's name for itself.
        host: Cow<'a, str>,
    },
    /// `EHLO domain` or `EHLO [address-literal]`.
    Ehlo {
        /// The client's name for itself.
        host: Cow<'a, str>,
    },
    /// `MAIL FROM:<reverse-path> [parameters]`.
    Mail {
        /// The sender, or `<>`.
        from: ReversePath<'a>,
        /// The ESMTP parameters.
        params: MailParams<'a>,
    },
    /// `RCPT TO:<forward-path> [parameters]`.
    Rcpt {
        /// The recipient.
        to: ForwardPath<'a>,
        /// The ESMTP parameters.
        params: RcptParams<'a>,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets of message data that follow this line.
        size: u64,
        /// True for the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP [string]` (the string is ignored).
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy {
        /// What to verify.
        arg: Cow<'a, str>,
    },
    /// `EXPN string`.
    Expn {
        /// The list to expand.
        arg: Cow<'a, str>,
    },
    /// `HELP [topic]`.
    Help {
        /// The topic, if any.
        topic: Option<Cow<'a, str>>,
    },
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// The initial response, base64 and not yet decoded. `=` on the wire (an empty
        /// response) is `Some("")`.
        initial_response: Option<Cow<'a, str>>,
    },
}

impl Command<'_> {
    /// A copy that owns its text.
    pub fn into_owned(self) -> Command<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        match self {
            Command::Helo { host } => Command::Helo { host: own(host) },
            Command::Ehlo { host } => Command::Ehlo { host: own(host) },
            Command::Mail { from, params } => Command::Mail {
                from: from.into_owned(),
                params: params.into_owned(),
            },
            Command::Rcpt { to, params } => Command::Rcpt {
                to: to.into_owned(),
                params: params.into_owned(),
            },
            Command::Data => Command::Data,
            Command::Bdat { size, last } => Command::Bdat { size, last },
            Command::Rset => Command::Rset,
            Command::Noop => Command::Noop,
            Command::Quit => Command::Quit,
            Command::Vrfy { arg } => Command::Vrfy { arg: own(arg) },
            Command::Expn { arg } => Command::Expn { arg: own(arg) },
            Command::Help { topic } => Command::Help {
                topic: topic.map(own),
            },
            Command::StartTls => Command::StartTls,
            Command::Auth {
                mechanism,
                initial_response,
            } => Command::Auth {
                mechanism,
                initial_response: initial_response.map(own),
            },
        }
    }

    /// Appends the command line, CRLF included, as a client sends it.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            Command::Helo { host } => push_all(out, &["HELO ", host]),
            Command::Ehlo { host } => push_all(out, &["EHLO ", host]),
            Command::Mail { from, params } => {
                out.extend_from_slice(b"MAIL FROM:");
                out.extend_from_slice(from.to_string().as_bytes());
                params.write_to(out);
            }
            Command::Rcpt { to, params } => {
                out.extend_from_slice(b"RCPT TO:");
                out.extend_from_slice(to.to_string().as_bytes());
                params.write_to(out);
            }
            Command::Data => out.extend_from_slice(b"DATA"),
            Command::Bdat { size, last } => {
                out.extend_from_slice(b"BDAT ");
                out.extend_from_slice(size.to_string().as_bytes());
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Command::Rset => out.extend_from_slice(b"RSET"),
            Command::Noop => out.extend_from_slice(b"NOOP"),
            Command::Quit => out.extend_from_slice(b"QUIT"),
            Command::Vrfy { arg } => push_all(out, &["VRFY ", arg]),
            Command::Expn { arg } => push_all(out, &["EXPN ", arg]),
            Command::Help { topic: None } => out.extend_from_slice(b"HELP"),
            Command::Help { topic: Some(t) } => push_all(out, &["HELP ", t]),
            Command::StartTls => out.extend_from_slice(b"STARTTLS"),
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                push_all(out, &["AUTH ", mechanism.as_str()]);
                match initial_response.as_deref() {
                    None => {}
                    Some("") => out.extend_from_slice(b" ="),
                    Some(r) => push_all(out, &[" ", r]),
                }
            }
        }
        out.extend_from_slice(b"\r\n");
    }
}

fn push_all(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(p.as_bytes());
    }
}

/// The command verbs, recognised from the first word of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
}

impl Verb {
    /// Recognises the verb from the first word of the line (case-insensitive).
    fn recognise(word: &[u8]) -> Option<Verb> {
        if word.len() == 4 {
            // Fold ASCII letters to upper case in one operation; the comparison with the
            // upper-case constants below rejects every non-letter that the fold would alias.
            let w = u32::from_be_bytes([word[0], word[1], word[2], word[3]]) & 0xDFDF_DFDF;
            let verb = match &w.to_be_bytes() {
                b"HELO" => Verb::Helo,
                b"EHLO" => Verb::Ehlo,
                b"MAIL" => Verb::Mail,
                b"RCPT" => Verb::Rcpt,
                b"DATA" => Verb::Data,
                b"BDAT" => Verb::Bdat,
                b"RSET" => Verb::Rset,
                b"NOOP" => Verb::Noop,
                b"QUIT" => Verb::Quit,
                b"VRFY" => Verb::Vrfy,
                b"EXPN" => Verb::Expn,
                b"HELP" => Verb::Help,
                b"AUTH" => Verb::Auth,
                _ => return None,
            };
            // `& 0xDF` maps some non-letters onto letters (e.g. 0xC1 -> 'A'); make sure every
            // octet really was a letter.
            return word.iter().all(u8::is_ascii_alphabetic).then_some(verb);
        }
        if word.eq_ignore_ascii_case(b"STARTTLS") {
            return Some(Verb::StartTls);
        }
        None
    }

    /// The longest line this verb may have, CRLF included.
    pub(crate) fn line_limit(self, limits: &CommandLimits) -> usize {
        match self {
            Verb::Mail | Verb::Rcpt => limits.parameter_line,
            Verb::Auth => limits.auth_line,
            _ => limits.command_line,
        }
    }
}

/// Recognises the verb at the start of a line, if the line holds a whole first word.
pub(crate) fn line_verb(line: &[u8]) -> Option<Verb> {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    Verb::recognise(&line[..end])
}

/// Parses one command line (without its CRLF). `line_len` is the length on the wire, CRLF
/// included, checked against the verb's limit.
pub fn parse_command<'a>(
    line: &'a [u8],
    line_len: usize,
    limits: &CommandLimits,
) -> Result<Command<'a>, CommandError> {
    let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let verb = Verb::recognise(&line[..verb_end]).ok_or(CommandError::UnknownCommand)?;
    if line_len > verb.line_limit(limits) {
        return Err(CommandError::LineTooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| SyntaxError::InvalidUtf8)?;
    // Everything after the verb, without the single separating space.
    let args = line.get(verb_end + 1..).unwrap_or("");
    if line.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(SyntaxError::ControlCharacter.into());
    }
    if !matches!(verb, Verb::Mail | Verb::Rcpt) && !line.is_ascii() {
        return Err(SyntaxError::NonAscii.into());
    }
    match verb {
        Verb::Helo => Ok(Command::Helo {
            host: parse_helo_host(args)?,
        }),
        Verb::Ehlo => Ok(Command::Ehlo {
            host: parse_helo_host(args)?,
        }),
        Verb::Mail => parse_mail(args),
        Verb::Rcpt => parse_rcpt(args),
        Verb::Data => no_args(args, Command::Data),
        Verb::Rset => no_args(args, Command::Rset),
        Verb::Quit => no_args(args, Command::Quit),
        Verb::StartTls => no_args(args, Command::StartTls),
        Verb::Noop => Ok(Command::Noop),
        Verb::Bdat => parse_bdat(args),
        Verb::Vrfy => Ok(Command::Vrfy {
            arg: Cow::Borrowed(required(args)?),
        }),
        Verb::Expn => Ok(Command::Expn {
            arg: Cow::Borrowed(required(args)?),
        }),
        Verb::Help => {
            let topic = args.trim_matches(' ');
            Ok(Command::Help {
                topic: (!topic.is_empty()).then_some(Cow::Borrowed(topic)),
            })
        }
        Verb::Auth => parse_auth(args),
    }
}

fn no_args<'a>(args: &str, command: Command<'a>) -> Result<Command<'a>, CommandError> {
    if args.trim_matches(' ').is_empty() {
        Ok(command)
    } else {
        Err(SyntaxError::UnexpectedArgument.into())
    }
}

fn required(args: &str) -> Result<&str, CommandError> {
    let arg = args.trim_matches(' ');
    if arg.is_empty() {
        Err(SyntaxError::MissingArgument.into())
    } else {
        Ok(arg)
    }
}

/// HELO/EHLO: one domain (underscores tolerated) or address literal.
fn parse_helo_host(args: &str) -> Result<Cow<'_, str>, CommandError> {
    let host = required(args)?;
    if host.contains(' ') {
        return Err(SyntaxError::UnexpectedArgument.into());
    }
    let valid = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|inner| parse_address_literal(inner).is_ok())
    } else {
        validate_domain(host, true).is_ok()
    };
    if valid {
        Ok(Cow::Borrowed(host))
    } else {
        Err(SyntaxError::InvalidHost.into())
    }
}

/// Strips `keyword` (case-insensitive, e.g. `FROM:`) and any spaces after it.
fn strip_path_keyword<'a>(args: &'a str, keyword: &str) -> Result<&'a str, CommandError> {
    let n = keyword.len();
    if args.len() < n || !args.as_bytes()[..n].eq_ignore_ascii_case(keyword.as_bytes()) {
        return Err(SyntaxError::MissingPathKeyword.into());
    }
    Ok(args[n..].trim_start_matches(' '))
}

fn parse_mail(args: &str) -> Result<Command<'_>, CommandError> {
    let rest = strip_path_keyword(args, "FROM:")?;
    let (path, params) = parse_path(rest)?;
    let params = parse_mail_params(params)?;
    let from = match path {
        Path::Null => ReversePath::Null,
        Path::Mailbox(m) => ReversePath::Mailbox(m),
        // `<postmaster>` as a sender has no domain: not a valid reverse-path.
        Path::Postmaster => return Err(AddressError::MissingDomain.into()),
    };
    if !from.is_ascii() && !params.flags.contains(MailFlags::SMTPUTF8) {
        return Err(CommandError::Utf8NotPermitted);
    }
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(args: &str) -> Result<Command<'_>, CommandError> {
    let rest = strip_path_keyword(args, "TO:")?;
    let (path, params) = parse_path(rest)?;
    let params = parse_rcpt_params(params)?;
    let to = match path {
        Path::Null => return Err(AddressError::NullPath.into()),
        Path::Postmaster => ForwardPath::Postmaster,
        Path::Mailbox(m) => ForwardPath::Mailbox(m),
    };
    Ok(Command::Rcpt { to, params })
}

fn parse_bdat(args: &str) -> Result<Command<'_>, CommandError> {
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let size = words.next().ok_or(SyntaxError::MissingArgument)?;
    if size.len() > 20 || !size.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyntaxError::InvalidNumber.into());
    }
    let size = size
        .parse::<u64>()
        .map_err(|_| SyntaxError::InvalidNumber)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(SyntaxError::UnexpectedArgument.into()),
    };
    if words.next().is_some() {
        return Err(SyntaxError::UnexpectedArgument.into());
    }
    Ok(Command::Bdat { size, last })
}

fn parse_auth(args: &str) -> Result<Command<'_>, CommandError> {
    let mut words = args.split(' ').filter(|w| !w.is_empty());
    let name = words.next().ok_or(SyntaxError::MissingArgument)?;
    let mechanism = Mechanism::from_name(name).ok_or(CommandError::UnknownMechanism)?;
    let initial_response = match words.next() {
        None => None,
        Some("=") => Some(Cow::Borrowed("")),
        Some(r) if !r.is_empty() && is_base64(r) => Some(Cow::Borrowed(r)),
        Some(_) => return Err(SyntaxError::InvalidBase64.into()),
    };
    if words.next().is_some() {
        return Err(SyntaxError::UnexpectedArgument.into());
    }
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}
