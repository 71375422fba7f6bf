//! A server's read loop over a BDAT session: `CommandParser` for command lines, and after each
//! `BDAT n` a `BdatReceiver` that takes the next `n` octets as message data.
//!
//! Checked:
//! - whole and split input (2-3 chunks cut anywhere) give the same events (commands, errors,
//!   chunks and their data, the partial chunk at the end) and the same leftover;
//! - `take` returns `min(remaining, input)` octets, from the front, and `remaining()` /
//!   `is_done()` follow; a done receiver takes nothing;
//! - every chunk's data is exactly the `n` octets that follow its BDAT line in the input.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use smtp_proto::{BdatReceiver, Command, CommandError, CommandParser, Parsed};
use smtp_proto_fuzz::Cuts;

#[derive(Debug, Arbitrary)]
struct Header {
    cuts: Cuts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Command(Command<'static>),
    Invalid(CommandError),
    /// A whole chunk: where its data starts in the input, and the data.
    Chunk {
        start: usize,
        data: Vec<u8>,
    },
    /// The input ended inside a chunk: its data so far and what is still missing.
    PartialChunk {
        start: usize,
        data: Vec<u8>,
        remaining: u64,
    },
}

#[derive(Debug, PartialEq, Eq)]
struct Session {
    events: Vec<Event>,
    leftover: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(header) = Header::arbitrary(&mut u) else {
        return;
    };
    let input = u.take_rest();
    let whole = serve(&[input]);
    let split = serve(&header.cuts.split(input, 2));
    assert_eq!(whole, split, "whole vs split");
    for event in &whole.events {
        match event {
            Event::Chunk { start, data } | Event::PartialChunk { start, data, .. } => {
                assert_eq!(&input[*start..*start + data.len()], &data[..]);
            }
            _ => {}
        }
    }
});

fn serve(reads: &[&[u8]]) -> Session {
    let mut parser = CommandParser::new();
    let mut buf: Vec<u8> = Vec::new();
    // Octets of the input drained from `buf` so far.
    let mut pos = 0;
    let mut events = Vec::new();
    let mut chunk: Option<(BdatReceiver, usize, Vec<u8>)> = None;
    for read in reads {
        buf.extend_from_slice(read);
        loop {
            if let Some((rx, _, data)) = &mut chunk {
                let before = rx.remaining();
                let taken = rx.take(&buf);
                let expected = usize::try_from(before).map_or(buf.len(), |r| r.min(buf.len()));
                assert_eq!(taken, &buf[..expected]);
                assert_eq!(rx.remaining(), before - expected as u64);
                assert_eq!(rx.is_done(), rx.remaining() == 0);
                data.extend_from_slice(taken);
                buf.drain(..expected);
                pos += expected;
                if !rx.is_done() {
                    assert!(buf.is_empty());
                    break;
                }
                assert_eq!(rx.take(b"QUIT\r\n"), b"", "a done chunk takes nothing");
                let (_, start, data) = chunk.take().expect("inside a chunk");
                events.push(Event::Chunk { start, data });
                continue;
            }
            match parser.parse(&buf) {
                Parsed::Item(command, n) => {
                    assert!(n > 0 && n <= buf.len());
                    if let Command::Bdat { size, .. } = command {
                        chunk = Some((BdatReceiver::new(size), pos + n, Vec::new()));
                    }
                    events.push(Event::Command(command.into_owned()));
                    buf.drain(..n);
                    pos += n;
                }
                Parsed::Invalid(e, n) => {
                    assert!(n > 0 && n <= buf.len());
                    events.push(Event::Invalid(e));
                    buf.drain(..n);
                    pos += n;
                }
                Parsed::Incomplete(n) => {
                    buf.drain(..n);
                    pos += n;
                    break;
                }
            }
        }
    }
    if let Some((rx, start, data)) = chunk {
        events.push(Event::PartialChunk {
            start,
            data,
            remaining: rx.remaining(),
        });
    }
    Session {
        events,
        leftover: buf,
    }
}
