//! Durability and persistence: revisions survive reopening, acknowledged writes survive
//! SIGKILL, compaction keeps the database bounded under churn.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{db_size, eventually, open, options, val};
use kubelite_storage::{Backend, SqliteBackend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_distinct_revisions_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let db = db.clone();
        tasks.spawn(async move {
            let mut got = Vec::new();
            for i in 0..50 {
                let key = format!("/c/{t:02}/{i:02}");
                let kv = db
                    .create(&key, Box::new(move |rev| rev.to_string().into_bytes()))
                    .await
                    .unwrap();
                assert_eq!(kv.value, kv.mod_revision.to_string().as_bytes());
                got.push((key, kv.mod_revision));
            }
            got
        });
    }
    let mut all = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    let revs: HashSet<i64> = all.values().copied().collect();
    assert_eq!(revs.len(), 800, "revisions must be distinct");
    assert_eq!(revs.iter().max(), Some(&800));
    assert_eq!(db.current_revision(), 800);
    db.close();
    drop(db);

    let db = open(dir.path());
    assert_eq!(db.current_revision(), 800);
    let listed = db.list("/c/", None, 0, None).await.unwrap();
    let listed: BTreeMap<String, i64> = listed
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.mod_revision))
        .collect();
    assert_eq!(listed, all);
    assert_eq!(
        db.create("/c/next", val("x")).await.unwrap().mod_revision,
        801
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_continues_after_reopen_even_when_head_was_compacted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.create("/r/a", val("x")).await.unwrap();
        db.create("/r/b", val("x")).await.unwrap();
        db.delete("/r/b", None, val("t")).await.unwrap(); // 3: the newest row is a tombstone
        db.compact(3).await.unwrap(); // ... which compaction deletes
    }
    let db = open(dir.path());
    assert_eq!(db.current_revision(), 3);
    assert_eq!(db.compacted_revision(), 3);
    assert_eq!(db.create("/r/b", val("x")).await.unwrap().mod_revision, 4);
    assert_eq!(db.get("/r/a").await.unwrap().unwrap().mod_revision, 1);
}

/// 20,000 updates of 100 keys with compaction in between: file + WAL stay bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_stays_bounded_under_churn() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let path = db.path().to_owned();
    let mut revs = Vec::new();
    for k in 0..100 {
        revs.push(
            db.create(&format!("/churn/{k:03}"), val("init"))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    let value = vec![b'v'; 1024];
    let mut baseline = 0;
    let mut largest = 0;
    let (mut steady, mut last) = (0, 0);
    for round in 1..=200 {
        let mut tasks = tokio::task::JoinSet::new();
        for (k, rev) in revs.iter().enumerate() {
            let (db, value, rev) = (db.clone(), value.clone(), *rev);
            tasks.spawn(async move {
                let kv = db
                    .update(&format!("/churn/{k:03}"), rev, Box::new(move |_| value))
                    .await
                    .unwrap();
                (k, kv.mod_revision)
            });
        }
        while let Some(r) = tasks.join_next().await {
            let (k, rev) = r.unwrap();
            revs[k] = rev;
        }
        if round % 10 == 0 {
            // Keep the last 500 revisions, as the background policy would.
            db.compact(db.current_revision() - 500).await.unwrap();
            let size = db_size(&path);
            if baseline == 0 {
                baseline = size;
            }
            largest = largest.max(size);
            if round == 50 {
                steady = size;
            }
            last = size;
        }
    }
    assert_eq!(db.current_revision(), 100 + 20_000);
    eprintln!("db+wal after first compaction: {baseline} B, largest after compaction: {largest} B");
    // Without compaction the file would exceed 40 MB; with it, it plateaus.
    assert!(
        largest <= baseline * 2,
        "grew from {baseline} to {largest} bytes"
    );
    assert!(
        last <= steady + steady / 10,
        "still growing: {steady} -> {last} bytes"
    );
    assert_eq!(
        db.list("/churn/", None, 0, None).await.unwrap().kvs.len(),
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_keeps_the_configured_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.compact_interval = Some(Duration::from_millis(20));
    opts.keep_revisions = 50;
    opts.keep_window = Duration::ZERO;
    let db = SqliteBackend::open(opts).unwrap();
    let mut rev = db.create("/r/a", val("x")).await.unwrap().mod_revision;
    for _ in 0..199 {
        rev = db.update("/r/a", rev, val("x")).await.unwrap().mod_revision;
    }
    let compacted = {
        let db = db.clone();
        eventually(Duration::from_secs(10), move || {
            let db = db.clone();
            async move { db.compacted_revision() == 150 }
        })
    };
    assert!(
        compacted.await,
        "compacted revision is {}",
        db.compacted_revision()
    );
    assert!(db.watch("/r/", 149).await.is_err());
    assert!(db.watch("/r/", 150).await.is_ok());

    // A long keep_window holds compaction back even when the count window would allow it.
    let dir2 = tempfile::tempdir().unwrap();
    let mut opts = options(dir2.path());
    opts.compact_interval = Some(Duration::from_millis(10));
    opts.keep_revisions = 1;
    opts.keep_window = Duration::from_secs(3600);
    let db2 = SqliteBackend::open(opts).unwrap();
    for i in 0..20 {
        db2.create(&format!("/r/{i}"), val("x")).await.unwrap();
    }
    // Give the compactor many ticks; nothing may be compacted.
    let ticks = Instant::now();
    while ticks.elapsed() < Duration::from_millis(200) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(db2.compacted_revision(), 0);
    }
}

const CHILD_ENV: &str = "KUBELITE_STORAGE_CRASH_CHILD_DB";

/// Not a test on its own: when `acknowledged_writes_survive_sigkill` re-executes this test
/// binary with CHILD_ENV set, this writes forever and prints every acknowledged write.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut opts = options(Path::new(&path).parent().unwrap());
        // Compaction runs too, so crashes can also land in the middle of one.
        opts.compact_interval = Some(Duration::from_millis(5));
        opts.keep_revisions = 20;
        opts.keep_window = Duration::ZERO;
        opts.compact_chunk = 7;
        let db = SqliteBackend::open(opts).unwrap();
        let run = std::process::id();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..8 {
            let db: Arc<SqliteBackend> = db.clone();
            tasks.spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{run}/{t}/{i}");
                    let kv = db.create(&key, val("payload")).await.unwrap();
                    // Churn on a shared key so compaction has work to do.
                    let scratch = format!("/scratch/{t}");
                    match db.get(&scratch).await.unwrap() {
                        Some(old) => db
                            .delete(&scratch, Some(old.mod_revision), val("t"))
                            .await
                            .unwrap(),
                        None => db.create(&scratch, val("s")).await.unwrap(),
                    };
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {}", kv.mod_revision).unwrap();
                    out.flush().unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    });
}

/// Runs the writer above in a child process, SIGKILLs it mid-stream (three times on the
/// same database), and checks that every write it acknowledged is there after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = options(dir.path()).path;
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(String, i64)> = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_writer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let parse = |line: &str| -> Option<(String, i64)> {
            let mut parts = line.strip_prefix("ACK ")?.split(' ');
            Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
        };
        let before = acked.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Kill at a different point each round.
        let kill_after = 300 + 97 * round;
        while acked.len() - before < kill_after {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => acked.extend(parse(&line)),
                Err(e) => panic!(
                    "child stopped acknowledging after {} writes: {e}",
                    acked.len() - before
                ),
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acknowledgements printed before the kill are still in the pipe.
        reader.join().unwrap();
        acked.extend(rx.try_iter().filter_map(|l| parse(&l)));

        let db = SqliteBackend::open(options(dir.path())).unwrap();
        let max_acked = acked.iter().map(|(_, r)| *r).max().unwrap();
        assert!(db.current_revision() >= max_acked);
        for (key, rev) in &acked {
            let kv = db.get(key).await.unwrap();
            assert_eq!(
                kv.map(|kv| kv.mod_revision),
                Some(*rev),
                "lost acknowledged write {key}"
            );
        }
        let next = db
            .create(&format!("/after-crash/{round}"), val("x"))
            .await
            .unwrap();
        assert!(next.mod_revision > max_acked);
        db.close();
    }
    eprintln!("{} acknowledged writes survived 3 SIGKILLs", acked.len());
}
