//! The on-disk layout and connection setup: the kine-style `kine` log table, its indexes,
//! the `meta` table (compacted revision, compaction progress), and the pragmas every
//! writer/reader connection gets.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so every committed
//! transaction has its WAL frames fsynced before the commit returns. A write acknowledged by
//! the store therefore survives a process crash *and* a power loss (with `NORMAL` the last
//! transactions could be lost on power loss). The cost, one fsync per transaction, is
//! amortised by the writer thread's group commit.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Result, Revision};

/// Meta key of the compacted revision: reads/watches below it fail with `Compacted`.
pub(crate) const META_COMPACTED: &str = "compacted";
/// Meta key of how far compaction has actually deleted rows (<= compacted).
pub(crate) const META_COMPACT_PROGRESS: &str = "compact_progress";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER,
    deleted INTEGER,
    create_revision INTEGER,
    prev_revision INTEGER,
    value BLOB,
    old_value BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision);
CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// Connection tuning shared by writer and readers.
#[derive(Clone, Debug)]
pub(crate) struct ConnConfig {
    pub busy_timeout: Duration,
    pub journal_size_limit: i64,
    /// Page cache per connection, in KiB.
    pub cache_kib: i64,
}

fn common_pragmas(conn: &Connection, cfg: &ConnConfig) -> Result<()> {
    conn.busy_timeout(cfg.busy_timeout)?;
    conn.pragma_update(None, "cache_size", -cfg.cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Opens the single writer connection, switches the database to WAL and creates the schema.
pub(crate) fn open_writer(path: &Path, cfg: &ConnConfig) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    common_pragmas(&conn, cfg)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(crate::Error::Internal(format!(
            "could not switch {} to WAL mode (journal_mode is {mode})",
            path.display()
        )));
    }
    // See the module doc: FULL makes every acknowledged commit survive a power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "journal_size_limit", cfg.journal_size_limit)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Opens a read-only (query_only) connection to an existing database.
pub(crate) fn open_reader(path: &Path, cfg: &ConnConfig) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    common_pragmas(&conn, cfg)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Reads an integer from the meta table (0 when absent).
pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<i64> {
    let value = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get::<_, i64>(0))
        .optional()?;
    Ok(value.unwrap_or(0))
}

/// Writes an integer to the meta table (inside the caller's transaction, if any).
pub(crate) fn meta_set(conn: &Connection, key: &str, value: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![key, value])?;
    Ok(())
}

/// The latest revision as seen by `conn`'s current snapshot. Compaction may delete the
/// newest rows (tombstones), but never above the compacted revision, so the maximum of the
/// two never goes backwards: revisions are never reused, even across restarts.
pub(crate) fn current_revision(conn: &Connection) -> Result<Revision> {
    let max_id: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM kine")?
        .query_row([], |row| row.get(0))?;
    let compacted = meta_get(conn, META_COMPACTED)?;
    Ok(max_id.unwrap_or(0).max(compacted))
}
