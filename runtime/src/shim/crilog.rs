//! The CRI container log: one line per chunk of output,
//! `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>\n` (what kubelet's log reader and
//! `kubectl logs` parse), and kubelet-style rotation: when the file reaches `max_bytes` it is
//! renamed to `<log>.<YYYYMMDD-HHMMSS.nnnnnnnnn>` (UTC) and a new one started; only the newest
//! `max_files - 1` rotated files are kept. Rotated files are not compressed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A line longer than this is split into 'P' (partial) lines, as containerd does.
pub(crate) const MAX_LINE: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// 'F': the content is a whole line (its '\n' stripped); 'P': more of the line follows, or
/// the stream ended without a final newline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    Full,
    Partial,
}

/// Splits one stream's bytes into CRI lines.
#[derive(Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// Feeds output; calls `emit` for every complete line and every full 16 KiB piece.
    pub(crate) fn push(&mut self, data: &[u8], mut emit: impl FnMut(Tag, &[u8])) {
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let pending = &self.buf[start..];
            let window = &pending[..pending.len().min(MAX_LINE + 1)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                emit(Tag::Full, &pending[..nl]);
                start += nl + 1;
            } else if pending.len() >= MAX_LINE {
                emit(Tag::Partial, &pending[..MAX_LINE]);
                start += MAX_LINE;
            } else {
                break;
            }
        }
        self.buf.drain(..start);
    }

    /// The stream ended: unterminated data left over becomes a 'P' line.
    pub(crate) fn finish(&mut self, mut emit: impl FnMut(Tag, &[u8])) {
        if !self.buf.is_empty() {
            emit(Tag::Partial, &self.buf);
            self.buf.clear();
        }
    }
}

/// The log file of one container, rotated by size.
pub(crate) struct CriLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    max_files: u32,
    line: Vec<u8>,
}

impl CriLog {
    /// Opens (appending to) or creates the log file and its directory.
    pub(crate) fn open(path: &Path, max_bytes: u64, max_files: u32) -> std::io::Result<CriLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_log(path)?;
        let size = file.metadata()?.len();
        Ok(CriLog {
            path: path.to_owned(),
            file,
            size,
            max_bytes,
            max_files: max_files.max(1),
            line: Vec::with_capacity(MAX_LINE + 128),
        })
    }

    /// Writes one CRI line (a single write(2), so the file only ever holds whole lines),
    /// then rotates if the file has reached the size limit.
    pub(crate) fn write(
        &mut self,
        stream: Stream,
        tag: Tag,
        content: &[u8],
    ) -> std::io::Result<()> {
        self.line.clear();
        let _ = write!(
            self.line,
            "{:.9} {} {} ",
            jiff::Timestamp::now(),
            stream.name(),
            match tag {
                Tag::Full => 'F',
                Tag::Partial => 'P',
            }
        );
        self.line.extend_from_slice(content);
        self.line.push(b'\n');
        self.file.write_all(&self.line)?;
        self.size += self.line.len() as u64;
        if self.max_bytes > 0 && self.size >= self.max_bytes {
            self.rotate()?;
        }
        Ok(())
    }

    /// Renames the current file to `<log>.<timestamp>`, starts a new one and removes the
    /// oldest rotated files beyond `max_files - 1`.
    pub(crate) fn rotate(&mut self) -> std::io::Result<()> {
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%d-%H%M%S.%N")
            .to_string();
        let mut rotated = super::launch::with_suffix(&self.path, &format!(".{stamp}"));
        let mut n = 0;
        while rotated.exists() {
            n += 1;
            rotated = super::launch::with_suffix(&self.path, &format!(".{stamp}{n}"));
        }
        std::fs::rename(&self.path, &rotated)?;
        self.file = open_log(&self.path)?;
        self.size = 0;
        self.remove_old()
    }

    fn remove_old(&self) -> std::io::Result<()> {
        let mut rotated = rotated_files(&self.path)?;
        let keep = (self.max_files - 1) as usize;
        if rotated.len() > keep {
            let excess = rotated.len() - keep;
            for old in rotated.drain(..excess) {
                match std::fs::remove_file(&old) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn open_log(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// Rotated files of `log` (`<log>.<YYYYMMDD-HHMMSS...>`), oldest first.
pub(crate) fn rotated_files(log: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(stamp) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let b = stamp.as_bytes();
        let looks_rotated = b.len() >= 15
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'-'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15..].iter().all(|c| c.is_ascii_digit() || *c == b'.');
        if looks_rotated {
            found.push((stamp.to_owned(), entry.path()));
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}
