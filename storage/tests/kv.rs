//! Key-value behaviour: CRUD with compare-and-swap, lists (paging, old revisions,
//! compaction), and list speed.

mod common;

use std::time::{Duration, Instant};

use common::{open, val, val_rev};
use kubelite_storage::{Backend, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_update_delete_with_cas() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    assert_eq!(db.current_revision(), 0);

    let a = db.create("/r/a", val_rev("a1")).await.unwrap();
    assert_eq!(
        (a.key.as_str(), a.create_revision, a.mod_revision),
        ("/r/a", 1, 1)
    );
    assert_eq!(&a.value[..], b"a1@1");
    assert_eq!(db.current_revision(), 1);
    assert!(matches!(
        db.create("/r/a", val("x")).await,
        Err(Error::AlreadyExists)
    ));
    assert_eq!(db.get("/r/a").await.unwrap(), Some(a.clone()));
    assert_eq!(db.get("/r/missing").await.unwrap(), None);

    let a2 = db.update("/r/a", 1, val_rev("a2")).await.unwrap();
    assert_eq!((a2.create_revision, a2.mod_revision), (1, 2));
    assert_eq!(&a2.value[..], b"a2@2");
    match db.update("/r/a", 1, val("stale")).await {
        Err(Error::Conflict { current }) => assert_eq!(current, 2),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert!(matches!(
        db.update("/r/nope", 1, val("x")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.delete("/r/a", Some(1), val("tomb")).await,
        Err(Error::Conflict { current: 2 })
    ));
    // Failed writes consume no revision.
    assert_eq!(db.current_revision(), 2);

    let tomb = db.delete("/r/a", Some(2), val_rev("tomb")).await.unwrap();
    assert_eq!((tomb.create_revision, tomb.mod_revision), (1, 3));
    assert_eq!(&tomb.value[..], b"tomb@3");
    assert_eq!(db.get("/r/a").await.unwrap(), None);
    assert!(matches!(
        db.delete("/r/a", None, val("t")).await,
        Err(Error::NotFound)
    ));
    assert!(matches!(
        db.update("/r/a", 3, val("t")).await,
        Err(Error::NotFound)
    ));

    let again = db.create("/r/a", val("a3")).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
    let unconditional = db.delete("/r/a", None, val("t")).await.unwrap();
    assert_eq!(unconditional.mod_revision, 5);
    assert_eq!(db.current_revision(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_value_fn_fails_only_its_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let bad = db.create("/r/bad", Box::new(|_| panic!("boom")));
    let good = db.create("/r/good", val("ok"));
    let (bad, good) = tokio::join!(bad, good);
    assert!(matches!(bad, Err(Error::Internal(_))));
    assert_eq!(good.unwrap().mod_revision, 1);
    assert_eq!(db.get("/r/bad").await.unwrap(), None);
    assert_eq!(
        db.create("/r/next", val("x")).await.unwrap().mod_revision,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_start_limit_and_more() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 0..25 {
        db.create(&format!("/r/a/k{i:02}"), val_rev("v"))
            .await
            .unwrap();
    }
    // Neighbours that share bytes with the prefix must not leak in.
    db.create("/r/aa", val("x")).await.unwrap();
    db.create("/r/a", val("x")).await.unwrap();
    db.create("/r/b/x", val("x")).await.unwrap();
    // A deleted key is not listed.
    db.create("/r/a/zz", val("x")).await.unwrap();
    db.delete("/r/a/zz", None, val("t")).await.unwrap();

    let all = db.list("/r/a/", None, 0, None).await.unwrap();
    assert_eq!(all.kvs.len(), 25);
    assert!(!all.more);
    assert_eq!(all.revision, db.current_revision());
    let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let mut pages = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = db
            .list("/r/a/", start.as_deref(), 10, Some(all.revision))
            .await
            .unwrap();
        assert_eq!(page.revision, all.revision);
        pages.push(page.kvs.len());
        let more = page.more;
        start = page.kvs.last().map(|kv| format!("{}\0", kv.key));
        if !more {
            break;
        }
    }
    assert_eq!(pages, vec![10, 10, 5]);

    // `start` is inclusive; a start before the prefix is clamped to it.
    let from = db.list("/r/a/", Some("/r/a/k05"), 2, None).await.unwrap();
    let keys: Vec<_> = from.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/r/a/k05", "/r/a/k06"]);
    assert!(from.more);
    let clamped = db.list("/r/a/", Some("/"), 1, None).await.unwrap();
    assert_eq!(clamped.kvs[0].key, "/r/a/k00");
    // Exact limit: nothing more.
    let exact = db.list("/r/a/", Some("/r/a/k20"), 5, None).await.unwrap();
    assert_eq!((exact.kvs.len(), exact.more), (5, false));

    // Empty prefix lists everything.
    assert_eq!(db.list("", None, 0, None).await.unwrap().kvs.len(), 28);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_at_old_revisions_and_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    db.create("/r/a", val("a1")).await.unwrap(); // 1
    db.create("/r/b", val("b1")).await.unwrap(); // 2
    db.update("/r/a", 1, val("a2")).await.unwrap(); // 3
    db.delete("/r/b", None, val("tb")).await.unwrap(); // 4
    db.create("/r/c", val("c1")).await.unwrap(); // 5

    let snapshot = |rev| {
        let db = db.clone();
        async move {
            db.list("/r/", None, 0, rev).await.map(|l| {
                l.kvs
                    .into_iter()
                    .map(|kv| {
                        (
                            kv.key,
                            String::from_utf8(kv.value.to_vec()).unwrap(),
                            kv.mod_revision,
                        )
                    })
                    .collect::<Vec<_>>()
            })
        }
    };
    let s = |k: &str, v: &str, r: i64| (k.to_owned(), v.to_owned(), r);
    assert_eq!(snapshot(Some(0)).await.unwrap(), vec![]);
    assert_eq!(
        snapshot(Some(2)).await.unwrap(),
        vec![s("/r/a", "a1", 1), s("/r/b", "b1", 2)]
    );
    assert_eq!(snapshot(Some(4)).await.unwrap(), vec![s("/r/a", "a2", 3)]);
    assert_eq!(
        snapshot(None).await.unwrap(),
        vec![s("/r/a", "a2", 3), s("/r/c", "c1", 5)]
    );
    assert!(matches!(
        snapshot(Some(6)).await,
        Err(Error::FutureRevision { current: 5 })
    ));
    assert_eq!(
        db.list("/r/", None, 1, Some(2)).await.unwrap().revision,
        2,
        "a list at a revision reports that revision"
    );

    db.compact(4).await.unwrap();
    assert_eq!(db.compacted_revision(), 4);
    assert!(matches!(
        snapshot(Some(3)).await,
        Err(Error::Compacted { compacted: 4 })
    ));
    assert_eq!(snapshot(Some(4)).await.unwrap(), vec![s("/r/a", "a2", 3)]);
    assert_eq!(
        snapshot(None).await.unwrap(),
        vec![s("/r/a", "a2", 3), s("/r/c", "c1", 5)]
    );
    // Compacting at or below the compacted revision is a no-op; above current is refused.
    db.compact(2).await.unwrap();
    assert_eq!(db.compacted_revision(), 4);
    assert!(matches!(
        db.compact(9).await,
        Err(Error::FutureRevision { current: 5 })
    ));

    // Superseded versions and tombstones are physically gone: rows 3 (a) and 5 (c) remain.
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let mut ids: Vec<i64> = conn
        .prepare("SELECT id FROM kine ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    ids.sort();
    assert_eq!(ids, vec![3, 5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_of_10k_keys_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let value = vec![b'x'; 2048];
    // Concurrent creates are group-committed; keep a bounded number in flight.
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..20 {
        let db = db.clone();
        let value = value.clone();
        tasks.spawn(async move {
            for i in 0..500 {
                let v = value.clone();
                db.create(
                    &format!("/registry/pods/ns/p{:05}", chunk * 500 + i),
                    Box::new(move |_| v),
                )
                .await
                .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // Some history and unrelated keys around the listed prefix.
    for i in 0..500 {
        db.create(&format!("/registry/pods/nt/q{i:05}"), val("x"))
            .await
            .unwrap();
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let list = db.list("/registry/pods/ns/", None, 0, None).await.unwrap();
        best = best.min(t.elapsed());
        assert_eq!(list.kvs.len(), 10_000);
    }
    let t = Instant::now();
    let page = db
        .list("/registry/pods/ns/", None, 500, None)
        .await
        .unwrap();
    let page_time = t.elapsed();
    assert_eq!(page.kvs.len(), 500);
    assert!(page.more);
    // Speed is a benchmark figure, not a test threshold: print it.
    eprintln!("list 10k x 2KiB: {best:?}; first page of 500: {page_time:?}");
}
