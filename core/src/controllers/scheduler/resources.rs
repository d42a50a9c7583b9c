//! Resource arithmetic of the scheduler (kube-scheduler's `framework.Resource` and
//! `resourcehelper.PodRequests`): a pod's effective request (app containers summed, sidecars
//! added, each init container's phase as a maximum, overhead on top), the non-zero variant used
//! for scoring (100m CPU and 200Mi memory for containers that ask for nothing), and a node's
//! allocatable resources and pod count.

use crate::validation::quantity::Quantity;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// CPU (millicores) assumed for a container without a CPU request when scoring.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory (bytes) assumed for a container without a memory request when scoring.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of the resources the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Extended resources, hugepages, attachable volumes.
    pub scalar: BTreeMap<String, i64>,
}

/// Whether a resource name is accounted as a scalar resource (`IsScalarResourceName`).
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") || name.contains('/')
}

/// A quantity as the scheduler counts it: millicores for CPU, whole units otherwise.
pub fn quantity_value(name: &str, v: &Value) -> i64 {
    let q = match v {
        Value::String(s) => Quantity::parse(s),
        Value::Number(n) => Quantity::parse(&n.to_string()),
        _ => None,
    };
    let Some(q) = q else { return 0 };
    if name == "cpu" {
        q.scaled_value(-3)
    } else {
        q.scaled_value(0)
    }
}

impl Resources {
    /// From a `ResourceList` object (`{"cpu": "500m", "memory": "1Gi"}`); unknown names are
    /// ignored, as the scheduler ignores them.
    pub fn from_list(list: Option<&Value>) -> Resources {
        let mut r = Resources::default();
        if let Some(m) = list.and_then(Value::as_object) {
            for (name, v) in m {
                r.set(name, quantity_value(name, v));
            }
        }
        r
    }

    fn set(&mut self, name: &str, v: i64) {
        match name {
            "cpu" => self.milli_cpu = v,
            "memory" => self.memory = v,
            "ephemeral-storage" => self.ephemeral_storage = v,
            n if is_scalar(n) => {
                self.scalar.insert(n.to_string(), v);
            }
            _ => {}
        }
    }

    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(o.milli_cpu);
        self.memory = self.memory.saturating_add(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_add(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_add(*v);
        }
    }

    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(o.milli_cpu);
        self.memory = self.memory.saturating_sub(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.saturating_sub(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = e.saturating_sub(*v);
            if *e == 0 {
                self.scalar.remove(k);
            }
        }
    }

    /// Each resource becomes the larger of the two.
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (k, v) in &o.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// Nothing requested at all.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }
}

fn container_requests(c: &Value, non_zero: bool) -> Resources {
    let list = c.pointer("/resources/requests");
    let mut r = Resources::from_list(list);
    if non_zero {
        let has = |n: &str| list.and_then(|l| l.get(n)).is_some();
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn containers<'a>(pod: &'a Value, field: &str) -> &'a [Value] {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A restartable init container (a sidecar, `restartPolicy: Always`).
pub fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// The pod's effective request: max(sum of app containers and sidecars, each init container's
/// phase (itself plus the sidecars started before it)) plus the pod overhead. With `non_zero`,
/// containers without a CPU or memory request count the scoring defaults.
pub fn pod_requests(pod: &Value, non_zero: bool) -> Resources {
    let mut reqs = Resources::default();
    for c in containers(pod, "containers") {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in containers(pod, "initContainers") {
        let r = container_requests(c, non_zero);
        let phase = if is_sidecar(c) {
            reqs.add(&r);
            sidecars.add(&r);
            sidecars.clone()
        } else {
            let mut phase = r;
            phase.add(&sidecars);
            phase
        };
        init_peak.max_with(&phase);
    }
    reqs.max_with(&init_peak);
    if let Some(overhead) = pod.pointer("/spec/overhead") {
        reqs.add(&Resources::from_list(Some(overhead)));
    }
    reqs
}

/// What a node offers to pods: `status.allocatable` and its `pods` count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allocatable {
    pub resources: Resources,
    pub pods: i64,
}

pub fn allocatable(node: &Value) -> Allocatable {
    let list = node.pointer("/status/allocatable");
    Allocatable {
        resources: Resources::from_list(list),
        pods: list
            .and_then(|l| l.get("pods"))
            .map(|v| quantity_value("pods", v))
            .unwrap_or(0),
    }
}

/// Labels of an object (empty when absent).
pub fn labels_of(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(cpu: Option<&str>, mem: Option<&str>) -> Value {
        let mut req = Map::new();
        if let Some(v) = cpu {
            req.insert("cpu".into(), json!(v));
        }
        if let Some(v) = mem {
            req.insert("memory".into(), json!(v));
        }
        json!({"name": "c", "resources": {"requests": req}})
    }

    #[test]
    fn app_containers_sum_and_init_containers_max() {
        let pod = json!({"spec": {
            "initContainers": [c(Some("2"), Some("1G")), c(Some("2"), Some("3G"))],
            "containers": [c(Some("2"), Some("1G")), c(Some("1"), Some("1G"))]}});
        let r = pod_requests(&pod, false);
        assert_eq!(r.milli_cpu, 3000);
        assert_eq!(r.memory, 3_000_000_000);
    }

    #[test]
    fn sidecars_add_to_app_containers_and_later_init_phases() {
        let mut sidecar = c(Some("500m"), Some("100Mi"));
        sidecar["restartPolicy"] = json!("Always");
        let pod = json!({"spec": {
            "initContainers": [sidecar, c(Some("1"), Some("100Mi"))],
            "containers": [c(Some("200m"), Some("50Mi"))],
            "overhead": {"cpu": "100m", "memory": "10Mi"}}});
        let r = pod_requests(&pod, false);
        // app 200m + sidecar 500m = 700m; init phase 1000m + 500m = 1500m; + overhead 100m.
        assert_eq!(r.milli_cpu, 1600);
        // app 50Mi + 100Mi = 150Mi; init phase 100Mi + 100Mi = 200Mi; + 10Mi.
        assert_eq!(r.memory, 210 << 20);
    }

    #[test]
    fn non_zero_defaults_for_missing_requests() {
        let pod = json!({"spec": {"containers": [c(None, None), c(Some("1"), None)]}});
        let plain = pod_requests(&pod, false);
        assert_eq!((plain.milli_cpu, plain.memory), (1000, 0));
        let r = pod_requests(&pod, true);
        assert_eq!(r.milli_cpu, 1100);
        assert_eq!(r.memory, 2 * DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn node_allocatable_and_scalars() {
        let node = json!({"status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110",
            "nvidia.com/gpu": "2", "hugepages-2Mi": "0"}}});
        let a = allocatable(&node);
        assert_eq!(a.pods, 110);
        assert_eq!(a.resources.milli_cpu, 4000);
        assert_eq!(a.resources.memory, 8 << 30);
        assert_eq!(a.resources.scalar("nvidia.com/gpu"), 2);
        let mut x = a.resources.clone();
        x.sub(&a.resources);
        assert!(x.is_zero());
    }
}
