//! `kubelite shim-exec`: runs one process inside a running container (kubectl exec) from a
//! short-lived single-threaded process, so the agent never calls libcontainer itself.
//!
//! The process is the container's own `process` from its bundle (user, capabilities, rlimits,
//! no_new_privileges, apparmor — what Kubernetes exec inherits) with the requested args, env
//! overrides, cwd and terminal, under the container's seccomp filter ([`seccomp`]: the tenant
//! builder alone would drop it). It is created with libcontainer's tenant builder, is our
//! child, and we exit with its status (128 + N if killed by signal N). Without a tty it gets
//! our own fds 0/1/2; with one, we receive the terminal's master over a console socket and
//! relay our stdin to it and its output to our stdout, and the end of a piped stdin hangs the
//! terminal up (SIGHUP), as containerd does when an exec session's input closes.
//!
//! Exit codes of our own failures: 125 (the container cannot be used: not found, not
//! running, bad request), 126 (libcontainer could not start the process, e.g. no such file).

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::error_chain;
use super::launch::ExecRequest;
use super::status::pidfd_open;
use super::sys::{self, ConsoleSocket, Outbox};

mod seccomp;

const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The command the agent runs for an exec: `<exe> shim-exec --root <state_root> --id <id>
/// [--env K=V]... [--cwd <dir>] [--tty] -- <args>...`. Spawn it with piped stdio (stdin too
/// if the client sends input); its exit status is the process's.
pub fn exec_command(
    exe: &Path,
    state_root: &Path,
    id: &str,
    args: &[String],
    env: &[String],
    cwd: Option<&str>,
    tty: bool,
) -> Command {
    let opts = ExecOptions {
        env,
        cwd,
        tty,
        resize_fd: None,
    };
    exec_command_with(exe, state_root, id, args, &opts)
}

/// What [`exec_command_with`] adds to the command line besides the container and the args.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecOptions<'a> {
    /// `KEY=VALUE` environment overrides.
    pub env: &'a [String],
    /// Working directory (absolute).
    pub cwd: Option<&'a str>,
    /// Run on a new terminal.
    pub tty: bool,
    /// With `tty`: the descriptor number shim-exec inherits and reads terminal sizes from,
    /// as `"<columns> <rows>\n"` lines (`--resize-fd`). The caller makes the descriptor
    /// exist under that number in the child.
    pub resize_fd: Option<i32>,
}

/// [`exec_command`] with every option: `... [--tty] [--resize-fd N] -- <args>...`.
pub fn exec_command_with(
    exe: &Path,
    state_root: &Path,
    id: &str,
    args: &[String],
    opts: &ExecOptions<'_>,
) -> Command {
    let ExecOptions {
        env,
        cwd,
        tty,
        resize_fd,
    } = *opts;
    let mut cmd = Command::new(exe);
    cmd.arg("shim-exec");
    let mut root = OsString::from("--root=");
    root.push(state_root);
    cmd.arg(root).arg(format!("--id={id}"));
    for e in env {
        cmd.arg(format!("--env={e}"));
    }
    if let Some(cwd) = cwd {
        cmd.arg(format!("--cwd={cwd}"));
    }
    if tty {
        cmd.arg("--tty");
    }
    if let Some(fd) = resize_fd {
        cmd.arg(format!("--resize-fd={fd}"));
    }
    cmd.arg("--").args(args);
    cmd
}

struct Failure {
    code: i32,
    message: String,
}

fn fail(code: i32) -> impl Fn(String) -> Failure {
    move |message| Failure { code, message }
}

/// Entry point of `kubelite shim-exec`. Never returns. Call it before any other thread or
/// async runtime exists in the process, with no tracing subscriber installed.
pub fn run_exec(request: &ExecRequest) -> ! {
    sys::set_sigpipe_default(false);
    let code = match exec(request) {
        Ok(code) => code,
        Err(f) => {
            eprintln!("kubelite shim-exec {}: {}", request.id, f.message);
            f.code
        }
    };
    std::process::exit(code)
}

fn exec(request: &ExecRequest) -> Result<i32, Failure> {
    // The resize descriptor is ours alone: nothing started from here inherits it.
    let resize = match request.resize_fd {
        Some(fd) if request.tty => Some(take_fd(fd).map_err(fail(125))?),
        _ => None,
    };
    if request.args.is_empty() {
        return Err(fail(125)("no command given".into()));
    }
    if let Some(cwd) = &request.cwd {
        if !cwd.starts_with('/') {
            return Err(fail(125)(format!("cwd {cwd:?} is not absolute")));
        }
    }
    let mut container = Container::load(request.state_root.join(&request.id))
        .map_err(|e| fail(125)(format!("container not found: {e}")))?;
    container
        .refresh_status()
        .map_err(|e| fail(125)(format!("container status: {e}")))?;
    if container.status() != ContainerStatus::Running {
        return Err(fail(125)(format!(
            "container is {:?}, not running",
            container.status()
        )));
    }
    let config = container.bundle().join("config.json");
    let spec = oci_spec::runtime::Spec::load(&config)
        .map_err(|e| fail(125)(format!("load {}: {e}", config.display())))?;
    let mut process = exec_process(request, &spec)
        .map_err(|e| fail(125)(format!("{}: {e}", config.display())))?;
    let executor = seccomp::prepare(&spec, &mut process).map_err(fail(125))?;
    let process_file = write_process(request, &process).map_err(fail(125))?;

    let mut builder = ContainerBuilder::new(request.id.clone(), SyscallType::default())
        .with_root_path(&request.state_root)
        .map_err(|e| fail(125)(e.to_string()))?;
    if let Some(executor) = executor {
        builder = builder.with_executor(executor);
    }
    let mut console = None;
    if request.tty {
        let socket =
            ConsoleSocket::bind(&request.state_root).map_err(|e| fail(125)(e.to_string()))?;
        builder = builder.with_console_socket(Some(socket.path()));
        console = Some(socket);
    } else {
        let dup = |fd| sys::dup_above_stdio(fd).map_err(|e| fail(125)(format!("dup fd {fd}: {e}")));
        builder = builder
            .with_stdin(dup(0)?)
            .with_stdout(dup(1)?)
            .with_stderr(dup(2)?);
    }
    sys::set_sigpipe_default(true);
    let built = builder
        .as_tenant()
        .with_process(Some(&process_file))
        .with_detach(request.tty)
        .build();
    sys::set_sigpipe_default(false);
    let _ = std::fs::remove_file(&process_file);
    let pid = built.map_err(|e| fail(126)(error_chain(&e)))?;

    let status = match console {
        Some(socket) => {
            let master = socket.receive(CONSOLE_TIMEOUT);
            match master {
                Ok(master) => relay(master, pid.as_raw(), resize),
                Err(e) => {
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = wait(pid);
                    return Err(fail(126)(format!("exec terminal: {e}")));
                }
            }
        }
        None => wait(pid),
    }
    .map_err(|e| fail(125)(format!("wait for {pid}: {e}")))?;
    Ok(match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
        _ => 255,
    })
}

/// The container's process spec with this request's changes.
fn exec_process(
    request: &ExecRequest,
    spec: &oci_spec::runtime::Spec,
) -> Result<oci_spec::runtime::Process, String> {
    let mut process = spec.process().clone().ok_or("no process")?;
    process.set_args(Some(request.args.clone()));
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    for entry in &request.env {
        let key = entry.split('=').next().unwrap_or(entry);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &request.cwd {
        process.set_cwd(PathBuf::from(cwd));
    }
    process.set_terminal(Some(request.tty));
    process.set_console_size(None);
    Ok(process)
}

/// `process` as a temporary process.json next to libcontainer's state (removed after the
/// build).
fn write_process(
    request: &ExecRequest,
    process: &oci_spec::runtime::Process,
) -> Result<PathBuf, String> {
    let path = request
        .state_root
        .join(format!(".exec-{}-{}.json", request.id, std::process::id()));
    let json = serde_json::to_vec(process).map_err(|e| e.to_string())?;
    std::fs::write(&path, json).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}

fn wait(pid: Pid) -> nix::Result<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// An inherited descriptor `fd`, made close-on-exec and non-blocking, owned from now on.
fn take_fd(fd: i32) -> Result<OwnedFd, String> {
    if fd < 3 {
        return Err(format!("--resize-fd {fd} is a stdio descriptor"));
    }
    sys::set_cloexec(fd, true).map_err(|e| format!("--resize-fd {fd}: {e}"))?;
    sys::set_nonblocking(fd, true).map_err(|e| format!("--resize-fd {fd}: {e}"))?;
    // SAFETY: the descriptor was handed to this process for it alone (checked open above);
    // nothing else in it owns the number.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Terminal sizes read from the agent (`"<columns> <rows>\n"` lines).
struct Resizes {
    fd: OwnedFd,
    partial: Vec<u8>,
}

impl Resizes {
    /// Reads what is there and applies the last complete size to `master`. False once the
    /// agent closed its end (or on an error): stop polling.
    fn apply(&mut self, master: i32, buf: &mut [u8]) -> bool {
        let mut open = true;
        loop {
            match sys::read_fd(self.fd.as_raw_fd(), buf) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => self.partial.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    open = false;
                    break;
                }
            }
        }
        let mut last = None;
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            if let Some(size) = parse_size(&line) {
                last = Some(size);
            }
        }
        if let Some((cols, rows)) = last {
            set_window_size(master, cols, rows);
        }
        open
    }
}

/// `"<columns> <rows>"` (trailing newline allowed).
fn parse_size(line: &[u8]) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(line).ok()?;
    let mut it = text.split_ascii_whitespace();
    let cols = it.next()?.parse().ok()?;
    let rows = it.next()?.parse().ok()?;
    Some((cols, rows))
}

/// TIOCSWINSZ on the master: the kernel sends SIGWINCH to the terminal's foreground group.
fn set_window_size(master: i32, cols: u16, rows: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: master is an open terminal descriptor and ws a valid winsize.
    unsafe {
        libc::ioctl(master, libc::TIOCSWINSZ, &ws);
    }
}

/// Whether our stdin is a stream someone writes to (a pipe or a socket, as the agent gives us
/// when the client sends input), not `/dev/null` or a terminal.
fn stdin_is_stream() -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a `stat` into the buffer it is given; it is read only on success.
    if unsafe { libc::fstat(0, st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstat succeeded, so the buffer is initialised.
    let mode = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
    mode == libc::S_IFIFO || mode == libc::S_IFSOCK
}

/// Relays stdin → terminal and terminal → stdout until the process exits, applying terminal
/// sizes from `resize`; returns the process's status.
///
/// The end of a streamed stdin (the exec session's input closed, e.g. its client went away)
/// closes the master, which hangs the terminal up: the kernel sends SIGHUP to the process
/// (containerd's shim closes an exec's console when its stdin closes, and CRI exec closes
/// stdin at the end of the session). What the process does then is its own business; we wait
/// for it either way.
fn relay(master: OwnedFd, pid: i32, resize: Option<OwnedFd>) -> nix::Result<WaitStatus> {
    let mut resize = resize.map(|fd| Resizes {
        fd,
        partial: Vec::new(),
    });
    let pidfd = pidfd_open(pid)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let hang_up_at_eof = stdin_is_stream();
    // Used only while `master_open`: closing `master` (the hang-up) clears that first.
    let master_fd = master.as_raw_fd();
    let mut master = Some(master);
    let _ = sys::set_nonblocking(master_fd, true);
    let mut buf = vec![0u8; 32 * 1024];
    let mut outbox = Outbox::default();
    let mut stdin_open = true;
    let mut master_open = true;
    let mut stdout_ok = true;
    let to_stdout = |data: &[u8], ok: &mut bool| {
        if *ok && sys::write_all_fd(1, data).is_err() {
            *ok = false;
        }
    };
    loop {
        let mut fds = vec![sys::pollfd(pidfd.as_raw_fd(), libc::POLLIN)];
        let master_slot = master_open.then(|| {
            let mut events = libc::POLLIN;
            if !outbox.is_empty() {
                events |= libc::POLLOUT;
            }
            fds.push(sys::pollfd(master_fd, events));
            fds.len() - 1
        });
        let stdin_slot = (stdin_open && master_open && outbox.is_empty()).then(|| {
            fds.push(sys::pollfd(0, libc::POLLIN));
            fds.len() - 1
        });
        let resize_slot = resize.as_ref().filter(|_| master_open).map(|r| {
            fds.push(sys::pollfd(r.fd.as_raw_fd(), libc::POLLIN));
            fds.len() - 1
        });
        if let Err(e) = sys::poll(&mut fds, None) {
            eprintln!("kubelite shim-exec: poll: {e}");
            break;
        }
        if let Some(slot) = master_slot {
            let revents = fds[slot].revents;
            if revents & libc::POLLOUT != 0 && outbox.flush(master_fd).is_err() {
                master_open = false;
            }
            if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match sys::read_fd(master_fd, &mut buf) {
                    Ok(0) => master_open = false,
                    Ok(n) => to_stdout(&buf[..n], &mut stdout_ok),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => master_open = false,
                }
            }
        }
        if let Some(slot) = stdin_slot {
            if fds[slot].revents != 0 {
                match sys::read_fd(0, &mut buf) {
                    Ok(n) if n > 0 => {
                        outbox.push(&buf[..n]);
                        if outbox.flush(master_fd).is_err() {
                            master_open = false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    _ => {
                        stdin_open = false;
                        if hang_up_at_eof {
                            // Nothing is waiting in the outbox: stdin is read only when it
                            // is empty.
                            master_open = false;
                            drop(master.take());
                        }
                    }
                }
            }
        }
        if let Some(slot) = resize_slot {
            if fds[slot].revents != 0 {
                let open = resize
                    .as_mut()
                    .is_some_and(|r| r.apply(master_fd, &mut buf));
                if !open {
                    resize = None;
                }
            }
        }
        if fds[0].revents != 0 {
            break;
        }
    }
    // The process is gone: what it wrote is still buffered in the terminal.
    while master_open {
        match sys::read_fd(master_fd, &mut buf) {
            Ok(n) if n > 0 => to_stdout(&buf[..n], &mut stdout_ok),
            _ => master_open = false,
        }
    }
    wait(Pid::from_raw(pid))
}
