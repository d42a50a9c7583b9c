//! Small Linux helpers for the shim processes: a SIGCHLD self-pipe, descriptor flags,
//! non-blocking reads and writes with EINTR/EIO handled, poll(2), SIGPIPE disposition, and
//! the console socket through which libcontainer hands over a terminal's master side.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A pipe with both ends close-on-exec: (read, write).
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 returns.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller keeps open.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
}

pub(crate) fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = if on { libc::FD_CLOEXEC } else { 0 };
    // SAFETY: fcntl on a descriptor the caller keeps open.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

/// A close-on-exec duplicate of `fd` numbered 3 or above (never one of the stdio numbers,
/// which libcontainer's init would dup2 onto itself and then close).
pub(crate) fn dup_above_stdio(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor the caller keeps open; the result is new and ours.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: just created.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// read(2) retrying on EINTR; EIO (a terminal whose other side is gone) reads as EOF.
pub(crate) fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// write(2) of as much as possible, retrying on EINTR; Ok(0) if it would block.
pub(crate) fn write_fd(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: data is valid for data.len() bytes.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Blocking write of all of `data`.
pub(crate) fn write_all_fd(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let n = write_fd(fd, data)?;
        if n == 0 {
            wait_fd(fd, libc::POLLOUT, None)?;
        }
        data = &data[n..];
    }
    Ok(())
}

/// poll(2); EINTR counts as "nothing ready". `timeout` None waits forever.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    // SAFETY: fds is a valid array of pollfd of the given length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

/// Waits until `fd` is ready for `events` (or errors/hangs up); false on timeout.
pub(crate) fn wait_fd(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut pfd = [pollfd(fd, events)];
        if poll(&mut pfd, left)? > 0 && pfd[0].revents != 0 {
            return Ok(true);
        }
        if left.is_some_and(|l| l.is_zero()) {
            return Ok(false);
        }
    }
}

pub(crate) fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// SIGPIPE: default (what a container's processes must inherit through libcontainer's fork;
/// the Rust runtime ignores it in our own process) or ignored (what the shim itself wants).
pub(crate) fn set_sigpipe_default(default: bool) {
    let handler = if default {
        libc::SIG_DFL
    } else {
        libc::SIG_IGN
    };
    // SAFETY: installing SIG_DFL/SIG_IGN has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, handler);
    }
}

static SIGCHLD_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_sigchld(_: libc::c_int) {
    // Async-signal-safe: one write(2) to a non-blocking pipe, errno preserved.
    // SAFETY: errno location is thread-local and valid; the write may fail harmlessly.
    unsafe {
        let saved = *libc::__errno_location();
        let fd = SIGCHLD_PIPE.load(Ordering::Relaxed);
        if fd >= 0 {
            let byte = 1u8;
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
        *libc::__errno_location() = saved;
    }
}

/// Turns SIGCHLD into a readable descriptor (self-pipe). Signals are not blocked, so
/// libcontainer's children inherit a normal signal mask; the handler is reset by execve.
pub(crate) struct SigchldPipe {
    read: OwnedFd,
    _write: OwnedFd,
}

impl SigchldPipe {
    pub(crate) fn install() -> io::Result<SigchldPipe> {
        let (read, write) = pipe()?;
        set_nonblocking(read.as_raw_fd(), true)?;
        set_nonblocking(write.as_raw_fd(), true)?;
        SIGCHLD_PIPE.store(write.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: a zeroed sigaction with a valid handler and empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigchld as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
            libc::sigemptyset(&mut sa.sa_mask);
            cvt(libc::sigaction(libc::SIGCHLD, &sa, std::ptr::null_mut()))?;
        }
        Ok(SigchldPipe {
            read,
            _write: write,
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Empties the pipe (call before reaping, so no SIGCHLD is missed).
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 64];
        while matches!(read_fd(self.read.as_raw_fd(), &mut buf), Ok(n) if n > 0) {}
    }
}

/// A listening unix socket that libcontainer connects to (its `--console-socket`) to send
/// the master side of a container's new terminal. Removed on drop.
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Binds `<dir>/.console-<pid>-<n>.sock`.
    pub(crate) fn bind(dir: &Path) -> io::Result<ConsoleSocket> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        std::fs::create_dir_all(dir)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".console-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("bind console socket {}: {e}", path.display()),
            )
        })?;
        listener.set_nonblocking(true)?;
        Ok(ConsoleSocket { listener, path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts libcontainer's connection and receives the terminal master (close-on-exec).
    pub(crate) fn receive(&self, timeout: Duration) -> io::Result<OwnedFd> {
        if !wait_fd(self.listener.as_raw_fd(), libc::POLLIN, Some(timeout))? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no terminal received on the console socket",
            ));
        }
        let (stream, _) = self.listener.accept()?;
        stream.set_nonblocking(false)?;
        recv_fd(stream.as_raw_fd())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Receives one descriptor sent with SCM_RIGHTS (extra ones are closed).
fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // u64 for alignment; room for several descriptors.
    let mut control = [0u64; 32];
    // SAFETY: a zeroed msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: msg describes valid buffers.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };
    let mut received: Vec<OwnedFd> = Vec::new();
    // SAFETY: walking the control messages the kernel filled in, within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let payload = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let data = libc::CMSG_DATA(cmsg) as *const libc::c_int;
                for i in 0..payload / std::mem::size_of::<libc::c_int>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    received.push(OwnedFd::from_raw_fd(fd));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if received.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("console socket message ({n} bytes) carried no descriptor"),
        ));
    }
    Ok(received.swap_remove(0))
}

/// Bytes waiting to be written to a non-blocking descriptor (a terminal master), so the
/// shim's loop never blocks on a container that does not read its input.
#[derive(Default)]
pub(crate) struct Outbox {
    buf: Vec<u8>,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Writes what the descriptor takes now.
    pub(crate) fn flush(&mut self, fd: RawFd) -> io::Result<()> {
        while !self.buf.is_empty() {
            let n = write_fd(fd, &self.buf)?;
            if n == 0 {
                break;
            }
            self.buf.drain(..n);
        }
        Ok(())
    }
}
