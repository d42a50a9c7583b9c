//! The read side: a small pool of read-only connections and the kine-style queries
//! (get, list at a revision, watch history replay). Every query runs inside one read
//! transaction so the compacted revision it checks and the rows it reads come from the same
//! WAL snapshot.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::schema::{self, ConnConfig, META_COMPACTED};
use crate::{Error, Event, EventKind, KeyValue, ListResult, Result, Revision};

/// Rows fetched per read transaction during a watch replay, so a long replay never pins one
/// WAL snapshot (which would stop checkpoints from resetting the WAL).
const REPLAY_PAGE: i64 = 1000;

/// A pool of reader connections; connections are opened on demand and up to `max_idle` kept.
pub(crate) struct ReadPool {
    path: PathBuf,
    cfg: ConnConfig,
    max_idle: usize,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, cfg: ConnConfig, max_idle: usize) -> Self {
        ReadPool {
            path,
            cfg,
            max_idle: max_idle.max(1),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a pooled connection (blocking; call from `spawn_blocking`).
    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().expect("read pool mutex poisoned").pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => schema::open_reader(&self.path, &self.cfg)?,
        };
        let result = f(&mut conn);
        // A connection left inside a transaction by an error is not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().expect("read pool mutex poisoned");
            if idle.len() < self.max_idle {
                idle.push(conn);
            }
        }
        result
    }

    /// Closes the idle connections.
    pub(crate) fn clear(&self) {
        self.idle.lock().expect("read pool mutex poisoned").clear();
    }
}

/// The exclusive upper bound of the keys under `prefix` (None: no bound), computed on bytes.
pub(crate) fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Binds raw bytes as TEXT (the upper bound may not be valid UTF-8; SQLite compares bytes).
fn text(bytes: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(bytes))
}

fn blob(row: &Row<'_>, idx: usize) -> rusqlite::Result<Bytes> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Bytes::copy_from_slice(b),
        _ => Bytes::new(),
    })
}

/// Latest live version of `key`.
pub(crate) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, deleted, create_revision, value FROM kine
         WHERE name = ?1 ORDER BY id DESC LIMIT 1",
    )?;
    let row = stmt
        .query_row([key], |row| {
            let deleted: i64 = row.get(1)?;
            if deleted != 0 {
                return Ok(None);
            }
            Ok(Some(KeyValue {
                key: key.to_owned(),
                value: blob(row, 3)?,
                create_revision: row.get(2)?,
                mod_revision: row.get(0)?,
            }))
        })
        .optional()?;
    Ok(row.flatten())
}

/// Live keys under `prefix` from `start` (inclusive), at `revision` (None = latest).
pub(crate) fn list(
    conn: &mut Connection,
    prefix: &str,
    start: Option<&str>,
    limit: usize,
    revision: Option<Revision>,
) -> Result<ListResult> {
    let tx = conn.transaction()?;
    let current = schema::current_revision(&tx)?;
    let compacted = schema::meta_get(&tx, META_COMPACTED)?;
    let rev = match revision {
        None => current,
        Some(r) if r < compacted => return Err(Error::Compacted { compacted }),
        Some(r) if r > current => return Err(Error::FutureRevision { current }),
        Some(r) => r,
    };
    let lower = match start {
        Some(s) if s > prefix => s,
        _ => prefix,
    };
    let end = prefix_end(prefix);
    // LIMIT -1 is "no limit" in SQLite; otherwise fetch one more row to compute `more`.
    let sql_limit: i64 = if limit == 0 {
        -1
    } else {
        i64::try_from(limit)
            .unwrap_or(i64::MAX - 1)
            .saturating_add(1)
    };
    // Fast query first; it is re-run with an explicit ORDER BY if rows come out unordered.
    let bounded = end.is_some();
    let mut kvs = match list_query(
        &tx,
        &list_sql(bounded, false),
        lower,
        rev,
        sql_limit,
        end.as_deref(),
        true,
    )? {
        Some(kvs) => kvs,
        None => {
            tracing::warn!("list rows came out of key order; re-running with ORDER BY");
            list_query(
                &tx,
                &list_sql(bounded, true),
                lower,
                rev,
                sql_limit,
                end.as_deref(),
                false,
            )?
            .unwrap_or_default()
        }
    };
    let more = limit != 0 && kvs.len() > limit;
    kvs.truncate(if limit == 0 { kvs.len() } else { limit });
    Ok(ListResult {
        kvs,
        revision: rev,
        more,
    })
}

/// The list query. Its inner query walks the (name, id) index in name order and keeps the
/// newest version of each key at or below `?2`; the outer loop fetches those rows and skips
/// tombstones. SQLite yields them in name order without sorting (a sort would hold every
/// value in a temp b-tree and defeat LIMIT), but SQL does not promise that, so `list`
/// checks the order and falls back to the `sorted` variant (explicit outer ORDER BY) if it
/// ever does not hold.
fn list_sql(bounded: bool, sorted: bool) -> String {
    let upper = if bounded { "AND m.name < ?4" } else { "" };
    let (inner_order, outer_order) = if sorted {
        ("", "ORDER BY mx.name")
    } else {
        ("ORDER BY m.name", "")
    };
    format!(
        "SELECT kv.id, kv.name, kv.create_revision, kv.value
         FROM (SELECT MAX(m.id) AS id, m.name AS name FROM kine m
               WHERE m.name >= ?1 {upper} AND m.id <= ?2
               GROUP BY m.name {inner_order}) mx
         CROSS JOIN kine kv ON kv.id = mx.id
         WHERE kv.deleted = 0
         {outer_order}
         LIMIT ?3"
    )
}

/// Runs a list query; with `check_order`, returns None as soon as keys are out of order.
fn list_query(
    conn: &Connection,
    sql: &str,
    lower: &str,
    rev: Revision,
    limit: i64,
    end: Option<&[u8]>,
    check_order: bool,
) -> Result<Option<Vec<KeyValue>>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let map = |row: &Row<'_>| {
        Ok(KeyValue {
            mod_revision: row.get(0)?,
            key: row.get(1)?,
            create_revision: row.get(2)?,
            value: blob(row, 3)?,
        })
    };
    let rows = match end {
        Some(end) => stmt.query_map(rusqlite::params![lower, rev, limit, text(end)], map)?,
        None => stmt.query_map(rusqlite::params![lower, rev, limit], map)?,
    };
    let mut kvs: Vec<KeyValue> = Vec::new();
    for kv in rows {
        let kv = kv?;
        if check_order {
            if let Some(prev) = kvs.last() {
                if prev.key.as_bytes() >= kv.key.as_bytes() {
                    return Ok(None);
                }
            }
        }
        kvs.push(kv);
    }
    Ok(Some(kvs))
}

fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let id: i64 = row.get(0)?;
    let key: String = row.get(1)?;
    let created: i64 = row.get::<_, Option<i64>>(2)?.unwrap_or(0);
    let deleted: i64 = row.get::<_, Option<i64>>(3)?.unwrap_or(0);
    let create_revision: i64 = row.get::<_, Option<i64>>(4)?.unwrap_or(id);
    let prev_revision: i64 = row.get::<_, Option<i64>>(5)?.unwrap_or(0);
    let kind = if created != 0 {
        EventKind::Create
    } else if deleted != 0 {
        EventKind::Delete
    } else {
        EventKind::Update
    };
    let prev = match kind {
        EventKind::Create => None,
        _ => Some(KeyValue {
            key: key.clone(),
            value: blob(row, 7)?,
            create_revision,
            mod_revision: prev_revision,
        }),
    };
    Ok(Event {
        kind,
        kv: KeyValue {
            key,
            value: blob(row, 6)?,
            create_revision,
            mod_revision: id,
        },
        prev,
    })
}

/// Every event under `prefix` with revision > `from`, in revision order, read page by page.
/// Fails with `Compacted` if compaction overtakes the replay (rows could be missing).
pub(crate) fn replay(
    conn: &mut Connection,
    prefix: &str,
    from: Revision,
) -> Result<VecDeque<Event>> {
    let end = prefix_end(prefix);
    let upper = if end.is_some() { "AND name < ?4" } else { "" };
    let sql = format!(
        "SELECT id, name, created, deleted, create_revision, prev_revision, value, old_value
         FROM kine WHERE id > ?1 AND name >= ?2 {upper}
         ORDER BY id LIMIT ?3"
    );
    let mut events = VecDeque::new();
    let mut last = from;
    loop {
        let tx = conn.transaction()?;
        let compacted = schema::meta_get(&tx, META_COMPACTED)?;
        if last < compacted {
            return Err(Error::Compacted { compacted });
        }
        let mut fetched = 0;
        {
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = match &end {
                Some(end) => stmt.query_map(
                    rusqlite::params![last, prefix, REPLAY_PAGE, text(end)],
                    event_from_row,
                )?,
                None => {
                    stmt.query_map(rusqlite::params![last, prefix, REPLAY_PAGE], event_from_row)?
                }
            };
            for event in rows {
                let event = event?;
                last = event.kv.mod_revision;
                events.push_back(event);
                fetched += 1;
            }
        }
        tx.commit()?;
        if fetched < REPLAY_PAGE {
            return Ok(events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end("/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end("abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_end(""), None);
    }

    /// The fast list query must come out in key order with the bundled SQLite (otherwise
    /// every list would fall back to the sorting query).
    #[test]
    fn fast_list_query_is_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConnConfig {
            busy_timeout: std::time::Duration::from_secs(1),
            journal_size_limit: 1 << 20,
            cache_kib: 1024,
        };
        let mut conn = schema::open_writer(&dir.path().join("t.db"), &cfg).unwrap();
        // Keys inserted in scrambled order, several versions each, some deleted.
        let mut id = 0;
        for round in 0..3 {
            for i in 0..200 {
                let k = (i * 7919) % 200;
                id += 1;
                let deleted = round == 2 && k % 5 == 0;
                conn.execute(
                    "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, x'00')",
                    rusqlite::params![id, format!("/k/{k:03}"), round == 0, deleted, id - 200],
                )
                .unwrap();
            }
        }
        let listed = list(&mut conn, "/k/", None, 0, None).unwrap();
        assert_eq!(listed.kvs.len(), 160);
        assert!(listed.kvs.windows(2).all(|w| w[0].key < w[1].key));
        assert!(listed.kvs.iter().all(|kv| kv.mod_revision > 400));
        for bounded in [false, true] {
            let end = prefix_end("/k/");
            let end = if bounded { end.as_deref() } else { None };
            let fast = list_query(&conn, &list_sql(bounded, false), "/k/", 1000, -1, end, true);
            assert_eq!(fast.unwrap().map(|kvs| kvs.len()), Some(160));
        }
    }
}
