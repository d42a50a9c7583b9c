//! The controllers of the control plane (kube-controller-manager's job, in-process): each is a
//! reconcile loop over work-queue keys, fed by shared informers (caches kept by list+watch), and
//! writes only through the API layer ([`LocalClient`]) under its own field manager. Every
//! reconcile is idempotent and reads the world afresh, so a restart of the process simply
//! re-lists and carries on where things are.
//!
//! Shared pieces: [`informer`] (caches), [`queue`] (keys with dedup and back-off), [`events`]
//! (Events with folding), [`pods`] (owner references, pods from templates, readiness).

pub mod claim;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod events;
pub mod hash;
pub mod informer;
pub mod job;
pub mod nodelifecycle;
pub mod pods;
pub mod queue;
pub mod ranking;
pub mod replicaset;
pub mod scheduler;
pub mod statefulset;
pub mod taints;
pub mod ttl_after_finished;
pub mod volumes;
pub mod wakeups;

use crate::resources::Resource;
use crate::server::client::{resource, LocalClient};
use crate::server::status::ApiError;
use crate::server::ApiServer;
use informer::Informer;
use queue::WorkQueue;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tunables of the controllers (Kubernetes' defaults; tests shorten them by flags).
#[derive(Debug, Clone, Default)]
pub struct ControllerConfig {
    /// Controllers to run (by name); empty = all.
    pub enabled: Vec<String>,
    /// First delay before a Job replaces failed pods, doubled per further failure (default
    /// 10 s, Kubernetes' `DefaultJobPodFailureBackOff`).
    pub job_pod_failure_backoff: Option<Duration>,
    /// Longest such delay (default 10 min, `MaxJobPodFailureBackOff`).
    pub job_pod_failure_backoff_max: Option<Duration>,
    /// ReplicaSets reconciled at once (`--concurrent-replicaset-syncs`; 0 = 5).
    pub concurrent_replicaset_syncs: usize,
    /// Deployments reconciled at once (`--concurrent-deployment-syncs`; 0 = 5).
    pub concurrent_deployment_syncs: usize,
    /// How often node health is checked (default 5 s).
    pub node_monitor_period: Option<Duration>,
    /// How long a silent node stays Ready before it is marked Unknown (default 40 s).
    pub node_monitor_grace_period: Option<Duration>,
    /// Where the local-path provisioner keeps volume directories (`<data-dir>/storage` unless
    /// set; the server fills it in from its data dir).
    pub local_storage_path: Option<std::path::PathBuf>,
}

impl ControllerConfig {
    /// kube-controller-manager's `--controllers` semantics: empty or `*` = all, `foo` enables
    /// foo, `-foo` disables foo (`*,-nodelifecycle` = all but the node lifecycle controller).
    pub fn runs(&self, name: &str) -> bool {
        if self
            .enabled
            .iter()
            .any(|n| n.strip_prefix('-') == Some(name))
        {
            return false;
        }
        let only_disables = self.enabled.iter().all(|n| n.starts_with('-'));
        only_disables || self.enabled.iter().any(|n| n == name || n == "*")
    }
}

/// What every controller is built from: clients, the shared informers, the config.
#[derive(Clone)]
pub struct Context {
    pub server: Arc<ApiServer>,
    pub config: ControllerConfig,
    informers: Arc<Mutex<HashMap<&'static str, Arc<Informer>>>>,
}

impl Context {
    pub fn new(server: Arc<ApiServer>, config: ControllerConfig) -> Self {
        Context {
            server,
            config,
            informers: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A client writing as `manager` (the controller's name, e.g. `replicaset-controller`).
    pub fn client(&self, manager: &str) -> LocalClient {
        LocalClient::new(self.server.writer.clone(), manager)
    }

    /// The shared informer of a resource (one per resource, started by [`Context::start`]).
    pub fn informer(
        &self,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Result<Arc<Informer>, ApiError> {
        let r: &'static Resource = resource(group, version, plural)?;
        let key = r.plural;
        let mut map = self
            .informers
            .lock()
            .map_err(|_| ApiError::internal("informer registry poisoned"))?;
        Ok(map.entry(key).or_insert_with(|| Informer::new(r)).clone())
    }

    /// Starts every informer created so far (after the controllers registered their handlers).
    pub fn start(&self) {
        let client = self.client("kubelite-informers");
        if let Ok(map) = self.informers.lock() {
            for inf in map.values() {
                inf.start(client.clone());
            }
        }
    }
}

/// What a reconcile asks for next.
pub type Requeue = Option<Duration>;

/// Runs `workers` tasks taking keys from `queue` and reconciling them: on success the key's
/// back-off is reset (and it is looked at again after the returned delay, if any); on error it
/// comes back with back-off. Conflicts (409) are retried at once, as the state moved on.
pub fn run_workers<F, Fut>(name: &'static str, queue: WorkQueue, workers: usize, reconcile: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Requeue, ApiError>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    // One pending timer per key: a reconcile asking again for a later look does not pile up
    // sleeping tasks.
    let wakeups = Arc::new(wakeups::Wakeups::default());
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        let wakeups = wakeups.clone();
        tokio::spawn(async move {
            loop {
                let key = queue.next().await;
                let res = reconcile(key.clone()).await;
                match res {
                    Ok(after) => {
                        queue.forget(&key);
                        if let Some(d) = after.and_then(|d| wakeups.schedule(&key, d)) {
                            queue.add_after(key.clone(), d);
                        }
                    }
                    Err(e) if e.code == 409 => {
                        tracing::debug!(controller = name, key, error = %e, "conflict; retrying");
                        queue.add_rate_limited(key.clone());
                    }
                    Err(e) => {
                        tracing::warn!(controller = name, key, error = %e, "reconcile failed");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}

/// Starts every enabled controller.
pub fn spawn(server: Arc<ApiServer>, config: ControllerConfig) {
    let ctx = Context::new(server, config);
    // Each controller registers its informer handlers and workers here (before the informers
    // start, so the handlers see the initial list):
    //   if ctx.config.runs("name") { name::register(&ctx); }
    if ctx.config.runs("scheduler") {
        scheduler::register(&ctx);
    }
    if ctx.config.runs("daemonset") {
        daemonset::register(&ctx);
    }
    if ctx.config.runs("nodelifecycle") {
        nodelifecycle::register(&ctx);
    }
    if ctx.config.runs("replicaset") {
        replicaset::register(&ctx);
    }
    if ctx.config.runs("deployment") {
        deployment::register(&ctx);
    }
    if ctx.config.runs("job") {
        job::register(&ctx);
    }
    if ctx.config.runs("cronjob") {
        cronjob::register(&ctx);
    }
    if ctx.config.runs("ttl-after-finished") {
        ttl_after_finished::register(&ctx);
    }
    if ctx.config.runs("statefulset") {
        statefulset::register(&ctx);
    }
    // persistentvolume-binder, local-path-provisioner, persistentvolume(claim)-protection:
    volumes::register(&ctx);
    ctx.start();
}
