//! Table tests across modules: every row is run whole, split at every byte boundary, and
//! (for commands) pipelined with all other rows in one buffer.

use std::borrow::Cow;

use crate::*;

type Outcome = Result<Command<'static>, CommandError>;

/// Feeds `chunks` to a parser the way a server does (append, parse until incomplete, drop
/// what was used) and returns every outcome in order.
fn run_commands(parser: &mut CommandParser, chunks: &[&[u8]]) -> Vec<Outcome> {
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&buf) {
                Parsed::Item(c, n) => {
                    out.push(Ok(c.into_owned()));
                    buf.drain(..n);
                }
                Parsed::Invalid(e, n) => {
                    out.push(Err(e));
                    buf.drain(..n);
                }
                Parsed::Incomplete(n) => {
                    buf.drain(..n);
                    break;
                }
            }
        }
    }
    out
}

fn mailbox(text: &str) -> Mailbox<'static> {
    Mailbox::parse(text).unwrap().into_owned()
}

fn mail(from: &str, params: MailParams<'static>) -> Outcome {
    let from = if from.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(mailbox(from))
    };
    Ok(Command::Mail { from, params })
}

fn rcpt(to: &str, params: RcptParams<'static>) -> Outcome {
    Ok(Command::Rcpt {
        to: ForwardPath::Mailbox(mailbox(to)),
        params,
    })
}

fn command_table() -> Vec<(Vec<u8>, Outcome)> {
    use AddressError as A;
    use CommandError as E;
    use SyntaxError as S;
    let host = |h: &'static str| Cow::Borrowed(h);
    let rows: Vec<(Vec<u8>, Outcome)> = vec![
        (
            b"HELO client.example\r\n".to_vec(),
            Ok(Command::Helo {
                host: host("client.example"),
            }),
        ),
        (
            b"ehlo client.example\r\n".to_vec(),
            Ok(Command::Ehlo {
                host: host("client.example"),
            }),
        ),
        (
            b"EHLO [192.0.2.7]\r\n".to_vec(),
            Ok(Command::Ehlo {
                host: host("[192.0.2.7]"),
            }),
        ),
        (
            b"EHLO [IPv6:::1]\r\n".to_vec(),
            Ok(Command::Ehlo {
                host: host("[IPv6:::1]"),
            }),
        ),
        (
            b"EHLO my_pc\r\n".to_vec(),
            Ok(Command::Ehlo {
                host: host("my_pc"),
            }),
        ),
        (b"EHLO\r\n".to_vec(), Err(E::Syntax(S::MissingArgument))),
        (
            b"EHLO a b\r\n".to_vec(),
            Err(E::Syntax(S::UnexpectedArgument)),
        ),
        (
            b"EHLO bad..name\r\n".to_vec(),
            Err(E::Syntax(S::InvalidHost)),
        ),
        (b"EHLO [1.2.3]\r\n".to_vec(), Err(E::Syntax(S::InvalidHost))),
        (
            b"MAIL FROM:<a@example.com>\r\n".to_vec(),
            mail("a@example.com", MailParams::default()),
        ),
        (
            b"mail from: <a@example.com>\r\n".to_vec(),
            mail("a@example.com", MailParams::default()),
        ),
        (
            b"MAIL FROM:<>\r\n".to_vec(),
            mail("", MailParams::default()),
        ),
        (
            b"MAIL FROM:<a@example.com> SIZE=4096 BODY=8BITMIME RET=HDRS ENVID=x+2By\r\n".to_vec(),
            mail(
                "a@example.com",
                MailParams {
                    size: Some(4096),
                    body: Some(Body::EightBitMime),
                    ret: Some(Ret::Headers),
                    envid: Some(Cow::Borrowed("x+2By")),
                    ..Default::default()
                },
            ),
        ),
        (
            "MAIL FROM:<δοκιμή@παράδειγμα.δοκιμή> SMTPUTF8\r\n"
                .as_bytes()
                .to_vec(),
            mail(
                "δοκιμή@παράδειγμα.δοκιμή",
                MailParams {
                    flags: MailFlags::SMTPUTF8,
                    ..Default::default()
                },
            ),
        ),
        (
            "MAIL FROM:<δοκιμή@example.com>\r\n".as_bytes().to_vec(),
            Err(E::Utf8NotPermitted),
        ),
        (
            b"MAIL FROM:<\xff@example.com>\r\n".to_vec(),
            Err(E::Syntax(S::InvalidUtf8)),
        ),
        (
            b"MAIL FROM:a@example.com\r\n".to_vec(),
            Err(E::Address(A::MissingAngleBrackets)),
        ),
        (
            b"MAIL <a@example.com>\r\n".to_vec(),
            Err(E::Syntax(S::MissingPathKeyword)),
        ),
        (
            b"MAIL FROM:<postmaster>\r\n".to_vec(),
            Err(E::Address(A::MissingDomain)),
        ),
        (
            b"MAIL FROM:<a@example.com> FOO=1\r\n".to_vec(),
            Err(E::Parameter(ParamError::Unknown("FOO".into()))),
        ),
        (
            b"MAIL FROM:<a@example.com> SIZE=x\r\n".to_vec(),
            Err(E::Parameter(ParamError::InvalidValue(ParamName::Size))),
        ),
        (
            b"MAIL FROM:<a@example.com>\tSIZE=1\r\n".to_vec(),
            Err(E::Syntax(S::ControlCharacter)),
        ),
        (
            b"MAIL FROM:<a@example.com>SIZE=1\r\n".to_vec(),
            Err(E::Address(A::TrailingCharacters)),
        ),
        (
            b"RCPT TO:<b@example.org>\r\n".to_vec(),
            rcpt("b@example.org", RcptParams::default()),
        ),
        (
            b"RCPT TO:<postmaster>\r\n".to_vec(),
            Ok(Command::Rcpt {
                to: ForwardPath::Postmaster,
                params: RcptParams::default(),
            }),
        ),
        (
            b"RCPT TO:<@hop.example:b@example.org>\r\n".to_vec(),
            rcpt("b@example.org", RcptParams::default()),
        ),
        (
            b"RCPT TO:<b@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b+40example.org\r\n"
                .to_vec(),
            rcpt(
                "b@example.org",
                RcptParams {
                    notify: Some(Notify::On(NotifyOn::FAILURE | NotifyOn::DELAY)),
                    orcpt: Some(Orcpt {
                        addr_type: "rfc822".into(),
                        address: "b+40example.org".into(),
                    }),
                },
            ),
        ),
        (b"RCPT TO:<>\r\n".to_vec(), Err(E::Address(A::NullPath))),
        (
            b"RCPT TO:<u@ours.example.>\r\n".to_vec(),
            Err(E::Address(A::InvalidDomain)),
        ),
        (
            b"RCPT FROM:<b@example.org>\r\n".to_vec(),
            Err(E::Syntax(S::MissingPathKeyword)),
        ),
        (
            b"RCPT TO:<b@example.org> SIZE=1\r\n".to_vec(),
            Err(E::Parameter(ParamError::Unknown("SIZE".into()))),
        ),
        (b"DATA\r\n".to_vec(), Ok(Command::Data)),
        (b"data \r\n".to_vec(), Ok(Command::Data)),
        (
            b"DATA now\r\n".to_vec(),
            Err(E::Syntax(S::UnexpectedArgument)),
        ),
        (
            b"BDAT 1000\r\n".to_vec(),
            Ok(Command::Bdat {
                size: 1000,
                last: false,
            }),
        ),
        (
            b"BDAT 0 LAST\r\n".to_vec(),
            Ok(Command::Bdat {
                size: 0,
                last: true,
            }),
        ),
        (b"BDAT\r\n".to_vec(), Err(E::Syntax(S::MissingArgument))),
        (b"BDAT -1\r\n".to_vec(), Err(E::Syntax(S::InvalidNumber))),
        (
            b"BDAT 99999999999999999999\r\n".to_vec(),
            Err(E::Syntax(S::InvalidNumber)),
        ),
        (
            b"BDAT 10 FIRST\r\n".to_vec(),
            Err(E::Syntax(S::UnexpectedArgument)),
        ),
        (b"RSET\r\n".to_vec(), Ok(Command::Rset)),
        (b"NOOP\r\n".to_vec(), Ok(Command::Noop)),
        (b"NOOP anything at all\r\n".to_vec(), Ok(Command::Noop)),
        (b"QUIT\r\n".to_vec(), Ok(Command::Quit)),
        (
            b"VRFY someone\r\n".to_vec(),
            Ok(Command::Vrfy {
                arg: Cow::Borrowed("someone"),
            }),
        ),
        (b"VRFY\r\n".to_vec(), Err(E::Syntax(S::MissingArgument))),
        (
            b"EXPN list\r\n".to_vec(),
            Ok(Command::Expn {
                arg: Cow::Borrowed("list"),
            }),
        ),
        (b"HELP\r\n".to_vec(), Ok(Command::Help { topic: None })),
        (
            b"HELP MAIL\r\n".to_vec(),
            Ok(Command::Help {
                topic: Some(Cow::Borrowed("MAIL")),
            }),
        ),
        (b"STARTTLS\r\n".to_vec(), Ok(Command::StartTls)),
        (b"starttls\r\n".to_vec(), Ok(Command::StartTls)),
        (
            b"AUTH PLAIN\r\n".to_vec(),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial_response: None,
            }),
        ),
        (
            b"AUTH PLAIN AGFwcABzZWNyZXQ=\r\n".to_vec(),
            Ok(Command::Auth {
                mechanism: Mechanism::Plain,
                initial_response: Some(Cow::Borrowed("AGFwcABzZWNyZXQ=")),
            }),
        ),
        (
            b"AUTH LOGIN =\r\n".to_vec(),
            Ok(Command::Auth {
                mechanism: Mechanism::Login,
                initial_response: Some(Cow::Borrowed("")),
            }),
        ),
        (
            b"AUTH PLAIN not*base64\r\n".to_vec(),
            Err(E::Syntax(S::InvalidBase64)),
        ),
        (b"AUTH GSSAPI\r\n".to_vec(), Err(E::UnknownMechanism)),
        (b"AUTH\r\n".to_vec(), Err(E::Syntax(S::MissingArgument))),
        (b"XYZZY\r\n".to_vec(), Err(E::UnknownCommand)),
        (b"\r\n".to_vec(), Err(E::UnknownCommand)),
        (b"MAI\xc1 FROM:<a@b.c>\r\n".to_vec(), Err(E::UnknownCommand)),
        (b"NOOP\n".to_vec(), Err(E::BareLineFeed)),
        (b"NOOP\rNOOP\r\n".to_vec(), Err(E::BareCarriageReturn)),
        (
            b"NOOP \x00\r\n".to_vec(),
            Err(E::Syntax(S::ControlCharacter)),
        ),
        (
            b"VRFY caf\xc3\xa9\r\n".to_vec(),
            Err(E::Syntax(S::NonAscii)),
        ),
    ];
    rows
}

#[test]
fn command_table_whole_split_and_pipelined() {
    let rows = command_table();
    for (input, expected) in &rows {
        let whole = run_commands(&mut CommandParser::new(), &[input]);
        assert_eq!(
            whole,
            vec![expected.clone()],
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        for split in 1..input.len() {
            let (a, b) = input.split_at(split);
            let got = run_commands(&mut CommandParser::new(), &[a, b]);
            assert_eq!(
                got,
                vec![expected.clone()],
                "input {:?} split at {split}",
                String::from_utf8_lossy(input)
            );
        }
        // one octet at a time
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            run_commands(&mut CommandParser::new(), &bytes),
            vec![expected.clone()]
        );
    }
    let pipelined: Vec<u8> = rows.iter().flat_map(|(i, _)| i.clone()).collect();
    let expected: Vec<Outcome> = rows.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        run_commands(&mut CommandParser::new(), &[&pipelined]),
        expected
    );
}

#[test]
fn bare_lf_command_lines_are_accepted_only_when_asked() {
    let mut parser = CommandParser::new().accept_bare_lf(true);
    assert_eq!(
        run_commands(&mut parser, &[b"NOOP\nQUIT\r\n"]),
        vec![Ok(Command::Noop), Ok(Command::Quit)]
    );
}

#[test]
fn overlong_lines_are_skipped_and_reported_once() {
    let limits = CommandLimits::default();
    // A NOOP line one octet over the limit, then a valid command.
    let mut long = b"NOOP ".to_vec();
    long.resize(limits.command_line - 1, b'x');
    long.extend_from_slice(b"\r\n");
    assert_eq!(long.len(), limits.command_line + 1);
    let mut exact = b"NOOP ".to_vec();
    exact.resize(limits.command_line - 2, b'x');
    exact.extend_from_slice(b"\r\n");
    let mut input = long.clone();
    input.extend_from_slice(&exact);
    input.extend_from_slice(b"QUIT\r\n");
    let expected = vec![
        Err(CommandError::LineTooLong),
        Ok(Command::Noop),
        Ok(Command::Quit),
    ];
    assert_eq!(run_commands(&mut CommandParser::new(), &[&input]), expected);
    for split in 1..input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(
            run_commands(&mut CommandParser::new(), &[a, b]),
            expected,
            "split at {split}"
        );
    }
    // A line far longer than any limit, fed in pieces: the parser never asks to keep more than
    // one limit's worth and still reports exactly one error.
    let huge = vec![b'A'; 100_000];
    let mut parser = CommandParser::new();
    let mut buf = Vec::new();
    let mut outcomes = Vec::new();
    for chunk in huge.chunks(4096).chain([&b"\r\nQUIT\r\n"[..]]) {
        buf.extend_from_slice(chunk);
        loop {
            match parser.parse(&buf) {
                Parsed::Item(c, n) => {
                    outcomes.push(Ok(c.into_owned()));
                    buf.drain(..n);
                }
                Parsed::Invalid(e, n) => {
                    outcomes.push(Err(e));
                    buf.drain(..n);
                }
                Parsed::Incomplete(n) => {
                    buf.drain(..n);
                    break;
                }
            }
        }
        assert!(buf.len() <= limits.longest() + 4096);
    }
    assert_eq!(
        outcomes,
        vec![Err(CommandError::LineTooLong), Ok(Command::Quit)]
    );
    // MAIL may be longer than plain commands, up to the parameter limit.
    let mut mail_line = b"MAIL FROM:<a@example.com> ENVID=".to_vec();
    mail_line.resize(limits.command_line + 10, b'x');
    mail_line.extend_from_slice(b"\r\n");
    let got = run_commands(&mut CommandParser::new(), &[&mail_line]);
    assert_eq!(
        got,
        vec![Err(CommandError::Parameter(ParamError::InvalidValue(
            ParamName::EnvId
        )))]
    );
}

#[test]
fn auth_responses_parse() {
    let mut parser = CommandParser::new();
    assert_eq!(
        parser.parse_auth_response(b"dXNlcg==\r\n"),
        Parsed::Item(AuthResponse::Data("dXNlcg=="), 10)
    );
    assert_eq!(
        parser.parse_auth_response(b"*\r\n"),
        Parsed::Item(AuthResponse::Cancel, 3)
    );
    assert_eq!(
        parser.parse_auth_response(b"\r\n"),
        Parsed::Item(AuthResponse::Data(""), 2)
    );
    assert_eq!(parser.parse_auth_response(b"dXNl"), Parsed::Incomplete(0));
    assert_eq!(
        parser.parse_auth_response(b"not base64!\r\n"),
        Parsed::Invalid(CommandError::Syntax(SyntaxError::InvalidBase64), 13)
    );
}

#[test]
fn commands_encode_then_parse_to_the_same_value() {
    for (input, expected) in command_table() {
        let Ok(command) = expected else { continue };
        let mut wire = Vec::new();
        command.write_to(&mut wire);
        let got = run_commands(&mut CommandParser::new(), &[&wire]);
        assert_eq!(
            got,
            vec![Ok(command.clone())],
            "from {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

// ---------------------------------------------------------------- DATA

/// Runs DATA content through a receiver in the given chunks. Returns the body, the result
/// and the octets left over after the terminator.
fn receive(
    chunks: &[&[u8]],
    limits: DataLimits,
) -> (Vec<u8>, Option<Result<(), DataError>>, Vec<u8>) {
    let mut rx = DataReceiver::new(limits);
    let mut body = Vec::new();
    let mut rest = Vec::new();
    let mut result = None;
    for chunk in chunks {
        if result.is_some() {
            rest.extend_from_slice(chunk);
            continue;
        }
        match rx.feed(chunk, &mut body) {
            DataStatus::Incomplete => {}
            DataStatus::Complete {
                consumed,
                result: r,
            } => {
                result = Some(r);
                rest.extend_from_slice(&chunk[consumed..]);
            }
        }
    }
    (body, result, rest)
}

type DataRow = (&'static [u8], Result<&'static [u8], DataError>);

fn data_table() -> Vec<DataRow> {
    vec![
        (b".\r\n", Ok(b"")),
        (
            b"Subject: x\r\n\r\nHello\r\n.\r\n",
            Ok(b"Subject: x\r\n\r\nHello\r\n"),
        ),
        (b"..\r\n.\r\n", Ok(b".\r\n")),
        (b"...\r\n.\r\n", Ok(b"..\r\n")),
        (b".x\r\n.\r\n", Ok(b"x\r\n")),
        (b"a\r\n..b\r\n.\r\n", Ok(b"a\r\n.b\r\n")),
        (b"a.\r\n.\r\n", Ok(b"a.\r\n")),
        (b"\r\n.\r\n", Ok(b"\r\n")),
        (
            b"caf\xc3\xa9 8bit \xff\r\n.\r\n",
            Ok(b"caf\xc3\xa9 8bit \xff\r\n"),
        ),
        (b"a\nb\r\n.\r\n", Err(DataError::BareLineFeed)),
        (b"a\rb\r\n.\r\n", Err(DataError::BareCarriageReturn)),
        (b"a\r\r\n.\r\n", Err(DataError::BareCarriageReturn)),
        (b".\n.\r\n", Err(DataError::BareLineFeed)),
        (b".\r.\r\n", Err(DataError::BareCarriageReturn)),
        (b"\n", Err(DataError::BareLineFeed)),
    ]
}

#[test]
fn data_table_whole_and_split() {
    for (wire, expected) in data_table() {
        let mut input = wire.to_vec();
        if expected.is_err() && !wire.ends_with(b"\r\n.\r\n") {
            input.extend_from_slice(b"\r\n.\r\n");
        }
        input.extend_from_slice(b"QUIT\r\n");
        let check = |chunks: &[&[u8]], what: &str| {
            let (body, result, rest) = receive(chunks, DataLimits::default());
            match expected {
                Ok(b) => {
                    assert_eq!(
                        result,
                        Some(Ok(())),
                        "{what} {:?}",
                        String::from_utf8_lossy(wire)
                    );
                    assert_eq!(body, b, "{what} {:?}", String::from_utf8_lossy(wire));
                }
                Err(e) => assert_eq!(
                    result,
                    Some(Err(e)),
                    "{what} {:?}",
                    String::from_utf8_lossy(wire)
                ),
            }
            assert_eq!(
                rest,
                b"QUIT\r\n",
                "{what} {:?}",
                String::from_utf8_lossy(wire)
            );
        };
        check(&[&input], "whole");
        for split in 1..input.len() {
            let (a, b) = input.split_at(split);
            check(&[a, b], &format!("split {split}"));
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        check(&bytes, "bytewise");
    }
}

/// The SMTP smuggling end-of-data variants: none of them may end the data, so the smuggled
/// MAIL FROM stays message text; the real end comes later and the body is refused.
#[test]
fn smuggling_variants_never_end_data() {
    let variants: [(&[u8], DataError); 7] = [
        (b"\n.\n", DataError::BareLineFeed),
        (b"\n.\r\n", DataError::BareLineFeed),
        (b"\r\n.\n", DataError::BareLineFeed),
        (b"\r.\r", DataError::BareCarriageReturn),
        (b"\r\n.\r\r\n", DataError::BareCarriageReturn),
        (b"\r.\r\n", DataError::BareCarriageReturn),
        (b"\n.\r", DataError::BareLineFeed),
    ];
    for (terminator, error) in variants {
        let mut input = b"Subject: hi\r\n\r\nbody".to_vec();
        input.extend_from_slice(terminator);
        input.extend_from_slice(
            b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\n",
        );
        input.extend_from_slice(b"smuggled\r\n.\r\nQUIT\r\n");
        for split in 0..input.len() {
            let (a, b) = input.split_at(split);
            let (_, result, rest) = receive(&[a, b], DataLimits::default());
            assert_eq!(result, Some(Err(error)), "{terminator:?} split {split}");
            assert_eq!(rest, b"QUIT\r\n", "{terminator:?} split {split}");
        }
    }
}

#[test]
fn data_limits() {
    let limits = DataLimits {
        max_size: 10,
        max_line: 1000,
    };
    let (body, result, _) = receive(&[b"0123456789\r\n.\r\n"], limits);
    assert_eq!(result, Some(Err(DataError::TooLarge)));
    assert!(body.len() <= 10);
    let (_, result, _) = receive(&[b"01234567\r\n.\r\n"], limits);
    assert_eq!(result, Some(Ok(())));
    // line limit counts the wire line with its CRLF: 998 + 2 is fine, 999 + 2 is not
    let ok = [vec![b'a'; 998], b"\r\n.\r\n".to_vec()].concat();
    assert_eq!(receive(&[&ok], DataLimits::default()).1, Some(Ok(())));
    let long = [vec![b'a'; 999], b"\r\n.\r\n".to_vec()].concat();
    assert_eq!(
        receive(&[&long], DataLimits::default()).1,
        Some(Err(DataError::LineTooLong))
    );
    // a stuffed dot counts on the wire
    let dotted = [b"..".to_vec(), vec![b'a'; 997], b"\r\n.\r\n".to_vec()].concat();
    assert_eq!(
        receive(&[&dotted], DataLimits::default()).1,
        Some(Err(DataError::LineTooLong))
    );
}

#[test]
fn check_text_applies_the_data_rules_to_unframed_text() {
    let long = [vec![b'a'; 999], b"\r\n".to_vec()].concat();
    let fits = [vec![b'a'; 998], b"\r\n".to_vec()].concat();
    let unterminated = vec![b'a'; 999];
    let table: [(&[u8], Result<(), DataError>); 10] = [
        (b"", Ok(())),
        (b"Subject: x\r\n\r\nbody\r\n", Ok(())),
        (b"no final line end", Ok(())),
        (b"a\nb\r\n", Err(DataError::BareLineFeed)),
        (b"a\rb\r\n", Err(DataError::BareCarriageReturn)),
        (b"ends in CR\r", Err(DataError::BareCarriageReturn)),
        (b"\r\n.\n\r\n", Err(DataError::BareLineFeed)),
        (&fits, Ok(())),
        (&long, Err(DataError::LineTooLong)),
        (&unterminated, Err(DataError::LineTooLong)),
    ];
    for (text, expected) in table {
        assert_eq!(
            check_text(text, 1000),
            expected,
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
    // The same precedence as the DATA verdict: bare LF before a long line.
    let both = [vec![b'a'; 1200], b"\n".to_vec()].concat();
    assert_eq!(check_text(&both, 1000), Err(DataError::BareLineFeed));
}

#[test]
fn stuffing_table() {
    let table: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (b"a\r\n.b\r\n..\r\n", b"a\r\n..b\r\n...\r\n.\r\n"),
        (b"a\nb\rc\r", b"a\r\nb\r\nc\r\n.\r\n"),
        (b"\n.\n", b"\r\n..\r\n.\r\n"),
    ];
    for (body, wire) in table {
        assert_eq!(stuff(body), *wire, "body {body:?}");
        for split in 1..body.len() {
            let mut out = Vec::new();
            let mut s = DotStuffer::new();
            s.encode(&body[..split], &mut out);
            s.encode(&body[split..], &mut out);
            s.finish(&mut out);
            assert_eq!(out, *wire, "body {body:?} split {split}");
        }
    }
}

#[test]
fn stuff_then_unstuff_gives_the_body_back() {
    let bodies: &[&[u8]] = &[
        b"",
        b"\r\n",
        b"Subject: x\r\n\r\n.\r\n..\r\n.leading\r\nend\r\n",
        b".\r\n.\r\n.\r\n",
        b"no final line end",
    ];
    for body in bodies {
        let wire = stuff(body);
        assert!(!has_bare_line_end(&wire), "{wire:?}");
        let (got, result, rest) = receive(&[&wire], DataLimits::default());
        assert_eq!(result, Some(Ok(())));
        assert!(rest.is_empty());
        let mut expected = body.to_vec();
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        assert_eq!(got, expected);
    }
}

fn has_bare_line_end(wire: &[u8]) -> bool {
    wire.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => wire.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || wire[i - 1] != b'\r',
        _ => false,
    })
}

// ---------------------------------------------------------------- replies

type ReplyRow = (
    &'static [u8],
    Result<(u16, Option<&'static str>, &'static str), ReplyError>,
);

fn reply_table() -> Vec<ReplyRow> {
    vec![
        (b"250 OK\r\n", Ok((250, None, "OK"))),
        (
            b"250 2.1.0 Sender OK\r\n",
            Ok((250, Some("2.1.0"), "Sender OK")),
        ),
        (b"220\r\n", Ok((220, None, ""))),
        (b"354 Go ahead\n", Ok((354, None, "Go ahead"))),
        (
            b"550-5.7.1 Blocked\r\n550-5.7.1 see https://example.com/x\r\n550 5.7.1 bye\r\n",
            Ok((
                550,
                Some("5.7.1"),
                "Blocked 5.7.1 see https://example.com/x 5.7.1 bye",
            )),
        ),
        (
            b"421 5.7.28 slow down\r\n",
            Ok((421, None, "5.7.28 slow down")),
        ),
        (b"250-a\r\n251 b\r\n", Err(ReplyError::InconsistentCode)),
        (b"25O OK\r\n", Err(ReplyError::Syntax)),
        (b"250xOK\r\n", Err(ReplyError::Syntax)),
        (b"699 no\r\n", Err(ReplyError::Syntax)),
        (b"\r\n", Err(ReplyError::Syntax)),
    ]
}

#[test]
fn reply_table_whole_and_split() {
    let parser = ReplyParser::new();
    for (wire, expected) in reply_table() {
        let got = parser.parse(wire).map(|r| {
            let (reply, used) = r.expect("complete");
            assert_eq!(used, wire.len());
            (
                reply.code().get(),
                reply.enhanced().map(|e| e.to_string()),
                reply.message().into_owned(),
            )
        });
        let expected = expected.map(|(c, e, m)| (c, e.map(str::to_owned), m.to_owned()));
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(wire));
        // Any proper prefix is incomplete unless it already holds the error.
        for split in 1..wire.len() {
            match parser.parse(&wire[..split]) {
                Ok(None) => {}
                Ok(Some(_)) => panic!("prefix {split} of {wire:?} complete"),
                Err(e) => assert_eq!(
                    Err(e),
                    expected.clone().map(|_| ()),
                    "prefix {split} of {wire:?}"
                ),
            }
        }
    }
}

#[test]
fn replies_render_then_parse_to_the_same_value() {
    let rows = [
        (250, Some((2, 0, 0)), "Ok: queued as 01JD"),
        (421, Some((4, 3, 2)), "too many connections"),
        (550, None, "one\ntwo\nthree"),
        (354, None, "go ahead"),
    ];
    for (code, enhanced, text) in rows {
        let code = ReplyCode::new(code).unwrap();
        let enhanced = enhanced.and_then(|(c, s, d)| EnhancedCode::new(c, s, d));
        let mut wire = Vec::new();
        write_reply(&mut wire, code, enhanced, text);
        let (reply, used) = ReplyParser::new().parse(&wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(reply.code(), code);
        assert_eq!(reply.enhanced(), enhanced);
        let lines: Vec<String> = reply
            .lines()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let expected: Vec<String> = text
            .split('\n')
            .map(|l| match enhanced {
                Some(e) => format!("{e} {l}"),
                None => l.to_owned(),
            })
            .collect();
        assert_eq!(lines, expected);
    }
}

#[test]
fn pipelined_replies_parse_one_after_another() {
    let wire = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no such user\r\n354 go\r\n";
    let parser = ReplyParser::new();
    let mut pos = 0;
    let mut codes = Vec::new();
    while let Some((reply, used)) = parser.parse(&wire[pos..]).unwrap() {
        codes.push(reply.code().get());
        pos += used;
    }
    assert_eq!(codes, [250, 250, 550, 354]);
    assert_eq!(pos, wire.len());
}

#[test]
fn overlong_replies_are_errors() {
    let line = [b"250 ".to_vec(), vec![b'x'; MAX_CLIENT_REPLY_LINE]].concat();
    assert_eq!(ReplyParser::new().parse(&line), Err(ReplyError::TooLong));
    let many: Vec<u8> = std::iter::repeat_n(
        &b"250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"[..],
        2000,
    )
    .flatten()
    .copied()
    .collect();
    assert_eq!(ReplyParser::new().parse(&many), Err(ReplyError::TooLong));
}

// ---------------------------------------------------------------- regressions found by fuzzing

#[test]
fn data_verdict_does_not_depend_on_segmentation() {
    let cases: [(&[u8], DataLimits, DataError); 2] = [
        (
            b"ab\nc\r\n.\r\n",
            DataLimits {
                max_size: 1,
                max_line: 1000,
            },
            DataError::BareLineFeed,
        ),
        (
            b"ab\r\n.\r\n",
            DataLimits {
                max_size: 0,
                max_line: 2,
            },
            DataError::LineTooLong,
        ),
    ];
    for (input, limits, error) in cases {
        for split in 0..input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(
                receive(&[a, b], limits).1,
                Some(Err(error)),
                "{input:?} split {split}"
            );
        }
    }
}

#[test]
fn reply_message_skips_a_zero_padded_enhanced_code() {
    for (wire, message) in [
        (&b"250 2.1.00 Ok\r\n"[..], "Ok"),
        (b"550 5.01.001 User unknown\r\n", "User unknown"),
    ] {
        let (reply, _) = ReplyParser::new().parse(wire).unwrap().unwrap();
        assert_eq!(reply.message(), message);
    }
}

#[test]
fn a_mailbox_always_fits_in_a_path() {
    let label = "d".repeat(63);
    let domain = [label.as_str(); 4].join(".");
    assert_eq!(
        Mailbox::parse(&format!("u@{domain}")),
        Err(AddressError::PathTooLong)
    );
    let shorter = &domain[..domain.len() - 3];
    let text = format!("u@{shorter}");
    let mailbox = Mailbox::parse(&text).unwrap();
    assert_eq!(format!("<{mailbox}>").len(), 256);
}
