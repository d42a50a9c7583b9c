//! Container logs for `kubectl logs`, as kubelet serves them (`GetKubeletContainerLogs` and
//! `pkg/kubelet/kuberuntime/logs`).
//!
//! Which attempt: kubelet's `validateContainerLogStatus` over the pod status (the running or
//! last terminated attempt; `previous` is `lastState.terminated`; a container that never ran is
//! a 400 with its waiting reason). The attempt is found by its container ID, whose attempt
//! directory `<agent>/pods/<uid>/containers/<name>/<n>/id` holds it; its log is
//! `<agent>/logs/<ns>_<pod>_<uid>/<name>/<n>.log` plus rotated `<n>.log.<stamp>` files, read
//! oldest first.
//!
//! Every file line is a CRI record `<RFC3339Nano> stdout|stderr F|P <text>`; 'P' records are
//! joined with the records after them on the same stream into one line, stamped with the time
//! of its first record. `sinceSeconds`/`sinceTime` keep lines stamped at or after the time,
//! `tailLines` keeps the last N lines, `timestamps` prefixes each line with its time (fixed
//! 9-digit RFC 3339, as kubelet's `timeFormatOut`) and a space, and `limitBytes` cuts the
//! output (prefixes included) after that many bytes. `follow` keeps reading, across
//! rotations, until the attempt has exited (its `exit.json` is written after its last log
//! line, or its helper process is gone) and everything is read, or the client went away.
//!
//! Reading runs on a thread of its own (plain files, polled every 100 ms while following) and
//! feeds the response body through a channel.

use super::AgentConfig;
use crate::shim;
use futures_util::future::BoxFuture;
use kubelite_core::server::body::Body;
use kubelite_core::server::node_streams::{channel_body, LogOptions, NodeStreams};
use kubelite_core::server::status::ApiError;
use serde_json::Value;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a followed log is looked at for new lines.
const POLL: Duration = Duration::from_millis(100);
/// Output is sent in chunks of about this size (and at once when following).
const CHUNK: usize = 32 * 1024;
/// A line of 'P' records longer than this is sent as it is rather than held in memory.
const MAX_JOINED: usize = 1024 * 1024;
/// Length of a rotation stamp `YYYYMMDD-HHMMSS.nnnnnnnnn` (a number may follow it).
const STAMP_LEN: usize = 25;

/// The agent's implementation of the node streams.
pub(crate) struct NodeLogs {
    /// `<data-dir>/agent`.
    data_dir: PathBuf,
    node_name: String,
}

impl NodeLogs {
    pub(crate) fn new(cfg: &AgentConfig) -> NodeLogs {
        NodeLogs {
            data_dir: cfg.data_dir.clone(),
            node_name: cfg.node_name.clone(),
        }
    }
}

impl NodeStreams for NodeLogs {
    fn logs(
        &self,
        pod: Value,
        container: String,
        opts: LogOptions,
    ) -> BoxFuture<'static, Result<Body, ApiError>> {
        let target = self.target(&pod, &container, opts.previous);
        Box::pin(async move {
            let target = target?;
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            std::thread::Builder::new()
                .name("kubelite-logs".into())
                .spawn(move || target.serve(&opts, tx))
                .map_err(|e| ApiError::internal(format!("starting the log reader: {e}")))?;
            Ok(channel_body(rx))
        })
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// kubelet's `validateContainerLogStatus`: the container ID whose log to read, or the error
/// the client is shown (kubelet answers it as 400 Bad Request).
fn container_id_for_logs(pod: &Value, container: &str, previous: bool) -> Result<String, ApiError> {
    let pod_name = str_at(pod, "/metadata/name");
    let status = [
        "containerStatuses",
        "initContainerStatuses",
        "ephemeralContainerStatuses",
    ]
    .iter()
    .filter_map(|f| {
        pod.pointer(&format!("/status/{f}"))
            .and_then(Value::as_array)
    })
    .flatten()
    .find(|s| s.get("name").and_then(Value::as_str) == Some(container));
    let Some(status) = status else {
        // No status reported yet: what kubelet's own first status says.
        let has_init = pod
            .pointer("/spec/initContainers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        let reason = if has_init {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        return Err(ApiError::bad_request(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start: {reason}"
        )));
    };
    let terminated_id = |state: &str| {
        status
            .pointer(&format!("/{state}/terminated"))
            .map(|t| str_at(t, "/containerID").to_string())
    };
    let last = terminated_id("lastState");
    let bad = |what: &str| {
        ApiError::bad_request(format!(
            "container {container:?} in pod {pod_name:?} {what}"
        ))
    };
    if previous {
        return match last {
            Some(id) if !id.is_empty() => Ok(id),
            _ => Err(ApiError::bad_request(format!(
                "previous terminated container {container:?} in pod {pod_name:?} not found"
            ))),
        };
    }
    if status.pointer("/state/running").is_some() {
        return Ok(str_at(status, "/containerID").to_string());
    }
    if let Some(id) = terminated_id("state") {
        return match (id.is_empty(), last) {
            (false, _) => Ok(id),
            (true, Some(l)) if !l.is_empty() => Ok(l),
            _ => Err(bad("is terminated")),
        };
    }
    if let Some(id) = last {
        return if id.is_empty() {
            Err(bad("is terminated"))
        } else {
            Ok(id)
        };
    }
    match status.pointer("/state/waiting") {
        Some(w) => Err(bad(&format!(
            "is waiting to start: {}",
            match str_at(w, "/reason") {
                "ErrImagePull" => "image can't be pulled",
                "ImagePullBackOff" => "trying and failing to pull image",
                other => other,
            }
        ))),
        None => Err(bad("is waiting to start - no logs yet")),
    }
}

/// The attempt number of `container_id` among the attempt directories of a container.
fn attempt_of(containers_dir: &Path, container_id: &str) -> Option<u32> {
    let id = container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id);
    let found = std::fs::read_dir(containers_dir)
        .into_iter()
        .flatten()
        .flatten()
        .find_map(|e| {
            let n: u32 = e.file_name().to_str()?.parse().ok()?;
            let recorded = std::fs::read_to_string(e.path().join("id")).ok()?;
            (recorded.trim() == id).then_some(n)
        });
    // The directory is gone once the pod is torn down: the ID ends with the attempt number.
    found.or_else(|| id.rsplit('-').next()?.parse().ok())
}

/// One attempt's log, to be read.
struct Target {
    /// `<n>.log`.
    log: PathBuf,
    /// The attempt directory (`exit.json`, `pid`).
    attempt_dir: PathBuf,
}

impl NodeLogs {
    fn target(&self, pod: &Value, container: &str, previous: bool) -> Result<Target, ApiError> {
        let node = str_at(pod, "/spec/nodeName");
        if node != self.node_name {
            return Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!(
                    "pod logs of node {node:?} are not served here (this node is {:?})",
                    self.node_name
                ),
            ));
        }
        let id = container_id_for_logs(pod, container, previous)?;
        let (ns, name, uid) = (
            str_at(pod, "/metadata/namespace"),
            str_at(pod, "/metadata/name"),
            str_at(pod, "/metadata/uid"),
        );
        let containers_dir = self
            .data_dir
            .join("pods")
            .join(uid)
            .join("containers")
            .join(container);
        let n = attempt_of(&containers_dir, &id).ok_or_else(|| {
            ApiError::bad_request(format!(
                "container {container:?} in pod {name:?} has no log for {id}"
            ))
        })?;
        Ok(Target {
            log: self
                .data_dir
                .join("logs")
                .join(format!("{ns}_{name}_{uid}"))
                .join(container)
                .join(format!("{n}.log")),
            attempt_dir: containers_dir.join(n.to_string()),
        })
    }
}

/// Whether the attempt will write no more: its exit is recorded, its helper process is gone,
/// or its directory was removed (pod torn down, start failed).
fn attempt_exited(dir: &Path) -> bool {
    if !dir.exists() || dir.join("exit.json").exists() {
        return true;
    }
    shim::read_pid_record(&dir.join("pid")).is_some_and(|r| !shim::is_running(r.shim))
}

/// Where the output goes.
trait Sink {
    /// Sends a chunk; false when the client is gone.
    fn send(&mut self, chunk: Vec<u8>) -> bool;
    /// Whether the client is gone.
    fn closed(&self) -> bool;
}

impl Sink for tokio::sync::mpsc::Sender<Vec<u8>> {
    fn send(&mut self, chunk: Vec<u8>) -> bool {
        self.blocking_send(chunk).is_ok()
    }
    fn closed(&self) -> bool {
        self.is_closed()
    }
}

impl Target {
    fn serve(self, opts: &LogOptions, mut tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
        let dir = self.attempt_dir;
        let mut chain = Chain::new(self.log.clone());
        let mut exited = || attempt_exited(&dir);
        if let Err(e) = read_logs(&mut chain, opts, &mut exited, &mut tx, POLL) {
            tracing::warn!(log = %self.log.display(), error = %e, "reading container log");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRI records and lines.

/// One CRI log record.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    ts: jiff::Timestamp,
    stderr: bool,
    /// 'P': the line goes on in the next record of the stream.
    partial: bool,
    content: Vec<u8>,
}

fn split_space(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

/// Parses `<time> <stream> <tag>[:<more tags>] <content>` (a trailing '\n' is not content).
fn parse_record(line: &[u8]) -> Option<Record> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let (ts, rest) = split_space(line)?;
    let ts = std::str::from_utf8(ts).ok()?.parse().ok()?;
    let (stream, rest) = split_space(rest)?;
    let stderr = match stream {
        b"stdout" => false,
        b"stderr" => true,
        _ => return None,
    };
    let (tags, content) = split_space(rest)?;
    Some(Record {
        ts,
        stderr,
        partial: tags.split(|&c| c == b':').next() == Some(b"P"),
        content: content.to_vec(),
    })
}

/// One line of output: joined records.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    /// The time of its first record.
    ts: jiff::Timestamp,
    stderr: bool,
    text: Vec<u8>,
    /// Ended by an 'F' record (false: the output stopped without a newline).
    newline: bool,
    /// The rest of an overlong line already sent in part: no timestamp prefix.
    continued: bool,
}

/// Joins 'P' records with what follows on the same stream.
#[derive(Default)]
struct Joiner {
    pending: [Option<Line>; 2],
    /// Per stream: the last line sent was cut (the next one continues it).
    cut: [bool; 2],
}

impl Joiner {
    /// Adds a record; returns a line when one is complete.
    fn push(&mut self, r: Record) -> Option<Line> {
        let s = usize::from(r.stderr);
        let mut line = self.pending[s].take().unwrap_or_else(|| Line {
            ts: r.ts,
            stderr: r.stderr,
            text: Vec::new(),
            newline: false,
            continued: std::mem::take(&mut self.cut[s]),
        });
        line.text.extend_from_slice(&r.content);
        if !r.partial {
            line.newline = true;
            return Some(line);
        }
        if line.text.len() >= MAX_JOINED {
            self.cut[s] = true;
            return Some(line);
        }
        self.pending[s] = Some(line);
        None
    }

    /// The unfinished lines (output that ended without a newline), oldest first.
    fn flush(&mut self) -> Vec<Line> {
        let mut lines: Vec<Line> = self.pending.iter_mut().filter_map(Option::take).collect();
        lines.sort_by_key(|l| l.ts);
        lines
    }
}

/// Renders lines per the options.
struct Output {
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    /// Bytes left under `limitBytes`.
    remain: Option<u64>,
    buf: Vec<u8>,
    /// `limitBytes` reached: nothing more is written.
    full: bool,
}

impl Output {
    fn new(opts: &LogOptions) -> Output {
        Output {
            timestamps: opts.timestamps,
            since: opts.since,
            remain: opts.limit_bytes,
            buf: Vec::new(),
            full: false,
        }
    }

    /// Whether `line` is recent enough.
    fn wanted(&self, line: &Line) -> bool {
        self.since.is_none_or(|s| line.ts >= s)
    }

    /// Appends `line` to the buffer (cut at the byte limit).
    fn write(&mut self, line: &Line) {
        if self.full {
            return;
        }
        let start = self.buf.len();
        if self.timestamps && !line.continued {
            use std::io::Write;
            let _ = write!(self.buf, "{:.9} ", line.ts);
        }
        self.buf.extend_from_slice(&line.text);
        if line.newline {
            self.buf.push(b'\n');
        }
        if let Some(remain) = self.remain.as_mut() {
            let n = (self.buf.len() - start) as u64;
            if n >= *remain {
                self.buf.truncate(start + *remain as usize);
                *remain = 0;
                self.full = true;
            } else {
                *remain -= n;
            }
        }
    }

    /// Sends what is buffered; false when the client is gone.
    fn flush(&mut self, sink: &mut dyn Sink) -> bool {
        self.buf.is_empty() || sink.send(std::mem::take(&mut self.buf))
    }
}

/// The last `n` lines seen.
struct Tail {
    n: usize,
    kept: VecDeque<Line>,
}

impl Tail {
    fn push(&mut self, line: Line) {
        if self.n == 0 {
            return;
        }
        if self.kept.len() == self.n {
            self.kept.pop_front();
        }
        self.kept.push_back(line);
    }
}

/// Reads `chain` per `opts` into `sink`. Without `follow`, reads what is there; with it, goes
/// on until `exited()` (checked before a last read) and the log is drained, or the sink
/// closes.
fn read_logs(
    chain: &mut Chain,
    opts: &LogOptions,
    exited: &mut dyn FnMut() -> bool,
    sink: &mut dyn Sink,
    poll: Duration,
) -> io::Result<()> {
    let mut joiner = Joiner::default();
    let mut out = Output::new(opts);
    let mut tail = opts.tail_lines.map(|n| Tail {
        n: n as usize,
        kept: VecDeque::new(),
    });
    let take = |line: Line, out: &mut Output, tail: &mut Option<Tail>| {
        if !out.wanted(&line) {
            return;
        }
        match tail {
            Some(t) => t.push(line),
            None => out.write(&line),
        }
    };
    // What is there now.
    while let Next::Line(raw) = chain.next()? {
        if let Some(line) = parse_record(&raw).and_then(|r| joiner.push(r)) {
            take(line, &mut out, &mut tail);
            if out.full {
                break;
            }
            if out.buf.len() >= CHUNK && !out.flush(sink) {
                return Ok(());
            }
        }
    }
    if !opts.follow {
        // Output that ended without a newline (or a line still being written).
        if let Some(line) = chain.rest().and_then(|raw| parse_record(&raw)) {
            if let Some(line) = joiner.push(line) {
                take(line, &mut out, &mut tail);
            }
        }
        for line in joiner.flush() {
            take(line, &mut out, &mut tail);
        }
    }
    if let Some(t) = tail {
        for line in t.kept {
            out.write(&line);
        }
    }
    if !out.flush(sink) || out.full || !opts.follow {
        return Ok(());
    }
    // Follow.
    loop {
        let done = exited();
        let mut got = false;
        while let Next::Line(raw) = chain.next()? {
            got = true;
            if let Some(line) = parse_record(&raw).and_then(|r| joiner.push(r)) {
                if out.wanted(&line) {
                    out.write(&line);
                }
                if out.full || (out.buf.len() >= CHUNK && !out.flush(sink)) {
                    break;
                }
            }
        }
        if done && !got && !out.full {
            if let Some(r) = chain.rest().and_then(|raw| parse_record(&raw)) {
                if let Some(line) = joiner.push(r) {
                    if out.wanted(&line) {
                        out.write(&line);
                    }
                }
            }
            for line in joiner.flush() {
                if out.wanted(&line) {
                    out.write(&line);
                }
            }
        }
        if !out.flush(sink) || out.full || (done && !got) || sink.closed() {
            return Ok(());
        }
        if !got {
            std::thread::sleep(poll);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The files of one log, across rotations.

/// Orders rotated files: the stamp, then the number added when a stamp was taken.
type Key = (String, u64);

fn key_of(stamp: &str) -> Key {
    let (base, n) = stamp.split_at(stamp.len().min(STAMP_LEN));
    (base.to_string(), n.parse().unwrap_or(0))
}

/// Rotated files of `log` (`<log>.<YYYYMMDD-HHMMSS.nnnnnnnnn[n]>`), oldest first.
fn rotated_files(log: &Path) -> io::Result<Vec<(Key, PathBuf)>> {
    let (Some(dir), Some(name)) = (log.parent(), log.file_name()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
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
            found.push((key_of(stamp), entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn identity(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Where the chain is.
#[derive(Debug, Clone, PartialEq)]
enum Pos {
    /// No file open: the next is the first rotated file after this one (None: the oldest),
    /// else the live file.
    After(Option<Key>),
    /// Reading a rotated file (None: the live file was rotated and already removed).
    Rotated(Option<Key>),
    /// Reading the live file.
    Live,
}

/// What [`Chain::next`] found.
#[derive(Debug, PartialEq)]
enum Next {
    Line(Vec<u8>),
    /// At the end of what is written so far.
    Idle,
}

/// Reads the lines of a log's files in order: rotated files oldest first, then the live file,
/// following it when it is rotated while being read (the writer renames it and starts a new
/// one; a renamed file gets no more lines).
struct Chain {
    log: PathBuf,
    pos: Pos,
    reader: Option<BufReader<File>>,
    ident: (u64, u64),
    /// A line read in part.
    partial: Vec<u8>,
}

impl Chain {
    fn new(log: PathBuf) -> Chain {
        Chain {
            log,
            pos: Pos::After(None),
            reader: None,
            ident: (0, 0),
            partial: Vec::new(),
        }
    }

    /// The next whole line, or Idle at the end of the live file.
    fn next(&mut self) -> io::Result<Next> {
        loop {
            if self.reader.is_none() && !self.open_next()? {
                return Ok(Next::Idle);
            }
            let Some(reader) = self.reader.as_mut() else {
                return Ok(Next::Idle);
            };
            reader.read_until(b'\n', &mut self.partial)?;
            if self.partial.last() == Some(&b'\n') {
                return Ok(Next::Line(std::mem::take(&mut self.partial)));
            }
            // The end of the open file.
            match self.pos.clone() {
                Pos::Live => {
                    let live = std::fs::metadata(&self.log).ok().map(|m| identity(&m));
                    if live == Some(self.ident) {
                        return Ok(Next::Idle);
                    }
                    // Rotated away: it is complete; read its rest under its new name.
                    self.pos = Pos::Rotated(self.rotated_key_of(self.ident)?);
                }
                Pos::Rotated(key) => {
                    self.reader = None;
                    self.pos = Pos::After(key);
                    if !self.partial.is_empty() {
                        return Ok(Next::Line(std::mem::take(&mut self.partial)));
                    }
                }
                Pos::After(_) => return Ok(Next::Idle),
            }
        }
    }

    /// A line left without its newline (the log's end).
    fn rest(&mut self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
    }

    /// The rotated name of the file with this identity (None if it is gone).
    fn rotated_key_of(&self, ident: (u64, u64)) -> io::Result<Option<Key>> {
        for (key, path) in rotated_files(&self.log)? {
            if std::fs::metadata(&path).is_ok_and(|m| identity(&m) == ident) {
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    /// Opens the file after `self.pos`; false if there is none yet.
    fn open_next(&mut self) -> io::Result<bool> {
        let Pos::After(after) = self.pos.clone() else {
            return Ok(false);
        };
        // The live file first, then the list: a rotation in between shows in the list.
        let live = match File::open(&self.log) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        for (key, path) in rotated_files(&self.log)? {
            if after.as_ref().is_some_and(|a| key <= *a) {
                continue;
            }
            match File::open(&path) {
                Ok(f) => {
                    self.ident = identity(&f.metadata()?);
                    self.reader = Some(BufReader::new(f));
                    self.pos = Pos::Rotated(Some(key));
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
        }
        let Some(f) = live else {
            return Ok(false);
        };
        self.ident = identity(&f.metadata()?);
        self.reader = Some(BufReader::new(f));
        self.pos = Pos::Live;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    /// A record line at second `sec` (nanosecond `ns`).
    fn rec(sec: u32, ns: u32, stream: &str, tag: &str, text: &str) -> String {
        format!("2024-05-01T10:00:{sec:02}.{ns:09}Z {stream} {tag} {text}\n")
    }

    #[derive(Default)]
    struct VecSink {
        out: Vec<u8>,
        chunks: usize,
        closed: bool,
    }

    impl Sink for VecSink {
        fn send(&mut self, chunk: Vec<u8>) -> bool {
            self.out.extend(chunk);
            self.chunks += 1;
            !self.closed
        }
        fn closed(&self) -> bool {
            self.closed
        }
    }

    struct Dir {
        _tmp: tempfile::TempDir,
        log: PathBuf,
        stamps: u32,
    }

    impl Dir {
        fn new() -> Dir {
            let tmp = tempfile::tempdir().unwrap();
            let log = tmp.path().join("0.log");
            Dir {
                _tmp: tmp,
                log,
                stamps: 0,
            }
        }
        fn append(&self, text: &str) {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        }
        /// Renames the live file as the shim does (and starts no new one).
        fn rotate(&mut self) {
            self.stamps += 1;
            let to = self
                .log
                .with_file_name(format!("0.log.20240501-100000.{:09}", self.stamps));
            std::fs::rename(&self.log, to).unwrap();
        }
    }

    fn read(dir: &Dir, opts: &LogOptions) -> String {
        let mut chain = Chain::new(dir.log.clone());
        let mut sink = VecSink::default();
        read_logs(&mut chain, opts, &mut || true, &mut sink, Duration::ZERO).unwrap();
        String::from_utf8(sink.out).unwrap()
    }

    #[test]
    fn parses_cri_records() {
        let r = parse_record(b"2024-05-01T10:00:01.000000005Z stderr P some text \n").unwrap();
        assert_eq!(r.ts, ts("2024-05-01T10:00:01.000000005Z"));
        assert!(r.stderr && r.partial);
        assert_eq!(r.content, b"some text ");
        let r = parse_record(b"2024-05-01T10:00:01Z stdout F \n").unwrap();
        assert!(!r.stderr && !r.partial && r.content.is_empty());
        let r = parse_record(b"2024-05-01T10:00:01.5+02:00 stdout F:x a").unwrap();
        assert_eq!(r.ts, ts("2024-05-01T08:00:01.5Z"));
        assert_eq!(r.content, b"a");
        for bad in [
            &b"garbage"[..],
            b"2024-05-01T10:00:01Z stdin F x",
            b"yesterday stdout F x",
            b"2024-05-01T10:00:01Z stdout F",
        ] {
            assert_eq!(parse_record(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn joins_partial_records_per_stream() {
        let d = Dir::new();
        d.append(&rec(1, 0, "stdout", "P", "hel"));
        d.append(&rec(2, 0, "stderr", "F", "oops"));
        d.append(&rec(3, 0, "stdout", "P", "lo "));
        d.append(&rec(4, 0, "stdout", "F", "world"));
        d.append(&rec(5, 0, "stdout", "P", "no newline"));
        let all = LogOptions::default();
        assert_eq!(read(&d, &all), "oops\nhello world\nno newline");
        let stamped = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            read(&d, &stamped),
            "2024-05-01T10:00:02.000000000Z oops\n\
             2024-05-01T10:00:01.000000000Z hello world\n\
             2024-05-01T10:00:05.000000000Z no newline"
        );
    }

    #[test]
    fn tail_since_and_limit() {
        let d = Dir::new();
        for i in 1..=5 {
            d.append(&rec(i, 0, "stdout", "F", &format!("line {i}")));
        }
        d.append("not a record\n");
        let opts = |f: fn(&mut LogOptions)| {
            let mut o = LogOptions::default();
            f(&mut o);
            o
        };
        assert_eq!(
            read(&d, &opts(|o| o.tail_lines = Some(2))),
            "line 4\nline 5\n"
        );
        assert_eq!(read(&d, &opts(|o| o.tail_lines = Some(0))), "");
        assert_eq!(
            read(&d, &opts(|o| o.tail_lines = Some(10))).lines().count(),
            5
        );
        assert_eq!(
            read(&d, &opts(|o| o.since = Some(ts("2024-05-01T10:00:04Z")))),
            "line 4\nline 5\n"
        );
        assert_eq!(
            read(
                &d,
                &opts(|o| {
                    o.since = Some(ts("2024-05-01T10:00:02Z"));
                    o.tail_lines = Some(10);
                })
            ),
            "line 2\nline 3\nline 4\nline 5\n"
        );
        assert_eq!(read(&d, &opts(|o| o.limit_bytes = Some(9))), "line 1\nli");
        assert_eq!(read(&d, &opts(|o| o.limit_bytes = Some(7))), "line 1\n");
        assert_eq!(
            read(
                &d,
                &opts(|o| {
                    o.limit_bytes = Some(35);
                    o.timestamps = true;
                    o.tail_lines = Some(1);
                })
            ),
            "2024-05-01T10:00:05.000000000Z line"
        );
    }

    #[test]
    fn reads_rotated_files_in_order() {
        let mut d = Dir::new();
        d.append(&rec(1, 0, "stdout", "F", "a"));
        d.append(&rec(2, 0, "stdout", "P", "b1-"));
        d.rotate();
        d.append(&rec(3, 0, "stdout", "F", "b2"));
        d.rotate();
        d.append(&rec(4, 0, "stdout", "F", "c"));
        // Stamps taken twice get a number: 2 comes before 10.
        std::fs::rename(
            d.log.with_file_name("0.log.20240501-100000.000000001"),
            d.log.with_file_name("0.log.20240501-100000.0000000012"),
        )
        .unwrap();
        std::fs::rename(
            d.log.with_file_name("0.log.20240501-100000.000000002"),
            d.log.with_file_name("0.log.20240501-100000.00000000110"),
        )
        .unwrap();
        std::fs::write(d.log.with_file_name("0.log.tmp"), "junk\n").unwrap();
        std::fs::write(d.log.with_file_name("1.log"), rec(9, 0, "stdout", "F", "x")).unwrap();
        assert_eq!(read(&d, &LogOptions::default()), "a\nb1-b2\nc\n");
        assert_eq!(
            read(
                &d,
                &LogOptions {
                    tail_lines: Some(2),
                    ..Default::default()
                }
            ),
            "b1-b2\nc\n"
        );
        // No live file (between a rename and the next open), or no file at all.
        std::fs::remove_file(&d.log).unwrap();
        assert_eq!(read(&d, &LogOptions::default()), "a\nb1-b2\n");
        let empty = Dir::new();
        assert_eq!(read(&empty, &LogOptions::default()), "");
    }

    #[test]
    fn follow_until_exit_across_rotations() {
        let mut d = Dir::new();
        d.append(&rec(1, 0, "stdout", "F", "first"));
        let exit = d.log.with_file_name("exit");
        let mut chain = Chain::new(d.log.clone());
        let mut sink = VecSink::default();
        // Each poll of the reader performs the next write step, so every interleaving of
        // reads with renames is taken in turn.
        let mut step = 0;
        let exit2 = exit.clone();
        let mut exited = move || {
            step += 1;
            match step {
                1 => d.append(&rec(2, 0, "stdout", "F", "second")),
                2 => {
                    d.append(&rec(3, 0, "stdout", "F", "third"));
                    d.rotate();
                }
                3 => d.append(&rec(4, 0, "stdout", "P", "fou")),
                4 => {
                    // Two rotations before the reader looks again.
                    d.append(&rec(5, 0, "stdout", "F", "rth"));
                    d.rotate();
                    d.append(&rec(6, 0, "stderr", "F", "fifth"));
                    d.rotate();
                    d.append(&rec(7, 0, "stdout", "P", "sixth, unterminated"));
                }
                5 => std::fs::write(&exit2, "{}").unwrap(),
                _ => {}
            }
            exit2.exists()
        };
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        read_logs(&mut chain, &opts, &mut exited, &mut sink, Duration::ZERO).unwrap();
        assert_eq!(
            String::from_utf8(sink.out).unwrap(),
            "first\nsecond\nthird\nfourth\nfifth\nsixth, unterminated"
        );
    }

    #[test]
    fn follow_with_tail_and_limit() {
        let d = Dir::new();
        for i in 1..=3 {
            d.append(&rec(i, 0, "stdout", "F", &format!("l{i}")));
        }
        let mut chain = Chain::new(d.log.clone());
        let mut sink = VecSink::default();
        let mut polls = 0;
        let mut exited = || {
            polls += 1;
            if polls == 1 {
                d.append(&rec(4, 0, "stdout", "F", "l4"));
            }
            polls > 2
        };
        let opts = LogOptions {
            follow: true,
            tail_lines: Some(1),
            ..Default::default()
        };
        read_logs(&mut chain, &opts, &mut exited, &mut sink, Duration::ZERO).unwrap();
        assert_eq!(String::from_utf8(sink.out).unwrap(), "l3\nl4\n");
        // The byte limit ends a follow without waiting for the exit.
        let mut chain = Chain::new(d.log.clone());
        let mut sink = VecSink::default();
        let opts = LogOptions {
            follow: true,
            limit_bytes: Some(4),
            ..Default::default()
        };
        read_logs(&mut chain, &opts, &mut || false, &mut sink, Duration::ZERO).unwrap();
        assert_eq!(String::from_utf8(sink.out).unwrap(), "l1\nl");
    }

    #[test]
    fn follow_stops_when_the_client_leaves() {
        let d = Dir::new();
        d.append(&rec(1, 0, "stdout", "F", "x"));
        let mut chain = Chain::new(d.log.clone());
        let mut sink = VecSink {
            closed: true,
            ..Default::default()
        };
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        // Never exits: returns only because the sink is closed.
        read_logs(&mut chain, &opts, &mut || false, &mut sink, Duration::ZERO).unwrap();
        assert_eq!(sink.out, b"x\n");
    }

    #[test]
    fn overlong_partial_lines_are_sent_in_pieces() {
        let d = Dir::new();
        let piece = "y".repeat(MAX_JOINED / 2);
        for i in 0..3 {
            d.append(&rec(i, 0, "stdout", "P", &piece));
        }
        d.append(&rec(3, 0, "stdout", "F", "end"));
        let out = read(
            &d,
            &LogOptions {
                timestamps: true,
                ..Default::default()
            },
        );
        assert_eq!(out.matches("2024-05-01T").count(), 1, "one prefix");
        assert_eq!(out.len(), 31 + 3 * piece.len() + 4);
        assert!(out.ends_with("yend\n"));
    }

    fn pod(statuses: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
               "spec": {"nodeName": "n", "containers": [{"name": "c"}]},
               "status": {"containerStatuses": statuses}})
    }

    #[test]
    fn container_status_picks_the_attempt() {
        let running = pod(json!([{"name": "c", "containerID": "kubelite://u-c-1",
            "state": {"running": {}},
            "lastState": {"terminated": {"containerID": "kubelite://u-c-0", "exitCode": 1}}}]));
        assert_eq!(
            container_id_for_logs(&running, "c", false).unwrap(),
            "kubelite://u-c-1"
        );
        assert_eq!(
            container_id_for_logs(&running, "c", true).unwrap(),
            "kubelite://u-c-0"
        );
        let crashloop = pod(json!([{"name": "c", "containerID": "kubelite://u-c-1",
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"containerID": "kubelite://u-c-1", "exitCode": 1}}}]));
        assert_eq!(
            container_id_for_logs(&crashloop, "c", false).unwrap(),
            "kubelite://u-c-1"
        );
        let done = pod(json!([{"name": "c", "containerID": "kubelite://u-c-0",
            "state": {"terminated": {"containerID": "kubelite://u-c-0", "exitCode": 0}},
            "lastState": {}}]));
        assert_eq!(
            container_id_for_logs(&done, "c", false).unwrap(),
            "kubelite://u-c-0"
        );
        let e = container_id_for_logs(&done, "c", true).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                400,
                "previous terminated container \"c\" in pod \"p\" not found"
            )
        );
        for (reason, text) in [
            ("ContainerCreating", "ContainerCreating"),
            ("ErrImagePull", "image can't be pulled"),
            ("ImagePullBackOff", "trying and failing to pull image"),
        ] {
            let waiting = pod(
                json!([{"name": "c", "state": {"waiting": {"reason": reason}}, "lastState": {}}]),
            );
            assert_eq!(
                container_id_for_logs(&waiting, "c", false)
                    .unwrap_err()
                    .message,
                format!("container \"c\" in pod \"p\" is waiting to start: {text}")
            );
        }
        assert_eq!(
            container_id_for_logs(&pod(json!([])), "c", false)
                .unwrap_err()
                .message,
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
    }

    #[test]
    fn attempts_are_found_by_container_id() {
        let tmp = tempfile::tempdir().unwrap();
        for (n, id) in [(0, "abc-my-ctr-0"), (1, "abc-my-ctr-1")] {
            let d = tmp.path().join(n.to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("id"), id).unwrap();
        }
        assert_eq!(attempt_of(tmp.path(), "kubelite://abc-my-ctr-1"), Some(1));
        assert_eq!(attempt_of(tmp.path(), "abc-my-ctr-0"), Some(0));
        // Directory gone: the number at the end of the ID.
        assert_eq!(
            attempt_of(&tmp.path().join("gone"), "kubelite://abc-x-7"),
            Some(7)
        );
        assert_eq!(attempt_of(tmp.path(), "kubelite://weird"), None);
        assert!(attempt_exited(&tmp.path().join("gone")));
        assert!(!attempt_exited(&tmp.path().join("0")));
        std::fs::write(tmp.path().join("0/exit.json"), "{}").unwrap();
        assert!(attempt_exited(&tmp.path().join("0")));
    }
}
