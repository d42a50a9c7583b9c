//! The eviction loop (kubelet's `managerImpl.synchronize`): every interval it observes the
//! signals, publishes the pressure conditions, and when a hard threshold is met ranks the
//! active pods of the node and asks the worker of the first one that is not critical to evict
//! it: one pod per pass, then it waits (up to 30 s) until that pod's containers are killed and
//! its volumes and writable layers removed before observing again, so the freed resources
//! are seen before anything else is evicted. A quiet node reads a few files per interval and
//! writes nothing.

use super::stats::Machine;
use super::{
    eviction_message, is_critical, rank, threshold_to_reclaim, thresholds_met, Candidate, Pressure,
    PressureClock,
};
use crate::agent::AgentConfig;
use kubelite_core::server::client::{resource, LocalClient};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// How long to wait for an evicted pod to be cleaned up (kubelet's `podCleanupTimeout`).
const POD_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to a pod's worker to evict it: kill its containers at once, mark it Failed with
/// reason `Evicted` and `message`, and release its local resources. `done` answers whether
/// the pod was evicted (false when it was already finished or going away).
#[derive(Debug)]
pub struct EvictRequest {
    pub uid: String,
    pub message: String,
    pub done: oneshot::Sender<bool>,
}

/// Runs the eviction loop forever (returns at once when no threshold is configured).
pub async fn run(
    cfg: AgentConfig,
    client: LocalClient,
    pressure: watch::Sender<Pressure>,
    evict: mpsc::UnboundedSender<EvictRequest>,
) {
    if cfg.eviction.hard.is_empty() {
        return;
    }
    let machine = Arc::new(Machine::new(&cfg.data_dir));
    if let Err(e) = std::fs::create_dir_all(machine.pods_dir()) {
        tracing::warn!(error = %e, "creating the pods directory");
    }
    let mut clock = PressureClock::default();
    loop {
        match synchronize(&cfg, &client, &machine, &mut clock, &pressure, &evict).await {
            Some(done) => match tokio::time::timeout(POD_CLEANUP_TIMEOUT, done).await {
                // Evicted and cleaned up: look again at once (the kubelet does too).
                Ok(Ok(true)) => {}
                Err(_) => tracing::warn!(
                    "eviction manager: timed out waiting for the evicted pod's cleanup"
                ),
                // No worker took it, or it had finished already: wait a whole interval, or
                // the same pod would be picked again in a tight loop.
                Ok(_) => tokio::time::sleep(cfg.eviction.interval).await,
            },
            None => tokio::time::sleep(cfg.eviction.interval).await,
        }
    }
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

/// Pods bound here that the worker admitted (it set `startTime`) and that still run or may
/// run: not finished, not being deleted.
async fn active_pods(client: &LocalClient, node: &str) -> Option<Vec<Value>> {
    let pods = resource("", "v1", "pods").ok()?;
    let (items, _) = match client
        .list(pods, None, "", &format!("spec.nodeName={node}"))
        .await
    {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "eviction manager: listing pods");
            return None;
        }
    };
    Some(
        items
            .into_iter()
            .filter(|p| {
                !matches!(str_at(p, "/status/phase"), "Succeeded" | "Failed")
                    && p.pointer("/metadata/deletionTimestamp").is_none()
                    && p.pointer("/status/startTime").is_some()
            })
            .collect(),
    )
}

/// One pass. Returns what to wait on when a pod is being evicted.
async fn synchronize(
    cfg: &AgentConfig,
    client: &LocalClient,
    machine: &Arc<Machine>,
    clock: &mut PressureClock,
    pressure: &watch::Sender<Pressure>,
    evict: &mpsc::UnboundedSender<EvictRequest>,
) -> Option<oneshot::Receiver<bool>> {
    let m = machine.clone();
    let obs = tokio::task::spawn_blocking(move || m.observe())
        .await
        .ok()?;
    let met = thresholds_met(&cfg.eviction.hard, &obs);
    let current = clock.update(&met, Instant::now(), cfg.eviction.pressure_transition);
    pressure.send_if_modified(|p| {
        let changed = *p != current;
        *p = current;
        changed
    });
    let threshold = threshold_to_reclaim(&met)?.clone();
    let resource = threshold.signal.resource();
    // The message shows the first met threshold of the starved resource (`getThresholdMetInfo`).
    let info = met
        .iter()
        .filter(|t| t.signal.resource() == resource)
        .find_map(|t| {
            obs.get(&t.signal)
                .map(|o| (t.quantity(o.capacity).1, o.available))
        });
    tracing::warn!(
        signal = threshold.signal.name(),
        "eviction manager: attempting to reclaim {}",
        resource.name()
    );
    let pods = active_pods(client, &cfg.node_name).await?;
    if pods.is_empty() {
        tracing::warn!("eviction manager: no pods to evict");
        return None;
    }
    let starved = machine.device_of(threshold.signal);
    let m = machine.clone();
    let mut candidates = tokio::task::spawn_blocking(move || {
        pods.into_iter()
            .map(|pod| Candidate {
                stats: m.pod_stats(&pod, starved),
                pod,
            })
            .collect::<Vec<_>>()
    })
    .await
    .ok()?;
    rank(resource, &mut candidates);
    for c in candidates {
        let name = format!(
            "{}/{}",
            str_at(&c.pod, "/metadata/namespace"),
            str_at(&c.pod, "/metadata/name")
        );
        if is_critical(&c.pod) {
            tracing::warn!(pod = %name, "eviction manager: cannot evict a critical pod");
            continue;
        }
        let message = eviction_message(
            resource,
            &c.pod,
            &c.stats,
            info.as_ref().map(|(q, a)| (q.as_str(), *a)),
        );
        let (done, rx) = oneshot::channel();
        let req = EvictRequest {
            uid: str_at(&c.pod, "/metadata/uid").to_string(),
            message,
            done,
        };
        if evict.send(req).is_err() {
            return None;
        }
        tracing::warn!(pod = %name, "eviction manager: evicting pod");
        return Some(rx);
    }
    tracing::warn!("eviction manager: unable to evict any pods from the node");
    None
}
