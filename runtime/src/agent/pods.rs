//! The pod manager: watches the pods bound to this node and keeps one worker per pod UID,
//! handing each worker the latest version of its pod (or None once the pod is gone from the
//! API). At start it also re-adopts what earlier runs left on disk: workers for pods that still
//! exist, cleanup for those that do not. Eviction requests are routed to the pod's worker.

use super::eviction::{EvictRequest, Pressure};
use super::worker::{self, Runtime};
use super::{AgentConfig, AgentError};
use crate::images::ImageStore;
use crate::network::{Network, NetworkConfig};
use kubelite_core::server::client::{resource, Change, LocalClient};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often `<data-dir>/images` is rescanned for new archives.
const IMAGE_RESCAN: Duration = Duration::from_secs(5);

pub struct PodManager {
    rt: Arc<Runtime>,
    workers: HashMap<String, Worker>,
    done_tx: mpsc::UnboundedSender<String>,
    done_rx: mpsc::UnboundedReceiver<String>,
    evict_tx: mpsc::UnboundedSender<EvictRequest>,
    evict_rx: mpsc::UnboundedReceiver<EvictRequest>,
}

/// What the manager holds of one worker: its pod and its eviction requests.
struct Worker {
    pod: watch::Sender<Option<Value>>,
    evict: mpsc::UnboundedSender<EvictRequest>,
}

fn uid_of(pod: &Value) -> String {
    pod.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

impl PodManager {
    pub async fn new(
        cfg: AgentConfig,
        client: LocalClient,
        pressure: watch::Receiver<Pressure>,
    ) -> Result<Self, AgentError> {
        let images = ImageStore::open(&cfg.data_dir.join("images"))?;
        let images_dir = cfg.images_dir.clone();
        std::fs::create_dir_all(&images_dir).map_err(|source| AgentError::Io {
            path: images_dir.clone(),
            source,
        })?;
        match images.import_directory(&images_dir) {
            Ok(refs) if !refs.is_empty() => tracing::info!(?refs, "imported images"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, dir = %images_dir.display(), "importing images"),
        }
        let network = Network::new(NetworkConfig {
            bridge: cfg.bridge.clone(),
            pod_cidr: cfg.pod_cidr,
            state_dir: cfg.data_dir.join("network"),
            run_dir: cfg.run_dir.clone(),
            masquerade: true,
        })
        .await?;
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let (evict_tx, evict_rx) = mpsc::unbounded_channel();
        let rt = Arc::new(Runtime::new(cfg, client, images, network, pressure));
        Ok(PodManager {
            rt,
            workers: HashMap::new(),
            done_tx,
            done_rx,
            evict_tx,
            evict_rx,
        })
    }

    /// Where the eviction manager sends its requests.
    pub fn evictions(&self) -> mpsc::UnboundedSender<EvictRequest> {
        self.evict_tx.clone()
    }

    fn dispatch(&mut self, uid: String, pod: Option<Value>) {
        if let Some(w) = self.workers.get(&uid) {
            if w.pod.send(pod.clone()).is_ok() {
                return;
            }
        }
        if pod.is_none() && !self.rt.has_local_state(&uid) {
            return;
        }
        let (tx, rx) = watch::channel(pod);
        let (evict, evict_rx) = mpsc::unbounded_channel();
        self.workers.insert(uid.clone(), Worker { pod: tx, evict });
        tokio::spawn(worker::run(
            self.rt.clone(),
            uid,
            rx,
            evict_rx,
            self.done_tx.clone(),
        ));
    }

    /// Hands an eviction request to the pod's worker (dropped, so answered "not evicted",
    /// when the pod has none).
    fn evict(&self, req: EvictRequest) {
        if let Some(w) = self.workers.get(&req.uid) {
            let _ = w.evict.send(req);
        }
    }

    /// Runs forever.
    pub async fn run(mut self) {
        let rt = self.rt.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(IMAGE_RESCAN);
            loop {
                tick.tick().await;
                let rt = rt.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    match rt.images.import_directory(&rt.cfg.images_dir) {
                        Ok(refs) if !refs.is_empty() => tracing::info!(?refs, "imported images"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "importing images"),
                    }
                })
                .await;
            }
        });
        let Ok(pods) = resource("", "v1", "pods") else {
            return;
        };
        let selector = format!("spec.nodeName={}", self.rt.cfg.node_name);
        let mut first = true;
        loop {
            let (items, rev) = match self.rt.client.list(pods, None, "", &selector).await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "listing pods");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let live: HashSet<String> = items.iter().map(uid_of).collect();
            for p in items {
                self.dispatch(uid_of(&p), Some(p));
            }
            let known: Vec<String> = self
                .workers
                .keys()
                .filter(|u| !live.contains(*u))
                .cloned()
                .collect();
            for uid in known {
                self.dispatch(uid, None);
            }
            if first {
                first = false;
                for uid in self.rt.local_pod_uids() {
                    if !live.contains(&uid) {
                        self.dispatch(uid, None);
                    }
                }
                let rt = self.rt.clone();
                let live = live.clone();
                tokio::spawn(async move {
                    if let Err(e) = rt.network.garbage_collect(&live).await {
                        tracing::warn!(error = %e, "network garbage collection");
                    }
                });
            }
            let mut w = match self.rt.client.watch(pods, None, "", &selector, rev).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::debug!(error = %e, "watch ended; re-listing");
                    continue;
                }
            };
            loop {
                tokio::select! {
                    ev = w.next() => {
                        let Some((change, pod)) = ev else { break };
                        let uid = uid_of(&pod);
                        self.dispatch(uid, (change != Change::Deleted).then_some(pod));
                    }
                    Some(uid) = self.done_rx.recv() => {
                        if self.workers.get(&uid).is_some_and(|w| w.pod.borrow().is_none()) {
                            self.workers.remove(&uid);
                        }
                    }
                    Some(req) = self.evict_rx.recv() => self.evict(req),
                }
            }
        }
    }
}
