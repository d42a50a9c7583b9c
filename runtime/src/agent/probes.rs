//! Container probes (liveness, readiness, startup), as kubelet's `pkg/kubelet/prober` and
//! `pkg/probe/{exec,http,tcp}` run them.
//!
//! - [`probe_once`] runs one attempt of a `core/v1 Probe` with its `timeoutSeconds`: `exec`
//!   through `kubelite shim-exec` (exit 0 = success; on timeout the shim-exec process and
//!   everything under it are killed), `httpGet` with a small HTTP/1.1 client (2xx success, 3xx
//!   success with a warning, same-host redirects followed, `User-Agent: kube-probe/1.33`),
//!   `tcpSocket` (connect within the timeout). HTTPS and gRPC answer [`ProbeResult::Unknown`].
//! - [`ProbeTracker`] keeps one probe's schedule (`initialDelaySeconds`, then every
//!   `periodSeconds`) and thresholds, and says when its verdict flips; [`ContainerProbes`]
//!   holds a container's three trackers and gates liveness/readiness on the startup probe.
//!   Both take the clock as an argument, so they are pure.
//!
//! Lifecycle hooks (postStart/preStop) live in `hooks`, on the same exec and HTTP plumbing.

// The worker wires these in; until then nothing outside the tests calls them.
// Part of this API (trackers' accessors, host_ip) is for later callers (node status, eviction).
#![allow(dead_code)]

use super::process::{descendants, pidfd_kill, pidfd_open};
use crate::shim;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Kubernetes minor version kubelet would report (`User-Agent: kube-probe/1.33`).
pub const KUBE_VERSION: &str = "1.33";
/// Output kept of an exec probe and body read of an HTTP probe (kubelet: 10 KiB).
pub(super) const MAX_OUTPUT: usize = 10 * 1024;
/// kubelet's probe client stops after this many same-host redirects.
const MAX_REDIRECTS: usize = 10;
const MAX_HEAD_BYTES: usize = 1 << 20;
/// Once an exec'd process exited, how long its output pipes may stay open (a background child
/// holding them) before we stop reading.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);
/// How long to wait for a killed process to be reaped before leaving that to a blocking task.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// Where `kubelite shim-exec` finds the container.
#[derive(Debug, Clone)]
pub struct ExecTarget {
    /// The kubelite binary (`AgentConfig::exe`).
    pub exe: PathBuf,
    /// libcontainer's state root (`Runtime::state_root()`).
    pub state_root: PathBuf,
    /// The container id of the current attempt (`Attempt::id`).
    pub container_id: String,
}

/// What a probe or hook needs to know about its container.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    /// Default host of `httpGet`/`tcpSocket` (for hostNetwork pods: the node IP).
    pub pod_ip: Option<IpAddr>,
    /// The node IP (informational; not used as a fallback for a missing pod IP).
    pub host_ip: Option<IpAddr>,
    pub exec: ExecTarget,
    /// The container spec: `name`, `ports` (named ports), `env` (`$(VAR)` in exec probes).
    pub container: Value,
    /// The pod as kubelet prints it in messages: `name_namespace(uid)` (see [`pod_desc`]).
    pub pod: String,
}

impl ProbeContext {
    pub(super) fn container_name(&self) -> &str {
        self.container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// kubelet's `format.Pod`: `name_namespace(uid)`.
pub fn pod_desc(pod: &Value) -> String {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}_{}({})",
        s("/metadata/name"),
        s("/metadata/namespace"),
        s("/metadata/uid")
    )
}

/// The outcome of one probe attempt. The strings are the probe's output, which kubelet puts
/// after `"<Kind> probe failed: "` ([`ProbeKind::event`] builds the whole event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    /// Success, with a `ProbeWarning` event (an HTTP probe that stopped at a redirect).
    Warning(String),
    /// Counts towards `failureThreshold`.
    Failure(String),
    /// The probe could not be run (unresolvable port, container not running, unsupported
    /// kind): kubelet records an event and throws the result away.
    Unknown(String),
}

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

/// An event kubelet records about a probe result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeEvent {
    /// `Warning`.
    pub event_type: &'static str,
    /// `Unhealthy` or `ProbeWarning`.
    pub reason: &'static str,
    pub message: String,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [
        ProbeKind::Startup,
        ProbeKind::Liveness,
        ProbeKind::Readiness,
    ];

    /// `Liveness`, `Readiness`, `Startup` (as in kubelet's messages).
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    /// The container field holding this probe.
    pub fn field(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "livenessProbe",
            ProbeKind::Readiness => "readinessProbe",
            ProbeKind::Startup => "startupProbe",
        }
    }

    /// The event kubelet records for one attempt's result, if any (every failed attempt gets
    /// one, not only the one that crosses the threshold).
    pub fn event(self, r: &ProbeResult) -> Option<ProbeEvent> {
        let (reason, message) = match r {
            ProbeResult::Success => return None,
            ProbeResult::Warning(out) => (
                "ProbeWarning",
                format!("{} probe warning: {out}", self.name()),
            ),
            ProbeResult::Failure(out) => {
                ("Unhealthy", format!("{} probe failed: {out}", self.name()))
            }
            ProbeResult::Unknown(err) => (
                "Unhealthy",
                format!(
                    "{} probe errored and resulted in unknown state: {err}",
                    self.name()
                ),
            ),
        };
        Some(ProbeEvent {
            event_type: "Warning",
            reason,
            message,
        })
    }

    /// The message of the `Killing` event (type Normal) when a liveness or startup verdict
    /// kills the container: `Container c failed liveness probe, will be restarted`.
    pub fn kill_message(self, container: &str, will_restart: bool) -> String {
        let what = match self {
            ProbeKind::Liveness => "liveness",
            ProbeKind::Startup => "startup",
            ProbeKind::Readiness => "readiness",
        };
        let mut m = format!("Container {container} failed {what} probe");
        if will_restart {
            m.push_str(", will be restarted");
        }
        m
    }
}

/// A change of a probe's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Readiness: ready. Startup: started. (Liveness starts healthy and never flips back.)
    Healthy,
    /// Readiness: not ready. Liveness/startup: the container must be killed. Carries the last
    /// failure as kubelet's event words it: `Liveness probe failed: ...`.
    Unhealthy(String),
}

/// One probe's schedule and thresholds for one container attempt (make a new one for every
/// new attempt). The clock is passed in: `now` arguments and the `started` instant.
#[derive(Debug, Clone)]
pub struct ProbeTracker {
    kind: ProbeKind,
    probe: Value,
    period: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    /// `None` = unknown (startup before its first verdict).
    healthy: Option<bool>,
    last: Option<bool>,
    run: u32,
    due: Instant,
    in_flight: bool,
    /// Liveness/startup after a failure verdict (on hold until a new container), startup after
    /// its success: no more probing.
    done: bool,
}

fn spec_int(probe: &Value, field: &str, default: i64) -> i64 {
    probe.get(field).and_then(Value::as_i64).unwrap_or(default)
}

fn threshold(probe: &Value, field: &str, default: i64) -> u32 {
    spec_int(probe, field, default).clamp(1, u32::MAX as i64) as u32
}

/// A probe's `timeoutSeconds` (default 1, at least 1).
pub fn probe_timeout(probe: &Value) -> Duration {
    Duration::from_secs(spec_int(probe, "timeoutSeconds", 1).max(1) as u64)
}

impl ProbeTracker {
    /// `started`: when the container started (its first probe is due `initialDelaySeconds`
    /// later).
    pub fn new(kind: ProbeKind, probe: Value, started: Instant) -> Self {
        let delay = spec_int(&probe, "initialDelaySeconds", 0).max(0) as u64;
        let period = Duration::from_secs(spec_int(&probe, "periodSeconds", 10).max(1) as u64);
        // Validation requires 1 for liveness and startup probes.
        let success_threshold = match kind {
            ProbeKind::Readiness => threshold(&probe, "successThreshold", 1),
            _ => 1,
        };
        let failure_threshold = threshold(&probe, "failureThreshold", 3);
        let healthy = match kind {
            ProbeKind::Readiness => Some(false),
            ProbeKind::Liveness => Some(true),
            ProbeKind::Startup => None,
        };
        ProbeTracker {
            kind,
            probe,
            period,
            success_threshold,
            failure_threshold,
            healthy,
            last: None,
            run: 0,
            due: started + Duration::from_secs(delay),
            in_flight: false,
            done: false,
        }
    }

    pub fn kind(&self) -> ProbeKind {
        self.kind
    }

    /// The probe spec, for [`probe_once`].
    pub fn probe(&self) -> &Value {
        &self.probe
    }

    pub fn timeout(&self) -> Duration {
        probe_timeout(&self.probe)
    }

    /// Probe-level `terminationGracePeriodSeconds` (liveness/startup): overrides the pod's
    /// when this probe kills the container.
    pub fn termination_grace_period_seconds(&self) -> Option<i64> {
        self.probe
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
    }

    /// When the next attempt is due; `None` while one is in flight ([`ProbeTracker::begin`])
    /// or when this probe is finished (startup succeeded; liveness/startup failed: on hold
    /// until the container is replaced).
    pub fn next_due(&self) -> Option<Instant> {
        (!self.done && !self.in_flight).then_some(self.due)
    }

    pub fn is_due(&self, now: Instant) -> bool {
        self.next_due().is_some_and(|d| d <= now)
    }

    /// Marks an attempt as started (so [`ProbeTracker::next_due`] is `None` until its
    /// result is recorded).
    pub fn begin(&mut self) {
        self.in_flight = true;
    }

    /// The current verdict: `Some(true)` healthy/ready/started, `Some(false)` not,
    /// `None` unknown (startup before its verdict).
    pub fn healthy(&self) -> Option<bool> {
        self.healthy
    }

    /// Records an attempt's result at `Instant::now()`.
    pub fn record(&mut self, r: &ProbeResult) -> Option<Verdict> {
        self.record_at(r, Instant::now())
    }

    /// Records an attempt's result at `now`: schedules the next attempt a period after the
    /// last due time (at once if that has passed) and applies the thresholds. Returns the
    /// verdict only when it changes. Unknown results are thrown away (kubelet does so for
    /// probes that errored).
    pub fn record_at(&mut self, r: &ProbeResult, now: Instant) -> Option<Verdict> {
        self.in_flight = false;
        if self.done {
            return None;
        }
        self.due = (self.due + self.period).max(now);
        let (ok, failure) = match r {
            ProbeResult::Success | ProbeResult::Warning(_) => (true, None),
            ProbeResult::Failure(out) => (false, Some(out)),
            ProbeResult::Unknown(_) => return None,
        };
        if self.last == Some(ok) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(ok);
            self.run = 1;
        }
        let needed = if ok {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        if self.run < needed {
            return None;
        }
        let changed = self.healthy != Some(ok);
        self.healthy = Some(ok);
        match (self.kind, ok) {
            (ProbeKind::Liveness | ProbeKind::Startup, false) => {
                self.done = true;
                self.run = 0;
            }
            (ProbeKind::Startup, true) => self.done = true,
            _ => {}
        }
        if !changed {
            return None;
        }
        Some(match failure {
            None => Verdict::Healthy,
            Some(out) => Verdict::Unhealthy(format!("{} probe failed: {out}", self.kind.name())),
        })
    }
}

/// The probes of one container attempt. Liveness and readiness run only once the startup
/// probe (if any) succeeded, as kubelet does.
#[derive(Debug, Clone, Default)]
pub struct ContainerProbes {
    trackers: Vec<ProbeTracker>,
}

impl ContainerProbes {
    /// The probes `container` (a spec) declares, for an attempt that started at `started`.
    pub fn new(container: &Value, started: Instant) -> Self {
        let trackers = ProbeKind::ALL
            .iter()
            .filter_map(|&k| {
                let p = container.get(k.field()).filter(|p| p.is_object())?;
                Some(ProbeTracker::new(k, p.clone(), started))
            })
            .collect();
        ContainerProbes { trackers }
    }

    pub fn is_empty(&self) -> bool {
        self.trackers.is_empty()
    }

    pub fn get(&self, kind: ProbeKind) -> Option<&ProbeTracker> {
        self.trackers.iter().find(|t| t.kind == kind)
    }

    fn get_mut(&mut self, kind: ProbeKind) -> Option<&mut ProbeTracker> {
        self.trackers.iter_mut().find(|t| t.kind == kind)
    }

    /// `containerStatuses[].started`: no startup probe, or it succeeded.
    pub fn started(&self) -> bool {
        self.get(ProbeKind::Startup)
            .is_none_or(|t| t.healthy == Some(true))
    }

    /// `containerStatuses[].ready`: started, and no readiness probe or it says ready.
    pub fn ready(&self) -> bool {
        self.started()
            && self
                .get(ProbeKind::Readiness)
                .is_none_or(|t| t.healthy == Some(true))
    }

    /// A liveness or startup probe whose verdict is failure: the container must be killed.
    pub fn failed(&self) -> Option<ProbeKind> {
        [ProbeKind::Startup, ProbeKind::Liveness]
            .into_iter()
            .find(|&k| self.get(k).is_some_and(|t| t.healthy == Some(false)))
    }

    fn runnable(&self, t: &ProbeTracker) -> bool {
        t.kind == ProbeKind::Startup || self.started()
    }

    /// The earliest instant a probe is due (sleep until then), or `None`.
    pub fn next_due(&self) -> Option<Instant> {
        self.trackers
            .iter()
            .filter(|t| self.runnable(t))
            .filter_map(ProbeTracker::next_due)
            .min()
    }

    /// The probes due at `now`, marked in flight: run each with [`probe_once`] and hand its
    /// result to [`ContainerProbes::record`].
    pub fn take_due(&mut self, now: Instant) -> Vec<(ProbeKind, Value)> {
        let started = self.started();
        let mut out = Vec::new();
        for t in &mut self.trackers {
            if (t.kind == ProbeKind::Startup || started) && t.is_due(now) {
                t.begin();
                out.push((t.kind, t.probe.clone()));
            }
        }
        out
    }

    /// Records a result of the `kind` probe (see [`ProbeTracker::record_at`]).
    pub fn record(&mut self, kind: ProbeKind, r: &ProbeResult, now: Instant) -> Option<Verdict> {
        self.get_mut(kind)?.record_at(r, now)
    }
}

/// One attempt of `probe` (a core/v1 Probe), bounded by its `timeoutSeconds`.
pub async fn probe_once(probe: &Value, ctx: &ProbeContext) -> ProbeResult {
    let timeout = probe_timeout(probe);
    if let Some(exec) = probe.get("exec").filter(|v| v.is_object()) {
        exec_probe(exec, ctx, timeout).await
    } else if let Some(h) = probe.get("httpGet").filter(|v| v.is_object()) {
        http_probe(h, ctx, timeout).await
    } else if let Some(t) = probe.get("tcpSocket").filter(|v| v.is_object()) {
        tcp_probe(t, ctx, timeout).await
    } else if probe.get("grpc").is_some_and(Value::is_object) {
        ProbeResult::Unknown("gRPC probes not supported yet".into())
    } else {
        ProbeResult::Unknown(format!(
            "missing probe handler for {}:{}",
            ctx.pod,
            ctx.container_name()
        ))
    }
}

/// [`probe_once`], retried up to 3 times while it cannot be run (kubelet's
/// `runProbeWithRetries`: only errors are retried).
pub async fn run_probe(probe: &Value, ctx: &ProbeContext) -> ProbeResult {
    let mut r = probe_once(probe, ctx).await;
    for _ in 1..3 {
        if !matches!(r, ProbeResult::Unknown(_)) {
            break;
        }
        r = probe_once(probe, ctx).await;
    }
    r
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or("").to_string())
        .collect()
}

async fn exec_probe(exec: &Value, ctx: &ProbeContext, timeout: Duration) -> ProbeResult {
    // kubelet expands $(VAR) with the container's literal env values only
    // (ExpandContainerCommandOnlyStatic; valueFrom entries expand to "").
    let env: Vec<(String, String)> = ctx
        .container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.get("name").and_then(Value::as_str)?;
            let value = e.get("value").and_then(Value::as_str).unwrap_or("");
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    let cmd: Vec<String> = string_list(exec.get("command"))
        .iter()
        .map(|a| crate::oci::expand_vars(a, &env))
        .collect();
    match run_in_container(&ctx.exec, &cmd, Some(timeout)).await {
        ExecOutcome::Exited {
            code,
            stdout,
            stderr,
        } => {
            let mut out = stdout;
            out.extend_from_slice(&stderr);
            out.truncate(MAX_OUTPUT);
            let out = String::from_utf8_lossy(&out).into_owned();
            if code == 0 {
                ProbeResult::Success
            } else {
                ProbeResult::Failure(out)
            }
        }
        ExecOutcome::TimedOut => ProbeResult::Failure(format!(
            "command {} timed out",
            go_quote(cmd.join(" ").as_bytes())
        )),
        ExecOutcome::Error(e) => ProbeResult::Unknown(e),
    }
}

// ---------------------------------------------------------------------------------------------
// exec through `kubelite shim-exec`

/// How a process run in the container ended.
pub(super) enum ExecOutcome {
    /// It exited (128 + N if killed by signal N); output capped at [`MAX_OUTPUT`] per stream.
    Exited {
        code: i32,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// The deadline passed; shim-exec and everything under it were killed.
    TimedOut,
    /// It could not be run (spawn failure, container not running, no such executable).
    Error(String),
}

struct Capped(Vec<u8>);

impl Capped {
    fn push(&mut self, data: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.0.len());
        self.0.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// Reads one chunk of `rx` into `sink`; closes `rx` at end of file or on error.
async fn read_chunk(rx: &mut Option<tokio::net::unix::pipe::Receiver>, sink: &mut Capped) {
    let Some(r) = rx.as_mut() else {
        return std::future::pending().await;
    };
    let mut buf = [0u8; 8192];
    match r.read(&mut buf).await {
        Ok(0) | Err(_) => *rx = None,
        Ok(n) => sink.push(&buf[..n]),
    }
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs `cmd` in the container through `kubelite shim-exec` (no tty, no stdin), collecting
/// its stdout and stderr, until it exits or `deadline_after` passes.
pub(super) async fn run_in_container(
    target: &ExecTarget,
    cmd: &[String],
    deadline_after: Option<Duration>,
) -> ExecOutcome {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use tokio::io::unix::AsyncFd;
    use tokio::net::unix::pipe::Receiver;

    let deadline = deadline_after.and_then(|d| tokio::time::Instant::now().checked_add(d));
    if cmd.is_empty() {
        return ExecOutcome::Error("no command given".into());
    }
    let mut command = shim::exec_command(
        &target.exe,
        &target.state_root,
        &target.container_id,
        cmd,
        &[],
        None,
        false,
    );
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ExecOutcome::Error(format!("start {}: {e}", target.exe.display()));
        }
    };
    // The child is not reaped before we wait for it below, so this pidfd is the process.
    let pidfd = match pidfd_open(child.id()).and_then(|fd| {
        // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until dropped.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(|e| e.into_parts().1)
    }) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = child.kill();
            tokio::task::spawn_blocking(move || child.wait());
            return ExecOutcome::Error(format!("pidfd_open: {e}"));
        }
    };
    let pipe = |fd: Option<OwnedFd>| fd.and_then(|fd| Receiver::from_owned_fd(fd).ok());
    let mut out_rx = pipe(child.stdout.take().map(OwnedFd::from));
    let mut err_rx = pipe(child.stderr.take().map(OwnedFd::from));
    let mut out = Capped(Vec::new());
    let mut err = Capped(Vec::new());

    let exited = loop {
        tokio::select! {
            biased;
            r = pidfd.readable() => {
                if let Ok(mut g) = r {
                    g.retain_ready();
                }
                break true;
            }
            _ = read_chunk(&mut out_rx, &mut out), if out_rx.is_some() => {}
            _ = read_chunk(&mut err_rx, &mut err), if err_rx.is_some() => {}
            _ = sleep_until_opt(deadline) => break false,
        }
    };

    if !exited {
        for pid in descendants(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        pidfd_kill(pidfd.get_ref());
        let _ = tokio::time::timeout(REAP_WAIT, pidfd.readable()).await;
        if !matches!(child.try_wait(), Ok(Some(_))) {
            tokio::task::spawn_blocking(move || child.wait());
        }
        return ExecOutcome::TimedOut;
    }

    // Exited: what it wrote is still in the pipes.
    let drain_until = {
        let d = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
        deadline.map_or(d, |dl| dl.min(d))
    };
    while out_rx.is_some() || err_rx.is_some() {
        tokio::select! {
            _ = read_chunk(&mut out_rx, &mut out), if out_rx.is_some() => {}
            _ = read_chunk(&mut err_rx, &mut err), if err_rx.is_some() => {}
            _ = tokio::time::sleep_until(drain_until) => break,
        }
    }
    let status = match child.try_wait() {
        Ok(Some(s)) => s,
        _ => match tokio::task::spawn_blocking(move || child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return ExecOutcome::Error(format!("wait: {e}")),
            Err(e) => return ExecOutcome::Error(format!("wait: {e}")),
        },
    };
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    // shim-exec's own failures: 125 (container unusable), 126 (process could not start),
    // with "kubelite shim-exec <id>: <why>" on stderr.
    if code == 125 || code == 126 {
        let prefix = format!("kubelite shim-exec {}: ", target.container_id);
        if let Some(line) = String::from_utf8_lossy(&err.0)
            .lines()
            .find(|l| l.starts_with(&prefix))
        {
            return ExecOutcome::Error(line.trim().to_string());
        }
    }
    ExecOutcome::Exited {
        code,
        stdout: out.0,
        stderr: err.0,
    }
}

// ---------------------------------------------------------------------------------------------
// ports, addresses, errors in Go's words

/// kubelet's `probe.ResolveContainerPort`: a number, or the name of one of the container's
/// ports.
pub(super) fn resolve_port(port: Option<&Value>, container: &Value) -> Result<u16, String> {
    let n = match port {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
        Some(Value::String(name)) => container
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(name.as_str()))
            .and_then(|p| p.get("containerPort").and_then(Value::as_i64))
            .ok_or_else(|| format!("port {} not found", go_quote(name.as_bytes())))?,
        other => {
            return Err(format!(
                "intOrString had no kind: {}",
                other.cloned().unwrap_or(Value::Null)
            ))
        }
    };
    if (1..65536).contains(&n) {
        Ok(n as u16)
    } else {
        Err(format!("invalid port number: {n}"))
    }
}

/// Go's `net.JoinHostPort`.
pub(super) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The host a probe or hook talks to: its own `host`, else the pod IP.
pub(super) fn target_host(action: &Value, ctx: &ProbeContext) -> Result<String, String> {
    match action
        .get("host")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
    {
        Some(h) => Ok(h.to_string()),
        None => ctx
            .pod_ip
            .map(|ip| ip.to_string())
            .ok_or_else(|| "pod has no IP address".to_string()),
    }
}

/// An errno as Go prints it ("connection refused").
fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut c = desc.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => desc.to_string(),
            }
        }
        None => e.to_string(),
    }
}

/// Connects to `host:port` within `deadline`. Errors as Go's dialer words them.
async fn dial(
    host: &str,
    port: u16,
    deadline: Option<tokio::time::Instant>,
) -> Result<tokio::net::TcpStream, DialError> {
    let addr = join_host_port(host, port);
    let connect = async {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::net::lookup_host((host, port)).await {
                Ok(a) => a.collect(),
                Err(e) => return Err(format!("dial tcp: lookup {host}: {e}")),
            },
        };
        let mut last = format!("dial tcp: lookup {host}: no such host");
        for a in addrs {
            match tokio::net::TcpStream::connect(a).await {
                Ok(s) => return Ok(s),
                Err(e) => {
                    last = format!(
                        "dial tcp {}: connect: {}",
                        join_host_port(&a.ip().to_string(), port),
                        errno_text(&e)
                    )
                }
            }
        }
        Err(last)
    };
    tokio::select! {
        r = connect => r.map_err(DialError::Failed),
        _ = sleep_until_opt(deadline) => Err(DialError::TimedOut(format!("dial tcp {addr}: i/o timeout"))),
    }
}

enum DialError {
    Failed(String),
    TimedOut(String),
}

async fn tcp_probe(t: &Value, ctx: &ProbeContext, timeout: Duration) -> ProbeResult {
    let port = match resolve_port(t.get("port"), &ctx.container) {
        Ok(p) => p,
        Err(e) => return ProbeResult::Unknown(e),
    };
    let host = match target_host(t, ctx) {
        Ok(h) => h,
        Err(e) => return ProbeResult::Unknown(e),
    };
    match dial(&host, port, Some(tokio::time::Instant::now() + timeout)).await {
        Ok(_) => ProbeResult::Success,
        Err(DialError::Failed(e) | DialError::TimedOut(e)) => ProbeResult::Failure(e),
    }
}

/// Go's `strconv.Quote` (`%q`): double-quoted, with Go escapes; invalid UTF-8 as `\xNN`.
pub(super) fn go_quote(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    let mut rest = bytes;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(v) => (v, None),
            Err(e) => {
                let v = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                (v, Some(e.valid_up_to()))
            }
        };
        for c in valid.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\u{7}' => s.push_str("\\a"),
                '\u{8}' => s.push_str("\\b"),
                '\u{c}' => s.push_str("\\f"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                '\u{b}' => s.push_str("\\v"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    s.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if c.is_control() => s.push_str(&format!("\\u{:04x}", c as u32)),
                c => s.push(c),
            }
        }
        match bad {
            None => break,
            Some(i) => {
                s.push_str(&format!("\\x{:02x}", rest[i]));
                rest = &rest[i + 1..];
            }
        }
    }
    s.push('"');
    s
}

// ---------------------------------------------------------------------------------------------
// a minimal HTTP/1.1 GET client (Go's net/http as kubelet uses it)

/// An absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Url {
    pub scheme: String,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`, percent-encoded as sent.
    pub path: String,
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// Percent-encodes what may not appear raw in a request target (spaces, controls, non-ASCII).
fn escape_target(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b <= 0x20 || b >= 0x7f || b == b'"' || b == b'<' || b == b'>' || b == b'\\' {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// A path (with optional query; a fragment is dropped) as a request target.
fn target_of(path: &str) -> String {
    let path = path.split('#').next().unwrap_or("");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    escape_target(&path)
}

impl Url {
    /// The URL of an `httpGet` action (`GetProbeUrl`): scheme (default http), host (default
    /// the pod IP), port (number or named), path.
    pub fn for_action(action: &Value, ctx: &ProbeContext) -> Result<Url, String> {
        let scheme = action
            .get("scheme")
            .and_then(Value::as_str)
            .unwrap_or("HTTP")
            .to_ascii_lowercase();
        let scheme = if scheme.is_empty() {
            "http".into()
        } else {
            scheme
        };
        let port = resolve_port(action.get("port"), &ctx.container)?;
        let host = target_host(action, ctx)?;
        let path = action.get("path").and_then(Value::as_str).unwrap_or("");
        Ok(Url {
            scheme,
            host,
            port,
            path: target_of(path),
        })
    }

    /// `host:port` (as the Host header and Go's URL carry it).
    pub fn authority(&self) -> String {
        join_host_port(&self.host, self.port)
    }

    fn parse_absolute(scheme: &str, rest: &str) -> Result<Url, String> {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let authority = authority.rsplit('@').next().unwrap_or("");
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("invalid host {authority:?}"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port.filter(|p| !p.is_empty()) {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("invalid port {p:?} after host"))?,
            None => default_port(scheme),
        };
        if host.is_empty() {
            return Err("no Host in request URL".into());
        }
        Ok(Url {
            scheme: scheme.to_string(),
            host,
            port,
            path: target_of(path),
        })
    }

    /// Resolves a `Location` header against this URL.
    pub fn join(&self, loc: &str) -> Result<Url, String> {
        let loc = loc.trim();
        if let Some((scheme, rest)) = loc.split_once("://") {
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Url::parse_absolute(&scheme.to_ascii_lowercase(), rest);
            }
        }
        if let Some(rest) = loc.strip_prefix("//") {
            return Url::parse_absolute(&self.scheme, rest);
        }
        let path = if loc.starts_with('/') {
            loc.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            if let Some(q) = loc.strip_prefix('?') {
                format!("{base}?{q}")
            } else {
                let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
                format!("{dir}{loc}")
            }
        };
        Ok(Url {
            path: target_of(&path),
            ..self.clone()
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority(), self.path)
    }
}

/// Go's `textproto.CanonicalMIMEHeaderKey`.
fn canonical_header(k: &str) -> String {
    if !k
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return k.to_string();
    }
    let mut upper = true;
    k.chars()
        .map(|c| {
            let c2 = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            c2
        })
        .collect()
}

/// A response as far as probes and hooks care.
#[derive(Debug, Clone)]
pub(super) struct HttpResponse {
    pub status: u16,
    /// Up to [`MAX_OUTPUT`] bytes of the body (when read).
    pub body: Vec<u8>,
    /// Reading the body failed (Go: the probe errors).
    pub body_error: Option<String>,
}

struct Head {
    status: u16,
    location: Option<String>,
    content_length: Option<usize>,
    chunked: bool,
}

fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some((i, i + 4));
    }
    buf.windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2))
}

fn parse_head(raw: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let proto = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/") || code.len() != 3 {
        return Err(format!(
            "net/http: HTTP/1.x transport connection broken: malformed HTTP response {}",
            go_quote(status_line.as_bytes())
        ));
    }
    let status = code.parse::<u16>().map_err(|_| {
        format!(
            "net/http: HTTP/1.x transport connection broken: malformed HTTP status code {}",
            go_quote(code.as_bytes())
        )
    })?;
    let mut head = Head {
        status,
        location: None,
        content_length: None,
        chunked: false,
    };
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "location" => head.location = Some(v.to_string()),
            "content-length" => head.content_length = v.parse().ok(),
            "transfer-encoding" => head.chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    Ok(head)
}

/// Decodes a chunked body from `raw`: (data so far, up to `limit`; whether it is complete).
fn decode_chunked(raw: &[u8], limit: usize) -> Result<(Vec<u8>, bool), String> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let Some(nl) = raw[i..].iter().position(|&b| b == b'\n') else {
            return Ok((out, false));
        };
        let line = String::from_utf8_lossy(&raw[i..i + nl]);
        let size_text = line
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| "malformed chunked encoding".to_string())?;
        i += nl + 1;
        if size == 0 {
            return Ok((out, true));
        }
        let avail = raw.len().saturating_sub(i).min(size);
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&raw[i..i + avail.min(room)]);
        if out.len() >= limit {
            return Ok((out, true));
        }
        if avail < size {
            return Ok((out, false));
        }
        i += size;
        // CRLF after the chunk data
        if raw.len() < i + 1 {
            return Ok((out, false));
        }
        if raw[i] == b'\r' {
            i += 1;
        }
        if raw.len() < i + 1 {
            return Ok((out, false));
        }
        if raw[i] == b'\n' {
            i += 1;
        }
    }
}

/// Sends one GET and reads the response head. Returns the stream and bytes read past the head.
async fn request_head(
    url: &Url,
    headers: &[(String, String)],
    purpose: &str,
    deadline: Option<tokio::time::Instant>,
) -> Result<(tokio::net::TcpStream, Head, Vec<u8>), String> {
    if url.scheme != "http" {
        return Err(format!(
            "unsupported protocol scheme {}",
            go_quote(url.scheme.as_bytes())
        ));
    }
    let mut stream = match dial(&url.host, url.port, deadline).await {
        Ok(s) => s,
        Err(DialError::Failed(e)) => return Err(e),
        Err(DialError::TimedOut(_)) => {
            return Err(
                "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into(),
            )
        }
    };
    let mut host = url.authority();
    let mut lines: Vec<String> = Vec::new();
    let mut user_agent = true;
    let first = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| canonical_header(k) == name)
            .map(|(_, v)| v.as_str())
    };
    let drop_accept = first("Accept") == Some("");
    for (k, v) in headers {
        let key = canonical_header(k);
        let v = v.replace(['\r', '\n'], " ");
        match key.as_str() {
            "Host" => {
                if first("Host") == Some(v.as_str()) && !v.is_empty() {
                    host = v;
                }
                continue;
            }
            "User-Agent" => user_agent = false,
            "Accept" if drop_accept => continue,
            "Connection" | "Content-Length" | "Transfer-Encoding" => continue,
            _ => {}
        }
        if key == "User-Agent" && v.is_empty() {
            continue;
        }
        lines.push(format!("{key}: {v}\r\n"));
    }
    let mut req = format!("GET {} HTTP/1.1\r\nHost: {host}\r\n", url.path);
    if user_agent {
        req.push_str(&format!("User-Agent: kube-{purpose}/{KUBE_VERSION}\r\n"));
    }
    if first("Accept").is_none() {
        req.push_str("Accept: */*\r\n");
    }
    for l in lines {
        req.push_str(&l);
    }
    req.push_str("Connection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write tcp: {}", errno_text(&e)))?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some((end, body_start)) = find_head_end(&buf) {
            let head = parse_head(&buf[..end])?;
            let rest = buf[body_start..].to_vec();
            // 1xx (but 101) are informational: the real response follows.
            if (100..200).contains(&head.status) && head.status != 101 {
                buf = rest;
                continue;
            }
            return Ok((stream, head, rest));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err("net/http: server response headers exceeded 1048576 bytes; aborted".into());
        }
        match stream.read(&mut chunk).await {
            Ok(0) => {
                return Err(if buf.is_empty() {
                    "EOF".into()
                } else {
                    "unexpected EOF".into()
                })
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read tcp: {}", errno_text(&e))),
        }
    }
}

async fn read_body(
    stream: &mut tokio::net::TcpStream,
    head: &Head,
    mut raw: Vec<u8>,
) -> Result<Vec<u8>, String> {
    if head.status == 204 || head.status == 304 {
        return Ok(Vec::new());
    }
    let mut chunk = [0u8; 8192];
    loop {
        if head.chunked {
            let (data, done) = decode_chunked(&raw, MAX_OUTPUT)?;
            if done || raw.len() > 8 * MAX_OUTPUT {
                return Ok(data);
            }
        } else if let Some(cl) = head.content_length {
            if raw.len() >= cl.min(MAX_OUTPUT) {
                raw.truncate(cl.min(MAX_OUTPUT));
                return Ok(raw);
            }
        } else if raw.len() >= MAX_OUTPUT {
            raw.truncate(MAX_OUTPUT);
            return Ok(raw);
        }
        match stream.read(&mut chunk).await {
            Ok(0) => {
                return if head.chunked || head.content_length.is_some() {
                    Err("unexpected EOF".into())
                } else {
                    Ok(raw)
                }
            }
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("read tcp: {}", errno_text(&e))),
        }
    }
}

/// GETs `url` as kubelet's clients do: redirects followed only to the same host name (up to
/// 10; a redirect elsewhere returns the 3xx response), bounded by `deadline`. Errors are
/// Go's (`Get "http://...": dial tcp ...: connect: connection refused`).
pub(super) async fn http_get(
    url: Url,
    headers: &[(String, String)],
    purpose: &str,
    deadline: Option<tokio::time::Instant>,
    want_body: bool,
) -> Result<HttpResponse, String> {
    let original_host = url.host.clone();
    let mut url = url;
    let mut requests = 0usize;
    loop {
        requests += 1;
        let head = tokio::select! {
            r = request_head(&url, headers, purpose, deadline) => r,
            _ = sleep_until_opt(deadline) => Err("context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into()),
        };
        let (mut stream, head, rest) =
            head.map_err(|e| format!("Get {}: {e}", go_quote(url.to_string().as_bytes())))?;
        if matches!(head.status, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = head.location.as_deref() {
                let next = url.join(loc).map_err(|e| {
                    format!(
                        "failed to parse Location header {}: {e}",
                        go_quote(loc.as_bytes())
                    )
                })?;
                if next.host == original_host {
                    if requests >= MAX_REDIRECTS {
                        return Err(format!(
                            "Get {}: stopped after 10 redirects",
                            go_quote(next.to_string().as_bytes())
                        ));
                    }
                    url = next;
                    continue;
                }
            }
        }
        let mut resp = HttpResponse {
            status: head.status,
            body: Vec::new(),
            body_error: None,
        };
        if want_body {
            let body = tokio::select! {
                r = read_body(&mut stream, &head, rest) => r,
                _ = sleep_until_opt(deadline) => Err("context deadline exceeded (Client.Timeout or context cancellation while reading body)".into()),
            };
            match body {
                Ok(b) => resp.body = b,
                Err(e) => resp.body_error = Some(e),
            }
        }
        return Ok(resp);
    }
}

/// `httpHeaders` of an `httpGet` action.
pub(super) fn action_headers(action: &Value) -> Vec<(String, String)> {
    action
        .get("httpHeaders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|h| {
            let s = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (s("name"), s("value"))
        })
        .collect()
}

async fn http_probe(action: &Value, ctx: &ProbeContext, timeout: Duration) -> ProbeResult {
    let url = match Url::for_action(action, ctx) {
        Ok(u) => u,
        Err(e) => return ProbeResult::Unknown(e),
    };
    if url.scheme == "https" {
        return ProbeResult::Unknown("HTTPS probes not supported yet".into());
    }
    let deadline = tokio::time::Instant::now() + timeout;
    match http_get(url, &action_headers(action), "probe", Some(deadline), true).await {
        Err(e) => ProbeResult::Failure(e),
        Ok(r) => {
            if let Some(e) = r.body_error {
                return ProbeResult::Unknown(e);
            }
            match r.status {
                200..=299 => ProbeResult::Success,
                300..=399 => ProbeResult::Warning(format!(
                    "Probe terminated redirects, Response body: {}",
                    String::from_utf8_lossy(&r.body)
                )),
                s => ProbeResult::Failure(format!("HTTP probe failed with statuscode: {s}")),
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::sync::OnceLock;
    use tokio::net::TcpListener;

    const SEC: Duration = Duration::from_secs(1);

    fn tracker(kind: ProbeKind, probe: Value, t0: Instant) -> ProbeTracker {
        ProbeTracker::new(kind, probe, t0)
    }

    fn fail() -> ProbeResult {
        ProbeResult::Failure("boom".into())
    }

    #[test]
    fn schedule_initial_delay_then_period() {
        let t0 = Instant::now();
        let mut t = tracker(
            ProbeKind::Liveness,
            json!({"initialDelaySeconds": 5, "periodSeconds": 3}),
            t0,
        );
        assert_eq!(t.next_due(), Some(t0 + 5 * SEC));
        assert!(!t.is_due(t0 + 4 * SEC));
        assert!(t.is_due(t0 + 5 * SEC));
        t.begin();
        assert_eq!(t.next_due(), None, "in flight");
        t.record_at(&ProbeResult::Success, t0 + 5 * SEC);
        assert_eq!(t.next_due(), Some(t0 + 8 * SEC));
        // Recorded late (slow probe): the cadence holds.
        t.record_at(&ProbeResult::Success, t0 + 9 * SEC);
        assert_eq!(t.next_due(), Some(t0 + 11 * SEC));
        // Recorded after the next due time passed: due at once.
        t.record_at(&ProbeResult::Success, t0 + 20 * SEC);
        assert_eq!(t.next_due(), Some(t0 + 20 * SEC));
        // Defaults: no delay, period 10.
        let mut d = tracker(ProbeKind::Readiness, json!({}), t0);
        assert_eq!(d.next_due(), Some(t0));
        d.record_at(&ProbeResult::Success, t0);
        assert_eq!(d.next_due(), Some(t0 + 10 * SEC));
    }

    #[test]
    fn liveness_failure_threshold_then_on_hold() {
        let t0 = Instant::now();
        let mut t = tracker(ProbeKind::Liveness, json!({"failureThreshold": 3}), t0);
        assert_eq!(t.healthy(), Some(true));
        assert_eq!(t.record_at(&fail(), t0), None);
        assert_eq!(t.record_at(&fail(), t0), None);
        // A success resets the run.
        assert_eq!(t.record_at(&ProbeResult::Success, t0), None);
        assert_eq!(t.record_at(&fail(), t0), None);
        assert_eq!(t.record_at(&fail(), t0), None);
        // Unknown results are thrown away: they neither count nor reset.
        assert_eq!(t.record_at(&ProbeResult::Unknown("x".into()), t0), None);
        assert_eq!(
            t.record_at(
                &ProbeResult::Failure("HTTP probe failed with statuscode: 500".into()),
                t0
            ),
            Some(Verdict::Unhealthy(
                "Liveness probe failed: HTTP probe failed with statuscode: 500".into()
            ))
        );
        assert_eq!(t.healthy(), Some(false));
        assert_eq!(t.next_due(), None, "on hold until a new container");
        assert_eq!(t.record_at(&ProbeResult::Success, t0), None);
    }

    #[test]
    fn liveness_success_threshold_is_one() {
        let t0 = Instant::now();
        let mut t = tracker(
            ProbeKind::Liveness,
            json!({"successThreshold": 5, "failureThreshold": 1}),
            t0,
        );
        assert_eq!(
            t.record_at(&ProbeResult::Success, t0),
            None,
            "already healthy"
        );
        assert!(matches!(
            t.record_at(&fail(), t0),
            Some(Verdict::Unhealthy(_))
        ));
    }

    #[test]
    fn readiness_starts_not_ready_and_flips_both_ways() {
        let t0 = Instant::now();
        let mut t = tracker(
            ProbeKind::Readiness,
            json!({"successThreshold": 2, "failureThreshold": 2}),
            t0,
        );
        assert_eq!(t.healthy(), Some(false));
        assert_eq!(t.record_at(&fail(), t0), None, "already not ready");
        assert_eq!(t.record_at(&ProbeResult::Success, t0), None);
        assert_eq!(
            t.record_at(&ProbeResult::Success, t0),
            Some(Verdict::Healthy)
        );
        assert_eq!(t.record_at(&ProbeResult::Success, t0), None);
        assert_eq!(t.record_at(&fail(), t0), None);
        assert_eq!(
            t.record_at(&fail(), t0),
            Some(Verdict::Unhealthy("Readiness probe failed: boom".into()))
        );
        assert!(t.next_due().is_some(), "readiness keeps probing");
        // A warning counts as success.
        assert_eq!(t.record_at(&ProbeResult::Warning("w".into()), t0), None);
        assert_eq!(
            t.record_at(&ProbeResult::Warning("w".into()), t0),
            Some(Verdict::Healthy)
        );
    }

    #[test]
    fn startup_gates_other_probes() {
        let t0 = Instant::now();
        let c = json!({
            "name": "c",
            "startupProbe": {"periodSeconds": 1, "failureThreshold": 2},
            "livenessProbe": {"periodSeconds": 5},
            "readinessProbe": {"initialDelaySeconds": 2},
        });
        let mut p = ContainerProbes::new(&c, t0);
        assert!(!p.started() && !p.ready());
        let due = p.take_due(t0 + 3 * SEC);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, ProbeKind::Startup);
        assert!(p.take_due(t0 + 3 * SEC).is_empty(), "startup in flight");
        assert_eq!(p.next_due(), None);
        assert_eq!(
            p.record(ProbeKind::Startup, &ProbeResult::Success, t0 + 3 * SEC),
            Some(Verdict::Healthy)
        );
        assert!(p.started());
        assert!(!p.ready(), "readiness not yet passed");
        let kinds: Vec<ProbeKind> = p.take_due(t0 + 3 * SEC).into_iter().map(|d| d.0).collect();
        assert_eq!(kinds, vec![ProbeKind::Liveness, ProbeKind::Readiness]);
        p.record(ProbeKind::Readiness, &ProbeResult::Success, t0 + 3 * SEC);
        assert!(p.ready());
        assert_eq!(p.get(ProbeKind::Startup).unwrap().next_due(), None);
        assert_eq!(p.failed(), None);

        // Startup failing past its threshold: the container must be killed.
        let mut q = ContainerProbes::new(&c, t0);
        q.record(ProbeKind::Startup, &fail(), t0);
        assert!(q.record(ProbeKind::Startup, &fail(), t0).is_some());
        assert_eq!(q.failed(), Some(ProbeKind::Startup));
        assert!(!q.started());
        assert_eq!(q.next_due(), None);

        let none = ContainerProbes::new(&json!({"name": "c"}), t0);
        assert!(none.is_empty() && none.started() && none.ready());
    }

    #[test]
    fn events_and_messages() {
        let e = ProbeKind::Liveness
            .event(&ProbeResult::Failure(
                "HTTP probe failed with statuscode: 500".into(),
            ))
            .unwrap();
        assert_eq!(
            (e.event_type, e.reason, e.message.as_str()),
            (
                "Warning",
                "Unhealthy",
                "Liveness probe failed: HTTP probe failed with statuscode: 500"
            )
        );
        let e = ProbeKind::Readiness
            .event(&ProbeResult::Unknown("port \"web\" not found".into()))
            .unwrap();
        assert_eq!(
            e.message,
            "Readiness probe errored and resulted in unknown state: port \"web\" not found"
        );
        assert_eq!(ProbeKind::Startup.event(&ProbeResult::Success), None);
        assert_eq!(
            ProbeKind::Readiness
                .event(&ProbeResult::Warning("x".into()))
                .unwrap()
                .reason,
            "ProbeWarning"
        );
        assert_eq!(
            ProbeKind::Liveness.kill_message("c", true),
            "Container c failed liveness probe, will be restarted"
        );
        assert_eq!(
            pod_desc(&json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}})),
            "p_ns(u)"
        );
        assert_eq!(
            go_quote(b"a\"b\\\n\t\x01\xff\xc3\xa9"),
            "\"a\\\"b\\\\\\n\\t\\x01\\xffé\""
        );
    }

    #[test]
    fn ports_and_urls() {
        let c = json!({"ports": [{"name": "web", "containerPort": 8080}]});
        assert_eq!(resolve_port(Some(&json!(81)), &c), Ok(81));
        assert_eq!(resolve_port(Some(&json!("web")), &c), Ok(8080));
        assert_eq!(
            resolve_port(Some(&json!("nope")), &c),
            Err("port \"nope\" not found".into())
        );
        assert_eq!(
            resolve_port(Some(&json!(0)), &c),
            Err("invalid port number: 0".into())
        );
        let base = Url {
            scheme: "http".into(),
            host: "10.0.0.1".into(),
            port: 80,
            path: "/a/b?x=1".into(),
        };
        assert_eq!(base.join("/c").unwrap().to_string(), "http://10.0.0.1:80/c");
        assert_eq!(base.join("c d").unwrap().path, "/a/c%20d");
        assert_eq!(
            base.join("http://[::1]:81/z").unwrap().to_string(),
            "http://[::1]:81/z"
        );
        assert_eq!(base.join("//other/q").unwrap().host, "other");
        assert_eq!(target_of("healthz?x=1#frag"), "/healthz?x=1");
        assert_eq!(canonical_header("x-custom-thing"), "X-Custom-Thing");
    }

    // --- test fixtures shared with the hook tests ---

    /// A fake `kubelite`: `shim-exec` skips its flags up to `--` and runs the rest as its child
    /// (recording the child's pid in `<root>/child.pid`); container id `gone` fails as
    /// shim-exec does for a container that is not running.
    pub(crate) fn fake_exe() -> &'static Path {
        static EXE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
        let (_, p) = EXE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("kubelite");
            let script = r#"#!/bin/sh
[ "$1" = shim-exec ] || exit 0
shift
root=; id=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --root=*) root="${1#--root=}" ;;
    --id=*) id="${1#--id=}" ;;
  esac
  shift
done
shift
if [ "$id" = gone ]; then
  echo "kubelite shim-exec $id: container is Stopped, not running" >&2
  exit 125
fi
"$@" &
echo $! > "$root/child.pid"
wait $!
"#;
            std::fs::write(&p, script).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            // Another test thread may have forked while the file was open for writing (ETXTBSY
            // until that child execs): wait until the script can be executed.
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                match std::process::Command::new(&p).status() {
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < until => {
                        std::thread::yield_now()
                    }
                    Err(e) => panic!("fake exe: {e}"),
                }
            }
            (dir, p)
        });
        p
    }

    pub(crate) fn ctx_with(root: &Path, id: &str, container: Value) -> ProbeContext {
        ProbeContext {
            pod_ip: Some("127.0.0.1".parse().unwrap()),
            host_ip: None,
            exec: ExecTarget {
                exe: fake_exe().to_path_buf(),
                state_root: root.to_path_buf(),
                container_id: id.into(),
            },
            container,
            pod: "p_ns(uid)".into(),
        }
    }

    /// Serves one canned response per connection; sends each request's head on the channel.
    pub(crate) async fn serve(
        responses: Vec<String>,
    ) -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            for resp in responses {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while find_head_end(&buf).is_none() {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
                if resp.is_empty() {
                    // Never answer: hold the connection.
                    tokio::spawn(async move {
                        let mut sink = [0u8; 64];
                        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
                    });
                    continue;
                }
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        (port, rx)
    }

    pub(crate) fn response(status: &str, extra: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[tokio::test]
    async fn http_probe_statuses_and_request() {
        let d = dir();
        let (port, mut reqs) = serve(vec![
            response("200 OK", "", "ok"),
            response("500 Internal Server Error", "", "bad"),
            response("204 No Content", "", ""),
        ])
        .await;
        let ctx = ctx_with(d.path(), "c1", json!({"name": "c"}));
        let probe = json!({"httpGet": {"path": "/healthz?x=1", "port": port,
            "httpHeaders": [{"name": "x-custom", "value": "v"}, {"name": "Host", "value": "example.com"}]}});
        assert_eq!(probe_once(&probe, &ctx).await, ProbeResult::Success);
        let req = reqs.recv().await.unwrap();
        assert!(req.starts_with("GET /healthz?x=1 HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nHost: example.com\r\n"), "{req}");
        assert!(req.contains("\r\nUser-Agent: kube-probe/1.33\r\n"), "{req}");
        assert!(req.contains("\r\nAccept: */*\r\n"), "{req}");
        assert!(req.contains("\r\nX-Custom: v\r\n"), "{req}");
        assert_eq!(
            probe_once(&probe, &ctx).await,
            ProbeResult::Failure("HTTP probe failed with statuscode: 500".into())
        );
        assert_eq!(probe_once(&probe, &ctx).await, ProbeResult::Success);
    }

    #[tokio::test]
    async fn http_probe_named_port_chunked_and_redirects() {
        let d = dir();
        let (port, mut reqs) = serve(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".into(),
            response("302 Found", "Location: /elsewhere\r\n", ""),
            response("200 OK", "", ""),
            response("301 Moved", "Location: http://other.invalid/x\r\n", "moved"),
        ])
        .await;
        let ctx = ctx_with(
            d.path(),
            "c1",
            json!({"name": "c", "ports": [{"name": "web", "containerPort": port}]}),
        );
        let probe = json!({"httpGet": {"path": "/", "port": "web"}});
        assert_eq!(probe_once(&probe, &ctx).await, ProbeResult::Success);
        // Same-host redirect: followed.
        assert_eq!(probe_once(&probe, &ctx).await, ProbeResult::Success);
        let _ = reqs.recv().await;
        let _ = reqs.recv().await;
        let followed = reqs.recv().await.unwrap();
        assert!(
            followed.starts_with("GET /elsewhere HTTP/1.1"),
            "{followed}"
        );
        // Redirect to another host: not followed, success with a warning.
        assert_eq!(
            probe_once(&probe, &ctx).await,
            ProbeResult::Warning("Probe terminated redirects, Response body: moved".into())
        );
        // Unknown named port: the probe errors.
        let bad = json!({"httpGet": {"path": "/", "port": "nope"}});
        assert_eq!(
            probe_once(&bad, &ctx).await,
            ProbeResult::Unknown("port \"nope\" not found".into())
        );
        let https = json!({"httpGet": {"port": 1, "scheme": "HTTPS"}});
        assert!(matches!(
            probe_once(&https, &ctx).await,
            ProbeResult::Unknown(_)
        ));
    }

    #[tokio::test]
    async fn http_probe_timeout_and_refused() {
        let d = dir();
        let (port, mut reqs) = serve(vec![String::new()]).await;
        let ctx = ctx_with(d.path(), "c1", json!({"name": "c"}));
        let probe = json!({"httpGet": {"path": "/slow", "port": port}, "timeoutSeconds": 1});
        let r = probe_once(&probe, &ctx).await;
        assert_eq!(
            r,
            ProbeResult::Failure(format!(
                "Get \"http://127.0.0.1:{port}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ))
        );
        assert!(reqs.recv().await.is_some());

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let probe = json!({"httpGet": {"path": "/", "port": closed}});
        assert_eq!(
            probe_once(&probe, &ctx).await,
            ProbeResult::Failure(format!(
                "Get \"http://127.0.0.1:{closed}/\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
    }

    #[tokio::test]
    async fn tcp_probe_open_closed_named() {
        let d = dir();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let ctx = ctx_with(
            d.path(),
            "c1",
            json!({"name": "c", "ports": [{"name": "db", "containerPort": open}]}),
        );
        assert_eq!(
            probe_once(&json!({"tcpSocket": {"port": open}}), &ctx).await,
            ProbeResult::Success
        );
        assert_eq!(
            probe_once(&json!({"tcpSocket": {"port": "db"}}), &ctx).await,
            ProbeResult::Success
        );
        assert_eq!(
            probe_once(
                &json!({"tcpSocket": {"port": closed, "host": "127.0.0.1"}}),
                &ctx
            )
            .await,
            ProbeResult::Failure(format!(
                "dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
        let no_ip = ProbeContext {
            pod_ip: None,
            ..ctx.clone()
        };
        assert!(matches!(
            probe_once(&json!({"tcpSocket": {"port": open}}), &no_ip).await,
            ProbeResult::Unknown(_)
        ));
        assert_eq!(
            probe_once(&json!({"grpc": {"port": open}}), &ctx).await,
            ProbeResult::Unknown("gRPC probes not supported yet".into())
        );
        drop(l);
    }

    #[tokio::test]
    async fn exec_probe_exit_codes_output_and_env() {
        let d = dir();
        let ctx = ctx_with(
            d.path(),
            "c1",
            json!({"name": "c", "env": [{"name": "WHO", "value": "world"}]}),
        );
        let ok = json!({"exec": {"command": ["true"]}});
        assert_eq!(probe_once(&ok, &ctx).await, ProbeResult::Success);
        let bad =
            json!({"exec": {"command": ["sh", "-c", "echo hello $(WHO); echo oops >&2; exit 3"]}});
        assert_eq!(
            probe_once(&bad, &ctx).await,
            ProbeResult::Failure("hello world\noops\n".into())
        );
        // shim-exec's own failure (container not running): the probe errors.
        let gone = ctx_with(d.path(), "gone", json!({"name": "c"}));
        assert_eq!(
            probe_once(&ok, &gone).await,
            ProbeResult::Unknown(
                "kubelite shim-exec gone: container is Stopped, not running".into()
            )
        );
    }

    pub(crate) async fn wait_dead(pid: i32) {
        let until = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
            if !matches!(state.as_deref(), Some(s) if s != "Z" && s != "X") {
                return;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "process {pid} still alive"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn exec_probe_timeout_kills_the_process() {
        let d = dir();
        let ctx = ctx_with(d.path(), "c1", json!({"name": "c"}));
        let slow = json!({"exec": {"command": ["sleep", "60"]}, "timeoutSeconds": 1});
        assert_eq!(
            probe_once(&slow, &ctx).await,
            ProbeResult::Failure("command \"sleep 60\" timed out".into())
        );
        let pid: i32 = std::fs::read_to_string(d.path().join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_dead(pid).await;
    }
}
