//! One pod's worker: a level-triggered loop that brings what runs on the node in line with the
//! pod object. It creates the sandbox (namespaces, network, /etc files) and volumes, runs init
//! containers one after another, then the app containers, restarts them per the restart policy
//! with Kubernetes' back-off, terminates gracefully on deletion (TERM, grace period, KILL),
//! cleans up, and writes the pod status only when it changed. An evicted pod (node pressure)
//! has its containers killed at once, is marked Failed with reason `Evicted` for good (never
//! restarted), and loses its volumes and writable layers; its logs stay until it is deleted.
//!
//! Container creation survives the agent being killed at any step: after a restart (and on
//! every pass) each container's current attempt is settled from its files (`settle_attempts`):
//! adopted if its shim is creating or running it, removed and retried if its container never
//! started (not counted as a restart), recorded as exited (255, `Unknown`) if its shim died
//! without recording the exit.

use super::env::{self, EnvSources};
use super::eviction::{self, EvictRequest};
use super::hooks;
use super::probes::{
    self, ContainerProbes, ExecTarget, ProbeContext, ProbeKind, ProbeResult, Verdict,
};
use super::status::{self, ContainerView, State, StatusInput};
use super::{AgentConfig, AgentError};
use crate::images::ImageStore;
use crate::network::Network;
use crate::{oci, shim, volumes};
use kubelite_core::server::client::{resource, LocalClient};
use kubelite_core::server::write::now;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// How often a worker with running containers looks for exits when no exit notice arrives
/// (each running container's helper is watched through a pidfd, so this is only a safety net;
/// a short one would cost an idle node CPU for every running pod).
const EXIT_POLL: Duration = Duration::from_secs(60);
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long resets its back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How soon a worker looks again at an attempt a shim is still creating, or at the leftovers
/// of one being cleared (only after an agent restart or a dead shim).
const SETTLE_POLL: Duration = Duration::from_millis(200);

/// What every worker shares.
pub struct Runtime {
    pub cfg: AgentConfig,
    pub client: LocalClient,
    pub images: ImageStore,
    pub network: Network,
    /// The node's pressure conditions (new pods are admitted against them).
    pub pressure: watch::Receiver<eviction::Pressure>,
}

impl Runtime {
    pub fn new(
        cfg: AgentConfig,
        client: LocalClient,
        images: ImageStore,
        network: Network,
        pressure: watch::Receiver<eviction::Pressure>,
    ) -> Self {
        Runtime {
            cfg,
            client,
            images,
            network,
            pressure,
        }
    }

    pub fn pods_root(&self) -> PathBuf {
        self.cfg.data_dir.join("pods")
    }

    fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods_root().join(uid)
    }

    fn state_root(&self) -> PathBuf {
        self.cfg.run_dir.join("containers")
    }

    /// Whether earlier runs left anything for this pod on disk.
    pub fn has_local_state(&self, uid: &str) -> bool {
        self.pod_dir(uid).exists()
    }

    /// Pod UIDs with state on disk.
    pub fn local_pod_uids(&self) -> Vec<String> {
        std::fs::read_dir(self.pods_root())
            .map(|rd| {
                rd.filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One attempt at running a container, as recorded on disk.
#[derive(Debug, Clone)]
struct Attempt {
    n: u32,
    dir: PathBuf,
    id: String,
}

impl Attempt {
    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }
    fn exit_file(&self) -> PathBuf {
        self.dir.join("exit.json")
    }
    fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    fn exit(&self) -> Option<shim::ExitInfo> {
        shim::read_exit(&self.exit_file())
    }
    /// The helper is still up: the container runs, or has just exited and its exit is being
    /// recorded (the state moves to terminated when the exit file appears).
    fn shim_alive(&self) -> bool {
        shim::read_pid_record(&self.pid_file()).is_some_and(|r| shim::is_running(r.shim))
    }

    fn process(&self) -> Option<shim::ProcessRef> {
        shim::read_pid_record(&self.pid_file()).map(|r| r.container)
    }
    /// When the container started: the agent's record, else the shim's (an agent that died
    /// right after the start never wrote its own).
    fn started_at(&self) -> String {
        std::fs::read_to_string(self.dir.join("started"))
            .map(|s| s.trim().to_string())
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| shim::read_pid_record(&self.pid_file()).map(|r| r.started_at))
            .unwrap_or_default()
    }
    /// The container's `linux.cgroupsPath`.
    fn cgroups_path(&self, pod_uid: &str) -> String {
        format!("{}/{}", pod_cgroup(pod_uid), self.id)
    }
}

#[derive(Debug, Default)]
struct Ctr {
    attempts: Vec<Attempt>,
    waiting: Option<(String, Option<String>)>,
    backoff: Duration,
    not_before: Option<Instant>,
    image_id: String,
    signaled: Option<Instant>,
    /// Probes of the current attempt.
    probes: Option<ContainerProbes>,
    /// When a container being stopped (failed liveness/startup) gets KILL.
    kill_deadline: Option<Instant>,
    /// The attempt whose helper exit is being watched.
    exit_watched: Option<String>,
    /// The attempt this worker knows to run (started it, or adopted it after a restart).
    adopted: Option<String>,
}

impl Ctr {
    fn current(&self) -> Option<&Attempt> {
        self.attempts.last()
    }
    fn running(&self) -> bool {
        self.current()
            .is_some_and(|a| a.exit().is_none() && a.process().is_some_and(shim::is_running))
    }
    fn exited(&self) -> Option<shim::ExitInfo> {
        self.current().and_then(Attempt::exit)
    }
}

struct PodWorker {
    rt: Arc<Runtime>,
    uid: String,
    pod: Value,
    sandbox: Option<crate::network::PodSandbox>,
    volumes: Option<volumes::PodVolumes>,
    etc_dir: PathBuf,
    ctrs: HashMap<String, Ctr>,
    start_time: Option<String>,
    terminating_since: Option<Instant>,
    last_status: Option<Value>,
    sources: (HashMap<String, Value>, HashMap<String, Value>),
    probe_tx: mpsc::UnboundedSender<ProbeMsg>,
    /// Wakes the worker when a container's helper process ends (the container exited).
    exit_tx: mpsc::UnboundedSender<()>,
    /// The regular containers are done for good: sidecars are being stopped, not restarted.
    sidecars_stopping: bool,
    /// The pod is being (or was) evicted for node pressure.
    evicting: Option<Evicting>,
    /// The last `FailedMount` message recorded (repeats are not recorded again).
    failed_mount: Option<String>,
    /// The pod went through admission (a new pod is rejected under node pressure).
    admitted: bool,
    /// Some attempt is still being created by a shim nobody waits for, or the leftovers of
    /// one are being cleared (see `settle_attempts`): look again soon, tear nothing down.
    settling: bool,
}

/// An eviction the worker carries out: its message, who waits for the cleanup, and whether
/// the pod's local resources are released yet. Recorded in `<pod_dir>/evicted` (the message)
/// so an agent restart finishes it.
struct Evicting {
    message: String,
    waiters: Vec<oneshot::Sender<bool>>,
    released: bool,
}

impl Evicting {
    fn new(message: String) -> Evicting {
        Evicting {
            message,
            waiters: Vec::new(),
            released: false,
        }
    }
}

/// The message of a pod the API shows evicted (phase Failed, reason Evicted).
fn evicted_in_api(pod: &Value) -> Option<String> {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str);
    (s("/status/phase") == Some("Failed") && s("/status/reason") == Some(eviction::REASON))
        .then(|| s("/status/message").unwrap_or("").to_string())
}

/// A probe result for (container, attempt id).
type ProbeMsg = (String, String, ProbeKind, ProbeResult);

fn name_of(c: &Value) -> String {
    c.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn containers(pod: &Value, field: &str) -> Vec<Value> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn pod_name(pod: &Value) -> (String, String) {
    (
        pod.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string(),
        pod.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs one pod's worker until the pod is gone and cleaned up.
pub async fn run(
    rt: Arc<Runtime>,
    uid: String,
    mut rx: watch::Receiver<Option<Value>>,
    mut evict_rx: mpsc::UnboundedReceiver<EvictRequest>,
    done: mpsc::UnboundedSender<String>,
) {
    let pod = rx.borrow_and_update().clone();
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeMsg>();
    let (exit_tx, mut exit_rx) = mpsc::unbounded_channel::<()>();
    let mut w = PodWorker {
        etc_dir: rt.pod_dir(&uid).join("etc"),
        rt,
        uid: uid.clone(),
        pod: pod.clone().unwrap_or(Value::Null),
        sandbox: None,
        volumes: None,
        ctrs: HashMap::new(),
        start_time: None,
        terminating_since: None,
        last_status: None,
        sources: Default::default(),
        probe_tx,
        exit_tx,
        sidecars_stopping: false,
        evicting: None,
        failed_mount: None,
        admitted: false,
        settling: false,
    };
    w.recover();
    let mut gone = pod.is_none();
    loop {
        w.settle_attempts().await;
        let next = if gone {
            w.cleanup_gone().await
        } else {
            w.sync().await
        };
        match next {
            Ok(None) => break,
            Ok(Some(wait)) => {
                tokio::select! {
                    Some(msg) = probe_rx.recv() => w.on_probe(msg).await,
                    Some(()) = exit_rx.recv() => {}
                    Some(req) = evict_rx.recv() => w.on_evict(req).await,
                    changed = rx.changed() => {
                        if changed.is_err() { gone = true; continue; }
                        match rx.borrow_and_update().clone() {
                            Some(p) if p.pointer("/metadata/uid").and_then(Value::as_str) == Some(uid.as_str()) => w.pod = p,
                            _ => gone = true,
                        }
                    }
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => {
                tracing::warn!(pod = %uid, error = %e, "pod sync failed");
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() { gone = true; continue; }
                        match rx.borrow_and_update().clone() {
                            Some(p) => w.pod = p,
                            None => gone = true,
                        }
                    }
                    Some(req) = evict_rx.recv() => w.on_evict(req).await,
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
    let _ = done.send(uid);
}

impl PodWorker {
    fn pod_dir(&self) -> PathBuf {
        self.rt.pod_dir(&self.uid)
    }

    /// Rebuilds container attempts from disk (after an agent restart). An attempt directory
    /// without an `id` was cut short before anything was created for it and is removed; what
    /// the others' files say is settled by `settle_attempts`.
    fn recover(&mut self) {
        let root = self.pod_dir().join("containers");
        let Ok(names) = std::fs::read_dir(&root) else {
            return;
        };
        for n in names.flatten() {
            let Ok(name) = n.file_name().into_string() else {
                continue;
            };
            let mut attempts: Vec<Attempt> = std::fs::read_dir(n.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|a| {
                    let num: u32 = a.file_name().to_str()?.parse().ok()?;
                    let Some(id) = std::fs::read_to_string(a.path().join("id"))
                        .ok()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                    else {
                        let dir = a.path();
                        let removed = crate::images::rootfs::unmount(&dir.join("rootfs"))
                            .map_err(|e| e.to_string())
                            .and_then(|()| {
                                std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())
                            });
                        if let Err(e) = removed {
                            tracing::warn!(dir = %dir.display(), error = %e, "removing an attempt cut short");
                        }
                        return None;
                    };
                    Some(Attempt {
                        n: num,
                        dir: a.path(),
                        id,
                    })
                })
                .collect();
            attempts.sort_by_key(|a| a.n);
            self.ctrs.insert(
                name,
                Ctr {
                    attempts,
                    backoff: BACKOFF_START,
                    ..Default::default()
                },
            );
        }
        self.start_time = std::fs::read_to_string(self.pod_dir().join("started"))
            .ok()
            .map(|s| s.trim().to_string());
        if let Ok(message) = std::fs::read_to_string(self.pod_dir().join("evicted")) {
            self.evicting = Some(Evicting::new(message));
        }
    }

    async fn event(&self, kind: &str, reason: &str, message: &str, field_path: Option<&str>) {
        let Ok(events) = resource("", "v1", "events") else {
            return;
        };
        let (ns, name) = pod_name(&self.pod);
        let now = now();
        let mut involved = json!({"kind": "Pod", "namespace": ns, "name": name, "uid": self.uid, "apiVersion": "v1",
            "resourceVersion": self.pod.pointer("/metadata/resourceVersion")});
        if let Some(f) = field_path {
            involved["fieldPath"] = json!(f);
        }
        let ev = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": self.rt.cfg.node_name},
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": self.rt.cfg.node_name});
        if let Err(e) = self.rt.client.create(events, Some(&ns), ev).await {
            tracing::debug!(error = %e, "recording event");
        }
    }

    fn probe_context(&self, container: &Value, attempt_id: &str) -> ProbeContext {
        ProbeContext {
            pod_ip: self.pod_ip().and_then(|ip| ip.parse().ok()),
            host_ip: super::node::internal_ip().and_then(|ip| ip.parse().ok()),
            exec: ExecTarget {
                exe: self.rt.cfg.exe.clone(),
                state_root: self.rt.state_root(),
                container_id: attempt_id.to_string(),
            },
            container: container.clone(),
            pod: probes::pod_desc(&self.pod),
        }
    }

    fn spec_of(&self, name: &str) -> Option<(Value, bool)> {
        for (field, init) in [("containers", false), ("initContainers", true)] {
            if let Some(c) = containers(&self.pod, field)
                .into_iter()
                .find(|c| name_of(c) == name)
            {
                return Some((c, init));
            }
        }
        None
    }

    /// Watches the helper process of every running container through a pidfd, so the worker
    /// wakes as soon as a container exits (the helper ends right after recording the exit).
    fn watch_exits(&mut self) {
        for ctr in self.ctrs.values_mut() {
            let Some(a) = ctr.current() else { continue };
            if ctr.exit_watched.as_deref() == Some(a.id.as_str()) || a.exit().is_some() {
                continue;
            }
            let Some(rec) = shim::read_pid_record(&a.pid_file()) else {
                continue;
            };
            ctr.exit_watched = Some(a.id.clone());
            let tx = self.exit_tx.clone();
            tokio::spawn(async move {
                if let Some(fd) = pidfd(rec.shim) {
                    // SAFETY: the AsyncFd owns the pidfd, which lives as long as it does and is
                    // not used through any other handle.
                    let registered = unsafe {
                        tokio::io::unix::AsyncFd::register_with_interest(
                            fd,
                            tokio::io::Interest::READABLE,
                        )
                    };
                    if let Ok(afd) = registered {
                        let _ = afd.readable().await;
                    }
                }
                let _ = tx.send(());
            });
        }
    }

    /// Starts the probes that are due, each as a task reporting back on the channel.
    fn run_due_probes(&mut self) {
        let now_i = Instant::now();
        let names: Vec<String> = self.ctrs.keys().cloned().collect();
        for name in names {
            let Some((spec, _)) = self.spec_of(&name) else {
                continue;
            };
            let Some(ctr) = self.ctrs.get_mut(&name) else {
                continue;
            };
            if !ctr.running() || ctr.kill_deadline.is_some() {
                continue;
            }
            let Some(id) = ctr.current().map(|a| a.id.clone()) else {
                continue;
            };
            let due = ctr
                .probes
                .as_mut()
                .map(|p| p.take_due(now_i))
                .unwrap_or_default();
            if due.is_empty() {
                continue;
            }
            let ctx = self.probe_context(&spec, &id);
            for (kind, probe) in due {
                let tx = self.probe_tx.clone();
                let ctx = ctx.clone();
                let name = name.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let r = probes::run_probe(&probe, &ctx).await;
                    let _ = tx.send((name, id, kind, r));
                });
            }
        }
    }

    /// Applies one probe result: events, readiness, and stopping a container that failed its
    /// liveness or startup probe (it is then restarted per the restart policy).
    async fn on_probe(&mut self, (name, id, kind, result): ProbeMsg) {
        let field = self.spec_of(&name).map(|(_, init)| {
            format!(
                "spec.{}{{{name}}}",
                if init { "initContainers" } else { "containers" }
            )
        });
        let current = self
            .ctrs
            .get(&name)
            .and_then(|c| c.current())
            .is_some_and(|a| a.id == id);
        if !current {
            return;
        }
        if let Some(ev) = kind.event(&result) {
            self.event(ev.event_type, ev.reason, &ev.message, field.as_deref())
                .await;
        }
        let verdict = self
            .ctrs
            .get_mut(&name)
            .and_then(|c| c.probes.as_mut())
            .and_then(|p| p.record(kind, &result, Instant::now()));
        if let (Some(Verdict::Unhealthy(_)), ProbeKind::Liveness | ProbeKind::Startup) =
            (&verdict, kind)
        {
            let grace = self
                .ctrs
                .get(&name)
                .and_then(|c| c.probes.as_ref())
                .and_then(|p| p.get(kind))
                .and_then(|t| t.termination_grace_period_seconds())
                .or_else(|| {
                    self.pod
                        .pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
                .max(0) as u64;
            let policy = self
                .spec_of(&name)
                .map(|(c, init)| self.restart_policy(&c, init))
                .unwrap_or_default();
            let msg = kind.kill_message(&name, policy != "Never");
            self.event("Normal", "Killing", &msg, field.as_deref())
                .await;
            self.stop_container(&name, grace).await;
        }
        if verdict.is_some() {
            if let Err(e) = self.write_status().await {
                tracing::debug!(error = %e, "status after probe");
            }
        }
    }

    /// preStop, then TERM; KILL follows when the grace period has passed (see `sync`).
    async fn stop_container(&mut self, name: &str, grace: u64) {
        let started = Instant::now();
        if let Some((spec, _)) = self.spec_of(name) {
            if let (Some(h), Some(id)) = (
                spec.pointer("/lifecycle/preStop"),
                self.ctrs
                    .get(name)
                    .and_then(|c| c.current())
                    .map(|a| a.id.clone()),
            ) {
                let ctx = self.probe_context(&spec, &id);
                if let Err(e) = hooks::run_hook(h, &ctx, Duration::from_secs(grace)).await {
                    if !e.timed_out {
                        self.event("Warning", "FailedPreStopHook", "PreStopHook failed", None)
                            .await;
                    }
                    tracing::debug!(container = name, error = %e, "preStop hook");
                }
            }
        }
        let left = Duration::from_secs(grace)
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(2).min(Duration::from_secs(grace)));
        if let Some(ctr) = self.ctrs.get_mut(name) {
            if let Some(p) = ctr.current().and_then(Attempt::process) {
                let _ = shim::signal(p, nix::sys::signal::Signal::SIGTERM);
            }
            ctr.signaled = Some(Instant::now());
            ctr.kill_deadline = Some(Instant::now() + left);
        }
    }

    /// Fetches the configMaps and secrets the pod's volumes and env refer to.
    async fn fetch_sources(&mut self) -> Result<(), AgentError> {
        let (ns, _) = pod_name(&self.pod);
        let cms_r = resource("", "v1", "configmaps")?;
        let secrets_r = resource("", "v1", "secrets")?;
        let (mut cm_names, mut secret_names) = volumes::referenced_objects(&self.pod);
        for c in containers(&self.pod, "initContainers")
            .iter()
            .chain(containers(&self.pod, "containers").iter())
        {
            for f in c
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(n) = f.pointer("/configMapRef/name").and_then(Value::as_str) {
                    cm_names.push((n.to_string(), true));
                }
                if let Some(n) = f.pointer("/secretRef/name").and_then(Value::as_str) {
                    secret_names.push((n.to_string(), true));
                }
            }
            for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                if let Some(n) = e
                    .pointer("/valueFrom/configMapKeyRef/name")
                    .and_then(Value::as_str)
                {
                    cm_names.push((n.to_string(), true));
                }
                if let Some(n) = e
                    .pointer("/valueFrom/secretKeyRef/name")
                    .and_then(Value::as_str)
                {
                    secret_names.push((n.to_string(), true));
                }
            }
        }
        let mut cms = HashMap::new();
        for (n, _) in cm_names {
            if let Some(v) = self.rt.client.get(cms_r, Some(&ns), &n).await? {
                cms.insert(n, v);
            }
        }
        let mut secrets = HashMap::new();
        for (n, _) in secret_names {
            if let Some(v) = self.rt.client.get(secrets_r, Some(&ns), &n).await? {
                secrets.insert(n, v);
            }
        }
        self.sources = (cms, secrets);
        Ok(())
    }

    fn host_network(&self) -> bool {
        self.pod
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Namespaces, network and /etc files for the pod.
    async fn ensure_sandbox(&mut self) -> Result<(), AgentError> {
        if self.sandbox.is_some() {
            return Ok(());
        }
        let (ns, name) = pod_name(&self.pod);
        let hostname = self.hostname();
        let sb = self
            .rt
            .network
            .create_sandbox(&self.uid, &hostname, self.host_network())
            .await?;
        CrashHook::new(&self.rt.cfg.data_dir, name.clone()).at("after-sandbox");
        let dir = self.pod_dir();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        if self.start_time.is_none() {
            let t = now();
            let _ = std::fs::write(dir.join("started"), &t);
            self.start_time = Some(t);
        }
        let dns = dns_config(&self.pod);
        let aliases: Vec<(String, Vec<String>)> = self
            .pod
            .pointer("/spec/hostAliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                let ip = a.get("ip")?.as_str()?.to_string();
                let names = a
                    .get("hostnames")?
                    .as_array()?
                    .iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect();
                Some((ip, names))
            })
            .collect();
        crate::network::write_etc_files(
            &self.etc_dir,
            &name,
            &ns,
            sb.ip,
            &hostname,
            &dns,
            &aliases,
        )?;
        self.sandbox = Some(sb);
        Ok(())
    }

    /// The container hostname (kubelet's `GeneratePodHostNameAndDomain`): the node's with host
    /// networking, else `spec.hostname` when set (Indexed Jobs, StatefulSets), else the pod name,
    /// cut to 63 characters.
    fn hostname(&self) -> String {
        if self.host_network() {
            return self.rt.cfg.node_name.clone();
        }
        let (_, name) = pod_name(&self.pod);
        let mut h = self
            .pod
            .pointer("/spec/hostname")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_string)
            .unwrap_or(name);
        h.truncate(63);
        h.trim_end_matches(['-', '.']).to_string()
    }

    fn pod_ip(&self) -> Option<String> {
        if self.host_network() {
            return super::node::internal_ip();
        }
        self.sandbox
            .as_ref()
            .and_then(|s| s.ip)
            .map(|ip| ip.to_string())
    }

    async fn ensure_volumes(&mut self) -> Result<(), AgentError> {
        let claims = volumes::fetch_claims(&self.rt.client, &self.pod, volumes::CLAIM_WAIT).await?;
        let src = volumes::VolumeSources {
            configmaps: self.sources.0.clone(),
            secrets: self.sources.1.clone(),
            pod_ip: self.pod_ip(),
            node_name: self.rt.cfg.node_name.clone(),
            service_account_token: None,
            claims,
            ..Default::default()
        };
        let pod = self.pod.clone();
        let dir = self.pod_dir();
        let vols =
            tokio::task::spawn_blocking(move || volumes::setup_pod_volumes(&pod, &dir, &src))
                .await
                .map_err(|e| AgentError::Other(e.to_string()))?;
        let vols = match vols {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                if self.failed_mount.as_deref() != Some(msg.as_str()) {
                    self.event("Warning", "FailedMount", &msg, None).await;
                    self.failed_mount = Some(msg);
                }
                return Err(e.into());
            }
        };
        self.failed_mount = None;
        self.volumes = Some(vols);
        Ok(())
    }

    /// Starts a new attempt of `container`. On failure the container is left waiting with the
    /// reason kubelet would give.
    async fn start_container(&mut self, container: &Value, init: bool) -> Result<(), AgentError> {
        let name = name_of(container);
        let image_ref = container
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let field_path = format!(
            "spec.{}{{{name}}}",
            if init { "initContainers" } else { "containers" }
        );
        let images = &self.rt.images;
        // A lease keeps the image's layers while this container may use them (`image rm` safe).
        let image = match images.lease(&lease_owner(&self.uid, &name), &image_ref) {
            Ok(Some(i)) => i,
            Ok(None) | Err(_) => {
                let pulled_before = self
                    .ctrs
                    .get(&name)
                    .and_then(|c| c.waiting.as_ref())
                    .is_some_and(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff");
                let msg = format!("Failed to pull image \"{image_ref}\": image not present in the node's image store (kubelite image import, or put an archive in {}); pulling from registries is not supported yet", self.rt.cfg.images_dir.display());
                let ctr = self.ctrs.entry(name.clone()).or_default();
                if pulled_before {
                    ctr.waiting = Some((
                        "ImagePullBackOff".into(),
                        Some(format!("Back-off pulling image \"{image_ref}\"")),
                    ));
                    ctr.backoff = (ctr.backoff * 2).clamp(BACKOFF_START, BACKOFF_MAX);
                } else {
                    ctr.waiting = Some(("ErrImagePull".into(), Some(msg.clone())));
                    ctr.backoff = BACKOFF_START;
                    self.event("Warning", "Failed", &msg, Some(&field_path))
                        .await;
                }
                let ctr = self.ctrs.entry(name.clone()).or_default();
                ctr.not_before = Some(Instant::now() + ctr.backoff);
                return Ok(());
            }
        };
        let pod_ip = self.pod_ip();
        let env_result = {
            let env_src = EnvSources {
                configmaps: &self.sources.0,
                secrets: &self.sources.1,
                pod_ip: pod_ip.as_deref(),
                node_name: &self.rt.cfg.node_name,
                host_ip: None,
            };
            env::resolve(&self.pod, container, &env_src)
        }
        // kubelet verifies runAsNonRoot after the env and before anything is created.
        .and_then(|env| {
            oci::verify_run_as_non_root(&self.pod, container, &image.config.user)
                .map(|()| env)
                .map_err(|e| e.to_string())
        });
        let env = match env_result {
            Ok(e) => e,
            Err(msg) => {
                let ctr = self.ctrs.entry(name.clone()).or_default();
                ctr.waiting = Some(("CreateContainerConfigError".into(), Some(msg.clone())));
                ctr.not_before = Some(Instant::now() + Duration::from_secs(2));
                self.event(
                    "Warning",
                    "Failed",
                    &format!("Error: {msg}"),
                    Some(&field_path),
                )
                .await;
                return Ok(());
            }
        };
        let pod_dir = self.pod_dir();
        let ctr = self.ctrs.entry(name.clone()).or_default();
        let n = ctr.attempts.last().map(|a| a.n + 1).unwrap_or(0);
        let dir = pod_dir.join("containers").join(&name).join(n.to_string());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let short_uid: String = self
            .uid
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        let id = format!("{short_uid}-{name}-{n}");
        std::fs::write(dir.join("id"), &id).map_err(io_err(&dir))?;
        let crash = CrashHook::new(&self.rt.cfg.data_dir, format!("{name}#{n}"));
        crash.at("after-id");
        let attempt = Attempt {
            n,
            dir: dir.clone(),
            id: id.clone(),
        };
        let (attempt_ref, attempt_cgroups) = (attempt.clone(), attempt.cgroups_path(&self.uid));
        ctr.attempts.push(attempt.clone());
        ctr.image_id = image.id.clone();
        ctr.waiting = None;
        ctr.signaled = None;

        let (ns, pod_name) = pod_name(&self.pod);
        let log_dir = self
            .rt
            .cfg
            .data_dir
            .join("logs")
            .join(format!("{ns}_{pod_name}_{}", self.uid))
            .join(&name);
        std::fs::create_dir_all(&log_dir).map_err(io_err(&log_dir))?;
        let mut mounts = match self.volumes.as_ref() {
            Some(v) => volumes::container_mounts(&self.pod, container, v)?,
            None => Vec::new(),
        };
        for (file, target) in [
            ("hosts", "/etc/hosts"),
            ("resolv.conf", "/etc/resolv.conf"),
            ("hostname", "/etc/hostname"),
        ] {
            let src = self.etc_dir.join(file);
            if src.exists() {
                mounts.push(bind_mount(&src, target, false));
            }
        }
        let term_log = dir.join("termination-log");
        let _ = std::fs::write(&term_log, b"");
        let term_path = container
            .get("terminationMessagePath")
            .and_then(Value::as_str)
            .unwrap_or("/dev/termination-log");
        mounts.push(bind_mount(&term_log, term_path, false));

        let sb = self.sandbox.clone();
        let pod = self.pod.clone();
        let container_spec = container;
        let container = container.clone();
        let exe = self.rt.cfg.exe.clone();
        let state_root = self.rt.state_root();
        let hostname = self.hostname();
        let uid = self.uid.clone();
        let log_path = log_dir.join(format!("{n}.log"));
        let res = tokio::task::spawn_blocking(move || -> Result<u32, AgentError> {
            let upper = dir.join("upper");
            let work = dir.join("work");
            let rootfs = attempt.rootfs();
            for d in [&upper, &work, &rootfs] {
                std::fs::create_dir_all(d).map_err(io_err(d))?;
            }
            crate::images::rootfs::mount_overlay(&image.layers, &upper, &work, &rootfs)?;
            crash.at("after-mount");
            let lite = oci::ImageConfigLite {
                entrypoint: image.config.entrypoint.clone(),
                cmd: image.config.cmd.clone(),
                env: image.config.env.clone(),
                working_dir: image.config.working_dir.clone(),
                user: image.config.user.clone(),
            };
            let input = oci::ContainerInput {
                pod: &pod,
                container: &container,
                image: &lite,
                rootfs: rootfs.clone(),
                netns: sb.as_ref().map(|s| s.netns_path.clone()),
                ipcns: sb.as_ref().map(|s| s.ipcns_path.clone()),
                utsns: sb.as_ref().map(|s| s.utsns_path.clone()),
                hostname,
                env,
                mounts,
                cgroups_path: attempt.cgroups_path(&uid),
                pod_cgroup_shares_default: true,
            };
            let spec = oci::build_spec(&input)?;
            let bundle = dir.join("bundle");
            std::fs::create_dir_all(&bundle).map_err(io_err(&bundle))?;
            let cfg =
                serde_json::to_vec_pretty(&spec).map_err(|e| AgentError::Other(e.to_string()))?;
            std::fs::write(bundle.join("config.json"), cfg).map_err(io_err(&bundle))?;
            crash.at("after-bundle");
            let mut launch = shim::Launch::new(
                attempt.id.clone(),
                bundle,
                state_root,
                log_path,
                attempt.exit_file(),
                attempt.pid_file(),
            );
            launch.stdin = container
                .get("stdin")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            launch.tty = container
                .get("tty")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            launch.shim_log = Some(dir.join("shim.log"));
            let pid = shim::spawn_observed(&exe, &launch, || crash.at("in-spawn"))?;
            crash.at("after-spawn");
            let _ = std::fs::write(dir.join("started"), now());
            Ok(pid)
        })
        .await
        .map_err(|e| AgentError::Other(e.to_string()))?;
        match res {
            Ok(_) => {
                self.event(
                    "Normal",
                    "Pulled",
                    &format!("Container image \"{image_ref}\" already present on machine"),
                    Some(&field_path),
                )
                .await;
                self.event(
                    "Normal",
                    "Created",
                    &format!("Created container: {name}"),
                    Some(&field_path),
                )
                .await;
                self.event(
                    "Normal",
                    "Started",
                    &format!("Started container {name}"),
                    Some(&field_path),
                )
                .await;
                if let Some(ctr) = self.ctrs.get_mut(&name) {
                    ctr.probes = Some(ContainerProbes::new(container_spec, Instant::now()));
                    ctr.kill_deadline = None;
                    ctr.adopted = Some(id.clone());
                }
                if let Some(h) = container_spec.pointer("/lifecycle/postStart") {
                    let ctx = self.probe_context(container_spec, &id);
                    if let Err(e) = hooks::run_hook(h, &ctx, Duration::MAX).await {
                        tracing::debug!(container = %name, error = %e, "postStart hook");
                        self.event(
                            "Warning",
                            "FailedPostStartHook",
                            "PostStartHook failed",
                            Some(&field_path),
                        )
                        .await;
                        self.event(
                            "Normal",
                            "Killing",
                            "FailedPostStartHook",
                            Some(&field_path),
                        )
                        .await;
                        if let Some(ctr) = self.ctrs.get_mut(&name) {
                            if let Some(p) = ctr.current().and_then(Attempt::process) {
                                let _ = shim::signal(p, nix::sys::signal::Signal::SIGKILL);
                            }
                        }
                    }
                }
                Ok(())
            }
            Err(AgentError::Shim(e @ shim::ShimError::Timeout { .. })) => {
                // The shim may still start the container: the attempt stays, and later passes
                // adopt it or abandon it (`settle_attempts`).
                tracing::warn!(pod = %self.uid, container = %name, error = %e, "container start is slow");
                Ok(())
            }
            Err(e) => {
                // Whatever the shim left (if it died midway) goes with the attempt; if some
                // of it cannot go yet, `settle_attempts` finishes the job on later passes.
                let (state_root, cgroups) = (self.rt.state_root(), attempt_cgroups);
                self.discard(&name, &attempt_ref, &state_root, &cgroups)
                    .await;
                self.creation_failed(&name, e.to_string(), &field_path)
                    .await;
                Ok(())
            }
        }
    }

    /// A container that could not be created or started (its attempt is already gone): it
    /// waits with kubelet's reason and the message, and is retried after the back-off.
    async fn creation_failed(&mut self, name: &str, msg: String, field_path: &str) {
        let ctr = self.ctrs.entry(name.to_string()).or_default();
        let reason = if msg.contains("runAsNonRoot") {
            "CreateContainerConfigError"
        } else {
            "CreateContainerError"
        };
        ctr.waiting = Some((reason.into(), Some(msg.clone())));
        ctr.backoff = (ctr.backoff * 2).clamp(BACKOFF_START, BACKOFF_MAX);
        ctr.not_before = Some(Instant::now() + ctr.backoff);
        self.event(
            "Warning",
            "Failed",
            &format!("Error: {msg}"),
            Some(field_path),
        )
        .await;
    }

    /// Settles each container's current attempt from its files, whatever step of creating it
    /// an earlier agent was killed at (or when its shim died): a shim still creating the
    /// container is waited for (and abandoned after [`shim::START_TIMEOUT`]); a container that
    /// runs is adopted (its probes start afresh, as kubelet's do after a restart); an attempt
    /// whose container never started — the agent died before forking the shim, or the start
    /// failed while nobody listened — is removed (state, cgroup, rootfs mount, directory) and
    /// created again, without counting as a restart; a container whose shim died without
    /// recording its exit is killed and recorded as exited with 255/`Unknown`, so the restart
    /// policy takes over. Sets `settling` while something is still in progress.
    async fn settle_attempts(&mut self) {
        let mut settling = false;
        let names: Vec<String> = self.ctrs.keys().cloned().collect();
        for name in names {
            let Some(a) = self.ctrs.get(&name).and_then(Ctr::current).cloned() else {
                continue;
            };
            let cgroups_path = a.cgroups_path(&self.uid);
            let state_root = self.rt.state_root();
            let (pid_file, exit_file) = (a.pid_file(), a.exit_file());
            let Ok(observed) =
                tokio::task::spawn_blocking(move || shim::observe(&pid_file, &exit_file)).await
            else {
                settling = true;
                continue;
            };
            match observed {
                shim::Observed::Exited(e)
                    if e.reason == shim::ExitReason::StartError && e.started_at.is_none() =>
                {
                    tracing::info!(pod = %self.uid, container = %name, attempt = a.n, "a start failed while the agent was away");
                    if !self.discard(&name, &a, &state_root, &cgroups_path).await {
                        settling = true;
                        continue;
                    }
                    let field_path = match self.spec_of(&name) {
                        Some((_, true)) => format!("spec.initContainers{{{name}}}"),
                        _ => format!("spec.containers{{{name}}}"),
                    };
                    let msg = e
                        .message
                        .unwrap_or_else(|| "container failed to start".into());
                    self.creation_failed(&name, msg, &field_path).await;
                }
                shim::Observed::Exited(_) => {}
                shim::Observed::Running(_) => {
                    let spec = self.spec_of(&name).map(|(c, _)| c);
                    if let Some(ctr) = self.ctrs.get_mut(&name) {
                        if ctr.adopted.as_deref() != Some(a.id.as_str()) {
                            tracing::info!(pod = %self.uid, container = %name, attempt = a.n, "adopted a running container");
                            ctr.adopted = Some(a.id.clone());
                            ctr.waiting = None;
                            if let Some(spec) = spec {
                                ctr.probes = Some(ContainerProbes::new(&spec, Instant::now()));
                            }
                        }
                    }
                }
                shim::Observed::Starting { shim: owner, since } => {
                    settling = true;
                    let stuck = since
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|d| d > shim::START_TIMEOUT);
                    if stuck {
                        tracing::warn!(pod = %self.uid, container = %name, attempt = a.n, "the shim did not start the container in time; abandoning it");
                        shim::abandon_start(owner, &cgroups_path);
                    }
                }
                shim::Observed::NeverStarted => {
                    tracing::info!(pod = %self.uid, container = %name, attempt = a.n, "creating the container was interrupted; creating it again");
                    if self.discard(&name, &a, &state_root, &cgroups_path).await {
                        if let Some(ctr) = self.ctrs.get_mut(&name) {
                            // Retried at once (the interrupted attempt was due), unless a
                            // failed start already set a back-off.
                            if ctr.waiting.is_none() {
                                ctr.not_before = Some(Instant::now());
                            }
                        }
                    } else {
                        settling = true;
                    }
                }
                shim::Observed::Lost(record) => {
                    let (exit_file, id) = (a.exit_file(), a.id.clone());
                    let settled = tokio::task::spawn_blocking(move || {
                        shim::settle_lost(&record, &exit_file, &state_root, &id, &cgroups_path)
                    })
                    .await
                    .ok()
                    .flatten();
                    match settled {
                        Some(_) => {
                            tracing::warn!(pod = %self.uid, container = %name, attempt = a.n, "the container's shim died without recording its exit")
                        }
                        None => settling = true,
                    }
                }
            }
        }
        self.settling = settling;
    }

    /// Removes attempt `a` of container `name`, whose container never started: what its shim
    /// may have left (processes, cgroup, libcontainer state), its rootfs mount and its
    /// directory; the attempt is forgotten (it was the current one). False when something
    /// could not be removed yet (the attempt stays, to be tried again).
    async fn discard(&mut self, name: &str, a: &Attempt, state_root: &Path, cgroups: &str) -> bool {
        let (state_root, cgroups, dir, id) = (
            state_root.to_path_buf(),
            cgroups.to_string(),
            a.dir.clone(),
            a.id.clone(),
        );
        let removed = tokio::task::spawn_blocking(move || -> Result<(), String> {
            if !shim::remove_container(&state_root, &id, &cgroups) {
                return Err("its processes are still being killed".into());
            }
            crate::images::rootfs::unmount(&dir.join("rootfs")).map_err(|e| e.to_string())?;
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            }
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        if let Err(e) = removed {
            tracing::debug!(pod = %self.uid, container = name, attempt = a.n, error = %e, "removing an attempt");
            return false;
        }
        if let Some(ctr) = self.ctrs.get_mut(name) {
            if ctr.current().is_some_and(|c| c.id == a.id) {
                ctr.attempts.pop();
                ctr.probes = None;
                ctr.exit_watched = None;
            }
        }
        true
    }

    fn restart_policy(&self, container: &Value, init: bool) -> String {
        if init {
            if let Some(p) = container.get("restartPolicy").and_then(Value::as_str) {
                return p.to_string();
            }
        }
        let pod_policy = self
            .pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_string();
        if init && pod_policy == "Always" {
            // Init containers of an Always pod are retried until they succeed (OnFailure).
            return "OnFailure".into();
        }
        pod_policy
    }

    /// Whether an exited container should run again, given its exit.
    fn should_restart(policy: &str, exit: &shim::ExitInfo) -> bool {
        match policy {
            "Always" => true,
            "OnFailure" => exit.exit_code != 0,
            _ => false,
        }
    }

    /// Restarts `container` when its back-off allows. Returns true if it was (re)started.
    async fn maybe_restart(&mut self, container: &Value, init: bool) -> Result<bool, AgentError> {
        let name = name_of(container);
        let now_i = Instant::now();
        let ctr = self.ctrs.entry(name.clone()).or_default();
        if let (Some(a), Some(exit)) = (ctr.current().cloned(), ctr.exited()) {
            if ctr.not_before.is_none() {
                let ran = run_duration(&a, &exit);
                ctr.backoff = if ran >= BACKOFF_RESET || ctr.backoff.is_zero() {
                    BACKOFF_START
                } else {
                    (ctr.backoff * 2).min(BACKOFF_MAX)
                };
                // The first restart happens at once; later ones wait for the back-off.
                let delay = if ctr.attempts.len() <= 1 {
                    Duration::ZERO
                } else {
                    ctr.backoff
                };
                ctr.not_before = Some(now_i + delay);
            }
        }
        match ctr.not_before {
            Some(t) if t > now_i => {
                if ctr.exited().is_some() {
                    ctr.waiting = Some((
                        "CrashLoopBackOff".into(),
                        Some(format!(
                            "back-off {}s restarting failed container={name} pod={}",
                            ctr.backoff.as_secs(),
                            pod_name(&self.pod).1
                        )),
                    ));
                }
                Ok(false)
            }
            _ => {
                ctr.not_before = None;
                self.start_container(container, init).await?;
                Ok(true)
            }
        }
    }

    /// Graceful termination: TERM, the grace period, then KILL; then cleanup and the final
    /// delete of the pod object. Returns the time to wait before the next step.
    async fn terminate(&mut self) -> Result<Option<Duration>, AgentError> {
        let grace = self
            .pod
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
            .max(0) as u64;
        self.watch_exits();
        let since = *self.terminating_since.get_or_insert_with(Instant::now);
        let deadline = since + Duration::from_secs(grace);
        let mut any_running = false;
        let mut to_stop: Vec<String> = Vec::new();
        let names: Vec<String> = self.ctrs.keys().cloned().collect();
        for name in names {
            let Some(ctr) = self.ctrs.get_mut(&name) else {
                continue;
            };
            if !ctr.running() {
                continue;
            }
            any_running = true;
            let Some(pid) = ctr.current().and_then(Attempt::process) else {
                continue;
            };
            if ctr.signaled.is_none() {
                to_stop.push(name.clone());
            } else if Instant::now() >= deadline {
                let _ = shim::signal(pid, nix::sys::signal::Signal::SIGKILL);
            }
        }
        for name in to_stop {
            let msg = format!("Stopping container {name}");
            self.event("Normal", "Killing", &msg, None).await;
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            self.stop_container(&name, left).await;
        }
        if self.settling && !any_running {
            // A container still being created (its shim will report it running, then it is
            // stopped like the others), or the leftovers of one being cleared.
            return Ok(Some(SETTLE_POLL));
        }
        if any_running {
            let left = deadline.saturating_duration_since(Instant::now());
            return Ok(Some(if left.is_zero() {
                EXIT_POLL
            } else {
                left.min(EXIT_POLL)
            }));
        }
        self.write_status().await?;
        self.teardown().await?;
        let (ns, name) = pod_name(&self.pod);
        let pods = resource("", "v1", "pods")?;
        // With the uid as precondition, as kubelet: never a new pod of the same name.
        let opts = kubelite_core::server::write::DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(self.uid.clone()),
            ..Default::default()
        };
        match self
            .rt
            .client
            .delete_with(pods, Some(&ns), &name, &opts)
            .await
        {
            Ok(()) => {}
            Err(e) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Some(Duration::from_secs(3600)))
    }

    /// The pod is gone from the API: kill what remains and clean up.
    async fn cleanup_gone(&mut self) -> Result<Option<Duration>, AgentError> {
        let mut any = false;
        for ctr in self.ctrs.values() {
            if ctr.running() {
                any = true;
                if let Some(pid) = ctr.current().and_then(Attempt::process) {
                    let _ = shim::signal(pid, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        if any || self.settling {
            return Ok(Some(Duration::from_millis(100)));
        }
        self.teardown().await?;
        Ok(None)
    }

    /// Admission of a pod new to this node (nothing started for it yet): under node pressure
    /// kubelet rejects it, Failed with reason `Evicted` ("Pod was rejected: The node had
    /// condition: [DiskPressure]. ") and a Warning event. Returns the wait when rejected.
    async fn admit(&mut self) -> Result<Option<Duration>, AgentError> {
        let phase = self.pod.pointer("/status/phase").and_then(Value::as_str);
        let fresh = self.start_time.is_none()
            && self.ctrs.is_empty()
            && matches!(phase, None | Some("Pending"));
        let pressure = *self.rt.pressure.borrow();
        let Some(reason) = fresh
            .then(|| eviction::admit(&self.pod, pressure))
            .flatten()
        else {
            self.admitted = true;
            return Ok(None);
        };
        self.event("Warning", eviction::REASON, &reason, None).await;
        let pods = resource("", "v1", "pods")?;
        let (ns, name) = pod_name(&self.pod);
        let patch = json!({"status": {"phase": "Failed", "reason": eviction::REASON,
            "message": format!("Pod was rejected: {reason}"),
            "qosClass": crate::oci::qos_class(&self.pod)}});
        match self
            .rt
            .client
            .merge_patch(pods, Some(&ns), &name, Some("status"), patch)
            .await
        {
            Ok(p) => self.pod = p,
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        self.admitted = true;
        Ok(Some(Duration::from_millis(10)))
    }

    /// Takes an eviction request from the eviction manager (kubelet's `killPodNow` with grace
    /// period 0): records it and the Warning `Evicted` event; `sync_evicted` does the rest.
    async fn on_evict(&mut self, req: EvictRequest) {
        if let Some(e) = self.evicting.as_mut() {
            if e.released {
                let _ = req.done.send(true);
            } else {
                e.waiters.push(req.done);
            }
            return;
        }
        let phase = self.pod.pointer("/status/phase").and_then(Value::as_str);
        if self.pod.is_null()
            || matches!(phase, Some("Succeeded" | "Failed"))
            || self.pod.pointer("/metadata/deletionTimestamp").is_some()
        {
            let _ = req.done.send(false);
            return;
        }
        tracing::warn!(pod = %self.uid, message = %req.message, "evicting pod");
        self.event("Warning", eviction::REASON, &req.message, None)
            .await;
        let dir = self.pod_dir();
        if let Err(e) = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("evicted"), &req.message))
        {
            tracing::warn!(pod = %self.uid, error = %e, "recording the eviction");
        }
        let mut e = Evicting::new(req.message);
        e.waiters.push(req.done);
        self.evicting = Some(e);
    }

    /// An evicted pod: containers are killed at once (hard eviction, no preStop) and never
    /// restarted; once every helper has recorded its exit the Failed/Evicted status is
    /// written, then volumes, writable layers and the sandbox are released.
    async fn sync_evicted(&mut self) -> Result<Option<Duration>, AgentError> {
        let mut running = false;
        for ctr in self.ctrs.values_mut() {
            ctr.probes = None;
            ctr.not_before = None;
            ctr.kill_deadline = None;
            if ctr.running() {
                if let Some(p) = ctr.current().and_then(Attempt::process) {
                    let _ = shim::signal(p, nix::sys::signal::Signal::SIGKILL);
                }
                ctr.signaled.get_or_insert_with(Instant::now);
            }
            running |= ctr.running()
                || ctr
                    .current()
                    .is_some_and(|a| a.exit().is_none() && a.shim_alive());
        }
        if running || self.settling {
            self.watch_exits();
            return Ok(Some(Duration::from_millis(200)));
        }
        self.write_status().await?;
        if self.evicting.as_ref().is_some_and(|e| !e.released) {
            self.release_evicted().await?;
            if let Some(e) = self.evicting.as_mut() {
                e.released = true;
                for w in e.waiters.drain(..) {
                    let _ = w.send(true);
                }
            }
        }
        Ok(Some(Duration::from_secs(3600)))
    }

    /// Frees what an evicted pod holds on the node: image leases, root filesystems and
    /// writable layers, volumes and the sandbox. Container records and logs stay (for status
    /// and `kubectl logs`) until the pod is deleted. Idempotent.
    async fn release_evicted(&mut self) -> Result<(), AgentError> {
        for name in self.ctrs.keys() {
            if let Err(e) = self.rt.images.release(&lease_owner(&self.uid, name)) {
                tracing::debug!(error = %e, "releasing image lease");
            }
        }
        let pod_dir = self.pod_dir();
        let mut dirs = vec![pod_dir.join("volumes"), pod_dir.join("volume-subpaths")];
        for a in self.ctrs.values().flat_map(|c| c.attempts.iter()) {
            let _ = crate::images::rootfs::unmount(&a.rootfs());
            dirs.extend([a.rootfs(), a.dir.join("upper"), a.dir.join("work")]);
        }
        self.rt.network.remove_sandbox(&self.uid).await?;
        self.sandbox = None;
        self.volumes = None;
        tokio::task::spawn_blocking(move || {
            dirs.iter()
                .try_for_each(|d| volumes::teardown_pod_volumes(d))
        })
        .await
        .map_err(|e| AgentError::Other(e.to_string()))??;
        Ok(())
    }

    /// Unmounts root filesystems, removes volumes, network and the pod directory.
    async fn teardown(&mut self) -> Result<(), AgentError> {
        for name in self.ctrs.keys() {
            if let Err(e) = self.rt.images.release(&lease_owner(&self.uid, name)) {
                tracing::debug!(error = %e, "releasing image lease");
            }
        }
        for ctr in self.ctrs.values() {
            for a in &ctr.attempts {
                let _ = crate::images::rootfs::unmount(&a.rootfs());
            }
        }
        // libcontainer deletes each container's cgroup, never the pod's parent of them.
        if shim::remove_empty_cgroup(&pod_cgroup(&self.uid)) > 0 {
            tracing::debug!(uid = %self.uid, "pod cgroup not empty, left in place");
        }
        self.rt.network.remove_sandbox(&self.uid).await?;
        self.sandbox = None;
        let dir = self.pod_dir();
        tokio::task::spawn_blocking(move || volumes::teardown_pod_volumes(&dir))
            .await
            .map_err(|e| AgentError::Other(e.to_string()))??;
        let dir = self.pod_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        // The pod's logs go with it (kubelet removes them with the pod's containers); found by
        // UID, since a pod cleaned up after a restart may no longer have its name at hand.
        let logs_root = self.rt.cfg.data_dir.join("logs");
        let suffix = format!("_{}", self.uid);
        for e in std::fs::read_dir(&logs_root)
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.file_name().to_string_lossy().ends_with(&suffix) {
                let p = e.path();
                std::fs::remove_dir_all(&p).map_err(io_err(&p))?;
            }
        }
        Ok(())
    }

    /// One level-triggered pass. Returns how long to wait before the next pass if nothing
    /// changes, or None when the worker is finished.
    async fn sync(&mut self) -> Result<Option<Duration>, AgentError> {
        if self.pod.pointer("/metadata/deletionTimestamp").is_some() {
            return self.terminate().await;
        }
        if self.evicting.is_none() {
            self.evicting = evicted_in_api(&self.pod).map(Evicting::new);
        }
        if self.evicting.is_some() {
            return self.sync_evicted().await;
        }
        if !self.admitted {
            if let Some(wait) = self.admit().await? {
                return Ok(Some(wait));
            }
        }
        let phase = self
            .pod
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("Pending")
            .to_string();
        if matches!(phase.as_str(), "Succeeded" | "Failed") && !self.ctrs.values().any(Ctr::running)
        {
            // Finished pods keep their status; their sandbox is released.
            if self.sandbox.is_some() {
                self.rt.network.remove_sandbox(&self.uid).await?;
                self.sandbox = None;
            }
            return Ok(Some(Duration::from_secs(3600)));
        }
        self.fetch_sources().await?;
        self.ensure_sandbox().await?;
        self.ensure_volumes().await?;

        let inits = containers(&self.pod, "initContainers");
        let apps = containers(&self.pod, "containers");
        let mut initialized = true;
        let mut failed_init = false;
        for c in &inits {
            let name = name_of(c);
            let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
            let policy = self.restart_policy(c, true);
            let ctr = self.ctrs.entry(name.clone()).or_default();
            if ctr.attempts.is_empty() {
                if ctr.not_before.is_some_and(|t| t > Instant::now()) {
                    initialized = false;
                    break;
                }
                self.start_container(c, true).await?;
                initialized = false;
                if !sidecar {
                    break;
                }
                continue;
            }
            if ctr.running() {
                if sidecar {
                    continue;
                }
                initialized = false;
                break;
            }
            match ctr.exited() {
                Some(exit) if exit.exit_code == 0 && !sidecar => continue,
                Some(_) if sidecar && self.sidecars_stopping => continue,
                Some(exit) => {
                    if Self::should_restart(&policy, &exit) {
                        self.maybe_restart(c, true).await?;
                        if !sidecar {
                            initialized = false;
                            break;
                        }
                    } else {
                        failed_init = true;
                        initialized = false;
                        break;
                    }
                }
                None => {
                    initialized = false;
                    break;
                }
            }
        }
        if initialized && !failed_init {
            for c in &apps {
                let name = name_of(c);
                let policy = self.restart_policy(c, false);
                let ctr = self.ctrs.entry(name.clone()).or_default();
                if ctr.attempts.is_empty() {
                    if ctr.not_before.is_none_or(|t| t <= Instant::now()) {
                        self.start_container(c, false).await?;
                    }
                    continue;
                }
                if ctr.running() {
                    continue;
                }
                if let Some(exit) = ctr.exited() {
                    if Self::should_restart(&policy, &exit) {
                        self.maybe_restart(c, false).await?;
                    }
                }
            }
        }
        // Once every regular container has finished for good, sidecars are stopped (last
        // started, first stopped) and the pod can complete.
        if initialized && !failed_init && !apps.is_empty() && !self.sidecars_stopping {
            let done = apps.iter().all(|c| {
                let policy = self.restart_policy(c, false);
                self.ctrs
                    .get(&name_of(c))
                    .and_then(Ctr::exited)
                    .is_some_and(|e| !Self::should_restart(&policy, &e))
            });
            if done {
                self.sidecars_stopping = true;
                let grace = self
                    .pod
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
                    .max(0) as u64;
                for c in inits.iter().rev() {
                    let name = name_of(c);
                    let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
                    if sidecar && self.ctrs.get(&name).is_some_and(Ctr::running) {
                        self.stop_container(&name, grace).await;
                    }
                }
            }
        }
        // Containers stopped for failing liveness/startup get KILL after their grace period.
        let now_i = Instant::now();
        for ctr in self.ctrs.values_mut() {
            if ctr.kill_deadline.is_some_and(|d| d <= now_i) && ctr.running() {
                if let Some(p) = ctr.current().and_then(Attempt::process) {
                    let _ = shim::signal(p, nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        self.run_due_probes();
        self.watch_exits();
        self.write_status_with(initialized, failed_init).await?;
        let running = self.ctrs.values().any(Ctr::running);
        let next_backoff = self
            .ctrs
            .values()
            .filter_map(|c| c.not_before)
            .chain(
                self.ctrs
                    .values()
                    .filter_map(|c| c.probes.as_ref().and_then(ContainerProbes::next_due)),
            )
            .chain(self.ctrs.values().filter_map(|c| c.kill_deadline))
            .min()
            .map(|t| t.saturating_duration_since(Instant::now()));
        let wait = match (running, next_backoff) {
            (_, Some(b)) if b < EXIT_POLL => b.max(Duration::from_millis(10)),
            (true, _) => EXIT_POLL,
            (false, Some(b)) => b,
            (false, None) => EXIT_POLL,
        };
        Ok(Some(if self.settling {
            wait.min(SETTLE_POLL)
        } else {
            wait
        }))
    }

    fn view(&self, c: &Value, init: bool) -> ContainerView {
        let name = name_of(c);
        let image = c
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let empty = Ctr::default();
        let ctr = self.ctrs.get(&name).unwrap_or(&empty);
        let terminated = |a: &Attempt, e: &shim::ExitInfo| State::Terminated {
            exit_code: i64::from(e.exit_code),
            signal: e.signal.map(i64::from),
            reason: format!("{:?}", e.reason),
            message: std::fs::read_to_string(a.dir.join("termination-log"))
                .ok()
                .filter(|s| !s.is_empty())
                .or_else(|| e.message.clone()),
            started_at: e.started_at.clone().unwrap_or_else(|| a.started_at()),
            finished_at: e.finished_at.clone(),
            container_id: format!("kubelite://{}", a.id),
        };
        let current = ctr.current();
        let state = match (current, ctr.waiting.as_ref()) {
            (_, Some((reason, message))) if !ctr.running() => State::Waiting {
                reason: reason.clone(),
                message: message.clone(),
            },
            (Some(a), _) => match a.exit() {
                Some(e) => terminated(a, &e),
                None if ctr.running() || a.shim_alive() => State::Running {
                    started_at: a.started_at(),
                },
                None => State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
            },
            (None, _) => State::Waiting {
                // App containers wait for the init containers with PodInitializing, as kubelet.
                reason: if !init && !containers(&self.pod, "initContainers").is_empty() {
                    "PodInitializing".into()
                } else {
                    "ContainerCreating".into()
                },
                message: None,
            },
        };
        let restart_count = ctr.attempts.len().saturating_sub(1) as u32;
        let last_state = {
            let prev = if matches!(state, State::Terminated { .. }) || ctr.attempts.len() < 2 {
                if matches!(state, State::Waiting { .. }) {
                    current
                } else {
                    ctr.attempts
                        .len()
                        .checked_sub(2)
                        .and_then(|i| ctr.attempts.get(i))
                }
            } else {
                ctr.attempts
                    .len()
                    .checked_sub(2)
                    .and_then(|i| ctr.attempts.get(i))
            };
            prev.and_then(|a| a.exit().map(|e| terminated(a, &e)))
        };
        ContainerView {
            name,
            image,
            image_id: ctr.image_id.clone(),
            container_id: current
                .map(|a| format!("kubelite://{}", a.id))
                .unwrap_or_default(),
            ready: state.is_running() && ctr.probes.as_ref().is_none_or(ContainerProbes::ready),
            started: state.is_running() && ctr.probes.as_ref().is_none_or(ContainerProbes::started),
            state,
            last_state,
            restart_count,
        }
    }

    async fn write_status(&mut self) -> Result<(), AgentError> {
        let inits = containers(&self.pod, "initContainers");
        let initialized = inits.iter().all(|c| {
            let v = self.view(c, true);
            matches!(v.state, State::Terminated { exit_code: 0, .. }) || v.state.is_running()
        });
        self.write_status_with(initialized, false).await
    }

    async fn write_status_with(
        &mut self,
        initialized: bool,
        failed_init: bool,
    ) -> Result<(), AgentError> {
        let inits: Vec<ContainerView> = containers(&self.pod, "initContainers")
            .iter()
            .map(|c| self.view(c, true))
            .collect();
        let apps_spec = containers(&self.pod, "containers");
        let apps: Vec<ContainerView> = apps_spec.iter().map(|c| self.view(c, false)).collect();
        let policy = self
            .pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always");
        let sidecar_running = containers(&self.pod, "initContainers")
            .iter()
            .zip(inits.iter())
            .any(|(spec, v)| {
                spec.get("restartPolicy").and_then(Value::as_str) == Some("Always")
                    && v.state.is_running()
            });
        let all_terminated = !sidecar_running
            && !apps.is_empty()
            && apps
                .iter()
                .all(|c| matches!(c.state, State::Terminated { .. }));
        let any_failed = apps
            .iter()
            .any(|c| matches!(c.state, State::Terminated { exit_code, .. } if exit_code != 0));
        let evicted = self.evicting.as_ref().map(|e| e.message.clone());
        if evicted.is_some() && evicted_in_api(&self.pod).is_some() {
            // An evicted pod's status is final once written.
            return Ok(());
        }
        let phase = if evicted.is_some() || failed_init {
            "Failed"
        } else if !initialized {
            "Pending"
        } else if all_terminated && (policy == "Never" || (policy == "OnFailure" && !any_failed)) {
            if any_failed {
                "Failed"
            } else {
                "Succeeded"
            }
        } else if apps.iter().any(|c| {
            c.state.is_running()
                || c.restart_count > 0
                || matches!(c.state, State::Terminated { .. })
        }) {
            "Running"
        } else {
            "Pending"
        };
        let now = now();
        let input = StatusInput {
            pod: &self.pod,
            phase,
            init: &inits,
            containers: &apps,
            pod_ip: self.pod_ip(),
            host_ip: super::node::internal_ip(),
            start_time: self.start_time.clone(),
            initialized,
            reason: evicted.as_ref().map(|_| eviction::REASON.to_string()),
            extra_conditions: evicted
                .as_deref()
                .map(|m| vec![status::disruption_target(m, &self.pod, &now)])
                .unwrap_or_default(),
            message: evicted,
            now: &now,
        };
        let new_status = status::pod_status(&input);
        if self
            .last_status
            .as_ref()
            .is_some_and(|s| status::same(s, &new_status))
        {
            return Ok(());
        }
        let pods = resource("", "v1", "pods")?;
        let (ns, name) = pod_name(&self.pod);
        // The uid makes the patch fail (422) on a new pod of the same name (StatefulSets).
        let patch = json!({"metadata": {"uid": self.uid}, "status": new_status});
        match self
            .rt
            .client
            .merge_patch(pods, Some(&ns), &name, Some("status"), patch)
            .await
        {
            Ok(p) => {
                self.pod = p;
                self.last_status = Some(new_status);
                Ok(())
            }
            Err(e) if e.code == 404 || e.code == 422 && e.message.contains("metadata.uid") => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The image-store lease owner of one container of one pod.
/// The parent cgroup (`linux.cgroupsPath` prefix) of a pod's containers.
fn pod_cgroup(uid: &str) -> String {
    format!("/kubelite/pod{uid}")
}

fn lease_owner(uid: &str, container: &str) -> String {
    format!("{uid}-{container}")
}

/// A pidfd for `p` if it is still the same process (None when it is gone).
fn pidfd(p: shim::ProcessRef) -> Option<std::os::fd::OwnedFd> {
    let owned = super::process::pidfd_open(u32::try_from(p.pid).ok()?).ok()?;
    shim::is_running(p).then_some(owned)
}

fn run_duration(a: &Attempt, exit: &shim::ExitInfo) -> Duration {
    let parse = |s: &str| s.parse::<jiff::Timestamp>().ok();
    match (parse(&a.started_at()), parse(&exit.finished_at)) {
        (Some(s), Some(f)) => f.duration_since(s).try_into().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// What decides the pod's resolv.conf and hosts file.
fn dns_config(pod: &Value) -> crate::network::DnsConfig {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).map(str::to_string);
    let list = |p: &str| -> Vec<String> {
        pod.pointer(p)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let options = pod
        .pointer("/spec/dnsConfig/options")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some((
                o.get("name")?.as_str()?.to_string(),
                o.get("value").and_then(Value::as_str).map(str::to_string),
            ))
        })
        .collect();
    crate::network::DnsConfig {
        policy: crate::network::DnsPolicy::parse(s("/spec/dnsPolicy").as_deref())
            .unwrap_or_default(),
        host_network: pod
            .pointer("/spec/hostNetwork")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        subdomain: s("/spec/subdomain"),
        nameservers: list("/spec/dnsConfig/nameservers"),
        searches: list("/spec/dnsConfig/searches"),
        options,
        ..Default::default()
    }
}

fn bind_mount(src: &Path, dest: &str, ro: bool) -> oci_spec::runtime::Mount {
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    if ro {
        opts.push("ro".into());
    }
    let mut m = oci_spec::runtime::Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_source(Some(src.to_path_buf()));
    m.set_typ(Some("bind".into()));
    m.set_options(Some(opts));
    m
}

/// Test hook (debug builds only; release builds never read it):
/// `KUBELITE_TEST_CRASH_AT=<point>@<subject>[,<point>@<subject>...]` kills the agent's whole
/// process with SIGKILL, as `kill -9` would, when it reaches `<point>` for `<subject>`: a
/// container attempt `<name>#<n>` at `after-id`, `after-mount`, `after-bundle`, `in-spawn`
/// (the shim forked, its report not read) or `after-spawn` (started, not yet recorded), or a
/// pod `<name>` at `after-sandbox`. Each fires once per data dir (a marker file
/// `test-crash.<point>@<subject>` there remembers it), so the restarted agent goes on from
/// what that step left on disk. Used by `cmd/tests/agent_restart.rs`.
#[derive(Clone)]
struct CrashHook {
    data_dir: PathBuf,
    subject: String,
}

impl CrashHook {
    const VAR: &'static str = "KUBELITE_TEST_CRASH_AT";

    fn new(data_dir: &Path, subject: String) -> CrashHook {
        CrashHook {
            data_dir: data_dir.to_path_buf(),
            subject,
        }
    }

    fn at(&self, point: &str) {
        if !cfg!(debug_assertions) {
            return;
        }
        let Ok(wanted) = std::env::var(Self::VAR) else {
            return;
        };
        let this = format!("{point}@{}", self.subject);
        if !wanted.split(',').any(|w| w.trim() == this) {
            return;
        }
        let marker = self.data_dir.join(format!("test-crash.{this}"));
        if marker.exists() || std::fs::write(&marker, b"").is_err() {
            return;
        }
        tracing::warn!(hook = %this, "{}: killing the agent", Self::VAR);
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
    }
}
