#!/usr/bin/env python3
"""An independent SMTP client for the end-to-end tests: Python's smtplib.

Usage: smtplib_client.py HOST PORT MODE [USER PASSWORD]
MODE: plain  - EHLO, one message to two recipients, 8-bit body, then an SMTPUTF8 message
      tls    - EHLO, STARTTLS, EHLO, AUTH (login() picks a mechanism), one message
Prints one JSON object: the replies it got. Exits non-zero on any unexpected reply.
"""
import email.policy
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage


def message(subject, body):
    msg = EmailMessage()
    msg["From"] = "sender@example.com"
    msg["To"] = "rcpt@example.org"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def main():
    host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    out = {}
    with smtplib.SMTP(host, port, local_hostname="smtplib.test", timeout=20) as smtp:
        code, _ = smtp.ehlo()
        out["ehlo"] = code
        out["features"] = sorted(smtp.esmtp_features.keys())
        if mode == "tls":
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            code, _ = smtp.starttls(context=context)
            out["starttls"] = code
            smtp.ehlo()
            out["features_tls"] = sorted(smtp.esmtp_features.keys())
            code, _ = smtp.login(sys.argv[4], sys.argv[5])
            out["auth"] = code
            refused = smtp.send_message(message("over tls", "hello over TLS\n"),
                                        to_addrs=["customer@elsewhere.test"])
            out["refused"] = refused
        else:
            body = message("plain", "caf\u00e9 8-bit body\n.leading dot\n")
            refused = smtp.sendmail(
                "sender@example.com",
                ["rcpt@example.org", "other@example.net"],
                body.as_bytes(policy=email.policy.SMTP),
                mail_options=["BODY=8BITMIME"],
            )
            out["refused"] = refused
            # Bytes with bare LF line ends go out unchanged with sendmail(): refused.
            try:
                smtp.sendmail("sender@example.com", ["rcpt@example.org"], body.as_bytes())
                out["bare_lf"] = 250
            except smtplib.SMTPDataError as e:
                out["bare_lf"] = e.smtp_code
                out["bare_lf_text"] = e.smtp_error.decode()
            refused = smtp.send_message(message("utf8", "unicode envelope\n"),
                                        from_addr="s\u00e9nder@example.com",
                                        to_addrs=["r\u00e9cipient@example.org"])
            out["refused_utf8"] = refused
        code, _ = smtp.noop()
        out["noop"] = code
    print(json.dumps(out))


if __name__ == "__main__":
    main()
