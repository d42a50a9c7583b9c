//! Indexed Jobs (upstream's indexed_job_utils.go and success_policy.go): the completion index of
//! a pod, sets of indexes in their compressed form (`"0-2,4"`, as `status.completedIndexes`
//! shows them), which indexes still need a pod, which pods repeat an index, what a pod of a
//! given index gets (annotation, label, hostname, `JOB_COMPLETION_INDEX`), and success policies.

use super::status::sort_active_pods;
use k8s_openapi::api::batch::v1::SuccessPolicy;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Annotation and label holding a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The environment variable that exposes it to containers.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// Longest generateName prefix the API server keeps (`names.MaxGeneratedNameLength`).
const MAX_GENERATED_NAME_LENGTH: usize = 58;

/// The completion index of a pod (its annotation), if valid.
pub fn completion_index(pod: &Value) -> Option<i64> {
    let v = pod
        .pointer("/metadata/annotations")?
        .get(COMPLETION_INDEX)?
        .as_str()?;
    v.parse::<i64>().ok().filter(|i| *i >= 0)
}

/// A closed range of indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub first: i64,
    pub last: i64,
}

/// Ordered, non-overlapping, non-adjacent intervals (upstream's `orderedIntervals`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<Interval>);

impl Intervals {
    /// Parses `"1,3-5,7"`, ignoring malformed parts and indexes at or beyond `completions`.
    pub fn parse(s: &str, completions: i64) -> Intervals {
        let mut out: Vec<Interval> = Vec::new();
        if s.is_empty() {
            return Intervals(out);
        }
        for part in s.split(',') {
            let mut limits = part.split('-');
            let Some(Ok(first)) = limits.next().map(str::parse::<i64>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match limits.next() {
                Some(l) => match l.parse::<i64>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match out.last_mut() {
                Some(prev) if prev.last == first - 1 => prev.last = last,
                _ => out.push(Interval { first, last }),
            }
        }
        Intervals(out)
    }

    /// A copy that also contains `indexes` (given in increasing order).
    pub fn with_ordered_indexes(&self, indexes: &[i64]) -> Intervals {
        let add = Intervals(
            indexes
                .iter()
                .map(|&i| Interval { first: i, last: i })
                .collect(),
        );
        self.merge(&add)
    }

    /// The union of two interval lists.
    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut all: Vec<Interval> = self.0.iter().chain(&other.0).copied().collect();
        all.sort_by_key(|iv| iv.first);
        let mut out: Vec<Interval> = Vec::with_capacity(all.len());
        for iv in all {
            match out.last_mut() {
                Some(prev) if iv.first <= prev.last + 1 => prev.last = prev.last.max(iv.last),
                _ => out.push(iv),
            }
        }
        Intervals(out)
    }

    /// How many indexes.
    pub fn total(&self) -> i64 {
        self.0.iter().map(|iv| iv.last - iv.first + 1).sum()
    }

    pub fn has(&self, ix: i64) -> bool {
        let i = self.0.partition_point(|iv| iv.last < ix);
        self.0.get(i).is_some_and(|iv| iv.first <= ix)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, iv) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", iv.first)?;
            if iv.last > iv.first {
                let sep = if iv.last == iv.first + 1 { ',' } else { '-' };
                write!(f, "{sep}{}", iv.last)?;
            }
        }
        Ok(())
    }
}

/// The indexes of these pods.
pub fn indexes_of(pods: &[Arc<Value>]) -> BTreeSet<i64> {
    pods.iter().filter_map(|p| completion_index(p)).collect()
}

/// Up to `count` indexes below `completions` covered neither by `non_pending` nor by `taken`
/// (upstream's `firstPendingIndexes`).
pub fn first_pending_indexes(
    non_pending: &Intervals,
    taken: &BTreeSet<i64>,
    count: usize,
    completions: i64,
) -> Vec<i64> {
    if count == 0 {
        return Vec::new();
    }
    let taken: Vec<i64> = taken.iter().copied().collect();
    let covered = non_pending.with_ordered_indexes(&taken);
    let mut out = Vec::with_capacity(count);
    let mut candidate = 0;
    for iv in &covered.0 {
        while candidate < completions && out.len() < count && candidate < iv.first {
            out.push(candidate);
            candidate += 1;
        }
        if candidate < iv.last + 1 {
            candidate = iv.last + 1;
        }
    }
    while candidate < completions && out.len() < count {
        out.push(candidate);
        candidate += 1;
    }
    out
}

/// Splits active pods into those to remove (no index, an index out of range, or a repeated
/// index: all but the most advanced pod of that index) and those to keep (upstream's
/// `appendDuplicatedIndexPodsForRemoval`).
pub fn duplicated_index_pods(
    pods: &[Arc<Value>],
    completions: i64,
) -> (Vec<Arc<Value>>, Vec<Arc<Value>>) {
    let mut sorted: Vec<Arc<Value>> = pods.to_vec();
    sorted.sort_by_key(|p| completion_index(p).unwrap_or(-1));
    let (mut rm, mut keep) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < sorted.len() {
        let ix = completion_index(&sorted[i]);
        let mut j = i;
        while j < sorted.len() && completion_index(&sorted[j]) == ix {
            j += 1;
        }
        let mut group: Vec<Arc<Value>> = sorted[i..j].to_vec();
        match ix {
            Some(ix) if ix < completions => {
                sort_active_pods(&mut group);
                if let Some(best) = group.pop() {
                    keep.push(best);
                }
                rm.extend(group);
            }
            _ => rm.extend(group),
        }
        i = j;
    }
    (rm, keep)
}

/// The generateName of a pod for an index: `<job>-<index>-`, the job name shortened so the
/// prefix fits.
pub fn generate_name(job: &str, index: i64) -> String {
    let suffix = format!("-{index}-");
    let prefix = format!("{job}{suffix}");
    if prefix.len() <= MAX_GENERATED_NAME_LENGTH {
        return prefix;
    }
    let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
    let cut = (0..=keep)
        .rev()
        .find(|&n| job.is_char_boundary(n))
        .unwrap_or(0);
    format!("{}{suffix}", &job[..cut])
}

/// Adds `JOB_COMPLETION_INDEX` (from the index label) to every container and init container
/// that does not set it.
pub fn add_index_env(template: &mut Value) {
    for list in ["initContainers", "containers"] {
        let Some(ctrs) = template
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in ctrs.iter_mut().filter_map(Value::as_object_mut) {
            let env = c.entry("env").or_insert_with(|| json!([]));
            if env.is_null() {
                *env = json!([]);
            }
            let Some(env) = env.as_array_mut() else {
                continue;
            };
            if env
                .iter()
                .any(|e| e.get("name").and_then(Value::as_str) == Some(INDEX_ENV))
            {
                continue;
            }
            env.push(json!({"name": INDEX_ENV, "valueFrom": {"fieldRef": {
                "fieldPath": format!("metadata.labels['{COMPLETION_INDEX}']")}}}));
        }
    }
}

/// Stamps a pod template with its index: annotation, label and hostname `<job>-<index>`.
pub fn add_index(template: &mut Value, job: &str, index: i64) {
    let Some(t) = template.as_object_mut() else {
        return;
    };
    let meta = t.entry("metadata").or_insert_with(|| json!({}));
    for field in ["annotations", "labels"] {
        if meta.get(field).is_none_or(|v| !v.is_object()) {
            meta[field] = json!({});
        }
        meta[field][COMPLETION_INDEX] = json!(index.to_string());
    }
    let spec = t.entry("spec").or_insert_with(|| json!({}));
    if spec.is_object() {
        spec["hostname"] = json!(format!("{job}-{index}"));
    }
}

/// The message of the first success-policy rule the succeeded indexes satisfy
/// (upstream's `matchSuccessPolicy`).
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i64,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    for (i, rule) in policy.rules.iter().enumerate() {
        let count = rule.succeeded_count.map(i64::from);
        let matched = match rule.succeeded_indexes.as_deref() {
            Some(ixs) => {
                let required = Intervals::parse(ixs, completions);
                !required.is_empty() && succeeded_indexes_rule(&required, succeeded, count)
            }
            None => count.is_some_and(|c| succeeded.total() >= c),
        };
        if matched {
            return Some(format!("Matched rules at index {i}"));
        }
    }
    None
}

fn succeeded_indexes_rule(rule: &Intervals, succeeded: &Intervals, count: Option<i64>) -> bool {
    let mut contains = 0;
    for r in &rule.0 {
        for s in &succeeded.0 {
            let overlap = r.last.min(s.last) - r.first.max(s.first) + 1;
            if overlap > 0 {
                contains += overlap;
            }
        }
    }
    contains == rule.total() || count.is_some_and(|c| contains >= c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(s: &str, n: i64) -> Intervals {
        Intervals::parse(s, n)
    }

    #[test]
    fn intervals_round_trip() {
        assert_eq!(iv("0-2,4", 10).to_string(), "0-2,4");
        assert_eq!(iv("0,1", 10).to_string(), "0,1");
        assert_eq!(iv("0,1,2", 10).to_string(), "0-2");
        assert_eq!(iv("3-9", 5).to_string(), "3,4");
        assert_eq!(iv("7,8", 5).to_string(), "");
        assert_eq!(iv("x,2", 5).to_string(), "2");
        assert_eq!(iv("", 5).total(), 0);
        let s = iv("1-3,7", 10);
        assert_eq!(s.total(), 4);
        assert!(s.has(1) && s.has(3) && s.has(7));
        assert!(!s.has(0) && !s.has(4) && !s.has(8));
        assert_eq!(s.with_ordered_indexes(&[0, 4, 9]).to_string(), "0-4,7,9");
        assert_eq!(s.merge(&iv("5-6", 10)).to_string(), "1-3,5-7");
    }

    #[test]
    fn pending_indexes() {
        let succeeded = iv("0,2", 5);
        let active: BTreeSet<i64> = [1].into_iter().collect();
        assert_eq!(first_pending_indexes(&succeeded, &active, 5, 5), vec![3, 4]);
        assert_eq!(first_pending_indexes(&succeeded, &active, 1, 5), vec![3]);
        assert_eq!(
            first_pending_indexes(&Intervals::default(), &BTreeSet::new(), 2, 5),
            vec![0, 1]
        );
        assert!(first_pending_indexes(&iv("0-4", 5), &BTreeSet::new(), 3, 5).is_empty());
    }

    fn pod(name: &str, index: Option<&str>, phase: &str) -> Arc<Value> {
        let mut p =
            json!({"metadata": {"name": name, "annotations": {}}, "status": {"phase": phase}});
        if let Some(i) = index {
            p["metadata"]["annotations"][COMPLETION_INDEX] = json!(i);
        }
        Arc::new(p)
    }

    #[test]
    fn duplicates() {
        let pods = vec![
            pod("a", Some("0"), "Running"),
            pod("b", Some("0"), "Pending"),
            pod("c", None, "Running"),
            pod("d", Some("1"), "Running"),
            pod("e", Some("7"), "Running"),
            pod("f", Some("-1"), "Running"),
        ];
        let (rm, keep) = duplicated_index_pods(&pods, 3);
        let names = |v: &[Arc<Value>]| {
            let mut n: Vec<String> = v
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string())
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&rm), vec!["b", "c", "e", "f"]);
        assert_eq!(names(&keep), vec!["a", "d"]);
    }

    #[test]
    fn template_stamping() {
        let mut t = json!({"metadata": {"labels": {"x": "y"}}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]},
                           {"name": "d", "env": [{"name": INDEX_ENV, "value": "mine"}]}]}});
        add_index_env(&mut t);
        add_index(&mut t, "pi", 2);
        assert_eq!(t["metadata"]["labels"][COMPLETION_INDEX], "2");
        assert_eq!(t["metadata"]["labels"]["x"], "y");
        assert_eq!(t["metadata"]["annotations"][COMPLETION_INDEX], "2");
        assert_eq!(t["spec"]["hostname"], "pi-2");
        assert_eq!(t["spec"]["initContainers"][0]["env"][0]["name"], INDEX_ENV);
        assert_eq!(
            t["spec"]["containers"][0]["env"][1]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
        assert_eq!(
            t["spec"]["containers"][1]["env"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(generate_name("pi", 3), "pi-3-");
        let long = "x".repeat(70);
        let g = generate_name(&long, 12);
        assert_eq!(g.len(), MAX_GENERATED_NAME_LENGTH);
        assert!(g.ends_with("-12-"));
    }

    #[test]
    fn success_policies() {
        let policy: SuccessPolicy = serde_json::from_value(json!({"rules": [
            {"succeededIndexes": "0-2", "succeededCount": 5},
            {"succeededIndexes": "4,5"},
            {"succeededCount": 3}]}))
        .expect("policy");
        assert_eq!(match_success_policy(Some(&policy), 10, &iv("", 10)), None);
        assert_eq!(
            match_success_policy(Some(&policy), 10, &iv("0,9", 10)),
            None
        );
        assert_eq!(
            match_success_policy(Some(&policy), 10, &iv("0-2", 10)).as_deref(),
            Some("Matched rules at index 0")
        );
        assert_eq!(
            match_success_policy(Some(&policy), 10, &iv("4-5", 10)).as_deref(),
            Some("Matched rules at index 1")
        );
        assert_eq!(
            match_success_policy(Some(&policy), 10, &iv("7-9", 10)).as_deref(),
            Some("Matched rules at index 2")
        );
        assert_eq!(match_success_policy(None, 10, &iv("0-9", 10)), None);
    }
}
