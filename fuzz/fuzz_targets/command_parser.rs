//! `CommandParser` driven the way a server drives it: append each read to a buffer, parse
//! until `Incomplete`, drop what was used.
//!
//! Checked, for the strict parser and for `accept_bare_lf(true)`, with the default limits and
//! with smaller limits derived from the input:
//! - feeding the input whole or in 2-3 chunks cut anywhere gives the same outcomes (commands,
//!   SASL responses, errors, in order) and leaves the same unconsumed bytes;
//! - every step uses at least one octet, ending at a LF, or asks for more; asking again
//!   without new input gives `Incomplete(0)`;
//! - the buffer never holds more than `limits.longest()` octets between reads;
//! - every command re-encoded with `write_to` parses back to itself, in one step that uses
//!   the whole line; every SASL response likewise;
//! - on input without a bare LF, the lenient parser gives the same outcomes as the strict one.
//!
//! Which steps are SASL response lines (`parse_auth_response`) is chosen by the header.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use smtp_proto::{AuthResponse, Command, CommandError, CommandLimits, CommandParser, Parsed};
use smtp_proto_fuzz::{Cuts, has_bare_lf};

#[derive(Debug, Arbitrary)]
struct Header {
    cuts: Cuts,
    /// Bit `k % 32` set: the `k`-th outcome is read as a SASL response line.
    sasl_steps: u32,
    /// Bit 0: use small limits derived from the fields below.
    small_limits: u8,
    command_line: u8,
    parameter_line: u8,
    auth_line: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Command(Command<'static>),
    Cancel,
    SaslData(String),
    Invalid(CommandError),
}

#[derive(Debug, PartialEq, Eq)]
struct Session {
    outcomes: Vec<Outcome>,
    /// Octets left in the buffer after the last read: a partial line.
    leftover: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(header) = Header::arbitrary(&mut u) else {
        return;
    };
    let input = u.take_rest();
    let limits = if header.small_limits & 1 == 1 {
        // At least 9 octets: the parser looks at the first 9 octets to find the verb.
        CommandLimits {
            command_line: 9 + usize::from(header.command_line),
            parameter_line: 9 + 2 * usize::from(header.parameter_line),
            auth_line: 9 + 4 * usize::from(header.auth_line),
        }
    } else {
        CommandLimits::default()
    };
    let chunks = header.cuts.split(input, 2);

    let strict = || CommandParser::new().with_limits(limits);
    let lenient = || {
        CommandParser::new()
            .with_limits(limits)
            .accept_bare_lf(true)
    };

    let strict_whole = serve(strict(), &[input], header.sasl_steps);
    let strict_split = serve(strict(), &chunks, header.sasl_steps);
    assert_eq!(strict_whole, strict_split, "strict parser: whole vs split");

    let lenient_whole = serve(lenient(), &[input], header.sasl_steps);
    let lenient_split = serve(lenient(), &chunks, header.sasl_steps);
    assert_eq!(
        lenient_whole, lenient_split,
        "lenient parser: whole vs split"
    );

    if !has_bare_lf(input) {
        assert_eq!(strict_whole, lenient_whole, "no bare LF: strict vs lenient");
    }
});

/// Runs a server's read loop over `reads` and checks every step.
fn serve(mut parser: CommandParser, reads: &[&[u8]], sasl_steps: u32) -> Session {
    let longest = parser.limits().longest();
    let limits = *parser.limits();
    let mut buf: Vec<u8> = Vec::new();
    let mut outcomes = Vec::new();
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            let sasl = (sasl_steps >> (outcomes.len() % 32)) & 1 == 1;
            let (outcome, used) = if sasl {
                match parser.parse_auth_response(&buf) {
                    Parsed::Item(AuthResponse::Cancel, n) => (Some(Outcome::Cancel), Ok(n)),
                    Parsed::Item(AuthResponse::Data(text), n) => {
                        check_sasl_round_trip(text, limits, &buf[..n]);
                        (Some(Outcome::SaslData(text.to_owned())), Ok(n))
                    }
                    Parsed::Invalid(e, n) => (Some(Outcome::Invalid(e)), Ok(n)),
                    Parsed::Incomplete(n) => (None, Err(n)),
                }
            } else {
                match parser.parse(&buf) {
                    Parsed::Item(command, n) => {
                        check_command_round_trip(&command, limits, &buf[..n]);
                        (Some(Outcome::Command(command.into_owned())), Ok(n))
                    }
                    Parsed::Invalid(e, n) => (Some(Outcome::Invalid(e)), Ok(n)),
                    Parsed::Incomplete(n) => (None, Err(n)),
                }
            };
            match used {
                Ok(n) => {
                    // A complete line (valid or not): progress, ending at its LF.
                    assert!(n > 0 && n <= buf.len(), "used {n} of {}", buf.len());
                    assert_eq!(buf[n - 1], b'\n', "a line ends at a LF");
                    outcomes.extend(outcome);
                    buf.drain(..n);
                }
                Err(n) => {
                    assert!(n <= buf.len(), "incomplete used {n} of {}", buf.len());
                    buf.drain(..n);
                    // Asking again without new input changes nothing.
                    let mut again = parser.clone();
                    let repeat = if sasl {
                        again.parse_auth_response(&buf).map_unit()
                    } else {
                        again.parse(&buf).map_unit()
                    };
                    assert_eq!(repeat, Parsed::Incomplete(0), "incomplete is stable");
                    break;
                }
            }
        }
        assert!(
            buf.len() <= longest,
            "{} octets buffered, limit {longest}",
            buf.len()
        );
    }
    Session {
        outcomes,
        leftover: buf,
    }
}

trait MapUnit {
    fn map_unit(self) -> Parsed<()>;
}

impl<T> MapUnit for Parsed<T> {
    fn map_unit(self) -> Parsed<()> {
        match self {
            Parsed::Item(_, n) => Parsed::Item((), n),
            Parsed::Invalid(e, n) => Parsed::Invalid(e, n),
            Parsed::Incomplete(n) => Parsed::Incomplete(n),
        }
    }
}

/// Limits for re-parsing an encoding of `line`: our encoder ends lines with CRLF, one octet
/// more than a line the lenient parser took with a bare LF.
fn round_trip_limits(limits: CommandLimits, line: &[u8]) -> (CommandLimits, usize) {
    let slack = usize::from(!line.ends_with(b"\r\n"));
    let limits = CommandLimits {
        command_line: limits.command_line + slack,
        parameter_line: limits.parameter_line + slack,
        auth_line: limits.auth_line + slack,
    };
    (limits, line.len() + slack)
}

/// write_to, then parse: the same command, from the whole line. The encoding is never longer
/// than the line the command came from.
fn check_command_round_trip(command: &Command<'_>, limits: CommandLimits, line: &[u8]) {
    let mut wire = Vec::new();
    command.write_to(&mut wire);
    assert!(wire.ends_with(b"\r\n"), "{wire:?}");
    let (limits, longest) = round_trip_limits(limits, line);
    assert!(
        wire.len() <= longest,
        "{:?} re-encoded as the longer {:?}",
        String::from_utf8_lossy(line),
        String::from_utf8_lossy(&wire)
    );
    let mut parser = CommandParser::new().with_limits(limits);
    match parser.parse(&wire) {
        Parsed::Item(again, n) => {
            assert_eq!(
                &again,
                command,
                "re-parsed {:?}",
                String::from_utf8_lossy(&wire)
            );
            assert_eq!(n, wire.len());
        }
        other => panic!(
            "{command:?} encoded as {:?} parses as {other:?}",
            String::from_utf8_lossy(&wire)
        ),
    }
}

fn check_sasl_round_trip(text: &str, limits: CommandLimits, line: &[u8]) {
    let wire = format!("{text}\r\n");
    let (limits, _) = round_trip_limits(limits, line);
    let mut parser = CommandParser::new().with_limits(limits);
    assert_eq!(
        parser.parse_auth_response(wire.as_bytes()),
        Parsed::Item(AuthResponse::Data(text), wire.len())
    );
}
