//! The shim process (`kubelite shim <launch.json>`): single-threaded, no async runtime, no
//! tracing subscriber (libcontainer's log events go nowhere, so none can leak into the
//! container's output). It detaches, keeps its attempt's owner lock (inherited from the
//! spawner, held until it exits), becomes a child subreaper, creates and starts the
//! container with libcontainer, writes the pid file and reports to the spawner, then turns
//! the container's output into the CRI log until the init exits, reaps it, decides the exit
//! reason, deletes the container (state and cgroup) and finally writes the exit file.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

use super::cgroup::MemoryCgroup;
use super::crilog::{CriLog, LineSplitter, Stream, Tag};
use super::error_chain;
use super::launch::Launch;
use super::owner;
use super::spawn::StatusChannel;
use super::status::{now_rfc3339, write_atomic, ExitInfo, ExitReason, PidRecord, ProcessRef};
use super::sys::{self, ConsoleSocket, Outbox, SigchldPipe};

/// How long to wait for libcontainer to hand over a new terminal after the start.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to keep killing processes left in the container's cgroup after its init exited.
const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(10);

/// Entry point of `kubelite shim <launch-file>`. Never returns: exits 0 once the exit file is
/// written, 1 if the container could not be started (the exit file then says StartError).
/// Must be called before any other thread or async runtime exists in the process, and with no
/// tracing subscriber installed.
pub fn run_shim(launch_file: &Path) -> ! {
    // Detach: a new session (fails harmlessly if `spawn` already made us a session leader),
    // then fork so the process that stays is neither a session leader (it can never acquire a
    // controlling terminal) nor the spawner's child.
    // SAFETY: setsid has no preconditions; after fork the child only continues this thread,
    // the parent leaves at once with _exit (no destructors, no atexit handlers).
    unsafe {
        libc::setsid();
        match nix::unistd::fork() {
            Ok(ForkResult::Parent { .. }) => libc::_exit(0),
            Ok(ForkResult::Child) => {}
            Err(e) => {
                eprintln!("kubelite shim: fork: {e}");
                libc::_exit(1)
            }
        }
    }
    let mut status = StatusChannel::from_env();
    owner::hold_from_env();
    status.hello();
    let _ = std::env::set_current_dir("/");
    sys::set_sigpipe_default(false);

    let launch: Launch = match std::fs::read(launch_file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(launch) => launch,
        Err(e) => {
            let message = format!("read launch file {}: {e}", launch_file.display());
            eprintln!("kubelite shim: {message}");
            status.finish(Err(message));
            std::process::exit(1);
        }
    };
    std::process::exit(supervise(&launch, &mut status))
}

fn supervise(launch: &Launch, status: &mut StatusChannel) -> i32 {
    let fail = |status: &mut StatusChannel, message: String| {
        say(launch, &message);
        let info = ExitInfo {
            exit_code: 128,
            signal: None,
            reason: ExitReason::StartError,
            started_at: None,
            finished_at: now_rfc3339(),
            message: Some(message.clone()),
        };
        write_exit(launch, &info);
        status.finish(Err(message));
        1
    };
    let mut running = match Running::start(launch) {
        Ok(running) => running,
        Err(message) => return fail(status, message),
    };
    let record = PidRecord {
        container: running.init,
        shim: ProcessRef::current(std::process::id() as i32).unwrap_or(ProcessRef {
            pid: std::process::id() as i32,
            start_time: 0,
        }),
        started_at: running.started_at.clone(),
    };
    let json = serde_json::to_vec(&record).expect("PidRecord serializes");
    if let Err(e) = write_atomic(&launch.pid_file, &json) {
        // The agent could never find this container: do not leave it running.
        running.abort();
        return fail(
            status,
            format!("write pid file {}: {e}", launch.pid_file.display()),
        );
    }
    status.finish(Ok(running.init.pid));
    release_free_heap();
    let info = running.run();
    // Before the exit file: once that exists the agent may reuse the paths.
    if launch.stdin {
        let _ = std::fs::remove_file(launch.stdin_fifo());
    }
    write_exit(launch, &info);
    0
}

/// Gives the pages of what the start allocated and freed (the spec, libcontainer's
/// builder) back to the kernel: the shim lives as long as its container, once per container.
fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn write_exit(launch: &Launch, info: &ExitInfo) {
    let json = serde_json::to_vec(info).expect("ExitInfo serializes");
    if let Err(e) = write_atomic(&launch.exit_file, &json) {
        say(
            launch,
            &format!("write exit file {}: {e}", launch.exit_file.display()),
        );
    }
}

/// A message for the shim's own log (its stderr), never the container's.
fn say(launch: &Launch, message: &str) {
    eprintln!(
        "{} kubelite shim {} [{}]: {message}",
        now_rfc3339(),
        launch.id,
        std::process::id()
    );
}

/// One output stream of the container (a pipe, or the terminal master).
struct Source {
    fd: OwnedFd,
    stream: Stream,
    split: LineSplitter,
    open: bool,
}

/// tty + stdin: bytes from the stdin FIFO go to the terminal master (source 0).
struct StdinForward {
    fifo: OwnedFd,
    outbox: Outbox,
}

struct Running {
    launch: Launch,
    container: Container,
    init: ProcessRef,
    started_at: String,
    sigchld: SigchldPipe,
    log: CriLog,
    log_failed: bool,
    sources: Vec<Source>,
    forward: Option<StdinForward>,
    /// The memory cgroup and its OOM-kill count at start.
    cgroup: Option<(MemoryCgroup, u64)>,
}

impl Running {
    fn start(launch: &Launch) -> Result<Running, String> {
        launch.validate().map_err(|e| e.to_string())?;
        let config = launch.bundle.join("config.json");
        let spec = oci_spec::runtime::Spec::load(&config)
            .map_err(|e| format!("load {}: {}", config.display(), error_chain(&e)))?;
        let terminal = spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        if terminal != launch.tty {
            return Err(format!(
                "launch tty={} but {} has process.terminal={terminal}",
                launch.tty,
                config.display()
            ));
        }
        let cgroups_path = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        std::fs::create_dir_all(&launch.state_root)
            .map_err(|e| format!("create {}: {e}", launch.state_root.display()))?;
        let _ = std::fs::remove_file(&launch.exit_file);

        let sigchld = SigchldPipe::install().map_err(|e| format!("SIGCHLD pipe: {e}"))?;
        // Orphans of the container (processes outside its PID namespace, if it has none)
        // become our children, not init's, so we see and reap them.
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } < 0 {
            return Err(format!(
                "PR_SET_CHILD_SUBREAPER: {}",
                io::Error::last_os_error()
            ));
        }
        let log = CriLog::open(&launch.log_path, launch.log_max_bytes, launch.log_max_files)
            .map_err(|e| format!("open log {}: {e}", launch.log_path.display()))?;

        // The stdin FIFO, opened read-write so the container never sees EOF on it.
        let fifo = if launch.stdin {
            let path = launch.stdin_fifo();
            let _ = std::fs::remove_file(&path);
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| format!("mkfifo {}: {e}", path.display()))?;
            let nonblock = if launch.tty { libc::O_NONBLOCK } else { 0 };
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC | nonblock)
                .open(&path)
                .map_err(|e| format!("open {}: {e}", path.display()))?;
            Some(OwnedFd::from(file))
        } else {
            None
        };

        let id = launch.id.clone();
        let mut builder = ContainerBuilder::new(id.clone(), SyscallType::default())
            .validate_id()
            .and_then(|b| b.with_root_path(&launch.state_root))
            .map_err(|e| format!("container {id}: {}", error_chain(&e)))?;
        let mut console = None;
        let mut sources = Vec::new();
        let mut forward = None;
        if launch.tty {
            let socket = ConsoleSocket::bind(&launch.state_root).map_err(|e| e.to_string())?;
            builder = builder.with_console_socket(Some(socket.path()));
            console = Some(socket);
            forward = fifo.map(|fifo| StdinForward {
                fifo,
                outbox: Outbox::default(),
            });
        } else {
            let stdin = match &fifo {
                Some(f) => sys::dup_above_stdio(f.as_raw_fd()),
                None => std::fs::File::open("/dev/null")
                    .and_then(|f| sys::dup_above_stdio(f.as_raw_fd())),
            }
            .map_err(|e| format!("container stdin: {e}"))?;
            drop(fifo);
            let pipes = || -> io::Result<(OwnedFd, OwnedFd)> {
                let (r, w) = sys::pipe()?;
                Ok((r, sys::dup_above_stdio(w.as_raw_fd())?))
            };
            let (out_r, out_w) = pipes().map_err(|e| format!("stdout pipe: {e}"))?;
            let (err_r, err_w) = pipes().map_err(|e| format!("stderr pipe: {e}"))?;
            builder = builder
                .with_stdin(stdin)
                .with_stdout(out_w)
                .with_stderr(err_w);
            sources.push(Source::new(out_r, Stream::Stdout));
            sources.push(Source::new(err_r, Stream::Stderr));
        }

        // The container's processes are forked from us: give them the default SIGPIPE the
        // Rust runtime took away from this process.
        sys::set_sigpipe_default(true);
        let built = builder
            .as_init(&launch.bundle)
            .with_systemd(false)
            .with_detach(true)
            .build();
        sys::set_sigpipe_default(false);
        // The builder's copies of the write ends are closed now: EOF means the container
        // closed its output.
        let _ = std::env::set_current_dir("/");
        let mut container =
            built.map_err(|e| format!("create container {id}: {}", error_chain(&e)))?;

        let abort = |container: &mut Container, message: String| {
            let _ = container.delete(true);
            reap_all(None);
            message
        };
        let Some(pid) = container.pid() else {
            return Err(abort(&mut container, format!("container {id} has no pid")));
        };
        let pid = pid.as_raw();
        // While the init is alive (created, waiting for the start): its identity, and its
        // memory cgroup, confirmed — the shim reads the OOM counter of and kills leftovers in
        // that cgroup only.
        let init = ProcessRef::current(pid).unwrap_or(ProcessRef { pid, start_time: 0 });
        let cgroup = match MemoryCgroup::locate(cgroups_path.as_deref(), &id) {
            Some(cgroup) if cgroup.holds(pid) => {
                let before = cgroup.oom_kills().unwrap_or(0);
                Some((cgroup, before))
            }
            other => {
                say(
                    launch,
                    &format!("memory cgroup {other:?} does not hold the init: OOM detection off"),
                );
                None
            }
        };
        if let Err(e) = container.start() {
            return Err(abort(
                &mut container,
                format!("start container {id}: {}", error_chain(&e)),
            ));
        }
        let started_at = now_rfc3339();
        if let Some(socket) = console {
            match socket.receive(CONSOLE_TIMEOUT) {
                Ok(master) => sources.push(Source::new(master, Stream::Stdout)),
                Err(e) => return Err(abort(&mut container, format!("container terminal: {e}"))),
            }
        }
        for source in &sources {
            if let Err(e) = sys::set_nonblocking(source.fd.as_raw_fd(), true) {
                return Err(abort(&mut container, format!("container output: {e}")));
            }
        }
        Ok(Running {
            launch: launch.clone(),
            container,
            init,
            started_at,
            sigchld,
            log,
            log_failed: false,
            sources,
            forward,
            cgroup,
        })
    }

    /// Kills and deletes the container (used when it must not stay running).
    fn abort(&mut self) {
        let _ = nix::sys::signal::kill(
            Pid::from_raw(self.init.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = waitpid(Pid::from_raw(self.init.pid), None);
        let _ = self.container.delete(true);
        reap_all(None);
    }

    /// Logs output until the init exits, then cleans up; returns the exit information.
    fn run(mut self) -> ExitInfo {
        let mut buf = vec![0u8; 64 * 1024];
        let mut exit = None;
        let finished_at = loop {
            // Clear before reaping: a SIGCHLD arriving later leaves a byte for poll.
            self.sigchld.clear();
            reap_all(Some((self.init.pid, &mut exit)));
            if exit.is_some() {
                break now_rfc3339();
            }
            let mut fds = vec![sys::pollfd(self.sigchld.fd(), libc::POLLIN)];
            let mut owners = vec![None];
            for (i, source) in self.sources.iter().enumerate() {
                if source.open {
                    let mut events = libc::POLLIN;
                    if i == 0 && self.forward.as_ref().is_some_and(|f| !f.outbox.is_empty()) {
                        events |= libc::POLLOUT;
                    }
                    fds.push(sys::pollfd(source.fd.as_raw_fd(), events));
                    owners.push(Some(i));
                }
            }
            let fifo_slot = match &self.forward {
                Some(f) if f.outbox.is_empty() && self.sources[0].open => {
                    fds.push(sys::pollfd(f.fifo.as_raw_fd(), libc::POLLIN));
                    Some(fds.len() - 1)
                }
                _ => None,
            };
            if let Err(e) = sys::poll(&mut fds, None) {
                say(&self.launch, &format!("poll: {e}"));
                // Nothing sensible to do but wait for the init.
                let status = waitpid(Pid::from_raw(self.init.pid), None).ok();
                exit = status.and_then(status_pair);
                break now_rfc3339();
            }
            for (slot, owner) in owners.iter().enumerate() {
                let revents = fds[slot].revents;
                let Some(i) = *owner else { continue };
                if revents & libc::POLLOUT != 0 {
                    self.flush_forward();
                }
                if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    self.pump(i, &mut buf);
                }
            }
            if let Some(slot) = fifo_slot {
                if fds[slot].revents != 0 {
                    self.read_stdin(&mut buf);
                }
            }
        };

        // Everything left in the pipes; with a PID namespace all writers are gone now.
        self.drain(&mut buf);
        let oom_killed = self
            .cgroup
            .as_ref()
            .is_some_and(|(cgroup, before)| cgroup.oom_kills().is_some_and(|now| now > *before));
        // The container ends with its init: processes it left behind (possible without a
        // PID namespace) are killed, so the cgroup can go and their output ends.
        if let Some((cgroup, _)) = &self.cgroup {
            kill_leftovers(cgroup);
        }
        if let Err(e) = self.container.delete(true) {
            say(
                &self.launch,
                &format!("delete container {}: {}", self.launch.id, error_chain(&e)),
            );
        }
        self.drain(&mut buf);
        for i in 0..self.sources.len() {
            self.close_source(i);
        }
        reap_all(None);
        let (code, signal) = exit.unwrap_or((None, None));
        ExitInfo::from_status(
            code,
            signal,
            oom_killed,
            Some(self.started_at.clone()),
            finished_at,
        )
    }

    /// One read from source `i` into the log.
    fn pump(&mut self, i: usize, buf: &mut [u8]) -> bool {
        if !self.sources[i].open {
            return false;
        }
        match sys::read_fd(self.sources[i].fd.as_raw_fd(), buf) {
            Ok(0) => {
                self.close_source(i);
                false
            }
            Ok(n) => {
                let Running {
                    sources,
                    log,
                    log_failed,
                    launch,
                    ..
                } = &mut *self;
                let source = &mut sources[i];
                let stream = source.stream;
                source.split.push(&buf[..n], |tag, content| {
                    write_line(log, log_failed, launch, stream, tag, content)
                });
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                say(&self.launch, &format!("read container output: {e}"));
                self.close_source(i);
                false
            }
        }
    }

    /// Reads whatever is buffered in every open source, without waiting.
    fn drain(&mut self, buf: &mut [u8]) {
        for i in 0..self.sources.len() {
            while self.pump(i, buf) {}
        }
    }

    /// EOF on source `i`: its unterminated last line becomes a 'P' line.
    fn close_source(&mut self, i: usize) {
        let Running {
            sources,
            log,
            log_failed,
            launch,
            ..
        } = self;
        let source = &mut sources[i];
        if source.open {
            source.open = false;
            let stream = source.stream;
            source
                .split
                .finish(|tag, content| write_line(log, log_failed, launch, stream, tag, content));
        }
    }

    fn read_stdin(&mut self, buf: &mut [u8]) {
        let Some(forward) = &mut self.forward else {
            return;
        };
        match sys::read_fd(forward.fifo.as_raw_fd(), buf) {
            Ok(n) if n > 0 => forward.outbox.push(&buf[..n]),
            _ => {}
        }
        self.flush_forward();
    }

    fn flush_forward(&mut self) {
        if let (Some(forward), Some(master)) = (&mut self.forward, self.sources.first()) {
            if let Err(e) = forward.outbox.flush(master.fd.as_raw_fd()) {
                say(&self.launch, &format!("write to container terminal: {e}"));
                self.forward = None;
            }
        }
    }
}

impl Source {
    fn new(fd: OwnedFd, stream: Stream) -> Source {
        Source {
            fd,
            stream,
            split: LineSplitter::default(),
            open: true,
        }
    }
}

/// Writes one CRI line; a failing log (disk full) is reported once and then dropped, never
/// allowed to stop the shim from draining the container's output.
fn write_line(
    log: &mut CriLog,
    failed: &mut bool,
    launch: &Launch,
    stream: Stream,
    tag: Tag,
    content: &[u8],
) {
    match log.write(stream, tag, content) {
        Ok(()) => *failed = false,
        Err(e) => {
            if !*failed {
                say(
                    launch,
                    &format!("write log {}: {e}", launch.log_path.display()),
                );
            }
            *failed = true;
        }
    }
}

/// SIGKILLs what is left in the container's cgroup until it is empty (a few rounds: a
/// process may fork while we read the list), reaping those that were re-parented to us.
/// Only a cgroup that holds none of our own processes is touched (it cannot be the root or
/// any other cgroup the shim lives in).
fn kill_leftovers(cgroup: &MemoryCgroup) {
    let me = std::process::id() as i32;
    if cgroup.procs().contains(&me) {
        return;
    }
    let deadline = std::time::Instant::now() + LEFTOVER_TIMEOUT;
    loop {
        let procs = cgroup.procs();
        if procs.is_empty() || std::time::Instant::now() > deadline {
            return;
        }
        for pid in procs {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        reap_all(None);
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status_pair(status: WaitStatus) -> Option<(Option<i32>, Option<i32>)> {
    match status {
        WaitStatus::Exited(_, code) => Some((Some(code), None)),
        WaitStatus::Signaled(_, sig, _) => Some((None, Some(sig as i32))),
        _ => None,
    }
}

/// Reaps every exited child without blocking; records the status of `init` if it is among
/// them.
#[allow(clippy::type_complexity)]
fn reap_all(mut init: Option<(i32, &mut Option<(Option<i32>, Option<i32>)>)>) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return,
            Ok(status) => {
                if let (Some(pid), Some((init_pid, slot))) = (status.pid(), init.as_mut()) {
                    if pid.as_raw() == *init_pid {
                        if let Some(pair) = status_pair(status) {
                            **slot = Some(pair);
                        }
                    }
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}
