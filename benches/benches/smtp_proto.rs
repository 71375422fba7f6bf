//! criterion benches of the SMTP wire layer: command parsing and DATA decoding.
//!
//! Run with `cargo bench -p benches --bench smtp_proto`. Figures go into
//! `docs/performance.md`.

use std::hint::black_box;

use benches::{data_wire, message_body, pipelined_burst};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::{
    CommandParser, DataLimits, DataReceiver, DataStatus, DotStuffer, Parsed, ReplyParser,
};

fn command_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_parse");
    for recipients in [1usize, 50] {
        let (burst, commands) = pipelined_burst(recipients);
        group.throughput(Throughput::Elements(commands as u64));
        group.bench_function(format!("mail_rcpt{recipients}_data"), |b| {
            b.iter(|| {
                let mut parser = CommandParser::new();
                let mut pos = 0;
                let mut count = 0;
                while let Parsed::Item(command, used) = parser.parse(black_box(&burst[pos..])) {
                    black_box(&command);
                    pos += used;
                    count += 1;
                }
                assert_eq!(count, commands);
            })
        });
    }
    group.finish();
}

fn data_decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_decode");
    for (name, size) in [("4KiB", 4 * 1024), ("1MiB", 1024 * 1024)] {
        let wire = data_wire(&message_body(size));
        let mut out = Vec::with_capacity(wire.len());
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut rx = DataReceiver::new(DataLimits::default());
                let status = rx.feed(black_box(&wire), &mut out);
                assert!(matches!(
                    status,
                    DataStatus::Complete { result: Ok(()), .. }
                ));
            })
        });
    }
    group.finish();
}

fn data_encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_encode");
    for (name, size) in [("4KiB", 4 * 1024), ("1MiB", 1024 * 1024)] {
        let body = message_body(size);
        let mut out = Vec::with_capacity(body.len() * 2);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut stuffer = DotStuffer::new();
                stuffer.encode(black_box(&body), &mut out);
                stuffer.finish(&mut out);
            })
        });
    }
    group.finish();
}

fn reply_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply_parse");
    let wire =
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n";
    group.throughput(Throughput::Elements(4));
    group.bench_function("pipelined_4", |b| {
        b.iter(|| {
            let parser = ReplyParser::new();
            let mut pos = 0;
            while let Ok(Some((reply, used))) = parser.parse(black_box(&wire[pos..])) {
                black_box(reply.code());
                pos += used;
            }
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    command_parsing,
    data_decoding,
    data_encoding,
    reply_parsing
);
criterion_main!(benches);
