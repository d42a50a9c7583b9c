//! `spec.podFailurePolicy`: how a failed pod is judged (upstream's pod_failure_policy.go). The
//! first rule matching the pod's exit codes (non-zero, of any container or a named one) or its
//! conditions (e.g. `DisruptionTarget`) decides: `FailJob` fails the Job at once, `Ignore` does
//! not count the failure against `backoffLimit`, `Count` counts it, `FailIndex` fails its index.

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use serde_json::Value;

/// The outcome of matching a failed pod against the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Set when a `FailJob` rule matched: the Job's failure message.
    pub fail_job: Option<String>,
    /// Whether the failure counts towards `backoffLimit` (false for `Ignore`).
    pub count: bool,
    /// The action of the matching rule.
    pub action: Option<String>,
}

impl Verdict {
    fn counted() -> Verdict {
        Verdict {
            fail_job: None,
            count: true,
            action: None,
        }
    }
}

/// Upstream's `matchPodFailurePolicy`.
pub fn match_pod_failure_policy(policy: Option<&PodFailurePolicy>, pod: &Value) -> Verdict {
    let Some(policy) = policy else {
        return Verdict::counted();
    };
    let ns = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    for (index, rule) in policy.rules.iter().enumerate() {
        let what = if let Some(req) = &rule.on_exit_codes {
            match_on_exit_codes(pod, req).map(|(container, code)| {
                format!(
                    "Container {container} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {index}",
                    rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            match_on_pod_conditions(pod, patterns).map(|cond| {
                format!(
                    "Pod {ns}/{name} has condition {cond} matching {} rule at index {index}",
                    rule.action
                )
            })
        } else {
            None
        };
        let Some(message) = what else {
            continue;
        };
        let action = Some(rule.action.clone());
        match rule.action.as_str() {
            "Ignore" => {
                return Verdict {
                    fail_job: None,
                    count: false,
                    action,
                }
            }
            "FailIndex" | "Count" => {
                return Verdict {
                    fail_job: None,
                    count: true,
                    action,
                }
            }
            "FailJob" => {
                return Verdict {
                    fail_job: Some(message),
                    count: true,
                    action,
                }
            }
            _ => {}
        }
    }
    Verdict::counted()
}

/// The first terminated container (app containers, then init containers) with a non-zero exit
/// code the requirement matches: (name, exit code).
fn match_on_exit_codes(
    pod: &Value,
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(String, i64)> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .find_map(|list| {
            pod.pointer(&format!("/status/{list}"))
                .and_then(Value::as_array)?
                .iter()
                .find_map(|cs| {
                    let code = cs.pointer("/state/terminated/exitCode")?.as_i64()?;
                    let name = cs.get("name").and_then(Value::as_str).unwrap_or("");
                    let named = req.container_name.as_deref().is_none_or(|n| n == name);
                    (named && code != 0 && operator_matches(code, req))
                        .then(|| (name.to_string(), code))
                })
        })
}

fn operator_matches(code: i64, req: &PodFailurePolicyOnExitCodesRequirement) -> bool {
    let listed = req.values.iter().any(|v| i64::from(*v) == code);
    match req.operator.as_str() {
        "In" => listed,
        "NotIn" => !listed,
        _ => false,
    }
}

/// The type of the first pod condition matching a pattern (type and status).
fn match_on_pod_conditions(
    pod: &Value,
    patterns: &[k8s_openapi::api::batch::v1::PodFailurePolicyOnPodConditionsPattern],
) -> Option<String> {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|c| {
            let kind = c.get("type").and_then(Value::as_str)?;
            let status = c.get("status").and_then(Value::as_str)?;
            patterns
                .iter()
                .any(|p| p.type_ == kind && p.status == status)
                .then(|| kind.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> PodFailurePolicy {
        serde_json::from_value(v).expect("policy")
    }

    fn failed_pod(code: i64) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Failed",
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}})
    }

    #[test]
    fn exit_code_rules() {
        let p = policy(json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1]}}]}));
        let v = match_pod_failure_policy(Some(&p), &failed_pod(42));
        assert_eq!(
            v.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0")
        );
        assert!(v.count);
        let v = match_pod_failure_policy(Some(&p), &failed_pod(3));
        assert!(!v.count && v.fail_job.is_none());
        assert_eq!(v.action.as_deref(), Some("Ignore"));
        let v = match_pod_failure_policy(Some(&p), &failed_pod(7));
        assert_eq!(v.action.as_deref(), Some("Count"));
        let v = match_pod_failure_policy(Some(&p), &failed_pod(1));
        assert_eq!(v, Verdict::counted());
        assert_eq!(
            match_pod_failure_policy(None, &failed_pod(42)),
            Verdict::counted()
        );
    }

    #[test]
    fn condition_rules() {
        let p = policy(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}));
        let mut pod = failed_pod(137);
        pod["status"]["conditions"] = json!([{"type": "DisruptionTarget", "status": "True"}]);
        let v = match_pod_failure_policy(Some(&p), &pod);
        assert!(!v.count);
        assert_eq!(v.action.as_deref(), Some("Ignore"));
        assert!(match_pod_failure_policy(Some(&p), &failed_pod(137)).count);
    }
}
