//! DefaultPreemption's decision, run when no node fits: on each node where the rejection may be
//! resolved by removing pods, find the fewest lower-priority pods whose removal lets the pod fit
//! (a dry run of the filters), and pick the best such node. When there is none, its verdict is
//! the "preemption: …" sentence of the `FailedScheduling` message.

use super::cache::{Cache, NodeInfo, PodInfo};
use super::filters::{self, Code, Cycle, NamespaceLabels, Status};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A node where preempting `victims` makes room for the pod.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// What preemption concluded.
#[derive(Debug)]
pub enum Outcome {
    /// Preempt these pods on this node.
    Preempt(Candidate),
    /// No preemption helps; the message says why ("preemption: …").
    NotHelpful(String),
}

/// More important first: higher priority, then older.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| a.created.cmp(&b.created))
}

fn filter_with(
    pod: &Value,
    info: &PodInfo,
    cache: &Cache,
    node: &NodeInfo,
    ns_labels: NamespaceLabels<'_>,
) -> Result<(), Status> {
    let name = node.node.as_ref().map(|v| v.name.as_str()).unwrap_or("");
    let nodes = cache
        .node_infos()
        .filter(|n| n.node.as_ref().is_some_and(|v| v.name != name))
        .chain(std::iter::once(node));
    let cycle = Cycle::new(pod, info, nodes, ns_labels);
    filters::run(&cycle, node)
}

/// Dry run on one node: the victims needed, or why there are none.
fn select_victims(
    pod: &Value,
    info: &PodInfo,
    cache: &Cache,
    node: &NodeInfo,
    ns_labels: NamespaceLabels<'_>,
) -> Result<Vec<Arc<PodInfo>>, Status> {
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .values()
        .filter(|p| p.priority < info.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status {
            plugin: "DefaultPreemption",
            code: Code::Unresolvable,
            reasons: vec![NO_VICTIMS.to_string()],
        });
    }
    let all: HashSet<String> = potential.iter().map(|p| p.uid.clone()).collect();
    let mut room = node.without(&all);
    filter_with(pod, info, cache, &room, ns_labels)?;
    // Give back as many pods as possible, most important first.
    potential.sort_by(|a, b| more_important(a, b));
    let mut victims = Vec::new();
    for p in potential {
        room.add_pod(p.clone());
        if filter_with(pod, info, cache, &room, ns_labels).is_err() {
            room.remove_pod(&p.uid);
            victims.push(p);
        }
    }
    Ok(victims)
}

/// The best candidate (`pickOneNodeForPreemption`): lowest highest-victim priority, then
/// lowest sum of priorities, then fewest victims.
fn pick(candidates: Vec<Candidate>) -> Option<Candidate> {
    let key = |c: &Candidate| {
        let highest = c
            .victims
            .iter()
            .map(|v| v.priority)
            .max()
            .unwrap_or(i64::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| v.priority + i32::MAX as i64 + 1)
            .sum();
        (highest, sum, c.victims.len())
    };
    candidates.into_iter().min_by_key(key)
}

/// Runs preemption for a pod no node fits; `statuses` are the filter rejections by node name.
pub fn evaluate(
    pod: &Value,
    info: &PodInfo,
    cache: &Cache,
    statuses: &[(String, Status)],
    ns_labels: NamespaceLabels<'_>,
) -> Outcome {
    if pod
        .pointer("/spec/preemptionPolicy")
        .and_then(Value::as_str)
        == Some("Never")
    {
        return Outcome::NotHelpful(
            "preemption: not eligible due to preemptionPolicy=Never.".to_string(),
        );
    }
    let all_nodes = cache.node_infos().count();
    let mut dry_run: Vec<Status> = Vec::new();
    let mut candidates = Vec::new();
    for (name, status) in statuses {
        if status.code != Code::Unschedulable {
            continue;
        }
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        match select_victims(pod, info, cache, node, ns_labels) {
            Ok(victims) => candidates.push(Candidate {
                node: name.clone(),
                victims,
            }),
            Err(s) => dry_run.push(s),
        }
    }
    if let Some(c) = pick(candidates) {
        return Outcome::Preempt(c);
    }
    let absent = all_nodes.saturating_sub(dry_run.len());
    dry_run.extend((0..absent).map(|_| Status {
        plugin: "DefaultPreemption",
        code: Code::Unresolvable,
        reasons: vec![NOT_HELPFUL.to_string()],
    }));
    Outcome::NotHelpful(format!(
        "preemption: {}",
        filters::fit_error_message(all_nodes, &dry_run, "")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    fn no_ns(_: &str) -> Map<String, Value> {
        Map::new()
    }

    fn node(name: &str, cpu: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": cpu, "memory": "4Gi", "pods": "10"},
                "conditions": [{"type": "Ready", "status": "True"}]}})
    }

    fn pod(name: &str, node: &str, cpu: &str, priority: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "d", "uid": name,
                "creationTimestamp": format!("2026-01-01T00:00:0{}Z", name.len())},
            "spec": {"nodeName": node, "priority": priority,
                "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    fn statuses(cache: &Cache, p: &Value) -> Vec<(String, Status)> {
        let info = PodInfo::of(p);
        let c = Cycle::new(p, &info, cache.node_infos(), &no_ns);
        cache
            .node_infos()
            .filter_map(|n| {
                filters::run(&c, n).err().map(|s| {
                    (
                        n.node.as_ref().map(|v| v.name.clone()).unwrap_or_default(),
                        s,
                    )
                })
            })
            .collect()
    }

    #[test]
    fn no_victims_and_not_helpful() {
        let mut c = Cache::default();
        c.set_node(&node("a", "2"));
        let mut cordoned = node("cordoned", "4");
        cordoned["spec"] = json!({"unschedulable": true});
        c.set_node(&cordoned);
        c.set_pod(&pod("x", "a", "2", 0));
        let p = pod("p", "", "1", 0);
        let st = statuses(&c, &p);
        match evaluate(&p, &PodInfo::of(&p), &c, &st, &no_ns) {
            Outcome::NotHelpful(m) => assert_eq!(
                m,
                "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming \
                 pod, 1 Preemption is not helpful for scheduling."
            ),
            other => panic!("{other:?}"),
        }
        let mut never = p.clone();
        never["spec"]["preemptionPolicy"] = json!("Never");
        assert!(matches!(
            evaluate(&never, &PodInfo::of(&never), &c, &st, &no_ns),
            Outcome::NotHelpful(m) if m == "preemption: not eligible due to preemptionPolicy=Never."
        ));
    }

    #[test]
    fn fewest_lowest_priority_victims() {
        let mut c = Cache::default();
        c.set_node(&node("a", "3"));
        c.set_pod(&pod("low", "a", "1", 1));
        c.set_pod(&pod("lower", "a", "1", 0));
        c.set_pod(&pod("high", "a", "1", 100));
        let p = pod("p", "", "1", 50);
        let st = statuses(&c, &p);
        match evaluate(&p, &PodInfo::of(&p), &c, &st, &no_ns) {
            Outcome::Preempt(cand) => {
                assert_eq!(cand.node, "a");
                let names: Vec<&str> = cand.victims.iter().map(|v| v.name.as_str()).collect();
                assert_eq!(names, vec!["lower"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
