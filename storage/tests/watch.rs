//! Watch behaviour: history replay then live events, prefixes, compaction, slow watchers,
//! and no gaps/duplicates while writers race with new watchers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{open, options, val, val_rev};
use kubelite_storage::{Backend, Error, Event, EventKind, SqliteBackend, TryNext, Watcher};

const WAIT: Duration = Duration::from_secs(10);

async fn next(w: &mut Watcher) -> Event {
    tokio::time::timeout(WAIT, w.next())
        .await
        .expect("timed out waiting for an event")
        .expect("watch stream ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_zero_replays_history_then_live() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create("/r/a", val_rev("a")).await.unwrap(); // 1
    db.update("/r/a", 1, val_rev("a")).await.unwrap(); // 2
    db.delete("/r/a", None, val_rev("tomb")).await.unwrap(); // 3
    db.create("/r/b", val_rev("b")).await.unwrap(); // 4

    let mut w = db.watch("/r/", 0).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.mod_revision, e.kv.create_revision),
        (EventKind::Create, 1, 1)
    );
    assert_eq!(&e.kv.value[..], b"a@1");
    assert!(e.prev.is_none());
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.mod_revision, e.kv.create_revision),
        (EventKind::Update, 2, 1)
    );
    let prev = e.prev.unwrap();
    assert_eq!(
        (prev.mod_revision, prev.create_revision, &prev.value[..]),
        (1, 1, &b"a@1"[..])
    );
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.mod_revision, &e.kv.value[..]),
        (EventKind::Delete, 3, &b"tomb@3"[..])
    );
    assert_eq!(e.prev.unwrap().value, &b"a@2"[..]);
    assert_eq!(next(&mut w).await.kv.key, "/r/b");
    assert!(matches!(w.try_next(), TryNext::Empty));
    assert_eq!(w.last_revision(), 4);

    // Live events carry the same shape as replayed ones.
    db.update("/r/b", 4, val_rev("b")).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!((e.kind, e.kv.mod_revision), (EventKind::Update, 5));
    assert_eq!(e.prev.unwrap().value, &b"b@4"[..]);
    db.delete("/r/b", Some(5), val("t")).await.unwrap();
    let e = next(&mut w).await;
    assert_eq!(
        (e.kind, e.kv.mod_revision, e.prev.unwrap().mod_revision),
        (EventKind::Delete, 6, 5)
    );

    // From the middle of history, and from the future.
    let mut mid = db.watch("/r/", 2).await.unwrap();
    let revs: Vec<i64> = [next(&mut mid).await, next(&mut mid).await]
        .iter()
        .map(|e| e.kv.mod_revision)
        .collect();
    assert_eq!(revs, [3, 4]);
    let mut future = db.watch("/r/", 8).await.unwrap();
    db.create("/r/c", val("c")).await.unwrap(); // 7: skipped by `future`
    db.create("/r/d", val("d")).await.unwrap(); // 8: skipped
    db.create("/r/e", val("e")).await.unwrap(); // 9
    assert_eq!(next(&mut future).await.kv.mod_revision, 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_filters_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create("/p/1", val("x")).await.unwrap();
    db.create("/pp/1", val("x")).await.unwrap();
    let mut w = db.watch("/p/", 0).await.unwrap();
    db.create("/pp/2", val("x")).await.unwrap();
    db.create("/q/1", val("x")).await.unwrap();
    db.create("/p/2", val("x")).await.unwrap();
    assert_eq!(next(&mut w).await.kv.key, "/p/1");
    assert_eq!(next(&mut w).await.kv.key, "/p/2");
    assert!(matches!(w.try_next(), TryNext::Empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_compacted_revision_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..5 {
        db.create(&format!("/r/{i}"), val("x")).await.unwrap();
    }
    db.compact(3).await.unwrap();
    match db.watch("/r/", 2).await {
        Err(Error::Compacted { compacted }) => assert_eq!(compacted, 3),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = db.watch("/r/", 3).await.unwrap();
    assert_eq!(next(&mut w).await.kv.mod_revision, 4);
    assert_eq!(next(&mut w).await.kv.mod_revision, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_is_dropped_while_writers_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.watch_buffer = 16;
    let db = SqliteBackend::open(opts).unwrap();
    let mut slow = db.watch("/r/", 0).await.unwrap();
    let mut fast = db.watch("/r/", 0).await.unwrap();
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(e) = fast.next().await {
            seen.push(e.kv.mod_revision);
            progress_tx.send_replace(seen.len());
            if seen.len() == 200 {
                break;
            }
        }
        seen
    });
    // Writers never wait for the slow watcher, which reads nothing meanwhile. (They stay
    // within half a buffer of the fast one, so a busy machine that delays its reader task
    // cannot make it lag: the test is about the slow one.)
    let writes = async {
        for i in 0..200usize {
            db.create(&format!("/r/{i:03}"), val("x")).await.unwrap();
            let _ = progress.wait_for(|n| n + 8 > i).await;
        }
    };
    tokio::time::timeout(WAIT, writes)
        .await
        .expect("writers blocked");
    let seen = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert_eq!(seen, (1..=200).collect::<Vec<_>>());

    // The slow one gets a gap-free prefix of the events, then its stream ends.
    let mut got = Vec::new();
    while let Some(e) = tokio::time::timeout(WAIT, slow.next()).await.unwrap() {
        got.push(e.kv.mod_revision);
    }
    assert!(
        !got.is_empty() && got.len() < 200,
        "got {} events",
        got.len()
    );
    assert_eq!(got, (1..=got.len() as i64).collect::<Vec<_>>());
    assert!(matches!(slow.try_next(), TryNext::Closed));
    // Re-watching from the last revision seen resumes without a gap.
    let mut again = db.watch("/r/", *got.last().unwrap()).await.unwrap();
    assert_eq!(next(&mut again).await.kv.mod_revision, got.len() as i64 + 1);
}

/// Watchers opened while writers are running see every revision after their `from`
/// exactly once and in order (the live/history hand-over has no gap and no duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_racing_writers_see_no_gaps_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let db: Arc<SqliteBackend> = open(dir.path());
    const TOTAL: i64 = 600;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..6 {
        let db = db.clone();
        writers.spawn(async move {
            for i in 0..TOTAL / 6 {
                let key = format!("/r/{w}/{}", i % 10);
                match db.get(&key).await.unwrap() {
                    Some(kv) => db.update(&key, kv.mod_revision, val("u")).await.unwrap(),
                    None => db.create(&key, val("c")).await.unwrap(),
                };
            }
        });
    }
    // Open a watcher at (roughly) every 20th revision while the writers run.
    let mut watchers = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    let mut next_from = 0;
    while db.current_revision() < TOTAL {
        assert!(std::time::Instant::now() < deadline, "writers too slow");
        // Start a little in the past so history replay and live events overlap.
        let from = (db.current_revision() - 15).max(0);
        if from >= next_from {
            watchers.push((from, db.watch("/r/", from).await.unwrap()));
            next_from = from + 20;
        }
        tokio::task::yield_now().await;
    }
    assert!(watchers.len() > 5, "only {} watchers", watchers.len());
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    assert_eq!(db.current_revision(), TOTAL);
    eprintln!(
        "watchers opened at {:?}",
        watchers.iter().map(|w| w.0).collect::<Vec<_>>()
    );
    for (from, mut w) in watchers {
        let mut expected = from + 1;
        while expected <= TOTAL {
            let e = next(&mut w).await;
            assert_eq!(e.kv.mod_revision, expected, "watcher from {from}");
            expected += 1;
        }
        assert!(matches!(w.try_next(), TryNext::Empty));
    }
}

/// The bookmark rule the API layer relies on: read current_revision, then drain with
/// try_next until Empty: every event up to that revision has been delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_next_empty_means_caught_up_to_current_revision() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut w = db.watch("/r/", 0).await.unwrap();
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                db.create(&format!("/r/{i}"), val("x")).await.unwrap();
            }
        })
    };
    let mut last = 0;
    let mut checks = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while !writer.is_finished() || last < 300 {
        assert!(std::time::Instant::now() < deadline, "timed out at {last}");
        let rev = db.current_revision();
        loop {
            match w.try_next() {
                TryNext::Event(e) => {
                    assert_eq!(e.kv.mod_revision, last + 1);
                    last = e.kv.mod_revision;
                }
                TryNext::Empty => break,
                TryNext::Closed => panic!("watch closed"),
            }
        }
        assert!(
            last >= rev,
            "bookmark at {rev} but only delivered up to {last}"
        );
        checks += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(checks > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_ends_watchers_and_refuses_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create("/r/a", val("x")).await.unwrap();
    let mut w = db.watch("/r/", 0).await.unwrap();
    db.close();
    assert_eq!(next(&mut w).await.kv.mod_revision, 1);
    assert!(w.next().await.is_none());
    assert!(matches!(
        db.create("/r/b", val("x")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(db.get("/r/a").await, Err(Error::Closed)));
    assert!(matches!(db.watch("/r/", 0).await, Err(Error::Closed)));
}
