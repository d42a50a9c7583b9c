//! The `pod-template-hash` of a Deployment's pod template and template equality ignoring it.
//!
//! Kubernetes' `controller.ComputeHash` feeds FNV-32a with the template, then (when the
//! Deployment has a `collisionCount`) 8 bytes holding the count little-endian, and renders the
//! 32-bit sum's decimal digits with `SafeEncodeString` (`0`-`9` become `4 5 6 7 8 9 b c d f`),
//! e.g. `web-5d8f6c7b9`. Kubernetes feeds the hash go-spew's dump of the template's Go struct,
//! which depends on Go's type layout (and changes whenever Kubernetes adds a field); here it is
//! the template's canonical JSON (keys sorted, empty values dropped). Names thus have
//! Kubernetes' shape and stability, not the very digits a real cluster would pick for the same
//! template; nothing depends on the digits, as the controller finds its new ReplicaSet by
//! comparing templates ([`equal_ignore_hash`]).

use crate::controllers::hash::{fnv32a, safe_encode};
use serde_json::{Map, Value};

/// The label (and selector key) that tells a Deployment's ReplicaSets apart.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The hash naming the ReplicaSet of `template` (a PodTemplateSpec as JSON).
pub fn compute_hash(template: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = canonical_bytes(&normalize(template));
    if let Some(c) = collision_count {
        let mut count = [0u8; 8];
        count[..4].copy_from_slice(&(c as u32).to_le_bytes());
        bytes.extend_from_slice(&count);
    }
    safe_encode(fnv32a(&bytes))
}

/// Templates equal apart from the `pod-template-hash` label (Kubernetes' `EqualIgnoreHash`,
/// whose semantic equality treats empty and absent lists and maps alike).
pub fn equal_ignore_hash(a: &Value, b: &Value) -> bool {
    normalize(&without_hash_label(a)) == normalize(&without_hash_label(b))
}

/// A template without the `pod-template-hash` label.
pub fn without_hash_label(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
    }
    t
}

/// Drops nulls and empty lists and objects, recursively: how a template looks after any
/// client's Go round trip (`omitempty`), so both forms compare and hash alike.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let x = normalize(x);
                if !is_empty(&x) {
                    out.insert(k.clone(), x);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// JSON with every object's keys in sorted order.
fn canonical_bytes(v: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    if let Some(x) = m.get(k) {
                        out.insert(k.clone(), sorted(x));
                    }
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "3600"]}]}})
    }

    #[test]
    fn shape_and_stability() {
        let h = compute_hash(&template(), None);
        assert!((1..=10).contains(&h.len()), "{h}");
        assert!(h
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
        // Key order, empty values and a Go client's `creationTimestamp: null` do not matter.
        let reordered = json!({"spec": {"containers": [{"args": ["sleep", "3600"], "image": "busybox",
            "name": "c", "resources": {}, "env": []}]},
            "metadata": {"creationTimestamp": null, "labels": {"app": "web"}}});
        assert_eq!(h, compute_hash(&reordered, None));
        assert!(equal_ignore_hash(&template(), &reordered));
        // Content and the collision count do.
        let mut other = template();
        other["spec"]["containers"][0]["image"] = json!("busybox:2");
        assert_ne!(h, compute_hash(&other, None));
        assert_ne!(h, compute_hash(&template(), Some(0)));
        assert_ne!(
            compute_hash(&template(), Some(0)),
            compute_hash(&template(), Some(1))
        );
    }

    #[test]
    fn collision_count_is_eight_little_endian_bytes() {
        let mut bytes = canonical_bytes(&normalize(&template()));
        bytes.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            compute_hash(&template(), Some(7)),
            safe_encode(fnv32a(&bytes))
        );
    }

    #[test]
    fn safe_encode_matches_kubernetes() {
        // SafeEncodeString maps each digit byte b to alphabet[b % 27]: '0'..'9' become
        // 4 5 6 7 8 9 b c d f, hence names like `web-5d8f6c7b9`.
        assert_eq!(safe_encode(1_234_567_890), "56789bcdf4");
        assert_eq!(safe_encode(0), "4");
    }

    #[test]
    fn hash_label_is_ignored() {
        let mut labelled = template();
        labelled["metadata"]["labels"][POD_TEMPLATE_HASH] = json!("abc");
        assert!(equal_ignore_hash(&template(), &labelled));
        let mut changed = labelled.clone();
        changed["metadata"]["labels"]["app"] = json!("db");
        assert!(!equal_ignore_hash(&template(), &changed));
    }
}
