//! An owned server reply, kept after the read buffer moves on (for outcomes, logs and DSNs).

use std::fmt;

use smtp_proto::{EnhancedCode, Reply};

/// A server reply: code, enhanced code and text (all lines joined with a space).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpReply {
    /// The three-digit code.
    pub code: u16,
    /// The enhanced status code, when the server sent one.
    pub enhanced: Option<EnhancedCode>,
    /// The text, without the code and the enhanced code.
    pub text: String,
}

impl SmtpReply {
    /// Copies a parsed reply.
    pub fn from_reply(reply: &Reply<'_>) -> Self {
        SmtpReply {
            code: reply.code().get(),
            enhanced: reply.enhanced(),
            text: reply.message().into_owned(),
        }
    }

    /// A reply we make up for a local decision (e.g. `5.3.4` when the message is larger than
    /// the server's SIZE limit), so every outcome carries a reply.
    pub fn local(code: u16, enhanced: (u8, u16, u16), text: impl Into<String>) -> Self {
        SmtpReply {
            code,
            enhanced: EnhancedCode::new(enhanced.0, enhanced.1, enhanced.2),
            text: text.into(),
        }
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: do not try again.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced code, or one derived from the reply class (`4.0.0`, `5.0.0`, `2.0.0`).
    pub fn status(&self) -> EnhancedCode {
        self.enhanced.unwrap_or_else(|| {
            let class = match self.code / 100 {
                2 => 2,
                4 => 4,
                _ => 5,
            };
            EnhancedCode::new(class, 0, 0).expect("valid class")
        })
    }
}

impl fmt::Display for SmtpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.enhanced {
            Some(e) => write!(f, "{} {} {}", self.code, e, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}
