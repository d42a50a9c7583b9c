//! ControllerRevisions of a StatefulSet (`history` package and the revision half of
//! `stateful_set_control.go`): a revision holds the patch `{"spec":{"template":{…,
//! "$patch":"replace"}}}` of the pod template, is named `<set>-<hash>` (the hash of the patch
//! and the collision count) and labelled with the template's labels plus
//! `controller.kubernetes.io/hash`. Pure functions: which revision is current and which is the
//! update, applying a revision back onto the set, and which old revisions to drop.

use crate::controllers::deployment::hash::compute_hash;
use crate::controllers::pods::{controller_ref, name_of, namespace_of};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// `getPatch`: the part of the set a revision records.
pub fn patch_of(set: &Value) -> Value {
    let mut template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    if let Some(t) = template.as_object_mut() {
        t.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// `revision` number of a ControllerRevision.
pub fn number_of(rev: &Value) -> i64 {
    rev.get("revision").and_then(Value::as_i64).unwrap_or(0)
}

/// `SortControllerRevisions`: by revision number, then creation time, then name.
pub fn sort(revisions: &mut [Arc<Value>]) {
    let key = |r: &Value| {
        (
            number_of(r),
            r.pointer("/metadata/creationTimestamp")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            name_of(r).to_string(),
        )
    };
    revisions.sort_by_key(|a| key(a));
}

/// The next revision number after the (sorted) `revisions`.
pub fn next_number(revisions: &[Arc<Value>]) -> i64 {
    revisions.last().map(|r| number_of(r) + 1).unwrap_or(1)
}

/// `newRevision`: the revision of the set as it is now (not yet stored).
pub fn new_revision(set: &Value, number: i64, collision_count: i64) -> Value {
    let data = patch_of(set);
    let hash = compute_hash(&data, Some(collision_count as i32));
    let mut labels: Map<String, Value> = set
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), json!(hash));
    let mut meta = json!({
        "name": format!("{}-{hash}", truncate(name_of(set), 223)),
        "namespace": namespace_of(set),
        "labels": labels,
        "ownerReferences": [controller_ref(set)],
    });
    if let Some(a) = set
        .pointer("/metadata/annotations")
        .filter(|a| a.as_object().is_some_and(|o| !o.is_empty()))
    {
        meta["annotations"] = a.clone();
    }
    json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
        "data": data, "revision": number})
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `EqualRevision`: same recorded data.
pub fn equal(a: &Value, b: &Value) -> bool {
    a.get("data") == b.get("data")
}

/// What `getStatefulSetRevisions` decides about the update revision.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateRevision {
    /// The newest stored revision already records the set.
    Latest(Arc<Value>),
    /// An older revision records it: roll back by giving it the next number.
    Renumber(Arc<Value>, i64),
    /// No revision records it: create this one.
    Create(Value),
}

/// Decides the update revision among the sorted `revisions` for the set as it is now.
pub fn update_revision(
    set: &Value,
    revisions: &[Arc<Value>],
    collision_count: i64,
) -> UpdateRevision {
    let candidate = new_revision(set, next_number(revisions), collision_count);
    let equal_revs: Vec<&Arc<Value>> = revisions.iter().filter(|r| equal(r, &candidate)).collect();
    match (equal_revs.last(), revisions.last()) {
        (Some(eq), Some(last)) if name_of(eq) == name_of(last) => {
            UpdateRevision::Latest((*eq).clone())
        }
        (Some(eq), _) => UpdateRevision::Renumber((*eq).clone(), number_of(&candidate)),
        (None, _) => UpdateRevision::Create(candidate),
    }
}

/// The revision named by `status.currentRevision`, if stored.
pub fn find<'a>(revisions: &'a [Arc<Value>], name: &str) -> Option<&'a Arc<Value>> {
    revisions.iter().find(|r| name_of(r) == name)
}

/// `ApplyRevision`: the set with the revision's pod template.
pub fn apply(set: &Value, revision: &Value) -> Value {
    let mut out = set.clone();
    if let Some(mut t) = revision.pointer("/data/spec/template").cloned() {
        if let Some(o) = t.as_object_mut() {
            o.remove("$patch");
        }
        if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
            spec.insert("template".into(), t);
        }
    }
    out
}

/// `truncateHistory`: the non-live revisions beyond `limit`, oldest first. Live = current,
/// update, and any revision a pod still runs.
pub fn to_delete<'a>(
    revisions: &'a [Arc<Value>],
    live: &[&str],
    limit: i64,
) -> Vec<&'a Arc<Value>> {
    let history: Vec<&Arc<Value>> = revisions
        .iter()
        .filter(|r| !live.contains(&name_of(r)))
        .collect();
    let limit = usize::try_from(limit.max(0)).unwrap_or(0);
    let excess = history.len().saturating_sub(limit);
    history.into_iter().take(excess).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "s1", "annotations": {"a": "b"}},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    fn stored(v: Value) -> Arc<Value> {
        Arc::new(v)
    }

    #[test]
    fn revision_shape_and_determinism() {
        let r = new_revision(&set("a"), 1, 0);
        let hash = r["metadata"]["labels"][HASH_LABEL]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(r["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(r["metadata"]["labels"]["app"], "web");
        assert_eq!(r["metadata"]["annotations"]["a"], "b");
        assert_eq!(r["data"]["spec"]["template"]["$patch"], "replace");
        assert_eq!(r["revision"], 1);
        assert_eq!(
            new_revision(&set("a"), 1, 0)["metadata"]["name"],
            r["metadata"]["name"]
        );
        assert_ne!(
            new_revision(&set("a"), 1, 1)["metadata"]["name"],
            r["metadata"]["name"]
        );
        assert_ne!(
            new_revision(&set("b"), 1, 0)["metadata"]["name"],
            r["metadata"]["name"]
        );
        let applied = apply(&set("zzz"), &r);
        assert_eq!(applied["spec"]["template"], set("a")["spec"]["template"]);
    }

    #[test]
    fn update_revision_reuses_creates_and_rolls_back() {
        assert!(matches!(
            update_revision(&set("a"), &[], 0),
            UpdateRevision::Create(_)
        ));
        let ra = stored(new_revision(&set("a"), 1, 0));
        let rb = stored(new_revision(&set("b"), 2, 0));
        let revs = vec![ra.clone(), rb.clone()];
        assert_eq!(
            update_revision(&set("b"), &revs, 0),
            UpdateRevision::Latest(rb.clone())
        );
        assert_eq!(
            update_revision(&set("a"), &revs, 0),
            UpdateRevision::Renumber(ra.clone(), 3)
        );
        match update_revision(&set("c"), &revs, 0) {
            UpdateRevision::Create(c) => assert_eq!(c["revision"], 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn history_keeps_live_and_limit() {
        let revs: Vec<Arc<Value>> = (1..=5)
            .map(|i| stored(new_revision(&set(&format!("i{i}")), i, 0)))
            .collect();
        let mut sorted = revs.clone();
        sorted.reverse();
        sort(&mut sorted);
        assert_eq!(number_of(&sorted[0]), 1);
        let live = [name_of(&revs[4]), name_of(&revs[0])];
        let gone: Vec<i64> = to_delete(&revs, &live, 2)
            .iter()
            .map(|r| number_of(r))
            .collect();
        assert_eq!(gone, vec![2]);
        assert!(to_delete(&revs, &live, 10).is_empty());
    }
}
