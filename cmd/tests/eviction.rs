//! End-to-end: node-pressure eviction with the real node agent and kubectl (root required).
//! The agent's pod directories (`<data-dir>/agent/pods`, the filesystem `nodefs` signals are
//! about) are put on a small tmpfs of the test's own, so the disk pressure is deterministic
//! and nothing else on the machine can cause or relieve it: a BestEffort pod filling an
//! emptyDir crosses `nodefs.available<128Mi` and is evicted while a Guaranteed pod stays; then
//! a file of the test's own keeps the pressure on: the Guaranteed pod goes too, a new pod is
//! rejected at admission, and once the file is gone the condition and taint clear.

mod common;

use common::{json, poll, Cluster};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);
/// Size of the tmpfs holding the pod directories.
const PODS_FS: &str = "256m";

/// A cluster whose pod directories live on a tmpfs; on drop the containers are stopped and
/// the tmpfs unmounted before the cluster's own cleanup removes its data dir.
struct PodsOnTmpfs {
    cluster: Option<Cluster>,
    mount: PathBuf,
}

impl PodsOnTmpfs {
    fn start(extra: &[&str]) -> PodsOnTmpfs {
        let cluster = Cluster::start_with_agent(extra);
        let mount = cluster.data_dir().join("agent/pods");
        std::fs::create_dir_all(&mount).expect("pods dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={PODS_FS}"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs on {}", mount.display());
        PodsOnTmpfs {
            cluster: Some(cluster),
            mount,
        }
    }

    fn c(&self) -> &Cluster {
        self.cluster.as_ref().expect("cluster")
    }
}

impl Drop for PodsOnTmpfs {
    fn drop(&mut self) {
        let Some(mut cluster) = self.cluster.take() else {
            return;
        };
        // The server's own flags name its run dir, bridge and pod CIDR for `kubelite killall`.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", cluster.pid())).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        cluster.kill9();
        let mut killall = vec![
            "killall".to_string(),
            "--data-dir".into(),
            cluster.data_dir().display().to_string(),
        ];
        for flag in ["--run-dir", "--bridge", "--pod-cidr"] {
            if let Some(i) = args.iter().position(|a| a == flag) {
                killall.push(flag.into());
                killall.push(args.get(i + 1).cloned().unwrap_or_default());
            }
        }
        let _ = Command::new(env!("CARGO_BIN_EXE_kubelite"))
            .args(&killall)
            .status();
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        drop(cluster);
    }
}

fn pod_json(c: &Cluster, name: &str) -> Option<Value> {
    let out = c.kubectl(&["get", "pod", name, "-o", "json"]);
    out.status
        .success()
        .then(|| json(&String::from_utf8_lossy(&out.stdout)))
}

fn node_json(c: &Cluster) -> Value {
    let nodes = json(&c.ok(&["get", "nodes", "-o", "json"]));
    nodes["items"][0].clone()
}

fn condition<'a>(obj: &'a Value, kind: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

fn has_taint(node: &Value, key: &str) -> bool {
    node["spec"]["taints"].as_array().is_some_and(|t| {
        t.iter()
            .any(|t| t["key"] == key && t["effect"] == "NoSchedule")
    })
}

#[test]
fn disk_pressure_evicts_the_best_effort_pod_and_then_clears() {
    let g = PodsOnTmpfs::start(&[
        "--eviction-hard",
        "nodefs.available<128Mi",
        "--eviction-pressure-transition-period",
        "15s",
        "--eviction-interval",
        "500ms",
    ]);
    let c = g.c();
    let node = poll("node without disk pressure", WAIT, || {
        let n = node_json(c);
        (condition(&n, "DiskPressure")["status"] == "False").then_some(n)
    });
    assert_eq!(
        condition(&node, "DiskPressure")["reason"],
        "KubeletHasNoDiskPressure"
    );

    // A Guaranteed pod with a little scratch data, running first.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/scratch/f bs=1M count=8 && exec sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
    resources:
      requests: {cpu: 50m, memory: 32Mi}
      limits: {cpu: 50m, memory: 32Mi}
"#,
    );
    poll("steady running", WAIT, || {
        pod_json(c, "steady").filter(|p| p["status"]["phase"] == "Running")
    });

    // A BestEffort pod fills its emptyDir past the threshold.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: fill}
spec:
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: fill
    image: busybox
    command: ["sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=160; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
"#,
    );
    let evicted = poll("fill evicted", WAIT, || {
        pod_json(c, "fill").filter(|p| p["status"]["reason"] == "Evicted")
    });
    let status = &evicted["status"];
    assert_eq!(status["phase"], "Failed", "{evicted}");
    assert_eq!(evicted["status"]["qosClass"], "BestEffort");
    assert!(
        evicted["metadata"]["deletionTimestamp"].is_null(),
        "the evicted pod stays: {evicted}"
    );
    let message = status["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(
            "The node was low on resource: ephemeral-storage. Threshold quantity: 128Mi, available: "
        ),
        "{message}"
    );
    assert!(
        message.contains("Container fill was using ")
            && message.ends_with(", request is 0, has larger consumption of ephemeral-storage. "),
        "{message}"
    );
    let disruption = condition(&evicted, "DisruptionTarget");
    assert_eq!(disruption["status"], "True", "{evicted}");
    assert_eq!(disruption["reason"], "TerminationByKubelet");
    assert_eq!(disruption["message"], message);
    assert_eq!(condition(&evicted, "Ready")["status"], "False");
    let cs = &status["containerStatuses"][0];
    assert!(cs["state"]["terminated"].is_object(), "{evicted}");
    assert_eq!(cs["restartCount"], 0);

    // The node reports the pressure; the node lifecycle controller taints it meanwhile.
    let node = node_json(c);
    let disk = condition(&node, "DiskPressure");
    assert_eq!(disk["status"], "True", "{node}");
    assert_eq!(disk["reason"], "KubeletHasDiskPressure");
    assert_eq!(disk["message"], "kubelet has disk pressure");
    assert_eq!(condition(&node, "MemoryPressure")["status"], "False");
    poll("disk-pressure taint", WAIT, || {
        has_taint(&node_json(c), "node.kubernetes.io/disk-pressure").then_some(())
    });

    // A Warning event with the same message.
    let events = json(&c.ok(&["get", "events", "-o", "json"]));
    let ev = events["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["reason"] == "Evicted" && e["involvedObject"]["name"] == "fill")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(ev["type"], "Warning", "{events}");
    assert_eq!(ev["message"], message);
    assert_eq!(ev["source"]["component"], "kubelet");

    // Its emptyDir and writable layer are gone; its log stays readable.
    let uid = evicted["metadata"]["uid"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let pod_dir = g.mount.join(&uid);
    poll("evicted pod's volumes removed", WAIT, || {
        (!pod_dir.join("volumes").exists()).then_some(())
    });
    c.ok(&["logs", "fill"]);

    // The Guaranteed pod was left alone.
    let steady = pod_json(c, "steady").unwrap_or_default();
    assert_eq!(steady["status"]["phase"], "Running", "{steady}");
    assert_eq!(steady["status"]["containerStatuses"][0]["restartCount"], 0);
    assert!(steady["status"]["reason"].is_null(), "{steady}");

    // Pressure that nothing evictable relieves (a file of the test's own on the tmpfs): the
    // Guaranteed pod goes too, being all that is left.
    let ballast = g.mount.join("ballast");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&ballast).expect("ballast");
        for _ in 0..160 {
            f.write_all(&[0u8; 1 << 20]).expect("write ballast");
        }
    }
    let steady = poll("steady evicted", WAIT, || {
        pod_json(c, "steady").filter(|p| p["status"]["reason"] == "Evicted")
    });
    assert_eq!(steady["status"]["phase"], "Failed", "{steady}");
    assert!(
        steady["status"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The node was low on resource: ephemeral-storage. ")),
        "{steady}"
    );

    // While the node is under disk pressure, a new pod is rejected at admission (bound by
    // hand: the scheduler keeps pods off the tainted node).
    let node_name = node_json(c)["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: late}}
spec:
  nodeName: {node_name}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
"#
        ),
    );
    let late = poll("late rejected", WAIT, || {
        pod_json(c, "late").filter(|p| p["status"]["phase"] == "Failed")
    });
    assert_eq!(late["status"]["reason"], "Evicted", "{late}");
    assert_eq!(
        late["status"]["message"],
        "Pod was rejected: The node had condition: [DiskPressure]. "
    );
    assert!(
        late["status"]["startTime"].is_null(),
        "nothing was started: {late}"
    );

    // The pressure is gone: DiskPressure back to False after the transition period, and the
    // taint with it.
    std::fs::remove_file(&ballast).expect("remove ballast");
    let node = poll("disk pressure cleared", WAIT, || {
        let n = node_json(c);
        (condition(&n, "DiskPressure")["status"] == "False").then_some(n)
    });
    assert_eq!(
        condition(&node, "DiskPressure")["reason"],
        "KubeletHasNoDiskPressure"
    );
    poll("disk-pressure taint removed", WAIT, || {
        (!has_taint(&node_json(c), "node.kubernetes.io/disk-pressure")).then_some(())
    });

    // New pods run again.
    c.ok_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: after}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
"#,
    );
    poll("after running", WAIT, || {
        pod_json(c, "after").filter(|p| p["status"]["phase"] == "Running")
    });

    // The evicted pods were never restarted and keep their status.
    let later = pod_json(c, "fill").unwrap_or_default();
    assert_eq!(later["status"]["phase"], "Failed");
    assert_eq!(later["status"]["reason"], "Evicted");
    assert_eq!(later["status"]["message"], message);
    assert_eq!(later["status"]["containerStatuses"][0]["restartCount"], 0);
    let steady = pod_json(c, "steady").unwrap_or_default();
    assert_eq!(steady["status"]["phase"], "Failed", "{steady}");
    assert_eq!(steady["status"]["containerStatuses"][0]["restartCount"], 0);

    // Deleting an evicted pod cleans up what was left of it.
    c.ok(&["delete", "pod", "fill", "--wait=false"]);
    poll("evicted pod deleted", WAIT, || {
        pod_json(c, "fill").is_none().then_some(())
    });
    poll("evicted pod dir removed", WAIT, || {
        (!pod_dir.exists()).then_some(())
    });
    c.ok(&[
        "delete",
        "pod",
        "steady",
        "late",
        "after",
        "--grace-period=0",
        "--force",
    ]);
    for name in ["steady", "late", "after"] {
        poll(&format!("{name} gone"), WAIT, || {
            pod_json(c, name).is_none().then_some(())
        });
    }
}

/// `memory.available<99%` holds on any machine (its working set is more than 1% of its
/// memory), so the node stays under memory pressure for the whole test.
#[test]
fn memory_pressure_rejects_best_effort_pods_and_evicts_running_ones() {
    let c = Cluster::start_with_agent(&["--eviction-hard", "memory.available<99%"]);
    let node = poll("memory pressure", WAIT, || {
        let n = node_json(&c);
        (condition(&n, "MemoryPressure")["status"] == "True").then_some(n)
    });
    let mem = condition(&node, "MemoryPressure");
    assert_eq!(mem["reason"], "KubeletHasInsufficientMemory");
    assert_eq!(mem["message"], "kubelet has insufficient memory available");
    assert_eq!(condition(&node, "DiskPressure")["status"], "False");
    let node_name = node["metadata"]["name"].as_str().unwrap_or("").to_string();
    // Bound by hand: the scheduler keeps pods off the tainted node.
    let manifest = |name: &str, resources: &str| {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {node_name}
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    resources: {resources}
"#
        )
    };
    // Under memory pressure alone, BestEffort pods are rejected...
    c.ok_stdin(&["apply", "-f", "-"], &manifest("besteffort", "{}"));
    let rejected = poll("besteffort rejected", WAIT, || {
        pod_json(&c, "besteffort").filter(|p| p["status"]["phase"] == "Failed")
    });
    assert_eq!(rejected["status"]["reason"], "Evicted");
    assert_eq!(
        rejected["status"]["message"],
        "Pod was rejected: The node had condition: [MemoryPressure]. "
    );
    // ...others are admitted, and then evicted, the pressure staying.
    c.ok_stdin(
        &["apply", "-f", "-"],
        &manifest(
            "guaranteed",
            "{requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: 50m, memory: 64Mi}}",
        ),
    );
    let evicted = poll("guaranteed evicted", WAIT, || {
        pod_json(&c, "guaranteed").filter(|p| p["status"]["reason"] == "Evicted")
    });
    assert_eq!(evicted["status"]["phase"], "Failed");
    assert!(
        evicted["status"]["startTime"].is_string(),
        "it was admitted: {evicted}"
    );
    let message = evicted["status"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("The node was low on resource: memory. Threshold quantity: "),
        "{message}"
    );
    assert_eq!(
        condition(&evicted, "DisruptionTarget")["reason"],
        "TerminationByKubelet"
    );
    c.ok(&[
        "delete",
        "pod",
        "besteffort",
        "guaranteed",
        "--grace-period=0",
        "--force",
    ]);
}

#[test]
fn eviction_flags_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_kubelite"))
        .args(["server", "--data-dir"])
        .arg(dir.path())
        .args(["--eviction-hard", "memory.free<1Gi"])
        .output()
        .expect("run kubelite");
    assert!(!out.status.success());
    assert!(
        !dir.path().join("db").exists(),
        "rejected before anything starts"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--eviction-hard") && err.contains("unsupported eviction signal memory.free"),
        "{err}"
    );
}
