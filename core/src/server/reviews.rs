//! The create-only review resources: who am I (`SelfSubjectReview`), may I
//! (`SelfSubjectAccessReview`, `SelfSubjectRulesReview`, `SubjectAccessReview`) and token
//! checks (`TokenReview`). The only identity so far is the cluster admin, who may do
//! everything (as `system:masters` in Kubernetes).

use super::auth::User;
use serde_json::{json, Value};

/// Answers a review object `obj` of `kind` for `user`; `valid_token` tells whether a token is
/// one this server issued.
pub fn answer(
    kind: &str,
    mut obj: Value,
    user: &User,
    valid_token: impl Fn(&str) -> Option<User>,
) -> Value {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.insert("creationTimestamp".into(), Value::Null);
    }
    let user_info = |u: &User| json!({"username": u.name, "uid": u.uid, "groups": u.groups});
    match kind {
        "SelfSubjectReview" => obj["status"] = json!({"userInfo": user_info(user)}),
        "SelfSubjectAccessReview" | "SubjectAccessReview" => {
            obj["status"] =
                json!({"allowed": true, "reason": "kubelite: the admin user may do everything"})
        }
        "SelfSubjectRulesReview" => {
            obj["status"] = json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            })
        }
        "TokenReview" => {
            let token = obj
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            obj["status"] = match valid_token(&token) {
                Some(u) => {
                    json!({"authenticated": true, "user": user_info(&u), "audiences": obj.pointer("/spec/audiences").cloned().unwrap_or(json!([]))})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        _ => {}
    }
    obj
}
