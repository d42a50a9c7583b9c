//! The container helper process ("shim"): the only place that calls libcontainer.
//!
//! libcontainer forks from its caller, is not safe to use from several threads and may deadlock
//! in a multi-threaded caller, sets the caller non-dumpable, and leaves reaping the container
//! init to the caller. So the agent (a multi-threaded tokio process) never calls it: it starts
//! one single-threaded `kubelite shim <launch.json>` process per container ([`spawn`]), which
//! detaches (new session, double fork), creates and starts the container, writes the pid file,
//! reports "started" back through a pipe, then owns the container for its whole life: it turns
//! the container's stdout/stderr into a CRI log file (with rotation), reaps the init, decides
//! the exit reason (including OOM kills), deletes the container (state and cgroup) and writes
//! the exit file. Everything the agent needs after its own restart lives in files under paths
//! it chose ([`Launch`]): the pid file, the exit file, the owner lock, the log and
//! libcontainer's state; [`observe`] reads them back, whatever step the agent died at.
//!
//! `kubelite shim-exec` ([`exec_command`], [`run_exec`]) runs one extra process inside a
//! running container (kubectl exec) from a short-lived single-threaded process of its own.
//!
//! Submodules:
//! - `launch` — what the agent asks for ([`Launch`], [`ExecRequest`]) and derived paths.
//! - `spawn` — agent side: start a detached shim safely from a multi-threaded process.
//! - `owner` — the lock a shim holds on its attempt from its spawner's fork to its exit.
//! - `recovery` — an attempt's files read by an agent that was not watching: starting,
//!   running, exited, never started or lost (shim gone); cleanup after a dead shim.
//! - `supervise` — the shim process itself ([`run_shim`]).
//! - `exec` — `shim-exec`: a process inside a running container.
//! - `status` — pid file, exit file, liveness and signalling without PID-reuse races.
//! - `crilog` — CRI log lines and kubelet-style rotation.
//! - `cgroup` — a container's memory cgroup (v1 or v2): OOM-kill counter, leftover processes;
//!   removal of a pod's empty parent cgroup in every hierarchy.
//! - `sys` — small Linux helpers (SIGCHLD self-pipe, fd flags, poll, console socket).

pub(crate) mod cgroup;
mod crilog;
mod exec;
mod launch;
mod owner;
mod recovery;
mod spawn;
mod status;
mod supervise;
mod sys;

#[cfg(test)]
mod tests;

pub use cgroup::remove_empty_cgroup;
pub use exec::{exec_command, exec_command_with, run_exec, ExecOptions};
pub use launch::{ExecRequest, Launch, DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_MAX_FILES};
pub use nix::sys::signal::Signal;
pub use recovery::{
    abandon_start, observe, remove_container, settle_lost, Observed, UNKNOWN_EXIT_CODE,
};
pub use spawn::{spawn, spawn_observed, START_TIMEOUT};
pub use status::{
    is_running, read_exit, read_pid, read_pid_record, signal, ExitInfo, ExitReason, PidRecord,
    ProcessRef,
};
pub use supervise::run_shim;

/// Errors of the agent-side shim API.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// A file or process operation failed; `context` says which and on what path.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The launch request cannot be used as given.
    #[error("invalid shim launch: {0}")]
    Invalid(String),
    /// The shim reported that the container could not be created or started.
    #[error("container {id} failed to start: {message}")]
    StartFailed { id: String, message: String },
    /// The shim went away without saying whether the container started.
    #[error("shim for container {id} exited without reporting a start ({detail})")]
    NoReport { id: String, detail: String },
    /// A live shim (or its spawner) already owns this attempt.
    #[error("container {id} already has a live shim")]
    Owned { id: String },
    /// The shim did not report within [`START_TIMEOUT`]; it is still running as `shim_pid`.
    #[error("shim {shim_pid:?} for container {id} did not report a start in time")]
    Timeout { id: String, shim_pid: Option<u32> },
}

impl ShimError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
        let context = context.into();
        move |source| ShimError::Io { context, source }
    }
}

/// An error with its chain of causes, on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
