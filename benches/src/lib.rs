//! Shared helpers for the criterion benches and the load tools: realistic inputs built the
//! same way in every bench, so numbers stay comparable between runs.
//!
//! It also holds the "fake ISP" used by the MTA's end-to-end tests and load runs:
//! - [`sink`]: an SMTP server that behaves like an ISP's MX (deferrals, bounces, a hidden
//!   rate limit, blocks, STARTTLS, BDAT), with counters and a record of accepted messages;
//! - [`dns`]: an in-process authoritative DNS server (MX, A, AAAA, TXT, null MX);
//! - [`load`]: the load generator behind `mta-load`;
//! - [`tls`]: self-signed and no-verify TLS for the above.
//!
//! Everything listens on loopback addresses chosen by the caller (port 0 for a free port).

#![warn(missing_docs)]

pub mod dns;
pub mod load;
pub mod sink;
pub mod tls;

/// A pipelined client burst: one MAIL, `recipients` RCPTs and DATA, as one buffer.
/// Returns the buffer and the number of commands in it.
pub fn pipelined_burst(recipients: usize) -> (Vec<u8>, usize) {
    let mut buf = Vec::with_capacity(64 * (recipients + 2));
    buf.extend_from_slice(
        b"MAIL FROM:<bounces+campaign-42@mail.example.com> SIZE=4096 BODY=8BITMIME\r\n",
    );
    for i in 0..recipients {
        buf.extend_from_slice(
            format!("RCPT TO:<customer.{i}@recipient-domain.example>\r\n").as_bytes(),
        );
    }
    buf.extend_from_slice(b"DATA\r\n");
    (buf, recipients + 2)
}

/// A message body of about `size` octets with CRLF line ends, shaped like real bulk mail:
/// headers, then 76-column lines (as quoted-printable and base64 produce), with a few lines
/// starting with a dot.
pub fn message_body(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size + 128);
    body.extend_from_slice(
        b"From: News <news@mail.example.com>\r\nTo: customer@recipient-domain.example\r\n\
Subject: Your weekly digest\r\nDate: Thu, 26 Nov 2026 12:00:00 +0000\r\n\
Message-ID: <20261126120000.42@mail.example.com>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n",
    );
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut line = 0usize;
    while body.len() < size {
        if line % 40 == 39 {
            body.extend_from_slice(b".a line that starts with a dot\r\n");
        } else {
            for i in 0..76 {
                body.push(alphabet[(line * 7 + i * 13) % alphabet.len()]);
            }
            body.extend_from_slice(b"\r\n");
        }
        line += 1;
    }
    body
}

/// `body` dot-stuffed and terminated, as it travels after a 354 reply.
pub fn data_wire(body: &[u8]) -> Vec<u8> {
    smtp_proto::stuff(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_have_the_promised_shape() {
        let (burst, commands) = pipelined_burst(10);
        assert_eq!(burst.split(|&b| b == b'\n').count() - 1, commands);
        let body = message_body(4096);
        assert!(body.len() >= 4096 && body.len() < 4096 + 128);
        assert!(data_wire(&body).ends_with(b"\r\n.\r\n"));
    }
}
