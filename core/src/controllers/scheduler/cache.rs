//! The scheduler's view of the cluster (kube-scheduler's cache): every node and, per node, the
//! pods bound to it with their summed requests and host ports. Fed by the pod and node
//! informers; pods this scheduler has just bound are "assumed" onto their node at once, so the
//! next decision counts them even before the informer shows the binding.

use super::affinity::{PodAffinity, Taint};
use super::resources::{self, Allocatable, Resources};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A host port a container binds (`hostIP` 0.0.0.0 and protocol TCP when unset).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i64,
}

impl HostPort {
    /// Whether two bindings collide: same protocol and port, and the same IP or either 0.0.0.0.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == ALL_IPS || other.ip == ALL_IPS)
    }
}

const ALL_IPS: &str = "0.0.0.0";

/// The host ports of a pod's app containers.
pub fn host_ports(pod: &Value) -> Vec<HostPort> {
    let mut out = Vec::new();
    for c in pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        for p in c
            .get("ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if port <= 0 {
                continue;
            }
            let s = |k: &str, d: &str| {
                p.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or(d)
                    .to_string()
            };
            out.push(HostPort {
                ip: s("hostIP", ALL_IPS),
                protocol: s("protocol", "TCP"),
                port,
            });
        }
    }
    out
}

/// What the scheduler needs to know about a pod.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    /// The node it is bound (or assumed) to; empty for the pod being scheduled.
    pub node: String,
    pub labels: Map<String, Value>,
    pub priority: i64,
    pub requests: Resources,
    /// Requests with the scoring defaults for containers that ask for nothing.
    pub non_zero: Resources,
    pub host_ports: Vec<HostPort>,
    pub affinity: PodAffinity,
    /// `creationTimestamp` (RFC 3339, sorts by age).
    pub created: String,
    /// Being deleted (still holds its resources, but no longer counts for spreading).
    pub deleting: bool,
}

impl PodInfo {
    pub fn of(pod: &Value) -> PodInfo {
        let s = |p: &str| {
            pod.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        PodInfo {
            uid: s("/metadata/uid"),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
            node: s("/spec/nodeName"),
            labels: resources::labels_of(pod),
            priority: priority_of(pod),
            requests: resources::pod_requests(pod, false),
            non_zero: resources::pod_requests(pod, true),
            host_ports: host_ports(pod),
            affinity: PodAffinity::of(pod),
            created: s("/metadata/creationTimestamp"),
            deleting: pod
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null()),
        }
    }
}

/// `spec.priority` (0 when unset).
pub fn priority_of(pod: &Value) -> i64 {
    pod.pointer("/spec/priority")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// What the scheduler needs to know about a node.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub name: String,
    pub labels: Map<String, Value>,
    /// `spec.taints`, plus `node.kubernetes.io/not-ready` (or `unreachable`) NoSchedule when the
    /// node is not Ready and carries neither yet (what the node lifecycle controller adds).
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Allocatable,
}

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

impl NodeView {
    pub fn of(node: &Value) -> NodeView {
        let mut taints: Vec<Taint> = node
            .pointer("/spec/taints")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Taint::from_value).collect())
            .unwrap_or_default();
        let ready = node
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            })
            .and_then(|c| c.get("status").and_then(Value::as_str))
            .unwrap_or("Unknown")
            .to_string();
        let has = |k: &str| taints.iter().any(|t| t.key == k);
        if ready != "True" && !has(TAINT_NOT_READY) && !has(TAINT_UNREACHABLE) {
            let key = if ready == "False" {
                TAINT_NOT_READY
            } else {
                TAINT_UNREACHABLE
            };
            taints.push(Taint::new(key, "", "NoSchedule"));
        }
        NodeView {
            name: node
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            labels: resources::labels_of(node),
            taints,
            unschedulable: node
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            allocatable: resources::allocatable(node),
        }
    }
}

/// A node and the pods on it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub node: Option<Arc<NodeView>>,
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    pub requested: Resources,
    pub non_zero: Resources,
    pub ports: Vec<HostPort>,
}

impl NodeInfo {
    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero.add(&p.non_zero);
        self.ports.extend(p.host_ports.iter().cloned());
        if let Some(old) = self.pods.insert(p.uid.clone(), p) {
            self.forget_usage(&old);
        }
    }

    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let old = self.pods.remove(uid)?;
        self.forget_usage(&old);
        Some(old)
    }

    fn forget_usage(&mut self, p: &PodInfo) {
        self.requested.sub(&p.requests);
        self.non_zero.sub(&p.non_zero);
        for hp in &p.host_ports {
            if let Some(i) = self.ports.iter().position(|x| x == hp) {
                self.ports.swap_remove(i);
            }
        }
    }

    /// The node as if `victims` were gone (for preemption's dry run).
    pub fn without(&self, victims: &HashSet<String>) -> NodeInfo {
        let mut n = self.clone();
        for uid in victims {
            n.remove_pod(uid);
        }
        n
    }
}

/// All nodes and bound pods.
#[derive(Debug, Default)]
pub struct Cache {
    pub nodes: BTreeMap<String, NodeInfo>,
    /// uid → node of every pod in the cache.
    pod_nodes: HashMap<String, String>,
    /// Pods bound by this scheduler whose binding the informer has not shown yet.
    assumed: HashSet<String>,
    /// Pending pods nominated to a node after preempting there: uid → (node, pod).
    nominated: HashMap<String, (String, Arc<PodInfo>)>,
}

impl Cache {
    /// A node was added or changed.
    pub fn set_node(&mut self, node: &Value) {
        let view = NodeView::of(node);
        let e = self.nodes.entry(view.name.clone()).or_default();
        e.node = Some(Arc::new(view));
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(n) = self.nodes.get_mut(name) {
            n.node = None;
            if n.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
    }

    /// A bound, non-terminal pod as the informer shows it (confirms an assumed pod).
    pub fn set_pod(&mut self, pod: &Value) {
        let info = PodInfo::of(pod);
        if info.node.is_empty() || info.uid.is_empty() {
            return;
        }
        self.assumed.remove(&info.uid);
        self.put(info);
    }

    fn put(&mut self, info: PodInfo) {
        if let Some(prev) = self.pod_nodes.get(&info.uid).cloned() {
            if prev != info.node {
                self.take(&info.uid);
            }
        }
        self.pod_nodes.insert(info.uid.clone(), info.node.clone());
        self.nodes
            .entry(info.node.clone())
            .or_default()
            .add_pod(Arc::new(info));
    }

    fn take(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let node = self.pod_nodes.remove(uid)?;
        let n = self.nodes.get_mut(&node)?;
        let p = n.remove_pod(uid);
        if n.node.is_none() && n.pods.is_empty() {
            self.nodes.remove(&node);
        }
        p
    }

    /// A pod was deleted or finished.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        self.assumed.remove(uid);
        self.take(uid)
    }

    /// Counts a pod on `node` right after deciding to bind it there.
    pub fn assume(&mut self, mut info: PodInfo, node: &str) {
        info.node = node.to_string();
        self.assumed.insert(info.uid.clone());
        self.put(info);
    }

    /// Drops an assumed pod whose binding failed (a confirmed pod stays).
    pub fn forget(&mut self, uid: &str) {
        if self.assumed.remove(uid) {
            self.take(uid);
        }
    }

    /// Whether the pod is in the cache (bound or assumed).
    pub fn has_pod(&self, uid: &str) -> bool {
        self.pod_nodes.contains_key(uid)
    }

    pub fn is_assumed(&self, uid: &str) -> bool {
        self.assumed.contains(uid)
    }

    /// Records that a pending pod waits for room it preempted on `node`.
    pub fn nominate(&mut self, info: PodInfo, node: &str) {
        self.nominated
            .insert(info.uid.clone(), (node.to_string(), Arc::new(info)));
    }

    pub fn unnominate(&mut self, uid: &str) {
        self.nominated.remove(uid);
    }

    /// Pods nominated to a node.
    pub fn nominated_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = Arc<PodInfo>> + 'a {
        self.nominated
            .values()
            .filter(move |(n, _)| n == node)
            .map(|(_, p)| p.clone())
    }

    /// Nodes that exist (have a Node object).
    pub fn node_infos(&self) -> impl Iterator<Item = &NodeInfo> + Clone {
        self.nodes.values().filter(|n| n.node.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, node: &str, cpu: &str, host_port: Option<i64>) -> Value {
        let mut c = json!({"name": "c", "resources": {"requests": {"cpu": cpu}}});
        if let Some(p) = host_port {
            c["ports"] = json!([{"containerPort": 80, "hostPort": p}]);
        }
        json!({"metadata": {"uid": uid, "name": uid, "namespace": "d"},
            "spec": {"nodeName": node, "containers": [c]}})
    }

    #[test]
    fn pods_are_counted_on_their_node_and_assumed_ones_confirmed_or_forgotten() {
        let mut c = Cache::default();
        c.set_node(&json!({"metadata": {"name": "n1"}, "status": {"allocatable": {"cpu": "2", "pods": "10"},
            "conditions": [{"type": "Ready", "status": "True"}]}}));
        c.set_pod(&pod("a", "n1", "500m", Some(8080)));
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 500);
        assert_eq!(c.nodes["n1"].ports.len(), 1);
        c.assume(PodInfo::of(&pod("b", "", "250m", None)), "n1");
        assert!(c.is_assumed("b"));
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 750);
        // The informer shows the binding: confirmed, counted once.
        c.set_pod(&pod("b", "n1", "250m", None));
        assert!(!c.is_assumed("b") && c.has_pod("b"));
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 750);
        c.forget("b");
        assert!(c.has_pod("b"));
        c.assume(PodInfo::of(&pod("x", "", "1", None)), "n1");
        c.forget("x");
        assert!(!c.has_pod("x"));
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 750);
        c.remove_pod("a");
        assert_eq!(c.nodes["n1"].requested.milli_cpu, 250);
        assert!(c.nodes["n1"].ports.is_empty());
        // Pods on a node without a Node object are kept but the node is not offered.
        c.set_pod(&pod("g", "ghost", "1", None));
        assert_eq!(c.node_infos().count(), 1);
        c.remove_pod("g");
        assert!(!c.nodes.contains_key("ghost"));
    }

    #[test]
    fn not_ready_nodes_get_the_not_ready_taint() {
        let v = NodeView::of(&json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        assert_eq!(
            v.taints,
            vec![Taint::new(TAINT_NOT_READY, "", "NoSchedule")]
        );
        let v = NodeView::of(&json!({"metadata": {"name": "n"}}));
        assert_eq!(
            v.taints,
            vec![Taint::new(TAINT_UNREACHABLE, "", "NoSchedule")]
        );
        let v = NodeView::of(
            &json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert!(v.taints.is_empty() && v.unschedulable);
    }

    #[test]
    fn host_port_conflicts() {
        let a = HostPort {
            ip: "0.0.0.0".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let b = HostPort {
            ip: "10.0.0.1".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let c = HostPort {
            ip: "10.0.0.2".into(),
            protocol: "TCP".into(),
            port: 80,
        };
        let u = HostPort {
            ip: "0.0.0.0".into(),
            protocol: "UDP".into(),
            port: 80,
        };
        assert!(a.conflicts(&b) && b.conflicts(&a));
        assert!(!b.conflicts(&c));
        assert!(!a.conflicts(&u));
    }
}
