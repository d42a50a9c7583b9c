//! Linux namespaces of a pod sandbox: creating the network, IPC and UTS namespaces and pinning
//! them with bind mounts, removing them, and running code inside a network namespace.
//!
//! The agent is a multi-threaded process, and `unshare(2)`/`setns(2)` of the net, IPC and UTS
//! namespaces act on the calling *thread* only. So every namespace change happens on a fresh,
//! short-lived OS thread that exits when its job is done; no thread of the tokio runtime is ever
//! moved. A thread that `unshare`s keeps the process's mount namespace, so the bind mount of
//! `/proc/thread-self/ns/<kind>` it makes is visible to (and removable by) the whole host, and
//! the namespace outlives the thread.
//!
//! The directory holding the bind mounts is made a shared mount point (as `ip netns` does with
//! `/run/netns`): when a namespace file is unmounted, copies that propagated into other mount
//! namespaces (containers, services with private mounts) are unmounted too, so the namespace
//! can really be freed.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::FsType;

use super::error::NetworkError;

/// `statfs(2)` magic of nsfs, the file system of `/proc/<pid>/ns/*` files.
const NSFS_MAGIC: FsType = FsType(0x6e73_6673);

/// Where the three namespaces of one sandbox are pinned.
#[derive(Debug, Clone)]
pub(crate) struct NsPaths {
    pub net: PathBuf,
    pub ipc: PathBuf,
    pub uts: PathBuf,
}

impl NsPaths {
    pub(crate) fn in_dir(dir: &Path) -> NsPaths {
        NsPaths {
            net: dir.join("net"),
            ipc: dir.join("ipc"),
            uts: dir.join("uts"),
        }
    }

    fn all(&self) -> [&Path; 3] {
        [&self.net, &self.ipc, &self.uts]
    }

    /// Whether all three files are live namespace bind mounts.
    pub(crate) fn all_mounted(&self) -> bool {
        self.all().iter().all(|p| is_ns_file(p))
    }
}

/// Runs `f` on a new OS thread that exits afterwards (so whatever namespace it joined dies with
/// it), and returns its result without blocking the async runtime.
pub(crate) async fn on_fresh_thread<T, F>(name: &str, f: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| NetworkError::io("spawning namespace helper thread", e))?;
    rx.await
        .map_err(|_| NetworkError::Helper(format!("{name} panicked")))?
}

/// Opens a namespace file (e.g. `/proc/thread-self/ns/net` or a bind mount of one).
pub(crate) fn open_ns(path: &Path) -> Result<File, NetworkError> {
    File::open(path).map_err(|e| NetworkError::io(format!("opening {}", path.display()), e))
}

/// Moves the calling thread into the network namespace `ns`. Only call this on a thread that
/// is discarded afterwards (see [`on_fresh_thread`]).
pub(crate) fn enter_net(ns: &File) -> Result<(), NetworkError> {
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| NetworkError::sys("setns(net)", e))
}

/// Runs `f` inside the network namespace `ns` on a fresh thread.
pub(crate) async fn run_in_net<T, F>(ns: Arc<File>, f: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
{
    on_fresh_thread("kubelite-netns", move || {
        enter_net(&ns)?;
        f()
    })
    .await
}

/// Whether `path` is a namespace file (a bind mount of one, or a `/proc/*/ns/*` file).
pub(crate) fn is_ns_file(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Identity (device, inode) of a namespace file: two files name the same namespace iff equal.
#[cfg(test)]
pub(crate) fn ns_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Makes `dir` a shared mount point, bind-mounting it onto itself first if it is not a mount
/// point yet (idempotent, like `ip netns add` does for `/run/netns`).
pub(crate) fn ensure_shared_mount(dir: &Path) -> Result<(), NetworkError> {
    fs::create_dir_all(dir)
        .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
    let mut bound = false;
    loop {
        match mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            // EINVAL: not a mount point yet.
            Err(Errno::EINVAL) if !bound => {
                mount(
                    Some(dir),
                    dir,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| NetworkError::sys(format!("bind-mounting {}", dir.display()), e))?;
                bound = true;
            }
            Err(e) => {
                return Err(NetworkError::sys(
                    format!("making {} a shared mount", dir.display()),
                    e,
                ))
            }
        }
    }
}

/// Undoes [`ensure_shared_mount`] (node teardown and tests).
pub(crate) fn remove_shared_mount(dir: &Path) -> Result<(), NetworkError> {
    unmount_all(dir)
}

/// Unmounts every mount stacked on `path`; a path that is not mounted (or missing) is fine.
fn unmount_all(path: &Path) -> Result<(), NetworkError> {
    loop {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(NetworkError::sys(
                    format!("unmounting {}", path.display()),
                    e,
                ))
            }
        }
    }
}

/// What the new sandbox shares with the host.
#[derive(Debug, Clone)]
pub(crate) enum NsMode {
    /// New network, IPC and UTS namespaces; the UTS namespace gets this hostname.
    Isolated { hostname: String },
    /// The host's network and UTS namespaces (those of `host_net`'s owner and of the agent)
    /// and a new IPC namespace, as Kubernetes does for `hostNetwork: true`.
    HostNetwork,
}

/// Creates the sandbox namespaces and pins them at `paths`. On error, whatever was pinned is
/// removed again.
pub(crate) async fn create(
    paths: NsPaths,
    mode: NsMode,
    host_net: Arc<File>,
) -> Result<(), NetworkError> {
    if let Some(dir) = paths.net.parent() {
        fs::create_dir_all(dir)
            .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
    }
    let pins = paths.clone();
    let result = on_fresh_thread("kubelite-sandbox-ns", move || {
        // The agent's network namespace is the "host" one, whatever thread spawned us.
        enter_net(&host_net)?;
        match mode {
            NsMode::Isolated { hostname } => {
                unshare(
                    CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS,
                )
                .map_err(|e| NetworkError::sys("unshare(net|ipc|uts)", e))?;
                nix::unistd::sethostname(&hostname)
                    .map_err(|e| NetworkError::sys(format!("sethostname({hostname})"), e))?;
                pin("net", &pins.net)?;
                pin("ipc", &pins.ipc)?;
                pin("uts", &pins.uts)
            }
            NsMode::HostNetwork => {
                pin("net", &pins.net)?;
                pin("uts", &pins.uts)?;
                unshare(CloneFlags::CLONE_NEWIPC)
                    .map_err(|e| NetworkError::sys("unshare(ipc)", e))?;
                pin("ipc", &pins.ipc)
            }
        }
    })
    .await;
    if result.is_err() {
        let _ = remove(&paths);
    }
    result
}

/// Bind-mounts the calling thread's namespace of `kind` onto `target` (created empty).
fn pin(kind: &str, target: &Path) -> Result<(), NetworkError> {
    unmount_all(target)?;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(target)
        .map_err(|e| NetworkError::io(format!("creating {}", target.display()), e))?;
    let source = PathBuf::from(format!("/proc/thread-self/ns/{kind}"));
    mount(
        Some(&source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        NetworkError::sys(
            format!("bind-mounting {kind} ns on {}", target.display()),
            e,
        )
    })
}

/// Unpins the namespaces (missing pieces are fine) and removes the files and their directory.
pub(crate) fn remove(paths: &NsPaths) -> Result<(), NetworkError> {
    for path in paths.all() {
        unmount_all(path)?;
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(NetworkError::io(format!("removing {}", path.display()), e)),
        }
    }
    if let Some(dir) = paths.net.parent() {
        let _ = fs::remove_dir(dir);
    }
    Ok(())
}
