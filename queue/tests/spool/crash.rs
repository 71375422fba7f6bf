//! A real crash: a writer process is killed with SIGKILL in the middle of a stream of stores;
//! every store it had acknowledged must be there, exact, after a reopen.
//!
//! The writer is this same test binary, re-run with a filter that selects the ignored
//! `crash_writer` test and an environment variable naming the spool directory: no extra
//! binary target is needed, and Cargo always builds it.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use queue::{MessageId, Spool};

use crate::common::{TempDir, body_for, envelope_for, open, runtime};

const DIR_VAR: &str = "QUEUE_CRASH_TEST_SPOOL";
const WORKERS: usize = 8;
/// Bound on the writer's work if it is never killed.
const PER_WORKER: usize = 2_000;

/// The writer process: stores messages from several tasks and prints `stored <id>` after
/// each store resolved.
#[test]
#[ignore = "run as a child process by sigkill_mid_stream_loses_no_acknowledged_message"]
fn crash_writer() {
    let dir = std::env::var_os(DIR_VAR).expect("run by the sigkill test, which sets the spool");
    // The parent may have had the spool open a moment ago: wait for its lock.
    let (spool, _) = open(std::path::Path::new(&dir));
    let spool = Arc::new(spool);
    let out = Arc::new(Mutex::new(std::io::stdout()));
    runtime().block_on(async {
        let tasks: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (spool, out) = (Arc::clone(&spool), Arc::clone(&out));
                tokio::spawn(async move {
                    for _ in 0..PER_WORKER {
                        let id = MessageId::generate();
                        spool
                            .store(id, envelope_for(id), body_for(id))
                            .await
                            .unwrap();
                        let mut out = out.lock().unwrap();
                        writeln!(out, "stored {id}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// Runs the writer until it has acknowledged at least `kill_after` stores, kills it, and
/// returns every id it acknowledged (including lines already in the pipe when it died).
fn run_and_kill(dir: &TempDir, kill_after: usize) -> Vec<MessageId> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::crash_writer", "--exact", "--ignored", "--nocapture"])
        .env(DIR_VAR, dir.spool())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(id) = line.strip_prefix("stored ")
                && tx.send(id.parse::<MessageId>().unwrap()).is_err()
            {
                break;
            }
        }
    });
    let mut acknowledged = Vec::new();
    while acknowledged.len() < kill_after {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(id) => acknowledged.push(id),
            Err(e) => {
                let _ = child.kill();
                panic!("writer stopped after {} stores: {e}", acknowledged.len());
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix: no destructor, no flush, no exit handler.
    let status = child.wait().unwrap();
    assert!(!status.success(), "the writer was killed, not finished");
    reader.join().unwrap();
    acknowledged.extend(rx.try_iter());
    acknowledged
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_message() {
    let dir = TempDir::new("crash");
    let mut all_acknowledged = Vec::new();
    // Three crashes on the same spool, each recovery followed by more writes.
    for (round, kill_after) in [150, 400, 250].into_iter().enumerate() {
        let acknowledged = run_and_kill(&dir, kill_after);
        assert!(acknowledged.len() >= kill_after);
        all_acknowledged.extend(acknowledged);

        let (spool, recovery) = open(&dir.spool());
        assert!(
            recovery.quarantined.is_empty(),
            "round {round}: {:?}",
            recovery.quarantined
        );
        for &id in &all_acknowledged {
            let body = spool
                .body(id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged {id} lost: {e}"));
            assert_eq!(body.as_ref(), &body_for(id)[..], "round {round}: {id}");
            assert_eq!(spool.envelope(id).unwrap(), envelope_for(id), "{id}");
        }
        // Stores in flight at the kill may or may not be there, but never half there.
        for message in &recovery.pending {
            assert_eq!(message.envelope, envelope_for(message.id));
            assert_eq!(
                spool.body(message.id).unwrap().as_ref(),
                &body_for(message.id)[..]
            );
        }
        assert!(recovery.pending.len() >= all_acknowledged.len());
        // Closed and dropped before the next writer opens the directory.
        runtime().block_on(spool.close()).unwrap();
    }
}
