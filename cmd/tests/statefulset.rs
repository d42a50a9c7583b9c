//! End-to-end: StatefulSets (ordered scale up and down, stable names, claims whose data
//! survives pod replacement, rolling updates with a partition, OnDelete) and persistent
//! volumes from the local-path provisioner (default class, binding on first consumer,
//! protection finalizers, reclaim), on a real node agent and driven by the real kubectl.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

fn get(c: &Cluster, args: &[&str]) -> Option<Value> {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let out = c.kubectl(&full);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

fn name(o: &Value) -> String {
    o["metadata"]["name"].as_str().unwrap_or("").to_string()
}

fn is_ready(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn terminating(p: &Value) -> bool {
    !p["metadata"]["deletionTimestamp"].is_null()
}

/// Pods of the set by name, from one LIST (a consistent snapshot).
fn pods(c: &Cluster, selector: &str) -> BTreeMap<String, Value> {
    get(c, &["pods", "-l", selector])
        .map(|l| items(&l).into_iter().map(|p| (name(&p), p)).collect())
        .unwrap_or_default()
}

fn exec_cat(c: &Cluster, pod: &str, file: &str) -> String {
    c.ok(&["exec", pod, "--", "cat", file])
}

fn event_messages(c: &Cluster, reason: &str) -> Vec<String> {
    let mut evs = get(c, &["events"]).map(|l| items(&l)).unwrap_or_default();
    evs.sort_by_key(|e| {
        (
            e["firstTimestamp"].as_str().unwrap_or("").to_string(),
            e["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse::<u64>().ok())
                .unwrap_or(0),
        )
    });
    evs.iter()
        .filter(|e| e["reason"] == reason)
        .filter_map(|e| e["message"].as_str().map(str::to_string))
        .collect()
}

fn storage_dir(c: &Cluster, pvc: &Value) -> PathBuf {
    let uid = pvc["metadata"]["uid"].as_str().unwrap_or("");
    c.data_dir().join("storage").join(format!(
        "pvc-{uid}_{}_{}",
        pvc["metadata"]["namespace"].as_str().unwrap_or(""),
        name(pvc)
    ))
}

const WEB: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: web
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "hostname >> /data/boots; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        readinessProbe:
          exec: {command: ["test", "-s", "/data/boots"]}
          periodSeconds: 1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 64Mi}}
"#;

#[test]
fn statefulset_scales_in_order_and_its_claims_keep_their_data() {
    let c = Cluster::start_with_agent(&[]);
    let sc = get(&c, &["storageclass", "local-path"]).expect("default storage class");
    assert_eq!(sc["provisioner"], "rancher.io/local-path");
    assert_eq!(sc["volumeBindingMode"], "WaitForFirstConsumer");
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(
        sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"],
        "true"
    );
    c.ok_stdin(&["apply", "-f", "-"], WEB);
    let sts = poll("status of the empty set", WAIT, || {
        get(&c, &["sts", "web"]).filter(|s| s["status"]["observedGeneration"] == 1)
    });
    assert_eq!(sts["status"]["replicas"], 0);
    assert!(pods(&c, "app=web").is_empty());

    // 0 → 3: each pod appears only once its predecessor is Running and Ready.
    c.ok(&["scale", "sts", "web", "--replicas=3"]);
    poll("web-0..2 ready, in order", WAIT, || {
        let snap = pods(&c, "app=web");
        for i in 1..3 {
            if snap.contains_key(&format!("web-{i}")) {
                let prev = snap.get(&format!("web-{}", i - 1));
                assert!(
                    prev.is_some_and(is_ready),
                    "web-{i} exists while web-{} is not ready: {snap:?}",
                    i - 1
                );
            }
        }
        (snap.len() == 3 && snap.values().all(is_ready)).then_some(())
    });
    let snap = pods(&c, "app=web");
    let created: Vec<String> = (0..3)
        .map(|i| {
            snap[&format!("web-{i}")]["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    for i in 0..3 {
        let p = &snap[&format!("web-{i}")];
        let labels = &p["metadata"]["labels"];
        assert_eq!(
            labels["statefulset.kubernetes.io/pod-name"],
            format!("web-{i}")
        );
        assert_eq!(labels["apps.kubernetes.io/pod-index"], i.to_string());
        assert!(labels["controller-revision-hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("web-")));
        assert_eq!(p["spec"]["hostname"], format!("web-{i}"));
        assert_eq!(p["spec"]["subdomain"], "web");
        assert_eq!(
            exec_cat(&c, &format!("web-{i}"), "/data/boots"),
            format!("web-{i}\n")
        );
    }
    let creates = event_messages(&c, "SuccessfulCreate");
    let pod_creates: Vec<&String> = creates
        .iter()
        .filter(|m| m.contains(" Pod web-") && m.starts_with("create Pod"))
        .collect();
    assert_eq!(
        pod_creates,
        vec![
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
            "create Pod web-2 in StatefulSet web successful"
        ],
        "{creates:?}"
    );
    assert!(
        creates
            .contains(&"create Claim data-web-0 Pod web-0 in StatefulSet web success".to_string()),
        "{creates:?}"
    );

    // Claims and volumes: bound, labelled with the selector, on this node's storage.
    let claims = get(&c, &["pvc"]).map(|l| items(&l)).unwrap_or_default();
    assert_eq!(claims.len(), 3, "{claims:?}");
    for pvc in &claims {
        assert_eq!(pvc["status"]["phase"], "Bound", "{pvc}");
        assert_eq!(pvc["spec"]["storageClassName"], "local-path");
        assert_eq!(pvc["metadata"]["labels"]["app"], "web");
        assert_eq!(
            pvc["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
            "yes"
        );
        assert_eq!(
            pvc["metadata"]["finalizers"][0],
            "kubernetes.io/pvc-protection"
        );
        let pv_name = pvc["spec"]["volumeName"].as_str().unwrap_or("").to_string();
        assert_eq!(
            pv_name,
            format!("pvc-{}", pvc["metadata"]["uid"].as_str().unwrap_or(""))
        );
        let pv = get(&c, &["pv", &pv_name]).expect("pv");
        assert_eq!(pv["status"]["phase"], "Bound");
        assert_eq!(pv["spec"]["claimRef"]["name"], name(pvc));
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
        assert_eq!(
            pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
            "rancher.io/local-path"
        );
        let dir = storage_dir(&c, pvc);
        assert_eq!(pv["spec"]["hostPath"]["path"], dir.display().to_string());
        let node = format!("node-{}", c.port);
        assert_eq!(
            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
                ["values"][0],
            node.as_str()
        );
        let ordinal = name(pvc).trim_start_matches("data-web-").to_string();
        assert_eq!(
            std::fs::read_to_string(dir.join("boots")).expect("data on disk"),
            format!("web-{ordinal}\n")
        );
    }

    // web-1 deleted: it comes back under the same name with the same data.
    let old_uid = snap["web-1"]["metadata"]["uid"].clone();
    c.ok(&["delete", "pod", "web-1", "--wait=false"]);
    poll("web-1 replaced and ready", WAIT, || {
        pods(&c, "app=web")
            .get("web-1")
            .filter(|p| p["metadata"]["uid"] != old_uid && is_ready(p))
            .map(|_| ())
    });
    assert_eq!(
        exec_cat(&c, "web-1", "/data/boots"),
        "web-1\nweb-1\n",
        "{:#}",
        pods(&c, "app=web")["web-1"]["status"]
    );

    // 3 → 1: web-2 goes first, web-1 only after web-2 is gone.
    c.ok(&["scale", "sts", "web", "--replicas=1"]);
    poll("scaled down to web-0", WAIT, || {
        let snap = pods(&c, "app=web");
        let web1_leaving = snap.get("web-1").is_none_or(terminating);
        if web1_leaving {
            assert!(
                !snap.contains_key("web-2"),
                "web-1 terminating while web-2 exists: {snap:?}"
            );
        }
        (snap.len() == 1 && snap.contains_key("web-0")).then_some(())
    });
    let deletes = event_messages(&c, "SuccessfulDelete");
    let order: Vec<&String> = deletes
        .iter()
        .filter(|m| m.contains("StatefulSet web"))
        .collect();
    assert_eq!(
        order,
        vec![
            "delete Pod web-2 in StatefulSet web successful",
            "delete Pod web-1 in StatefulSet web successful"
        ],
        "{deletes:?}"
    );
    // Claims are kept on scale-down (retention policy Retain).
    let claims = get(&c, &["pvc"]).map(|l| items(&l)).unwrap_or_default();
    assert_eq!(claims.len(), 3);
    assert!(
        claims.iter().all(|p| p["status"]["phase"] == "Bound"),
        "{claims:?}"
    );
    let status = poll("status after scale-down", WAIT, || {
        get(&c, &["sts", "web"])
            .filter(|s| s["status"]["replicas"] == 1 && s["status"]["readyReplicas"] == 1)
    });
    assert_eq!(
        status["status"]["currentRevision"],
        status["status"]["updateRevision"]
    );
    let out = c.ok(&["rollout", "status", "sts/web", "--timeout=60s"]);
    assert!(out.contains("roll out complete"), "{out}");

    // Back to 2: web-1 returns with its old claim and data.
    c.ok(&["scale", "sts", "web", "--replicas=2"]);
    poll("web-1 back", WAIT, || {
        pods(&c, "app=web")
            .get("web-1")
            .filter(|p| is_ready(p))
            .map(|_| ())
    });
    assert_eq!(
        exec_cat(&c, "web-1", "/data/boots"),
        "web-1\nweb-1\nweb-1\n"
    );
    let table = c.ok(&["get", "sts", "web"]);
    assert!(table.contains("2/2"), "{table}");
}

const ROLL: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: roll}
spec:
  serviceName: roll
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: roll}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: 2}
  template:
    metadata: {labels: {app: roll}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
        env: [{name: VERSION, value: "1"}]
"#;

fn revisions(c: &Cluster) -> BTreeMap<String, String> {
    pods(c, "app=roll")
        .into_iter()
        .filter(|(_, p)| !terminating(p))
        .map(|(n, p)| {
            (
                n,
                p["metadata"]["labels"]["controller-revision-hash"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn statefulset_rolling_update_with_partition_then_on_delete() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(&["apply", "-f", "-"], ROLL);
    let first = poll("three ready pods", WAIT, || {
        let s = get(&c, &["sts", "roll"])?;
        (s["status"]["readyReplicas"] == 3).then_some(s)
    });
    let rev1 = first["status"]["updateRevision"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_eq!(first["status"]["currentRevision"], rev1.as_str());
    let out = c.ok(&["rollout", "status", "sts/roll", "--timeout=60s"]);
    assert!(out.contains("partitioned roll out complete"), "{out}");

    // A new template with partition 2: only roll-2 moves to the new revision.
    c.ok(&["set", "env", "sts/roll", "VERSION=2"]);
    let s = poll("roll-2 updated", WAIT, || {
        let s = get(&c, &["sts", "roll"])?;
        (s["status"]["observedGeneration"] == 2
            && s["status"]["updatedReplicas"] == 1
            && s["status"]["readyReplicas"] == 3)
            .then_some(s)
    });
    let rev2 = s["status"]["updateRevision"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert_ne!(rev1, rev2);
    assert_eq!(s["status"]["currentRevision"], rev1.as_str());
    let revs = revisions(&c);
    assert_eq!(revs["roll-0"], rev1);
    assert_eq!(revs["roll-1"], rev1);
    assert_eq!(revs["roll-2"], rev2);
    let out = c.ok(&["rollout", "status", "sts/roll", "--timeout=60s"]);
    assert!(
        out.contains("partitioned roll out complete: 1 new pods have been updated"),
        "{out}"
    );
    let crs = get(&c, &["controllerrevisions"])
        .map(|l| items(&l))
        .unwrap_or_default();
    let mut cr_names: Vec<String> = crs.iter().map(name).collect();
    cr_names.sort();
    let mut want = vec![rev1.clone(), rev2.clone()];
    want.sort();
    assert_eq!(cr_names, want);

    // Partition 0: roll-1, then roll-0, each after the one above is healthy again.
    c.ok(&[
        "patch",
        "sts",
        "roll",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ]);
    poll("all at the new revision", WAIT, || {
        let snap = pods(&c, "app=roll");
        let rev = |n: &str| {
            snap.get(n)
                .filter(|p| !terminating(p))
                .and_then(|p| p["metadata"]["labels"]["controller-revision-hash"].as_str())
                .map(str::to_string)
        };
        if rev("roll-0").as_deref() != Some(rev1.as_str()) {
            assert_eq!(
                rev("roll-1").as_deref(),
                Some(rev2.as_str()),
                "roll-0 replaced before roll-1: {snap:?}"
            );
        }
        let s = get(&c, &["sts", "roll"])?;
        (s["status"]["currentRevision"] == rev2.as_str()
            && s["status"]["updatedReplicas"] == 3
            && s["status"]["readyReplicas"] == 3)
            .then_some(())
    });
    let out = c.ok(&["rollout", "status", "sts/roll", "--timeout=60s"]);
    assert!(out.contains("3 new pods have been updated"), "{out}");

    // OnDelete: a new template replaces nothing until a pod is deleted.
    c.ok(&[
        "patch",
        "sts",
        "roll",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"OnDelete","rollingUpdate":null}}}"#,
    ]);
    c.ok(&["set", "env", "sts/roll", "VERSION=3"]);
    let s = poll("revision 3 observed", WAIT, || {
        let s = get(&c, &["sts", "roll"])?;
        (s["status"]["observedGeneration"] == 5).then_some(s)
    });
    let rev3 = s["status"]["updateRevision"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(rev3 != rev2 && rev3 != rev1);
    assert_eq!(s["status"]["updatedReplicas"], 0);
    assert!(revisions(&c).values().all(|r| *r == rev2));
    let old = pods(&c, "app=roll")["roll-1"]["metadata"]["uid"].clone();
    c.ok(&["delete", "pod", "roll-1", "--wait=false"]);
    poll("roll-1 recreated at revision 3", WAIT, || {
        pods(&c, "app=roll")
            .get("roll-1")
            .filter(|p| {
                p["metadata"]["uid"] != old
                    && p["metadata"]["labels"]["controller-revision-hash"] == rev3.as_str()
                    && is_ready(p)
            })
            .map(|_| ())
    });
    let revs = revisions(&c);
    assert_eq!(revs["roll-0"], rev2);
    assert_eq!(revs["roll-2"], rev2);
    let err = c.fails(&["rollout", "status", "sts/roll", "--timeout=5s"], None);
    assert!(
        err.contains("only available for RollingUpdate strategy type"),
        "{err}"
    );
}

#[test]
fn claims_bind_on_first_consumer_and_are_reclaimed() {
    let c = Cluster::start_with_agent(&[]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: notes}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Mi}}
"#,
    );
    let pvc = get(&c, &["pvc", "notes"]).expect("pvc");
    assert_eq!(
        pvc["spec"]["storageClassName"], "local-path",
        "defaulted class"
    );
    assert_eq!(
        pvc["metadata"]["finalizers"][0],
        "kubernetes.io/pvc-protection"
    );
    poll("WaitForFirstConsumer event", WAIT, || {
        event_messages(&c, "WaitForFirstConsumer")
            .iter()
            .any(|m| m == "waiting for first consumer to be created before binding")
            .then_some(())
    });
    assert_eq!(
        get(&c, &["pvc", "notes"]).expect("pvc")["status"]["phase"],
        "Pending"
    );

    c.ok_stdin(&["apply", "-f", "-"], r#"
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "echo kept > /notes/file; trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    volumeMounts: [{name: notes, mountPath: /notes}]
  volumes: [{name: notes, persistentVolumeClaim: {claimName: notes}}]
"#);
    let pvc = poll("claim bound", WAIT, || {
        get(&c, &["pvc", "notes"]).filter(|p| p["status"]["phase"] == "Bound")
    });
    assert_eq!(pvc["status"]["capacity"]["storage"], "10Mi");
    assert_eq!(pvc["status"]["accessModes"][0], "ReadWriteOnce");
    assert_eq!(
        pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
        format!("node-{}", c.port)
    );
    assert_eq!(
        pvc["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"],
        "rancher.io/local-path"
    );
    let pv_name = pvc["spec"]["volumeName"].as_str().unwrap_or("").to_string();
    let dir = storage_dir(&c, &pvc);
    poll("writer ran", WAIT, || {
        std::fs::read_to_string(dir.join("file"))
            .ok()
            .filter(|s| s == "kept\n")
    });
    let provisioned = event_messages(&c, "ProvisioningSucceeded");
    assert!(
        provisioned.contains(&format!("Successfully provisioned volume {pv_name}")),
        "{provisioned:?}"
    );
    let pv = get(&c, &["pv", &pv_name]).expect("pv");
    assert_eq!(
        pv["metadata"]["finalizers"][0],
        "kubernetes.io/pv-protection"
    );

    // In use: deleting the claim leaves it Terminating until the pod is gone.
    c.ok(&["delete", "pvc", "notes", "--wait=false"]);
    let pvc = get(&c, &["pvc", "notes"]).expect("still there");
    assert!(terminating(&pvc));
    assert!(dir.exists());
    c.ok(&["delete", "pod", "writer"]);
    poll("claim, volume and directory gone", WAIT, || {
        let gone = get(&c, &["pvc", "notes"]).is_none() && get(&c, &["pv", &pv_name]).is_none();
        (gone && !dir.exists()).then_some(())
    });

    // A pre-created volume of a class without a provisioner binds at once and is kept.
    let host = c.data_dir().join("manual-volume");
    std::fs::create_dir_all(&host).expect("mkdir");
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: PersistentVolume
metadata: {{name: manual-pv}}
spec:
  storageClassName: manual
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  hostPath: {{path: "{}"}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: manual}}
spec:
  storageClassName: manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 100Mi}}}}
"#,
            host.display()
        ),
    );
    let pvc = poll("static binding", WAIT, || {
        get(&c, &["pvc", "manual"]).filter(|p| p["status"]["phase"] == "Bound")
    });
    assert_eq!(pvc["spec"]["volumeName"], "manual-pv");
    assert_eq!(pvc["status"]["capacity"]["storage"], "1Gi");
    assert_eq!(
        pvc["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    let pv = get(&c, &["pv", "manual-pv"]).expect("pv");
    assert_eq!(pv["status"]["phase"], "Bound");
    assert_eq!(pv["spec"]["claimRef"]["uid"], pvc["metadata"]["uid"]);
    c.ok(&["delete", "pvc", "manual"]);
    poll("manual volume released", WAIT, || {
        get(&c, &["pv", "manual-pv"]).filter(|p| p["status"]["phase"] == "Released")
    });
    assert!(host.exists(), "Retain keeps the data");
}
