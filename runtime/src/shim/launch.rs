//! What the agent asks a shim to do: [`Launch`] (run one container for its whole life) and
//! [`ExecRequest`] (run one more process in a running container), plus the paths derived
//! from them. Both are plain serde data so they can cross a process boundary as JSON.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ShimError;

/// Default size at which the CRI log is rotated (kubelet's `containerLogMaxSize`, 10 MiB).
pub const DEFAULT_LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of log files kept, current one included (kubelet's `containerLogMaxFiles`).
pub const DEFAULT_LOG_MAX_FILES: u32 = 5;

fn default_log_max_bytes() -> u64 {
    DEFAULT_LOG_MAX_BYTES
}

fn default_log_max_files() -> u32 {
    DEFAULT_LOG_MAX_FILES
}

/// Everything a shim needs to run one container. All paths are chosen by the agent; after
/// an agent restart the pid file, exit file, log and libcontainer state under `state_root`
/// are all there is (and all that is needed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Launch {
    /// Container id (libcontainer's; must be unique under `state_root`).
    pub id: String,
    /// OCI bundle directory: `config.json` and the root filesystem it names. The config must
    /// set `linux.cgroupsPath`; `process.terminal` must equal `tty`.
    pub bundle: PathBuf,
    /// libcontainer's root directory (its state lives in `<state_root>/<id>/`). Also holds the
    /// short-lived console sockets, so keep it short (a unix socket path is at most 107 bytes).
    pub state_root: PathBuf,
    /// The CRI log file (`kubectl logs` reads it); rotated files are `<log>.<timestamp>`.
    pub log_path: PathBuf,
    /// Written atomically (JSON [`super::ExitInfo`]) once the container has exited and been
    /// deleted, or if it failed to start.
    pub exit_file: PathBuf,
    /// Written atomically (JSON [`super::PidRecord`]) once the container has started.
    pub pid_file: PathBuf,
    /// Rotate the log when it reaches this size (0: never).
    #[serde(default = "default_log_max_bytes")]
    pub log_max_bytes: u64,
    /// Log files kept, the current one included (like kubelet, at least 1).
    #[serde(default = "default_log_max_files")]
    pub log_max_files: u32,
    /// Keep the container's stdin open: the shim creates a FIFO at [`Launch::stdin_fifo`];
    /// whatever is written there reaches the container (it never sees EOF). Without it the
    /// container's stdin is /dev/null.
    #[serde(default)]
    pub stdin: bool,
    /// Give the container a terminal (the bundle's `process.terminal` must be true): its
    /// output, a single stream, is logged as `stdout`.
    #[serde(default)]
    pub tty: bool,
    /// Where the shim's own error messages go (default: nowhere). Never the container's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shim_log: Option<PathBuf>,
}

impl Launch {
    /// A launch with the default log limits, no stdin, no tty and no shim log.
    pub fn new(
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        state_root: impl Into<PathBuf>,
        log_path: impl Into<PathBuf>,
        exit_file: impl Into<PathBuf>,
        pid_file: impl Into<PathBuf>,
    ) -> Self {
        Launch {
            id: id.into(),
            bundle: bundle.into(),
            state_root: state_root.into(),
            log_path: log_path.into(),
            exit_file: exit_file.into(),
            pid_file: pid_file.into(),
            log_max_bytes: DEFAULT_LOG_MAX_BYTES,
            log_max_files: DEFAULT_LOG_MAX_FILES,
            stdin: false,
            tty: false,
            shim_log: None,
        }
    }

    /// Where [`super::spawn`] writes this launch as JSON for the shim: `<pid_file>.launch.json`.
    pub fn launch_file(&self) -> PathBuf {
        with_suffix(&self.pid_file, ".launch.json")
    }

    /// The attempt's owner lock (see `owner`): `<pid_file>.lock`.
    pub fn lock_file(&self) -> PathBuf {
        with_suffix(&self.pid_file, LOCK_SUFFIX)
    }

    /// The FIFO feeding the container's stdin when `stdin` is set: `<pid_file>.stdin`.
    pub fn stdin_fifo(&self) -> PathBuf {
        with_suffix(&self.pid_file, ".stdin")
    }

    pub(crate) fn validate(&self) -> Result<(), ShimError> {
        let id_ok = !self.id.is_empty()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
            && !self.id.starts_with('.');
        if !id_ok {
            return Err(ShimError::Invalid(format!(
                "container id {:?} must be non-empty [A-Za-z0-9-_.+] not starting with '.'",
                self.id
            )));
        }
        for (name, path) in [
            ("bundle", &self.bundle),
            ("state_root", &self.state_root),
            ("log_path", &self.log_path),
            ("exit_file", &self.exit_file),
            ("pid_file", &self.pid_file),
        ] {
            if !path.is_absolute() {
                return Err(ShimError::Invalid(format!(
                    "{name} must be an absolute path, got {}",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}

/// One process to run inside a running container (`kubelite shim-exec`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    /// libcontainer's root directory (the container's [`Launch::state_root`]).
    pub state_root: PathBuf,
    /// The container id.
    pub id: String,
    /// Command and arguments (`args[0]` is looked up in the container's PATH).
    pub args: Vec<String>,
    /// `KEY=VALUE` entries overriding the container's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory (absolute; default: the container's).
    #[serde(default)]
    pub cwd: Option<String>,
    /// Run on a new terminal: the shim-exec process relays its stdin to the terminal and the
    /// terminal's output to its stdout. Without it the process gets shim-exec's own fds 0/1/2.
    #[serde(default)]
    pub tty: bool,
    /// With `tty`: an inherited descriptor on which the agent writes terminal sizes as
    /// `"<columns> <rows>\n"` lines; each is applied to the terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_fd: Option<i32>,
}

/// What [`Launch::lock_file`] appends to the pid file's name.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// `path` with `suffix` appended to its last component (`/a/pid` + `.x` → `/a/pid.x`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}
