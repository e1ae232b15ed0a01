//! kill -9 of a process that is committing batches: every checkpoint it reported as
//! committed is still there, and with exactly the jobs committed beside it.

mod common;

use chrono::Utc;
use common::{ch, job};
use qiao_store::{SqliteStore, Store};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "QIAO_STORE_CRASH_CHILD";

/// The child's role: commit batches as fast as it can, reporting each commit, until it is
/// killed. Does nothing in a normal test run.
#[test]
fn crash_child_role() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(std::path::Path::new(&path))
            .await
            .unwrap();
        let mut out = std::io::stdout();
        for i in 1i64.. {
            let changes = (0..200).map(|n| ch(&format!("k{n}"), i)).collect();
            store
                .commit_batch(
                    "f",
                    Some(&i.to_string()),
                    vec![job(&format!("f:{i}"), changes)],
                    vec![],
                    vec![],
                )
                .await
                .unwrap();
            writeln!(out, "committed {i}").unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test]
async fn a_committed_checkpoint_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child_role",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut last = 0i64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            last = n.parse().unwrap();
            if last >= 40 {
                break;
            }
        }
    }
    // SIGKILL: no destructors, no clean close, quite likely mid-transaction.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(last >= 40, "the child stopped early");

    let store = SqliteStore::open(&path).await.unwrap();
    let cp: i64 = store
        .checkpoint("f")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cp >= last, "checkpoint {cp} lost commits up to {last}");
    // The outbox holds exactly the jobs of the committed checkpoints, whole.
    let jobs = store.due_jobs("f", Utc::now(), 100_000).await.unwrap();
    assert_eq!(jobs.len() as i64, cp);
    assert!(jobs.iter().all(|j| j.changes.len() == 200));
    assert_eq!(jobs.last().unwrap().idempotency_key, format!("f:{cp}"));
}
