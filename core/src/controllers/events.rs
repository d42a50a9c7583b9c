//! Events that controllers and the scheduler record about the objects they act on (what
//! `kubectl describe` lists), as `v1` Events. The same event repeated for the same object is
//! folded into one Event whose `count` and `lastTimestamp` advance (client-go's correlator),
//! so a retrying controller does not flood the store.

use crate::server::client::{resource, LocalClient};
use crate::server::write::now;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a repeated event is folded into the previous one.
const FOLD_WINDOW: Duration = Duration::from_secs(600);
/// Most remembered events (oldest forgotten first).
const MEMORY: usize = 4096;

pub const NORMAL: &str = "Normal";
pub const WARNING: &str = "Warning";

struct Seen {
    name: String,
    namespace: String,
    count: i64,
    first: String,
    at: Instant,
}

/// Records events as one component (`default-scheduler`, `replicaset-controller`, …).
#[derive(Clone)]
pub struct Recorder {
    client: LocalClient,
    component: String,
    seen: Arc<Mutex<HashMap<String, Seen>>>,
}

impl Recorder {
    pub fn new(client: LocalClient, component: impl Into<String>) -> Self {
        Recorder {
            client,
            component: component.into(),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records `reason`/`message` about `obj` (any object with apiVersion, kind, metadata).
    pub async fn record(&self, obj: &Value, kind: &str, reason: &str, message: &str) {
        let Ok(events) = resource("", "v1", "events") else {
            return;
        };
        let meta = |p: &str| {
            obj.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let uid = meta("/metadata/uid");
        let name = meta("/metadata/name");
        let ns = match meta("/metadata/namespace") {
            n if n.is_empty() => "default".to_string(),
            n => n,
        };
        let fold_key = format!("{uid}\u{0}{kind}\u{0}{reason}\u{0}{message}");
        let ts = now();
        let previous = self.seen.lock().ok().and_then(|s| {
            s.get(&fold_key)
                .filter(|p| p.at.elapsed() < FOLD_WINDOW)
                .map(|p| {
                    (
                        p.name.clone(),
                        p.namespace.clone(),
                        p.count,
                        p.first.clone(),
                    )
                })
        });
        if let Some((ev_name, ev_ns, count, first)) = previous {
            let patch = json!({"count": count + 1, "lastTimestamp": ts});
            if self
                .client
                .merge_patch(events, Some(&ev_ns), &ev_name, None, patch)
                .await
                .is_ok()
            {
                self.remember(fold_key, ev_name, ev_ns, count + 1, first);
                return;
            }
        }
        let mut involved = json!({
            "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": obj.get("kind").cloned().unwrap_or(Value::Null),
            "name": name, "uid": uid,
            "resourceVersion": meta("/metadata/resourceVersion"),
        });
        if obj.pointer("/metadata/namespace").is_some() {
            involved["namespace"] = json!(ns);
        }
        let ev = json!({"apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": format!("{name}."), "namespace": ns},
            "involvedObject": involved, "reason": reason, "message": message, "type": kind,
            "source": {"component": self.component},
            "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.component});
        match self.client.create(events, Some(&ns), ev).await {
            Ok(created) => {
                let ev_name = created
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                self.remember(fold_key, ev_name, ns, 1, ts);
            }
            Err(e) => tracing::debug!(error = %e, reason, "recording event"),
        }
    }

    fn remember(&self, key: String, name: String, namespace: String, count: i64, first: String) {
        let Ok(mut s) = self.seen.lock() else { return };
        if s.len() >= MEMORY {
            if let Some(oldest) = s.iter().min_by_key(|(_, v)| v.at).map(|(k, _)| k.clone()) {
                s.remove(&oldest);
            }
        }
        s.insert(
            key,
            Seen {
                name,
                namespace,
                count,
                first,
                at: Instant::now(),
            },
        );
    }
}
