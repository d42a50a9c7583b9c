//! Affinity as the scheduler reads it: a pod's `nodeSelector` and node affinity matched against a
//! node (`NodeSelectorTerm`s: `matchExpressions` on labels with In/NotIn/Exists/DoesNotExist/
//! Gt/Lt, `matchFields` on `metadata.name`), taints and tolerations, and pod (anti-)affinity
//! terms (label selector, namespaces or namespace selector, topology key) matched against pods.

use crate::selectors::{LabelSelector, Operator, Requirement};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------------
// Node selectors
// ---------------------------------------------------------------------------------------------

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// One `NodeSelectorRequirement` against the node's labels (None when it is invalid, which makes
/// its term match nothing, as upstream's lazy-error selector does).
fn label_requirement_matches(req: &Value, labels: &Map<String, Value>) -> Option<bool> {
    let key = req.get("key").and_then(Value::as_str)?;
    let values = strings(req.get("values"));
    let op = match req.get("operator").and_then(Value::as_str)? {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        _ => return None,
    };
    Requirement::new(key, op, values)
        .ok()
        .map(|r| r.matches(labels))
}

/// A `matchFields` requirement: only `metadata.name` with In/NotIn exists.
fn field_requirement_matches(req: &Value, node_name: &str) -> Option<bool> {
    if req.get("key").and_then(Value::as_str) != Some("metadata.name") {
        return None;
    }
    let values = strings(req.get("values"));
    match req.get("operator").and_then(Value::as_str)? {
        "In" if values.len() == 1 => Some(values.iter().any(|v| v == node_name)),
        "NotIn" if values.len() == 1 => Some(values.iter().all(|v| v != node_name)),
        _ => None,
    }
}

/// A `NodeSelectorTerm`: its requirements ANDed; an empty term matches nothing.
pub fn term_matches(term: &Value, node_name: &str, labels: &Map<String, Value>) -> bool {
    let exprs = term
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let fields = term
        .get("matchFields")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| label_requirement_matches(r, labels) == Some(true))
        && fields
            .iter()
            .all(|r| field_requirement_matches(r, node_name) == Some(true))
}

/// The pod's `nodeSelector` and required node affinity (terms ORed) both hold on the node.
pub fn node_matches_pod(pod: &Value, node_name: &str, labels: &Map<String, Value>) -> bool {
    if let Some(sel) = pod.pointer("/spec/nodeSelector").and_then(Value::as_object) {
        for (k, v) in sel {
            if labels.get(k).and_then(Value::as_str) != Some(v.as_str().unwrap_or("")) {
                return false;
            }
        }
    }
    let Some(required) = pod
        .pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution")
        .filter(|v| !v.is_null())
    else {
        return true;
    };
    required
        .get("nodeSelectorTerms")
        .and_then(Value::as_array)
        .is_some_and(|terms| terms.iter().any(|t| term_matches(t, node_name, labels)))
}

/// Sum of the weights of the pod's preferred node-affinity terms the node matches.
pub fn preferred_node_affinity_score(
    pod: &Value,
    node_name: &str,
    labels: &Map<String, Value>,
) -> i64 {
    pod.pointer("/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution")
        .and_then(Value::as_array)
        .map(|terms| {
            terms
                .iter()
                .filter_map(|t| {
                    let w = t.get("weight").and_then(Value::as_i64).unwrap_or(0);
                    let pref = t.get("preference")?;
                    (w != 0 && term_matches(pref, node_name, labels)).then_some(w)
                })
                .sum()
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Taints and tolerations
// ---------------------------------------------------------------------------------------------

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

impl Taint {
    pub fn new(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.to_string(),
            value: value.to_string(),
            effect: effect.to_string(),
        }
    }

    pub fn from_value(v: &Value) -> Taint {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Taint {
            key: s("key"),
            value: s("value"),
            effect: s("effect"),
        }
    }
}

/// Whether a toleration tolerates a taint (`Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Value, taint: &Taint) -> bool {
    let s = |k: &str| toleration.get(k).and_then(Value::as_str).unwrap_or("");
    if !s("effect").is_empty() && s("effect") != taint.effect {
        return false;
    }
    if !s("key").is_empty() && s("key") != taint.key {
        return false;
    }
    match s("operator") {
        "Exists" => true,
        "" | "Equal" => s("value") == taint.value,
        _ => false,
    }
}

/// The pod's tolerations.
pub fn tolerations(pod: &Value) -> &[Value] {
    pod.pointer("/spec/tolerations")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn tolerated(tolerations: &[Value], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

// ---------------------------------------------------------------------------------------------
// Pod affinity terms
// ---------------------------------------------------------------------------------------------

/// A `PodAffinityTerm` resolved against the pod that declares it.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub selector: LabelSelector,
    /// Namespaces named by the term (the owner's namespace when neither namespaces nor a
    /// namespace selector is given).
    pub namespaces: BTreeSet<String>,
    /// `namespaceSelector` (None = null, selects no namespace; `{}` selects all).
    pub namespace_selector: Option<LabelSelector>,
    pub topology_key: String,
    /// Weight of a preferred term (1 for required ones).
    pub weight: i64,
}

impl AffinityTerm {
    fn parse(term: &Value, owner_ns: &str, weight: i64) -> AffinityTerm {
        let selector = LabelSelector::from_label_selector_object(
            term.get("labelSelector").unwrap_or(&Value::Null),
        )
        .unwrap_or_else(|_| LabelSelector::nothing());
        let ns_sel = term.get("namespaceSelector").filter(|v| !v.is_null());
        let listed = strings(term.get("namespaces"));
        let namespaces: BTreeSet<String> = if listed.is_empty() && ns_sel.is_none() {
            [owner_ns.to_string()].into()
        } else {
            listed.into_iter().collect()
        };
        let namespace_selector = ns_sel.map(|v| {
            LabelSelector::from_label_selector_object(v)
                .unwrap_or_else(|_| LabelSelector::nothing())
        });
        AffinityTerm {
            selector,
            namespaces,
            namespace_selector,
            topology_key: term
                .get("topologyKey")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            weight,
        }
    }

    /// Whether a pod (its namespace, labels, and its namespace's labels) matches the term.
    pub fn matches(
        &self,
        pod_ns: &str,
        pod_labels: &Map<String, Value>,
        ns_labels: &Map<String, Value>,
    ) -> bool {
        let ns_ok = self.namespaces.contains(pod_ns)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.matches(ns_labels));
        ns_ok && self.selector.matches(pod_labels)
    }
}

/// The (anti-)affinity terms of one pod.
#[derive(Debug, Clone, Default)]
pub struct PodAffinity {
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
}

impl PodAffinity {
    pub fn of(pod: &Value) -> PodAffinity {
        let ns = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let required = |path: &str| -> Vec<AffinityTerm> {
            pod.pointer(path)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|t| AffinityTerm::parse(t, ns, 1)).collect())
                .unwrap_or_default()
        };
        let preferred = |path: &str| -> Vec<AffinityTerm> {
            pod.pointer(path)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|wt| {
                            let w = wt.get("weight").and_then(Value::as_i64).unwrap_or(0);
                            let t = wt.get("podAffinityTerm")?;
                            (w != 0).then(|| AffinityTerm::parse(t, ns, w))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        PodAffinity {
            required_affinity: required(
                "/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            ),
            required_anti_affinity: required(
                "/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            ),
            preferred_affinity: preferred(
                "/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution",
            ),
            preferred_anti_affinity: preferred(
                "/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
            ),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.required_affinity.is_empty()
            && self.required_anti_affinity.is_empty()
            && self.preferred_affinity.is_empty()
            && self.preferred_anti_affinity.is_empty()
    }

    pub fn has_preferred(&self) -> bool {
        !self.preferred_affinity.is_empty() || !self.preferred_anti_affinity.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let node = labels(json!({"disk": "ssd", "zone": "a", "cores": "8"}));
        let pod = json!({"spec": {"nodeSelector": {"disk": "ssd"}}});
        assert!(node_matches_pod(&pod, "n1", &node));
        let pod = json!({"spec": {"nodeSelector": {"disk": "hdd"}}});
        assert!(!node_matches_pod(&pod, "n1", &node));
        let aff = |terms: Value| {
            json!({"spec": {"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}})
        };
        // Terms are ORed, requirements ANDed.
        let p = aff(json!([
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]},
                                  {"key": "cores", "operator": "Gt", "values": ["4"]}]}]));
        assert!(node_matches_pod(&p, "n1", &node));
        let p = aff(
            json!([{"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["4"]}]}]),
        );
        assert!(!node_matches_pod(&p, "n1", &node));
        let p = aff(json!([{"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}]));
        assert!(node_matches_pod(&p, "n1", &node));
        let p = aff(
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]),
        );
        assert!(!node_matches_pod(&p, "n1", &node));
        assert!(node_matches_pod(&p, "n2", &node));
        // An empty term matches nothing.
        let p = aff(json!([{}]));
        assert!(!node_matches_pod(&p, "n1", &node));
    }

    #[test]
    fn preferred_node_affinity_weights() {
        let node = labels(json!({"zone": "a"}));
        let pod = json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 7, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}},
            {"weight": 3, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}}});
        assert_eq!(preferred_node_affinity_score(&pod, "n", &node), 8);
    }

    #[test]
    fn tolerations_match_taints() {
        let t = Taint::new("dedicated", "gpu", "NoSchedule");
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Equal", "value": "gpu"}),
            &t
        ));
        assert!(tolerates(
            &json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}),
            &t
        ));
        assert!(!tolerates(
            &json!({"key": "dedicated", "value": "gpu", "effect": "NoExecute"}),
            &t
        ));
        assert!(!tolerates(&json!({"key": "dedicated", "value": "cpu"}), &t));
        assert!(tolerates(
            &json!({"key": "dedicated", "operator": "Exists"}),
            &t
        ));
        assert!(tolerates(&json!({"operator": "Exists"}), &t));
        assert!(!tolerates(
            &json!({"key": "other", "operator": "Exists"}),
            &t
        ));
    }

    #[test]
    fn affinity_terms_namespaces() {
        let pod = json!({"metadata": {"namespace": "ns1"}, "spec": {"affinity": {
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"},
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone",
                 "namespaceSelector": {"matchLabels": {"team": "x"}}}]},
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}},
                 "namespaces": ["ns2"], "topologyKey": "zone"}}]}}}});
        let a = PodAffinity::of(&pod);
        let web = labels(json!({"app": "web"}));
        let none = Map::new();
        let team = labels(json!({"team": "x"}));
        let t0 = &a.required_anti_affinity[0];
        assert!(t0.matches("ns1", &web, &none));
        assert!(!t0.matches("ns2", &web, &none));
        let t1 = &a.required_anti_affinity[1];
        assert!(!t1.matches("ns1", &web, &none));
        assert!(t1.matches("ns3", &web, &team));
        let p = &a.preferred_affinity[0];
        assert_eq!(p.weight, 10);
        assert!(p.matches("ns2", &labels(json!({"app": "db"})), &none));
        assert!(!p.matches("ns1", &labels(json!({"app": "db"})), &none));
        // A null label selector selects nothing.
        let odd = json!({"metadata": {"namespace": "a"}, "spec": {"affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "k"}]}}}});
        assert!(!PodAffinity::of(&odd).required_affinity[0].matches("a", &web, &none));
    }
}
