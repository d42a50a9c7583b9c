//! PodTopologySpread's filter: a pod's `topologySpreadConstraints` with
//! `whenUnsatisfiable: DoNotSchedule` keep the number of matching pods per topology domain
//! within `maxSkew` of the least loaded domain (counting only nodes the pod could use, per
//! `nodeAffinityPolicy`/`nodeTaintsPolicy`, and at least `minDomains` domains).

use super::affinity;
use super::cache::{NodeInfo, NodeView, PodInfo};
use super::filters::{Code, Status};
use crate::selectors::{LabelSelector, Operator, Requirement};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub const POD_TOPOLOGY_SPREAD: &str = "PodTopologySpread";
pub const REASON_SKEW: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// One hard constraint.
#[derive(Debug, Clone)]
struct Constraint {
    max_skew: i64,
    key: String,
    selector: LabelSelector,
    min_domains: i64,
    honor_affinity: bool,
    honor_taints: bool,
}

impl Constraint {
    fn parse(c: &Value, pod_labels: &Map<String, Value>) -> Option<Constraint> {
        if c.get("whenUnsatisfiable").and_then(Value::as_str) != Some("DoNotSchedule") {
            return None;
        }
        let mut selector = LabelSelector::from_label_selector_object(
            c.get("labelSelector").unwrap_or(&Value::Null),
        )
        .unwrap_or_else(|_| LabelSelector::nothing());
        // matchLabelKeys: the pod's own values of these labels narrow the selector.
        let mut extra = Vec::new();
        for k in c
            .get("matchLabelKeys")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if let Some(v) = pod_labels.get(k).and_then(Value::as_str) {
                if let Ok(r) = Requirement::new(k, Operator::In, vec![v.to_string()]) {
                    extra.push(r);
                }
            }
        }
        if !extra.is_empty() && !selector.matches_nothing() {
            let mut reqs = selector.requirements().to_vec();
            reqs.extend(extra);
            let text: Vec<String> = reqs.iter().map(ToString::to_string).collect();
            selector =
                LabelSelector::parse(&text.join(",")).unwrap_or_else(|_| LabelSelector::nothing());
        }
        let s = |k: &str| c.get(k).and_then(Value::as_str);
        Some(Constraint {
            max_skew: c.get("maxSkew").and_then(Value::as_i64).unwrap_or(1),
            key: s("topologyKey").unwrap_or("").to_string(),
            selector,
            min_domains: c.get("minDomains").and_then(Value::as_i64).unwrap_or(1),
            honor_affinity: s("nodeAffinityPolicy") != Some("Ignore"),
            honor_taints: s("nodeTaintsPolicy") == Some("Honor"),
        })
    }

    /// Whether pods on this node count toward the constraint's domains.
    fn includes(&self, pod: &Value, node: &NodeView) -> bool {
        if self.honor_affinity && !affinity::node_matches_pod(pod, &node.name, &node.labels) {
            return false;
        }
        if self.honor_taints {
            let tolerations = affinity::tolerations(pod);
            let untolerated = node.taints.iter().any(|t| {
                (t.effect == "NoSchedule" || t.effect == "NoExecute")
                    && !affinity::tolerated(tolerations, t)
            });
            if untolerated {
                return false;
            }
        }
        true
    }
}

/// The counts per constraint and topology value (PodTopologySpread's PreFilter state).
#[derive(Debug, Clone, Default)]
pub struct SpreadState {
    constraints: Vec<Constraint>,
    counts: Vec<HashMap<String, i64>>,
}

fn label<'a>(node: &'a NodeView, key: &str) -> Option<&'a str> {
    node.labels.get(key).map(|v| v.as_str().unwrap_or(""))
}

impl SpreadState {
    /// None when the pod has no hard constraint.
    pub fn compute<'a>(
        pod: &Value,
        info: &PodInfo,
        nodes: impl Iterator<Item = &'a NodeInfo>,
    ) -> Option<SpreadState> {
        let constraints: Vec<Constraint> = pod
            .pointer("/spec/topologySpreadConstraints")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(|c| Constraint::parse(c, &info.labels))
            .collect();
        if constraints.is_empty() {
            return None;
        }
        let mut counts = vec![HashMap::new(); constraints.len()];
        for n in nodes {
            let Some(view) = n.node.as_deref() else {
                continue;
            };
            if constraints.iter().any(|c| label(view, &c.key).is_none()) {
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes(pod, view) {
                    continue;
                }
                let matching = n
                    .pods
                    .values()
                    .filter(|p| {
                        !p.deleting
                            && p.namespace == info.namespace
                            && c.selector.matches(&p.labels)
                    })
                    .count() as i64;
                let value = label(view, &c.key).unwrap_or("").to_string();
                *counts[i].entry(value).or_insert(0) += matching;
            }
        }
        Some(SpreadState {
            constraints,
            counts,
        })
    }

    /// The filter on one node.
    pub fn filter(&self, info: &PodInfo, node: &NodeView) -> Option<Status> {
        for (i, c) in self.constraints.iter().enumerate() {
            let Some(value) = label(node, &c.key) else {
                return Some(Status {
                    plugin: POD_TOPOLOGY_SPREAD,
                    code: Code::Unresolvable,
                    reasons: vec![REASON_MISSING_LABEL.to_string()],
                });
            };
            let domains = &self.counts[i];
            let min = if (domains.len() as i64) < c.min_domains {
                0
            } else {
                domains
                    .values()
                    .copied()
                    .min()
                    .unwrap_or(i64::from(i32::MAX))
            };
            let own = i64::from(c.selector.matches(&info.labels));
            let skew = domains.get(value).copied().unwrap_or(0) + own - min;
            if skew > c.max_skew {
                return Some(Status {
                    plugin: POD_TOPOLOGY_SPREAD,
                    code: Code::Unschedulable,
                    reasons: vec![REASON_SKEW.to_string()],
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::scheduler::cache::Cache;
    use serde_json::json;

    fn node(name: &str, zone: Option<&str>) -> Value {
        let mut labels = json!({"kubernetes.io/hostname": name});
        if let Some(z) = zone {
            labels["zone"] = json!(z);
        }
        json!({"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(name: &str, node: &str, extra: Value) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "d", "uid": name,
            "labels": {"app": "web", "rev": "1"}}, "spec": {"nodeName": node, "containers": [{"name": "c"}]}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            p["spec"][k] = v.clone();
        }
        p
    }

    fn spread(key: &str, skew: i64, more: Value) -> Value {
        let mut c = json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}}});
        for (k, v) in more.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        json!({"topologySpreadConstraints": [c]})
    }

    fn verdicts(c: &Cache, p: &Value) -> Vec<Option<String>> {
        let info = PodInfo::of(p);
        let st = SpreadState::compute(p, &info, c.node_infos()).expect("constraints");
        c.node_infos()
            .map(|n| {
                st.filter(&info, n.node.as_deref().unwrap())
                    .map(|s| s.reasons[0].clone())
            })
            .collect()
    }

    #[test]
    fn skew_per_zone_and_missing_labels() {
        let mut c = Cache::default();
        c.set_node(&node("a", Some("z1")));
        c.set_node(&node("b", Some("z2")));
        c.set_node(&node("c", None));
        c.set_pod(&pod("w1", "a", json!({})));
        let p = pod("new", "", spread("zone", 1, json!({})));
        let v = verdicts(&c, &p);
        assert_eq!(v[0].as_deref(), Some(REASON_SKEW));
        assert_eq!(v[1], None);
        assert_eq!(v[2].as_deref(), Some(REASON_MISSING_LABEL));
        // minDomains 3 with two domains: the minimum counts as 0, so z2 (0 + 1) still fits,
        // z1 (1 + 1 - 0 = 2 > 1) does not.
        let p = pod("new", "", spread("zone", 1, json!({"minDomains": 3})));
        let v = verdicts(&c, &p);
        assert!(v[0].is_some() && v[1].is_none());
        // A pod on z2 evens it out.
        c.set_pod(&pod("w2", "b", json!({})));
        let p = pod("new", "", spread("zone", 1, json!({})));
        assert!(verdicts(&c, &p)[..2].iter().all(Option::is_none));
    }

    #[test]
    fn match_label_keys_narrow_the_selector() {
        let mut c = Cache::default();
        c.set_node(&node("a", Some("z1")));
        c.set_node(&node("b", Some("z2")));
        let mut old = pod("old", "a", json!({}));
        old["metadata"]["labels"]["rev"] = json!("0");
        c.set_pod(&old);
        // Without matchLabelKeys the old revision's pod counts; with them it does not.
        let p = pod("new", "", spread("zone", 1, json!({})));
        assert!(verdicts(&c, &p)[0].is_some());
        let p = pod(
            "new",
            "",
            spread("zone", 1, json!({"matchLabelKeys": ["rev"]})),
        );
        assert!(verdicts(&c, &p).iter().all(Option::is_none));
    }

    #[test]
    fn schedule_anyway_is_not_a_filter() {
        let p = pod(
            "p",
            "",
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}}]}),
        );
        assert!(SpreadState::compute(&p, &PodInfo::of(&p), std::iter::empty()).is_none());
    }
}
