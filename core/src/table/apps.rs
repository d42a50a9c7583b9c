//! apps/v1 tables: deployments, replicasets, statefulsets, daemonsets and controllerrevisions.

use super::{
    age, at, col, format_label_selector, format_labels, int, layout_containers, list, name, object,
    opt_int, selector_string, string, wide, Col, AGE_COL, CONTAINERS_DESC, IMAGES_DESC, NAME_COL,
};
use jiff::Timestamp;
use serde_json::Value;

/// `spec.replicas`, defaulted to 1 as the apps/v1 defaults do.
fn desired_replicas(o: &Value) -> i64 {
    opt_int(o, &["spec", "replicas"]).unwrap_or(1)
}

/// The pod template's containers.
fn template_containers(o: &Value) -> &[Value] {
    list(o, &["spec", "template", "spec", "containers"])
}

pub(super) const DEPLOYMENT_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Ready", "string", "Number of the pod with ready state"),
    col("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    col("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    AGE_COL,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment."),
];

pub(super) fn deployment_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = layout_containers(template_containers(o));
    let selector =
        selector_string(at(o, &["spec", "selector"])).unwrap_or_else(|()| "<invalid>".into());
    vec![
        name(o).into(),
        format!(
            "{}/{}",
            int(o, &["status", "readyReplicas"]),
            desired_replicas(o)
        )
        .into(),
        int(o, &["status", "updatedReplicas"]).into(),
        int(o, &["status", "availableReplicas"]).into(),
        age(o, now),
        containers,
        images,
        selector.into(),
    ]
}

pub(super) const REPLICASET_COLUMNS: &[Col] = &[
    NAME_COL,
    col(
        "Desired",
        "integer",
        "Replicas is the number of desired pods.",
    ),
    col(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    col(
        "Ready",
        "integer",
        "The number of ready replicas for this replica set.",
    ),
    AGE_COL,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
    ),
];

pub(super) fn replicaset_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = layout_containers(template_containers(o));
    vec![
        name(o).into(),
        desired_replicas(o).into(),
        int(o, &["status", "replicas"]).into(),
        int(o, &["status", "readyReplicas"]).into(),
        age(o, now),
        containers,
        images,
        format_label_selector(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) const STATEFULSET_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE_COL,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
];

pub(super) fn statefulset_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = layout_containers(template_containers(o));
    vec![
        name(o).into(),
        format!(
            "{}/{}",
            int(o, &["status", "readyReplicas"]),
            desired_replicas(o)
        )
        .into(),
        age(o, now),
        containers,
        images,
    ]
}

pub(super) const DAEMONSET_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
    col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
    col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
    col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    AGE_COL,
    wide("Containers", "string", CONTAINERS_DESC),
    wide("Images", "string", IMAGES_DESC),
    wide("Selector", "string", "A label query over pods that are managed by the daemon set."),
];

pub(super) fn daemonset_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = layout_containers(template_containers(o));
    vec![
        name(o).into(),
        int(o, &["status", "desiredNumberScheduled"]).into(),
        int(o, &["status", "currentNumberScheduled"]).into(),
        int(o, &["status", "numberReady"]).into(),
        int(o, &["status", "updatedNumberScheduled"]).into(),
        int(o, &["status", "numberAvailable"]).into(),
        format_labels(object(o, &["spec", "template", "spec", "nodeSelector"])).into(),
        age(o, now),
        containers,
        images,
        format_label_selector(at(o, &["spec", "selector"])).into(),
    ]
}

pub(super) const CONTROLLERREVISION_COLUMNS: &[Col] = &[
    NAME_COL,
    col("Controller", "string", "Controller of the object"),
    col(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    AGE_COL,
];

pub(super) fn controllerrevision_cells(o: &Value, now: Timestamp) -> Vec<Value> {
    let controller = list(o, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| at(r, &["controller"]).and_then(Value::as_bool) == Some(true))
        .map_or_else(
            || "<none>".to_string(),
            |r| {
                let api_version = string(r, &["apiVersion"]);
                let group = match api_version.split_once('/') {
                    Some((g, _)) => g,
                    None => "",
                };
                let kind = string(r, &["kind"]);
                let owner = string(r, &["name"]);
                let group_kind = if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                };
                if group_kind.is_empty() {
                    owner.to_string()
                } else {
                    format!("{}/{owner}", group_kind.to_lowercase())
                }
            },
        );
    vec![
        name(o).into(),
        controller.into(),
        int(o, &["revision"]).into(),
        age(o, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ago, cells, column_names};
    use serde_json::{json, Value};

    fn arr(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    fn template() -> Value {
        json!({"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"},{"name":"sidecar","image":"busybox"}]}})
    }

    #[test]
    fn deployments() {
        let names: Vec<(String, i64)> = column_names("apps", "deployments");
        assert_eq!(
            names,
            [
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1)
            ]
            .iter()
            .map(|(n, p)| (n.to_string(), *p))
            .collect::<Vec<_>>()
        );
        let d = json!({"metadata":{"name":"web","creationTimestamp":ago(400)},
            "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":template()},
            "status":{"replicas":3,"readyReplicas":2,"updatedReplicas":3,"availableReplicas":2}});
        assert_eq!(
            cells("apps", "deployments", d),
            arr(json!([
                "web",
                "2/3",
                3,
                2,
                "6m40s",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                "app=web"
            ]))
        );
        let fresh = json!({"metadata":{"name":"new"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}});
        assert_eq!(
            cells("apps", "deployments", fresh),
            arr(json!(["new", "0/1", 0, 0, "<unknown>", "c", "i", ""]))
        );
        let bad = json!({"metadata":{"name":"b"},"spec":{"replicas":0,"selector":{"matchExpressions":[{"key":"a","operator":"Nope"}]}}});
        assert_eq!(
            cells("apps", "deployments", bad)[1..],
            arr(json!(["0/0", 0, 0, "<unknown>", "", "", "<invalid>"]))
        );
    }

    #[test]
    fn replicasets() {
        let rs = json!({"metadata":{"name":"web-5d","creationTimestamp":ago(7 * 86400 + 3600)},
            "spec":{"replicas":3,"selector":{"matchLabels":{"app":"web","pod-template-hash":"5d"}},"template":template()},
            "status":{"replicas":3,"readyReplicas":3}});
        assert_eq!(
            cells("apps", "replicasets", rs),
            arr(json!([
                "web-5d",
                3,
                3,
                3,
                "7d1h",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                "app=web,pod-template-hash=5d"
            ]))
        );
        let old = json!({"metadata":{"name":"web-old"},"spec":{"replicas":0,"selector":{}},"status":{"replicas":0}});
        assert_eq!(
            cells("apps", "replicasets", old),
            arr(json!(["web-old", 0, 0, 0, "<unknown>", "", "", "<none>"]))
        );
    }

    #[test]
    fn statefulsets() {
        assert_eq!(
            column_names("apps", "statefulsets")
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            ["Name", "Ready", "Age", "Containers", "Images"]
        );
        let s = json!({"metadata":{"name":"db","creationTimestamp":ago(90000)},"spec":{"replicas":2,"template":template()},"status":{"readyReplicas":1}});
        assert_eq!(
            cells("apps", "statefulsets", s),
            arr(json!([
                "db",
                "1/2",
                "25h",
                "nginx,sidecar",
                "nginx:1.27,busybox"
            ]))
        );
    }

    #[test]
    fn daemonsets() {
        let mut t = template();
        t["spec"]["nodeSelector"] = json!({"kubernetes.io/os":"linux"});
        let ds = json!({"metadata":{"name":"kube-proxy","creationTimestamp":ago(3 * 365 * 86400)},
            "spec":{"selector":{"matchLabels":{"k8s-app":"kube-proxy"}},"template":t},
            "status":{"desiredNumberScheduled":3,"currentNumberScheduled":3,"numberReady":2,"updatedNumberScheduled":3,"numberAvailable":2}});
        assert_eq!(
            cells("apps", "daemonsets", ds),
            arr(json!([
                "kube-proxy",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "3y",
                "nginx,sidecar",
                "nginx:1.27,busybox",
                "k8s-app=kube-proxy"
            ]))
        );
        let bare = json!({"metadata":{"name":"x"}});
        assert_eq!(
            cells("apps", "daemonsets", bare),
            arr(json!([
                "x",
                0,
                0,
                0,
                0,
                0,
                "<none>",
                "<unknown>",
                "",
                "",
                "<none>"
            ]))
        );
    }

    #[test]
    fn controllerrevisions() {
        let cr = json!({"metadata":{"name":"web-7c8d","creationTimestamp":ago(59),
            "ownerReferences":[{"apiVersion":"v1","kind":"Pod","name":"other","uid":"1"},
                               {"apiVersion":"apps/v1","kind":"StatefulSet","name":"web","uid":"2","controller":true}]},
            "revision":2});
        assert_eq!(
            cells("apps", "controllerrevisions", cr),
            arr(json!(["web-7c8d", "statefulset.apps/web", 2, "59s"]))
        );
        let core = json!({"metadata":{"name":"x","ownerReferences":[{"apiVersion":"v1","kind":"Thing","name":"t","controller":true}]},"revision":1});
        assert_eq!(cells("apps", "controllerrevisions", core)[1], "thing/t");
        let orphan = json!({"metadata":{"name":"o"},"revision":5});
        assert_eq!(
            cells("apps", "controllerrevisions", orphan),
            arr(json!(["o", "<none>", 5, "<unknown>"]))
        );
    }
}
