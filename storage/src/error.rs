//! The crate's error type: every failure a [`crate::Backend`] call can report, typed so the
//! API layer can map each one to the matching Kubernetes status (404, 409, 410, ...).

use crate::Revision;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key does not exist (or its latest version is a tombstone).
    #[error("key not found")]
    NotFound,

    /// A create found the key live.
    #[error("key already exists")]
    AlreadyExists,

    /// A compare-and-swap found another mod_revision than the caller expected.
    #[error("revision conflict: the key's current mod revision is {current}")]
    Conflict { current: Revision },

    /// The requested revision is older than the compacted revision.
    #[error("required revision has been compacted (compacted revision is {compacted})")]
    Compacted { compacted: Revision },

    /// The requested revision is newer than the latest committed one.
    #[error("requested revision is in the future (current revision is {current})")]
    FutureRevision { current: Revision },

    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// A file-system operation failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),

    /// The store was closed (or its writer thread is gone).
    #[error("storage is closed")]
    Closed,

    /// A bug or an unexpected condition (e.g. a panicking [`crate::ValueFn`]).
    #[error("internal storage error: {0}")]
    Internal(String),
}

/// Result with the crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A copy of this error for the other requests of a batch that failed as a whole.
    /// (`rusqlite::Error` is not `Clone`, so only its code and message are kept.)
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::NotFound => Error::NotFound,
            Error::AlreadyExists => Error::AlreadyExists,
            Error::Conflict { current } => Error::Conflict { current: *current },
            Error::Compacted { compacted } => Error::Compacted {
                compacted: *compacted,
            },
            Error::FutureRevision { current } => Error::FutureRevision { current: *current },
            Error::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => {
                Error::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone()))
            }
            Error::Closed => Error::Closed,
            other => Error::Internal(other.to_string()),
        }
    }
}
