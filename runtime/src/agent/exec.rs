//! `kubectl exec` and `kubectl attach`, the kubelet's part (`GetExec` / `GetAttach` and the
//! runtime's streaming server).
//!
//! Exec: the container's current attempt (the highest attempt directory under
//! `<agent>/pods/<uid>/containers/<name>/`) must be running, else the kubelet's
//! `container not found ("<name>")`. The process runs through `kubelite shim-exec` with piped
//! stdio; with a tty, terminal sizes go to it over an inherited pipe (`--resize-fd 3`). Its
//! own failures (exit 125: the container cannot be used, 126: the process could not start)
//! are reported as errors, not as exit codes: their `kubelite shim-exec <id>: <why>` line on
//! stderr is held back from the client. Once the process exited, output still in the pipes is
//! read for at most [`DRAIN_AFTER_EXIT`] (a background process may keep them open).
//!
//! When the client goes away first, the process is not killed, as with containerd (whose CRI
//! exec waits for the process whatever happens to the streams): the end of the session closes
//! its stdin (CRI exec is `StdinOnce`), and with a tty `kubelite shim-exec` then closes the
//! terminal's master, which hangs the terminal up (SIGHUP to the process), as containerd's shim
//! closes the console when the exec's stdin closes. A process that outlives that runs on until
//! it exits, and is reaped then; what it still writes is read and dropped (it neither blocks
//! nor gets SIGPIPE).
//!
//! Attach: output is the container's log from now on (the shim writes it as CRI records),
//! split back into stdout and stderr; stdin goes to the container's stdin FIFO when its spec
//! asks for one (`stdin: true`). The session ends when the container exits. Terminal resizes
//! of an attached container are not applied (the shim has no channel for them).

use super::process::pidfd_open;
use super::AgentConfig;
use crate::shim;
use futures_util::future::BoxFuture;
use kubelite_core::server::exec::{ExecEvent, ExecSession, NodeExec, Streams, TerminalSize};
use serde_json::Value;
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

/// Once the process exited, how long output pipes held open by something else are read.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// How often an attached container's log is looked at for new records.
const ATTACH_POLL: Duration = Duration::from_millis(100);
/// The descriptor number shim-exec reads terminal sizes from.
const RESIZE_FD: RawFd = 3;
/// Output events queued towards the client.
const EVENTS: usize = 16;
/// The longest shim-exec failure text kept.
const MAX_FAILURE: usize = 4096;

/// The agent's exec and attach.
pub struct NodeExecService {
    /// `<data-dir>/agent`.
    data_dir: PathBuf,
    node_name: String,
    exe: PathBuf,
    /// libcontainer's state root (`<run-dir>/containers`).
    state_root: PathBuf,
}

/// What the agent registers with the API server for exec and attach.
pub fn service(cfg: &AgentConfig) -> Arc<dyn NodeExec> {
    Arc::new(NodeExecService {
        data_dir: cfg.data_dir.clone(),
        node_name: cfg.node_name.clone(),
        exe: cfg.exe.clone(),
        state_root: cfg.run_dir.join("containers"),
    })
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The running attempt of a container.
#[derive(Debug, Clone)]
struct Running {
    n: u32,
    dir: PathBuf,
    id: String,
}

impl NodeExecService {
    /// kubelet's `findContainer` over running containers: the current attempt, if running.
    fn running(&self, pod: &Value, container: &str) -> Result<Running, String> {
        let node = str_at(pod, "/spec/nodeName");
        if node != self.node_name {
            return Err(format!(
                "pod is on node {node:?}, not on this node ({:?})",
                self.node_name
            ));
        }
        let dir = self
            .data_dir
            .join("pods")
            .join(str_at(pod, "/metadata/uid"))
            .join("containers")
            .join(container);
        let not_found = || format!("container not found ({container:?})");
        let n = std::fs::read_dir(&dir)
            .map_err(|_| not_found())?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .ok_or_else(not_found)?;
        let dir = dir.join(n.to_string());
        let id = std::fs::read_to_string(dir.join("id"))
            .map_err(|_| not_found())?
            .trim()
            .to_string();
        let running = !dir.join("exit.json").exists()
            && shim::read_pid_record(&dir.join("pid"))
                .is_some_and(|r| shim::is_running(r.container));
        if !running || id.is_empty() {
            return Err(not_found());
        }
        Ok(Running { n, dir, id })
    }
}

impl NodeExec for NodeExecService {
    fn exec(
        &self,
        pod: Value,
        container: String,
        command: Vec<String>,
        streams: Streams,
    ) -> BoxFuture<'static, Result<ExecSession, String>> {
        let found = self.running(&pod, &container);
        let exe = self.exe.clone();
        let state_root = self.state_root.clone();
        Box::pin(async move { start_exec(&exe, &state_root, &found?.id, &command, streams) })
    }

    fn attach(
        &self,
        pod: Value,
        container: String,
        streams: Streams,
    ) -> BoxFuture<'static, Result<ExecSession, String>> {
        let found = self.running(&pod, &container);
        let log = self
            .data_dir
            .join("logs")
            .join(format!(
                "{}_{}_{}",
                str_at(&pod, "/metadata/namespace"),
                str_at(&pod, "/metadata/name"),
                str_at(&pod, "/metadata/uid")
            ))
            .join(&container);
        Box::pin(async move {
            let found = found?;
            let log = log.join(format!("{}.log", found.n));
            start_attach(found, log, streams).await
        })
    }
}

// ---------------------------------------------------------------------------------------------
// exec

/// A pipe with both ends close-on-exec, (read, write), the read end numbered above stdio.
fn resize_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    if r.as_raw_fd() > 2 {
        return Ok((r, w));
    }
    // std sets up the child's stdio before our pre_exec: keep the read end out of its way.
    // SAFETY: fcntl on a descriptor we own; the result is new and ours.
    let fd = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_DUPFD_CLOEXEC, RESIZE_FD + 1) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just created.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, w))
}

/// shim-exec's stderr: what the process writes goes to the client, except a leading
/// `kubelite shim-exec <id>: …` line (shim-exec's own failure), held until the exit tells.
struct StderrGate {
    prefix: Vec<u8>,
    held: Vec<u8>,
    passing: bool,
}

impl StderrGate {
    fn new(id: &str, tty: bool) -> StderrGate {
        // With a tty the process writes to the terminal: stderr is shim-exec's alone, and
        // the empty prefix holds all of it.
        let prefix = if tty {
            Vec::new()
        } else {
            format!("kubelite shim-exec {id}: ").into_bytes()
        };
        StderrGate {
            prefix,
            held: Vec::new(),
            passing: false,
        }
    }

    /// What can go to the client now.
    fn push(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if self.passing {
            return Some(data.to_vec());
        }
        if self.prefix.is_empty() {
            let room = MAX_FAILURE.saturating_sub(self.held.len());
            self.held.extend_from_slice(&data[..data.len().min(room)]);
            return None;
        }
        self.held.extend_from_slice(data);
        let n = self.held.len().min(self.prefix.len());
        // shim-exec writes one line and exits: anything else is the process's.
        let more_than_a_line = self
            .held
            .iter()
            .position(|b| *b == b'\n')
            .is_some_and(|i| i + 1 < self.held.len());
        if self.held[..n] != self.prefix[..n] || more_than_a_line || self.held.len() > MAX_FAILURE {
            self.passing = true;
            return Some(std::mem::take(&mut self.held));
        }
        None
    }

    /// At the exit: shim-exec's failure message (for its own exit codes) and what is left to
    /// send to the client.
    fn finish(self, code: i32) -> (Option<String>, Vec<u8>) {
        if self.passing {
            return (None, self.held);
        }
        if self.prefix.is_empty() {
            // tty: everything was shim-exec's.
            let text = String::from_utf8_lossy(&self.held).trim().to_string();
            let failed = (code == 125 || code == 126).then(|| {
                text.lines()
                    .last()
                    .map(|l| l.split_once(": ").map_or(l, |(_, m)| m).to_string())
                    .unwrap_or_else(|| format!("exit code {code}"))
            });
            return (failed, Vec::new());
        }
        if (code == 125 || code == 126) && self.held.starts_with(&self.prefix) {
            let rest = &self.held[self.prefix.len()..];
            let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
            let message = String::from_utf8_lossy(&rest[..end]).trim().to_string();
            return (Some(message), Vec::new());
        }
        (None, self.held)
    }
}

/// Reads one chunk from `rx`; None at end of file or on error (and `rx` is closed).
async fn read_chunk(rx: &mut Option<pipe::Receiver>) -> Option<Vec<u8>> {
    let r = rx.as_mut()?;
    let mut buf = vec![0u8; 32 * 1024];
    match r.read(&mut buf).await {
        Ok(0) | Err(_) => {
            *rx = None;
            None
        }
        Ok(n) => {
            buf.truncate(n);
            Some(buf)
        }
    }
}

fn start_exec(
    exe: &Path,
    state_root: &Path,
    id: &str,
    command: &[String],
    streams: Streams,
) -> Result<ExecSession, String> {
    let resize = if streams.tty {
        Some(resize_pipe().map_err(|e| format!("resize pipe: {e}"))?)
    } else {
        None
    };
    let opts = shim::ExecOptions {
        env: &[],
        cwd: None,
        tty: streams.tty,
        resize_fd: resize.is_some().then_some(RESIZE_FD),
    };
    let mut cmd = shim::exec_command_with(exe, state_root, id, command, &opts);
    let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(piped(streams.stdin))
        .stdout(piped(streams.stdout || streams.tty))
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((r, _)) = &resize {
        let fd = r.as_raw_fd();
        // SAFETY: only dup2(2) between fork and exec (async-signal-safe); `fd` stays open in
        // the parent until spawn returns. dup2 onto another number clears close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, RESIZE_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", exe.display()))?;
    let resize_tx = resize.map(|(_, w)| w);
    let pidfd = match pidfd_open(child.id()).and_then(|fd| {
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until dropped.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            tokio::task::spawn_blocking(move || child.wait());
            return Err(format!("pidfd_open: {e}"));
        }
    };
    let receiver = |fd: Option<OwnedFd>| fd.and_then(|fd| pipe::Receiver::from_owned_fd(fd).ok());
    let out_rx = receiver(child.stdout.take().map(OwnedFd::from));
    let err_rx = receiver(child.stderr.take().map(OwnedFd::from));

    // stdin: a task writes what the client sends; dropping the sender closes the pipe.
    let stdin = child.stdin.take().and_then(|s| {
        let mut w = pipe::Sender::from_owned_fd(OwnedFd::from(s)).ok()?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(EVENTS);
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        Some(tx)
    });
    // Terminal sizes as "<columns> <rows>\n" lines to shim-exec.
    let resize = resize_tx.and_then(|w| {
        let mut w = pipe::Sender::from_owned_fd(w).ok()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<TerminalSize>();
        tokio::spawn(async move {
            while let Some(size) = rx.recv().await {
                let line = format!("{} {}\n", size.width, size.height);
                if w.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        Some(tx)
    });
    let (events_tx, events) = mpsc::channel(EVENTS);
    let gate = StderrGate::new(id, streams.tty);
    let forward_stderr = streams.stderr && !streams.tty;
    tokio::spawn(supervise(
        child,
        pidfd,
        out_rx,
        err_rx,
        gate,
        forward_stderr,
        events_tx,
    ));
    Ok(ExecSession {
        stdin,
        resize,
        events,
    })
}

/// Forwards output until shim-exec exited and its pipes are drained, then the outcome. When
/// the client is gone, output is dropped and the process runs on until it exits.
async fn supervise(
    mut child: std::process::Child,
    pidfd: AsyncFd<OwnedFd>,
    mut out_rx: Option<pipe::Receiver>,
    mut err_rx: Option<pipe::Receiver>,
    mut gate: StderrGate,
    forward_stderr: bool,
    events: mpsc::Sender<ExecEvent>,
) {
    let mut drain_until: Option<tokio::time::Instant> = None;
    let mut client = true;
    loop {
        if drain_until.is_some() && out_rx.is_none() && err_rx.is_none() {
            break;
        }
        tokio::select! {
            _ = events.closed(), if client => client = false,
            r = pidfd.readable(), if drain_until.is_none() => {
                if let Ok(mut g) = r {
                    g.retain_ready();
                }
                drain_until = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            chunk = read_chunk(&mut out_rx), if out_rx.is_some() => {
                if let Some(c) = chunk.filter(|_| client) {
                    client = events.send(ExecEvent::Stdout(c)).await.is_ok();
                }
            }
            chunk = read_chunk(&mut err_rx), if err_rx.is_some() => {
                if let Some(c) = chunk.and_then(|c| gate.push(&c)) {
                    if client && forward_stderr {
                        client = events.send(ExecEvent::Stderr(c)).await.is_ok();
                    }
                }
            }
            _ = async { tokio::time::sleep_until(drain_until.expect("guarded")).await }, if drain_until.is_some() => break,
        }
    }
    let status = match child.try_wait() {
        Ok(Some(s)) => Ok(s),
        _ => match tokio::task::spawn_blocking(move || child.wait()).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        },
    };
    let outcome = match status {
        Err(e) => ExecEvent::Failed(format!("wait for shim-exec: {e}")),
        Ok(s) => {
            let code = s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
            let (failed, rest) = gate.finish(code);
            if forward_stderr && !rest.is_empty() {
                let _ = events.send(ExecEvent::Stderr(rest)).await;
            }
            match failed {
                Some(message) => ExecEvent::Failed(message),
                None => ExecEvent::Exited(code),
            }
        }
    };
    let _ = events.send(outcome).await;
}

// ---------------------------------------------------------------------------------------------
// attach

async fn start_attach(
    found: Running,
    log: PathBuf,
    streams: Streams,
) -> Result<ExecSession, String> {
    // Mark the log's end before any input can reach the container, so its answers are not
    // missed.
    let mut follower = LogFollower::open(log);
    // The container's stdin FIFO exists only when its spec has `stdin: true`; the shim holds
    // it open for reading, so opening it does not block.
    let fifo = found.dir.join("pid.stdin");
    let stdin = if streams.stdin && fifo.exists() {
        let mut w = pipe::OpenOptions::new()
            .open_sender(&fifo)
            .map_err(|e| format!("open {}: {e}", fifo.display()))?;
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(EVENTS);
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        Some(tx)
    } else {
        None
    };
    let (events_tx, events) = mpsc::channel(EVENTS);
    let dir = found.dir.clone();
    let want_stdout = streams.stdout;
    let want_stderr = streams.stderr;
    tokio::spawn(async move {
        let mut records = RecordSplitter::default();
        loop {
            // Whether the attempt is over is decided before reading, so what it wrote last is
            // read before the session ends.
            let exited = !dir.exists()
                || dir.join("exit.json").exists()
                || shim::read_pid_record(&dir.join("pid"))
                    .is_none_or(|r| !shim::is_running(r.shim));
            let data = follower.read_new();
            for (stream, text) in records.push(&data) {
                let ev = match stream {
                    Stream::Stdout if want_stdout => ExecEvent::Stdout(text),
                    Stream::Stderr if want_stderr => ExecEvent::Stderr(text),
                    Stream::Stderr if want_stdout => ExecEvent::Stdout(text),
                    _ => continue,
                };
                if events_tx.send(ev).await.is_err() {
                    return;
                }
            }
            if exited {
                let _ = events_tx.send(ExecEvent::Exited(0)).await;
                return;
            }
            tokio::select! {
                _ = events_tx.closed() => return,
                _ = tokio::time::sleep(ATTACH_POLL) => {}
            }
        }
    });
    Ok(ExecSession {
        stdin,
        resize: None,
        events,
    })
}

/// Reads what is appended to a log file from the moment it is opened, across rotations (the
/// file renamed away and a new one created under the same name).
struct LogFollower {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl LogFollower {
    fn open(path: PathBuf) -> LogFollower {
        let file = std::fs::File::open(&path).ok().and_then(|mut f| {
            f.seek(std::io::SeekFrom::End(0)).ok()?;
            Some(f)
        });
        LogFollower { path, file }
    }

    fn read_new(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(f) = self.file.as_mut() {
            let _ = f.read_to_end(&mut out);
        }
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        let open = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map(|m| (m.dev(), m.ino()));
        if current.is_some() && current != open {
            // Rotated (or created since): the old file was read to its end; the new one is
            // read from its start.
            self.file = std::fs::File::open(&self.path).ok();
            if let Some(f) = self.file.as_mut() {
                let _ = f.read_to_end(&mut out);
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Splits CRI log records (`<time> stdout|stderr F|P <text>\n`) back into output: the text of
/// a full record ('F') ends with a newline, a partial one ('P') does not.
#[derive(Default)]
struct RecordSplitter {
    partial: Vec<u8>,
}

impl RecordSplitter {
    fn push(&mut self, data: &[u8]) -> Vec<(Stream, Vec<u8>)> {
        self.partial.extend_from_slice(data);
        let mut out: Vec<(Stream, Vec<u8>)> = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = &line[..line.len() - 1];
            let mut fields = line.splitn(4, |b| *b == b' ');
            let (_time, stream, tag) = (fields.next(), fields.next(), fields.next());
            let text = fields.next().unwrap_or_default();
            let stream = match stream {
                Some(b"stdout") => Stream::Stdout,
                Some(b"stderr") => Stream::Stderr,
                _ => continue,
            };
            let mut text = text.to_vec();
            if tag != Some(b"P") {
                text.push(b'\n');
            }
            match out.last_mut() {
                Some((s, t)) if *s == stream => t.extend_from_slice(&text),
                _ => out.push((stream, text)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_gate_holds_only_shim_failures() {
        let mut g = StderrGate::new("c-1", false);
        assert_eq!(g.push(b"kubelite shim"), None);
        assert_eq!(g.push(b"-exec c-1: exec failed: no such file\n"), None);
        assert_eq!(
            g.finish(126),
            (Some("exec failed: no such file".to_string()), Vec::new())
        );

        let mut g = StderrGate::new("c-1", false);
        assert_eq!(g.push(b"kub"), None);
        assert_eq!(g.push(b"ernetes\n"), Some(b"kubernetes\n".to_vec()));
        assert_eq!(g.push(b"more"), Some(b"more".to_vec()));
        assert_eq!(g.finish(126), (None, Vec::new()));

        // The same text but a normal exit: it was the process's.
        let mut g = StderrGate::new("c-1", false);
        assert_eq!(g.push(b"kubelite shim-exec c-1: x\n"), None);
        assert_eq!(g.finish(3), (None, b"kubelite shim-exec c-1: x\n".to_vec()));

        let mut tty = StderrGate::new("c-1", true);
        assert_eq!(
            tty.push(b"kubelite shim-exec c-1: container is Stopped\n"),
            None
        );
        assert_eq!(
            tty.finish(125),
            (Some("container is Stopped".to_string()), Vec::new())
        );
    }

    #[test]
    fn cri_records_split_back() {
        let mut s = RecordSplitter::default();
        let out = s.push(b"2024-01-01T00:00:00Z stdout F hello\n2024-01-01T00:00:00Z stdout P par");
        assert_eq!(out, vec![(Stream::Stdout, b"hello\n".to_vec())]);
        let out =
            s.push(b"t\n2024-01-01T00:00:00Z stderr F oops\n2024-01-01T00:00:00Z stdout F \n");
        assert_eq!(
            out,
            vec![
                (Stream::Stdout, b"part".to_vec()),
                (Stream::Stderr, b"oops\n".to_vec()),
                (Stream::Stdout, b"\n".to_vec()),
            ]
        );
    }

    #[test]
    fn log_follower_starts_at_the_end_and_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, b"old\n").unwrap();
        let mut f = LogFollower::open(path.clone());
        assert_eq!(f.read_new(), b"");
        let append = |text: &[u8]| {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            w.write_all(text).unwrap();
        };
        append(b"one\n");
        assert_eq!(f.read_new(), b"one\n");
        append(b"two\n");
        std::fs::rename(&path, dir.path().join("0.log.1")).unwrap();
        std::fs::write(&path, b"three\n").unwrap();
        assert_eq!(f.read_new(), b"two\nthree\n");
    }
}
