//! ESMTP parameters of MAIL and RCPT as typed values.
//!
//! MAIL takes SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531), REQUIRETLS
//! (RFC 8689), RET and ENVID (RFC 3461) and AUTH (RFC 4954). RCPT takes NOTIFY and ORCPT
//! (RFC 3461). Anything else, a parameter given twice, or a value outside its grammar is a
//! [`ParamError`]. xtext values (ENVID, AUTH, ORCPT) are validated and kept encoded, exactly as
//! they will be relayed; [`decode_xtext`] decodes them for display.

use std::borrow::Cow;

use bitflags::bitflags;

use crate::error::{ParamError, ParamName};

/// The BODY parameter: what the message body contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Body {
    /// `BODY=7BIT`: US-ASCII lines.
    SevenBit,
    /// `BODY=8BITMIME`: lines may hold octets above 127.
    EightBitMime,
    /// `BODY=BINARYMIME`: arbitrary octets, only with BDAT (RFC 3030).
    BinaryMime,
}

impl Body {
    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// The RET parameter: how much of the message a failure DSN returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `RET=FULL`: the whole message.
    Full,
    /// `RET=HDRS`: headers only.
    Headers,
}

impl Ret {
    /// The value as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Headers => "HDRS",
        }
    }
}

bitflags! {
    /// Value-less MAIL parameters that are present or not.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MailFlags: u8 {
        /// `SMTPUTF8`: the envelope or headers use UTF-8.
        const SMTPUTF8 = 1;
        /// `REQUIRETLS`: every hop must use TLS.
        const REQUIRETLS = 2;
    }
}

bitflags! {
    /// The conditions of NOTIFY other than NEVER.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct NotifyOn: u8 {
        /// `SUCCESS`: report delivery.
        const SUCCESS = 1;
        /// `FAILURE`: report failure.
        const FAILURE = 2;
        /// `DELAY`: report delay.
        const DELAY = 4;
    }
}

/// The NOTIFY parameter of RCPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notify {
    /// `NOTIFY=NEVER`: no DSN at all.
    Never,
    /// `NOTIFY=` one or more of SUCCESS, FAILURE, DELAY.
    On(NotifyOn),
}

/// The ORCPT parameter: the original recipient, `addr-type;xtext`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Orcpt<'a> {
    /// The address type, usually `rfc822` (or `utf-8`, RFC 6533).
    pub addr_type: Cow<'a, str>,
    /// The address, still xtext-encoded as on the wire.
    pub address: Cow<'a, str>,
}

impl Orcpt<'_> {
    /// A copy that owns its text.
    pub fn into_owned(self) -> Orcpt<'static> {
        Orcpt {
            addr_type: Cow::Owned(self.addr_type.into_owned()),
            address: Cow::Owned(self.address.into_owned()),
        }
    }
}

/// The parameters of one MAIL command.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct MailParams<'a> {
    /// `SIZE=`: the size the client declares, in octets.
    pub size: Option<u64>,
    /// `BODY=`.
    pub body: Option<Body>,
    /// SMTPUTF8 and REQUIRETLS.
    pub flags: MailFlags,
    /// `RET=`.
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext-encoded as on the wire.
    pub envid: Option<Cow<'a, str>>,
    /// `AUTH=`, xtext-encoded as on the wire (`<>` when the submitter is unknown).
    pub auth: Option<Cow<'a, str>>,
}

impl MailParams<'_> {
    /// A copy that owns its text.
    pub fn into_owned(self) -> MailParams<'static> {
        MailParams {
            size: self.size,
            body: self.body,
            flags: self.flags,
            ret: self.ret,
            envid: self.envid.map(|v| Cow::Owned(v.into_owned())),
            auth: self.auth.map(|v| Cow::Owned(v.into_owned())),
        }
    }

    /// Appends the parameters, each preceded by a space, in a fixed order.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(size) = self.size {
            out.extend_from_slice(b" SIZE=");
            out.extend_from_slice(size.to_string().as_bytes());
        }
        if let Some(body) = self.body {
            out.extend_from_slice(b" BODY=");
            out.extend_from_slice(body.as_str().as_bytes());
        }
        if self.flags.contains(MailFlags::SMTPUTF8) {
            out.extend_from_slice(b" SMTPUTF8");
        }
        if self.flags.contains(MailFlags::REQUIRETLS) {
            out.extend_from_slice(b" REQUIRETLS");
        }
        if let Some(ret) = self.ret {
            out.extend_from_slice(b" RET=");
            out.extend_from_slice(ret.as_str().as_bytes());
        }
        if let Some(envid) = &self.envid {
            out.extend_from_slice(b" ENVID=");
            out.extend_from_slice(envid.as_bytes());
        }
        if let Some(auth) = &self.auth {
            out.extend_from_slice(b" AUTH=");
            out.extend_from_slice(auth.as_bytes());
        }
    }
}

/// The parameters of one RCPT command.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RcptParams<'a> {
    /// `NOTIFY=`.
    pub notify: Option<Notify>,
    /// `ORCPT=`.
    pub orcpt: Option<Orcpt<'a>>,
}

impl RcptParams<'_> {
    /// A copy that owns its text.
    pub fn into_owned(self) -> RcptParams<'static> {
        RcptParams {
            notify: self.notify,
            orcpt: self.orcpt.map(Orcpt::into_owned),
        }
    }

    /// Appends the parameters, each preceded by a space, in a fixed order.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        if let Some(notify) = self.notify {
            out.extend_from_slice(b" NOTIFY=");
            match notify {
                Notify::Never => out.extend_from_slice(b"NEVER"),
                Notify::On(on) => {
                    let mut first = true;
                    for (flag, name) in [
                        (NotifyOn::SUCCESS, "SUCCESS"),
                        (NotifyOn::FAILURE, "FAILURE"),
                        (NotifyOn::DELAY, "DELAY"),
                    ] {
                        if on.contains(flag) {
                            if !first {
                                out.push(b',');
                            }
                            out.extend_from_slice(name.as_bytes());
                            first = false;
                        }
                    }
                }
            }
        }
        if let Some(orcpt) = &self.orcpt {
            out.extend_from_slice(b" ORCPT=");
            out.extend_from_slice(orcpt.addr_type.as_bytes());
            out.push(b';');
            out.extend_from_slice(orcpt.address.as_bytes());
        }
    }
}

/// Longest ENVID value we accept, in octets (RFC 3461 section 4.4 says 100).
const MAX_ENVID: usize = 100;
/// Longest ORCPT value we accept, in octets (RFC 3461 section 4.2 says 500).
const MAX_ORCPT: usize = 500;
/// Longest SIZE value in digits (RFC 1870: 1*20DIGIT).
const MAX_SIZE_DIGITS: usize = 20;

/// Splits a parameter string (" KEY=VALUE KEY2") into (keyword, optional value) pairs.
/// Extra spaces between parameters are tolerated; clients in the wild send them.
fn split_params(text: &str) -> impl Iterator<Item = Result<(&str, Option<&str>), ParamError>> {
    text.split(' ').filter(|p| !p.is_empty()).map(|param| {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (param, None),
        };
        let kb = key.as_bytes();
        // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
        if kb.is_empty()
            || !kb[0].is_ascii_alphanumeric()
            || !kb.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ParamError::Malformed);
        }
        if let Some(v) = value {
            // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531)
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| ((33..=126).contains(&b) && b != b'=') || b >= 0x80)
            {
                return Err(ParamError::Malformed);
            }
        }
        Ok((key, value))
    })
}

fn unknown(key: &str) -> ParamError {
    let mut name = key.to_ascii_uppercase();
    name.truncate(32);
    ParamError::Unknown(name)
}

fn no_value(name: ParamName, value: Option<&str>) -> Result<(), ParamError> {
    match value {
        None => Ok(()),
        Some(_) => Err(ParamError::InvalidValue(name)),
    }
}

fn need_value(name: ParamName, value: Option<&str>) -> Result<&str, ParamError> {
    value.ok_or(ParamError::InvalidValue(name))
}

fn set_once<T>(slot: &mut Option<T>, name: ParamName, value: T) -> Result<(), ParamError> {
    if slot.is_some() {
        return Err(ParamError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// Parses the parameters of MAIL.
pub(crate) fn parse_mail_params(text: &str) -> Result<MailParams<'_>, ParamError> {
    let mut params = MailParams::default();
    for item in split_params(text) {
        let (key, value) = item?;
        let name = match key.len() {
            4 if key.eq_ignore_ascii_case("SIZE") => ParamName::Size,
            4 if key.eq_ignore_ascii_case("BODY") => ParamName::Body,
            8 if key.eq_ignore_ascii_case("SMTPUTF8") => ParamName::SmtpUtf8,
            10 if key.eq_ignore_ascii_case("REQUIRETLS") => ParamName::RequireTls,
            3 if key.eq_ignore_ascii_case("RET") => ParamName::Ret,
            5 if key.eq_ignore_ascii_case("ENVID") => ParamName::EnvId,
            4 if key.eq_ignore_ascii_case("AUTH") => ParamName::Auth,
            _ => return Err(unknown(key)),
        };
        match name {
            ParamName::Size => {
                let v = need_value(name, value)?;
                set_once(&mut params.size, name, parse_size(v)?)?;
            }
            ParamName::Body => {
                let v = need_value(name, value)?;
                let body = if v.eq_ignore_ascii_case("7BIT") {
                    Body::SevenBit
                } else if v.eq_ignore_ascii_case("8BITMIME") {
                    Body::EightBitMime
                } else if v.eq_ignore_ascii_case("BINARYMIME") {
                    Body::BinaryMime
                } else {
                    return Err(ParamError::InvalidValue(name));
                };
                set_once(&mut params.body, name, body)?;
            }
            ParamName::SmtpUtf8 | ParamName::RequireTls => {
                no_value(name, value)?;
                let flag = if name == ParamName::SmtpUtf8 {
                    MailFlags::SMTPUTF8
                } else {
                    MailFlags::REQUIRETLS
                };
                if params.flags.contains(flag) {
                    return Err(ParamError::Duplicate(name));
                }
                params.flags |= flag;
            }
            ParamName::Ret => {
                let v = need_value(name, value)?;
                let ret = if v.eq_ignore_ascii_case("FULL") {
                    Ret::Full
                } else if v.eq_ignore_ascii_case("HDRS") {
                    Ret::Headers
                } else {
                    return Err(ParamError::InvalidValue(name));
                };
                set_once(&mut params.ret, name, ret)?;
            }
            ParamName::EnvId => {
                let v = need_value(name, value)?;
                if v.len() > MAX_ENVID || !is_xtext(v) {
                    return Err(ParamError::InvalidValue(name));
                }
                set_once(&mut params.envid, name, Cow::Borrowed(v))?;
            }
            ParamName::Auth => {
                let v = need_value(name, value)?;
                if !is_xtext(v) {
                    return Err(ParamError::InvalidValue(name));
                }
                set_once(&mut params.auth, name, Cow::Borrowed(v))?;
            }
            ParamName::Notify | ParamName::Orcpt => unreachable!("not a MAIL parameter"),
        }
    }
    Ok(params)
}

fn parse_size(v: &str) -> Result<u64, ParamError> {
    if v.is_empty() || v.len() > MAX_SIZE_DIGITS || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::InvalidValue(ParamName::Size));
    }
    v.parse::<u64>()
        .map_err(|_| ParamError::InvalidValue(ParamName::Size))
}

/// Parses the parameters of RCPT.
pub(crate) fn parse_rcpt_params(text: &str) -> Result<RcptParams<'_>, ParamError> {
    let mut params = RcptParams::default();
    for item in split_params(text) {
        let (key, value) = item?;
        if key.eq_ignore_ascii_case("NOTIFY") {
            let name = ParamName::Notify;
            let v = need_value(name, value)?;
            set_once(&mut params.notify, name, parse_notify(v)?)?;
        } else if key.eq_ignore_ascii_case("ORCPT") {
            let name = ParamName::Orcpt;
            let v = need_value(name, value)?;
            set_once(&mut params.orcpt, name, parse_orcpt(v)?)?;
        } else {
            return Err(unknown(key));
        }
    }
    Ok(params)
}

fn parse_notify(v: &str) -> Result<Notify, ParamError> {
    let invalid = ParamError::InvalidValue(ParamName::Notify);
    if v.eq_ignore_ascii_case("NEVER") {
        return Ok(Notify::Never);
    }
    let mut on = NotifyOn::empty();
    for item in v.split(',') {
        let flag = if item.eq_ignore_ascii_case("SUCCESS") {
            NotifyOn::SUCCESS
        } else if item.eq_ignore_ascii_case("FAILURE") {
            NotifyOn::FAILURE
        } else if item.eq_ignore_ascii_case("DELAY") {
            NotifyOn::DELAY
        } else {
            // includes NEVER mixed with others, and empty items
            return Err(invalid);
        };
        if on.contains(flag) {
            return Err(invalid);
        }
        on |= flag;
    }
    Ok(Notify::On(on))
}

fn parse_orcpt(v: &str) -> Result<Orcpt<'_>, ParamError> {
    let invalid = ParamError::InvalidValue(ParamName::Orcpt);
    if v.len() > MAX_ORCPT {
        return Err(invalid);
    }
    let (addr_type, address) = v.split_once(';').ok_or(invalid.clone())?;
    // addr-type = atom
    if addr_type.is_empty()
        || !addr_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
    {
        return Err(invalid);
    }
    let valid = if addr_type.eq_ignore_ascii_case("utf-8") {
        // RFC 6533 utf-8-addr-xtext / unitext: xtext plus UTF-8 and \x{HEX} escapes; we only
        // need it to be free of the characters that break the parameter grammar.
        !address.is_empty()
    } else {
        is_xtext(address)
    };
    if !valid {
        return Err(invalid);
    }
    Ok(Orcpt {
        addr_type: Cow::Borrowed(addr_type),
        address: Cow::Borrowed(address),
    })
}

/// True if `v` is non-empty xtext (RFC 3461 section 4): printable ASCII except `+` and `=`,
/// with `+XX` hex escapes.
pub fn is_xtext(v: &str) -> bool {
    let b = v.as_bytes();
    if b.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                if i + 2 >= b.len() {
                    return false;
                }
                if !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                    return false;
                }
                i += 3;
            }
            b'=' => return false,
            33..=126 => i += 1,
            _ => return false,
        }
    }
    true
}

/// Decodes xtext (`+2B` → `+`). Returns `None` if `v` is not valid xtext.
pub fn decode_xtext(v: &str) -> Option<Cow<'_, str>> {
    if !is_xtext(v) {
        return None;
    }
    if !v.contains('+') {
        return Some(Cow::Borrowed(v));
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Encodes text as xtext: `+`, `=`, and octets outside 33..=126 become `+XX`.
pub fn encode_xtext(v: &str) -> Cow<'_, str> {
    let needs = |b: u8| b == b'+' || b == b'=' || !(33..=126).contains(&b);
    if !v.bytes().any(needs) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    for b in v.bytes() {
        if needs(b) {
            out.push_str(&format!("+{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_params_table() {
        let table: &[(&str, Result<MailParams<'_>, ParamError>)] = &[
            ("", Ok(MailParams::default())),
            (
                " SIZE=12345 BODY=8BITMIME",
                Ok(MailParams {
                    size: Some(12345),
                    body: Some(Body::EightBitMime),
                    ..Default::default()
                }),
            ),
            (
                " size=0 body=binarymime smtputf8 requiretls ret=hdrs envid=QQ+2B1 auth=<>",
                Ok(MailParams {
                    size: Some(0),
                    body: Some(Body::BinaryMime),
                    flags: MailFlags::SMTPUTF8 | MailFlags::REQUIRETLS,
                    ret: Some(Ret::Headers),
                    envid: Some("QQ+2B1".into()),
                    auth: Some("<>".into()),
                }),
            ),
            (
                "  SIZE=1  ",
                Ok(MailParams {
                    size: Some(1),
                    ..Default::default()
                }),
            ),
            (
                " SIZE=18446744073709551615",
                Ok(MailParams {
                    size: Some(u64::MAX),
                    ..Default::default()
                }),
            ),
            (
                " SIZE=18446744073709551616",
                Err(ParamError::InvalidValue(ParamName::Size)),
            ),
            (" SIZE=-1", Err(ParamError::InvalidValue(ParamName::Size))),
            (" SIZE", Err(ParamError::InvalidValue(ParamName::Size))),
            (
                " SIZE=1 SIZE=2",
                Err(ParamError::Duplicate(ParamName::Size)),
            ),
            (
                " SMTPUTF8 SMTPUTF8",
                Err(ParamError::Duplicate(ParamName::SmtpUtf8)),
            ),
            (
                " SMTPUTF8=yes",
                Err(ParamError::InvalidValue(ParamName::SmtpUtf8)),
            ),
            (" BODY=9BIT", Err(ParamError::InvalidValue(ParamName::Body))),
            (" RET=ALL", Err(ParamError::InvalidValue(ParamName::Ret))),
            (
                " ENVID=a+zz",
                Err(ParamError::InvalidValue(ParamName::EnvId)),
            ),
            (
                " ENVID=a+4",
                Err(ParamError::InvalidValue(ParamName::EnvId)),
            ),
            (" NOTIFY=NEVER", Err(ParamError::Unknown("NOTIFY".into()))),
            (" X-FOO=bar", Err(ParamError::Unknown("X-FOO".into()))),
            (" =bar", Err(ParamError::Malformed)),
            (" SIZE=", Err(ParamError::Malformed)),
            (" -X", Err(ParamError::Malformed)),
            (" SIZE=1=2", Err(ParamError::Malformed)),
        ];
        for (input, expected) in table {
            assert_eq!(&parse_mail_params(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn rcpt_params_table() {
        let table: &[(&str, Result<RcptParams<'_>, ParamError>)] = &[
            ("", Ok(RcptParams::default())),
            (
                " NOTIFY=NEVER",
                Ok(RcptParams {
                    notify: Some(Notify::Never),
                    orcpt: None,
                }),
            ),
            (
                " NOTIFY=SUCCESS,delay ORCPT=rfc822;user+40example.com",
                Ok(RcptParams {
                    notify: Some(Notify::On(NotifyOn::SUCCESS | NotifyOn::DELAY)),
                    orcpt: Some(Orcpt {
                        addr_type: "rfc822".into(),
                        address: "user+40example.com".into(),
                    }),
                }),
            ),
            (
                " NOTIFY=NEVER,SUCCESS",
                Err(ParamError::InvalidValue(ParamName::Notify)),
            ),
            (
                " NOTIFY=SUCCESS,SUCCESS",
                Err(ParamError::InvalidValue(ParamName::Notify)),
            ),
            (" NOTIFY=", Err(ParamError::Malformed)),
            (
                " NOTIFY=,",
                Err(ParamError::InvalidValue(ParamName::Notify)),
            ),
            (
                " ORCPT=user@example.com",
                Err(ParamError::InvalidValue(ParamName::Orcpt)),
            ),
            (
                " ORCPT=rfc822;",
                Err(ParamError::InvalidValue(ParamName::Orcpt)),
            ),
            (" SIZE=1", Err(ParamError::Unknown("SIZE".into()))),
            (
                " NOTIFY=NEVER NOTIFY=NEVER",
                Err(ParamError::Duplicate(ParamName::Notify)),
            ),
        ];
        for (input, expected) in table {
            assert_eq!(&parse_rcpt_params(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn xtext_round_trips() {
        for text in ["plain", "a+b=c", "spa ce", "<>", "ünï"] {
            let encoded = encode_xtext(text);
            assert!(is_xtext(&encoded), "{encoded}");
            assert_eq!(decode_xtext(&encoded).as_deref(), Some(text));
        }
        assert_eq!(decode_xtext("a+2"), None);
        assert_eq!(decode_xtext(""), None);
    }

    #[test]
    fn params_render_then_parse_to_the_same_value() {
        let mail = MailParams {
            size: Some(42),
            body: Some(Body::SevenBit),
            flags: MailFlags::SMTPUTF8,
            ret: Some(Ret::Full),
            envid: Some("id+2B1".into()),
            auth: Some("user+40example.com".into()),
        };
        let mut out = Vec::new();
        mail.write_to(&mut out);
        assert_eq!(
            parse_mail_params(std::str::from_utf8(&out).unwrap()),
            Ok(mail)
        );
        let rcpt = RcptParams {
            notify: Some(Notify::On(NotifyOn::FAILURE | NotifyOn::DELAY)),
            orcpt: Some(Orcpt {
                addr_type: "rfc822".into(),
                address: "a+40b.example".into(),
            }),
        };
        let mut out = Vec::new();
        rcpt.write_to(&mut out);
        assert_eq!(
            parse_rcpt_params(std::str::from_utf8(&out).unwrap()),
            Ok(rcpt)
        );
    }
}
