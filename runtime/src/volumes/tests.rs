//! End-to-end tests of pod volumes on the real filesystem: every volume type, idempotent and
//! atomic refresh, subPath (including escape attempts), read-only mounts, teardown and orphan
//! cleanup. Tests that mount (tmpfs, subPath binds) need root and are skipped without it; every
//! pod directory is torn down by a guard, so a failing test leaves no mount behind.

use super::*;
use serde_json::{json, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A temporary pods root with one pod directory; tears the pod down on drop.
struct PodDir {
    tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl PodDir {
    fn new() -> PodDir {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pods").join("uid-1");
        std::fs::create_dir_all(&dir).expect("pod dir");
        PodDir { tmp, dir }
    }
    fn outside(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

impl Drop for PodDir {
    fn drop(&mut self) {
        let root = self.tmp.path().join("pods");
        let _ = cleanup_orphans(&root, &HashSet::new());
        if let Ok(c) = self.tmp.path().canonicalize() {
            let _ = mounts::unmount_all_below(&c);
        }
    }
}

fn pod(volumes: Value, containers: Value) -> Value {
    json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1",
                     "labels": {"app": "web", "tier": "a \"b\""},
                     "annotations": {"note": "x\ny"}},
        "spec": {"nodeName": "node-a", "serviceAccountName": "default",
                 "volumes": volumes, "containers": containers},
        "status": {"podIP": "10.0.0.5", "hostIP": "192.0.2.1"}
    })
}

fn sources() -> VolumeSources {
    VolumeSources {
        node_name: "node-a".into(),
        ..Default::default()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn mounted_below(p: &Path) -> Vec<PathBuf> {
    mounts::mounts_below(&p.canonicalize().expect("canonical")).expect("mountinfo")
}

fn setup(pod: &Value, pd: &PodDir, src: &VolumeSources) -> PodVolumes {
    setup_pod_volumes(pod, &pd.dir, src).unwrap_or_else(|e| panic!("setup: {e}"))
}

fn setup_err(pod: &Value, pd: &PodDir, src: &VolumeSources) -> String {
    match setup_pod_volumes(pod, &pd.dir, src) {
        Ok(_) => panic!("setup should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_dir_on_disk_keeps_data_across_setups() {
    let pd = PodDir::new();
    let p = pod(json!([{"name": "scratch", "emptyDir": {}}]), json!([]));
    let vols = setup(&p, &pd, &sources());
    let v = &vols.volumes["scratch"];
    assert_eq!(v.kind, VolumeKind::EmptyDir { memory: false });
    assert!(!v.read_only);
    assert_eq!(
        v.host_path,
        pd.dir.join("volumes/kubernetes.io~empty-dir/scratch")
    );
    assert_eq!(mode(&v.host_path), 0o777);
    std::fs::write(v.host_path.join("data"), "kept").expect("write");
    // A container restart or an agent restart sets the pod up again.
    let again = setup(&p, &pd, &sources());
    assert_eq!(
        read(&again.volumes["scratch"].host_path.join("data")),
        "kept"
    );
    // A volume without any source is an emptyDir too.
    let bare = pod(json!([{"name": "bare"}]), json!([]));
    let vols = setup(&bare, &pd, &sources());
    assert_eq!(
        vols.volumes["bare"].kind,
        VolumeKind::EmptyDir { memory: false }
    );
}

#[test]
fn memory_empty_dir_is_a_sized_tmpfs_that_survives_setups() {
    require_root!();
    let pd = PodDir::new();
    let p = pod(
        json!([{"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
               {"name": "big", "emptyDir": {"medium": "Memory"}}]),
        json!([]),
    );
    let vols = setup(&p, &pd, &sources());
    let v = &vols.volumes["mem"];
    assert_eq!(v.kind, VolumeKind::EmptyDir { memory: true });
    let canonical = v.host_path.canonicalize().expect("canonical");
    let m = mounts::mount_at(&canonical)
        .expect("mountinfo")
        .expect("mounted");
    assert_eq!(m.fstype, "tmpfs");
    assert!(
        m.super_options.contains("size=16384k"),
        "{}",
        m.super_options
    );
    assert_eq!(mode(&v.host_path), 0o1777);
    std::fs::write(v.host_path.join("f"), "in memory").expect("write");

    let again = setup(&p, &pd, &sources());
    assert_eq!(read(&again.volumes["mem"].host_path.join("f")), "in memory");
    let tmpfs_count = mounts::mount_table()
        .expect("mountinfo")
        .iter()
        .filter(|m| m.path == canonical)
        .count();
    assert_eq!(tmpfs_count, 1, "not mounted twice");

    teardown_pod_volumes(&pd.dir).expect("teardown");
    assert!(!pd.dir.exists());
    assert!(mounts::mount_at(&canonical).expect("mountinfo").is_none());
}

#[test]
fn unknown_medium_and_unsupported_types_fail_with_the_volume_name() {
    let pd = PodDir::new();
    let p = pod(
        json!([{"name": "x", "emptyDir": {"medium": "Floppy"}}]),
        json!([]),
    );
    assert_eq!(
        setup_err(&p, &pd, &sources()),
        "MountVolume.SetUp failed for volume \"x\" : unknown storage medium \"Floppy\""
    );
    let p = pod(
        json!([{"name": "data", "nfs": {"server": "s", "path": "/"}}]),
        json!([]),
    );
    assert_eq!(
        setup_err(&p, &pd, &sources()),
        "MountVolume.SetUp failed for volume \"data\" : volume type nfs is not supported yet"
    );
}

#[test]
fn host_path_types_are_checked_like_kubelet() {
    let pd = PodDir::new();
    let base = pd.outside("host");
    std::fs::create_dir_all(&base).expect("mkdir");
    let file = base.join("file");
    std::fs::write(&file, "x").expect("write");
    let hp = |path: &Path, typ: &str| {
        pod(
            json!([{"name": "h", "hostPath": {"path": path.to_str().expect("utf8"), "type": typ}}]),
            json!([]),
        )
    };

    let created = base.join("a/b/c");
    let vols = setup(&hp(&created, "DirectoryOrCreate"), &pd, &sources());
    assert_eq!(vols.volumes["h"].host_path, created);
    assert_eq!(vols.volumes["h"].kind, VolumeKind::HostPath);
    assert!(created.is_dir());
    assert_eq!(mode(&created) & 0o777 & !0o022, 0o755 & !0o022);

    let new_file = base.join("new-file");
    setup(&hp(&new_file, "FileOrCreate"), &pd, &sources());
    assert!(new_file.is_file());
    assert_eq!(read(&new_file), "");

    setup(&hp(&file, "File"), &pd, &sources());
    setup(&hp(&base, "Directory"), &pd, &sources());
    setup(&hp(&base, ""), &pd, &sources());
    setup(&hp(Path::new("/dev/null"), "CharDevice"), &pd, &sources());
    // An unset type does not even need the path to exist.
    setup(&hp(&base.join("nope"), ""), &pd, &sources());

    let f = file.display();
    let b = base.display();
    assert_eq!(
        setup_err(&hp(&file, "Directory"), &pd, &sources()),
        format!("MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: {f} is not a directory, it's a File")
    );
    assert_eq!(
        setup_err(&hp(&base, "Socket"), &pd, &sources()),
        format!("MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: {b} is not a socket file, it's a Directory")
    );
    assert_eq!(
        setup_err(&hp(&base.join("missing"), "File"), &pd, &sources()),
        format!("MountVolume.SetUp failed for volume \"h\" : hostPath {b}/missing doesn't exist")
    );
    assert_eq!(
        setup_err(&hp(&file, "DirectoryOrCreate"), &pd, &sources()),
        format!("MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: {f} is not a directory, it's a File")
    );
    assert!(setup_err(&hp(&file, "Weird"), &pd, &sources())
        .ends_with("Weird is an invalid volume type"));
    let back = pod(
        json!([{"name": "h", "hostPath": {"path": "/tmp/../etc"}}]),
        json!([]),
    );
    assert!(setup_err(&back, &pd, &sources())
        .ends_with("invalid HostPath `/tmp/../etc`: must not contain '..'"));
}

fn cm_source() -> VolumeSources {
    let mut src = sources();
    src.configmaps.insert(
        "cfg".into(),
        json!({"metadata": {"name": "cfg"},
               "data": {"app.conf": "port=80", "other": "o"},
               "binaryData": {"blob": "AP8="}}),
    );
    src
}

#[test]
fn configmap_volume_writes_keys_items_and_modes() {
    let pd = PodDir::new();
    let p = pod(
        json!([{"name": "c", "configMap": {"name": "cfg"}}]),
        json!([]),
    );
    let vols = setup(&p, &pd, &cm_source());
    let v = &vols.volumes["c"];
    assert_eq!(v.kind, VolumeKind::ConfigMap);
    assert!(v.read_only);
    assert_eq!(
        v.host_path,
        pd.dir.join("volumes/kubernetes.io~configmap/c")
    );
    assert_eq!(read(&v.host_path.join("app.conf")), "port=80");
    assert_eq!(
        std::fs::read(v.host_path.join("blob")).expect("blob"),
        vec![0, 255]
    );
    assert_eq!(mode(&v.host_path.join("app.conf")), 0o644);
    assert_eq!(
        std::fs::read_link(v.host_path.join("app.conf")).expect("link"),
        Path::new("..data/app.conf")
    );

    let p = pod(
        json!([{"name": "c", "configMap": {"name": "cfg", "defaultMode": 0o600,
            "items": [{"key": "app.conf", "path": "conf/app.conf", "mode": 0o400},
                      {"key": "other", "path": "o.txt"}]}}]),
        json!([]),
    );
    let pd2 = PodDir::new();
    let vols = setup(&p, &pd2, &cm_source());
    let root = &vols.volumes["c"].host_path;
    assert_eq!(read(&root.join("conf/app.conf")), "port=80");
    assert_eq!(mode(&root.join("conf/app.conf")), 0o400);
    assert_eq!(mode(&root.join("o.txt")), 0o600);
    assert!(
        !root.join("app.conf").exists(),
        "only the items are projected"
    );
    assert!(!root.join("blob").exists());
}

#[test]
fn configmap_missing_objects_and_keys() {
    let pd = PodDir::new();
    let missing = pod(
        json!([{"name": "c", "configMap": {"name": "nope"}}]),
        json!([]),
    );
    let err = setup_pod_volumes(&missing, &pd.dir, &cm_source()).expect_err("not found");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"c\" : configmap \"nope\" not found"
    );
    match &err {
        VolumeError::SetUp { volume, source } => {
            assert_eq!(volume, "c");
            assert_eq!(source.to_string(), "configmap \"nope\" not found");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!pd.dir.join("volumes/kubernetes.io~configmap/c").exists());

    let optional = pod(
        json!([{"name": "c", "configMap": {"name": "nope", "optional": true}}]),
        json!([]),
    );
    let vols = setup(&optional, &pd, &cm_source());
    let visible: Vec<_> = std::fs::read_dir(&vols.volumes["c"].host_path)
        .expect("ls")
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with(".."))
        .collect();
    assert!(
        visible.is_empty(),
        "optional missing configMap → empty volume"
    );

    let bad_key = pod(
        json!([{"name": "k", "configMap": {"name": "cfg", "items": [{"key": "zz", "path": "z"}]}}]),
        json!([]),
    );
    assert_eq!(
        setup_err(&bad_key, &pd, &cm_source()),
        "MountVolume.SetUp failed for volume \"k\" : configmap references non-existent config key: zz"
    );
    let optional_key = pod(
        json!([{"name": "k", "configMap": {"name": "cfg", "optional": true,
                "items": [{"key": "zz", "path": "z"}, {"key": "other", "path": "o"}]}}]),
        json!([]),
    );
    let vols = setup(&optional_key, &pd, &cm_source());
    assert_eq!(read(&vols.volumes["k"].host_path.join("o")), "o");
    assert!(!vols.volumes["k"].host_path.join("z").exists());
}

#[test]
fn resetup_refreshes_configmap_atomically_and_keeps_empty_dirs() {
    let pd = PodDir::new();
    let p = pod(
        json!([{"name": "c", "configMap": {"name": "cfg"}}, {"name": "e", "emptyDir": {}}]),
        json!([]),
    );
    let mut src = cm_source();
    let vols = setup(&p, &pd, &src);
    let root = vols.volumes["c"].host_path.clone();
    std::fs::write(vols.volumes["e"].host_path.join("keep"), "me").expect("write");
    let first = std::fs::read_link(root.join("..data")).expect("..data");

    // Unchanged: nothing is rewritten.
    setup(&p, &pd, &src);
    assert_eq!(
        std::fs::read_link(root.join("..data")).expect("..data"),
        first
    );

    // Changed: a new timestamped directory behind ..data, the old one gone, keys updated.
    src.configmaps.insert(
        "cfg".into(),
        json!({"data": {"app.conf": "port=8080", "added": "new"}}),
    );
    setup(&p, &pd, &src);
    let second = std::fs::read_link(root.join("..data")).expect("..data");
    assert_ne!(first, second);
    assert!(second.to_string_lossy().starts_with("..20"), "{second:?}");
    assert!(!root.join(&first).exists());
    assert_eq!(read(&root.join("app.conf")), "port=8080");
    assert_eq!(read(&root.join("added")), "new");
    assert!(
        std::fs::symlink_metadata(root.join("other")).is_err(),
        "removed key"
    );
    assert!(
        std::fs::symlink_metadata(root.join("blob")).is_err(),
        "removed key"
    );
    assert!(std::fs::symlink_metadata(root.join("..data_tmp")).is_err());
    assert_eq!(
        read(&pd.dir.join("volumes/kubernetes.io~empty-dir/e/keep")),
        "me"
    );
}

#[test]
fn secret_volume_is_decoded_onto_a_tmpfs() {
    require_root!();
    let pd = PodDir::new();
    let mut src = sources();
    src.secrets.insert(
        "creds".into(),
        json!({"data": {"user": "YWRtaW4=", "pass": "czNjcjN0"}}),
    );
    let p = pod(
        json!([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}},
               {"name": "i", "secret": {"secretName": "creds",
                    "items": [{"key": "pass", "path": "p/pw", "mode": 0o440}]}},
               {"name": "o", "secret": {"secretName": "absent", "optional": true}}]),
        json!([]),
    );
    let vols = setup(&p, &pd, &src);
    let v = &vols.volumes["s"];
    assert_eq!(v.kind, VolumeKind::Secret);
    assert!(v.read_only);
    assert_eq!(read(&v.host_path.join("user")), "admin");
    assert_eq!(mode(&v.host_path.join("pass")), 0o400);
    let canonical = v.host_path.canonicalize().expect("canonical");
    assert_eq!(
        mounts::mount_at(&canonical)
            .expect("mountinfo")
            .expect("tmpfs")
            .fstype,
        "tmpfs"
    );
    assert_eq!(read(&vols.volumes["i"].host_path.join("p/pw")), "s3cr3t");
    assert_eq!(mode(&vols.volumes["i"].host_path.join("p/pw")), 0o440);
    assert!(!vols.volumes["i"].host_path.join("user").exists());

    let missing = pod(
        json!([{"name": "s", "secret": {"secretName": "gone"}}]),
        json!([]),
    );
    assert_eq!(
        setup_err(&missing, &pd, &src),
        "MountVolume.SetUp failed for volume \"s\" : secret \"gone\" not found"
    );
    let bad_key = pod(
        json!([{"name": "s", "secret": {"secretName": "creds", "items": [{"key": "k", "path": "k"}]}}]),
        json!([]),
    );
    assert!(
        setup_err(&bad_key, &pd, &src).ends_with("secret references non-existent secret key: k")
    );
    assert!(format!("{src:?}").contains("creds"));
    assert!(
        !format!("{src:?}").contains("czNjcjN0"),
        "no secret data in Debug"
    );
}

#[test]
fn downward_api_volume_projects_fields_and_resources() {
    let pd = PodDir::new();
    let mut src = sources();
    src.pod_ip = Some("10.1.2.3".into());
    src.node_allocatable.insert("memory".into(), "2Gi".into());
    let p = pod(
        json!([{"name": "d", "downwardAPI": {"defaultMode": 0o444, "items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
            {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
            {"path": "meta/name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o400},
            {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
            {"path": "node", "fieldRef": {"fieldPath": "spec.nodeName"}},
            {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
            {"path": "host", "fieldRef": {"fieldPath": "status.hostIP"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}}
        ]}}]),
        json!([{"name": "app", "resources": {"limits": {"cpu": "500m"}}}]),
    );
    let vols = setup(&p, &pd, &src);
    let root = &vols.volumes["d"].host_path;
    assert_eq!(vols.volumes["d"].kind, VolumeKind::DownwardApi);
    assert_eq!(
        read(&root.join("labels")),
        "app=\"web\"\ntier=\"a \\\"b\\\"\""
    );
    assert_eq!(read(&root.join("annotations")), "note=\"x\\ny\"");
    assert_eq!(read(&root.join("app")), "web");
    assert_eq!(read(&root.join("meta/name")), "web");
    assert_eq!(read(&root.join("ns")), "default");
    assert_eq!(mode(&root.join("ns")), 0o400);
    assert_eq!(mode(&root.join("uid")), 0o444);
    assert_eq!(read(&root.join("uid")), "uid-1");
    assert_eq!(read(&root.join("node")), "node-a");
    assert_eq!(read(&root.join("ip")), "10.1.2.3");
    assert_eq!(read(&root.join("host")), "192.0.2.1");
    assert_eq!(read(&root.join("cpu")), "500");
    assert_eq!(
        read(&root.join("mem")),
        "2048",
        "unset limit → node allocatable"
    );

    // Labels change → the file follows on the next setup.
    let mut relabeled = p.clone();
    relabeled["metadata"]["labels"] = json!({"app": "api"});
    setup(&relabeled, &pd, &src);
    assert_eq!(read(&root.join("labels")), "app=\"api\"");

    let bad = pod(
        json!([{"name": "d", "downwardAPI": {"items": [
            {"path": "x", "fieldRef": {"fieldPath": "spec.bogus"}},
            {"path": "y", "resourceFieldRef": {"containerName": "zz", "resource": "limits.cpu"}}]}}]),
        json!([{"name": "app"}]),
    );
    assert_eq!(
        setup_err(&bad, &pd, &src),
        "MountVolume.SetUp failed for volume \"d\" : [unsupported fieldPath: spec.bogus, container zz not found]"
    );
}

#[test]
fn projected_volume_merges_sources() {
    require_root!();
    let pd = PodDir::new();
    let mut src = cm_source();
    src.secrets
        .insert("tls".into(), json!({"data": {"tls.key": "a2V5"}}));
    let volume = json!([{"name": "all", "projected": {"defaultMode": 0o640, "sources": [
        {"configMap": {"name": "cfg", "items": [{"key": "app.conf", "path": "cfg/app.conf"}]}},
        {"secret": {"name": "tls", "items": [{"key": "tls.key", "path": "tls/key", "mode": 0o400}]}},
        {"secret": {"name": "absent", "optional": true}},
        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
    ]}}]);
    let vols = setup(&pod(volume, json!([])), &pd, &src);
    let v = &vols.volumes["all"];
    assert_eq!(v.kind, VolumeKind::Projected);
    assert!(v.read_only);
    assert_eq!(
        v.host_path,
        pd.dir.join("volumes/kubernetes.io~projected/all")
    );
    assert_eq!(read(&v.host_path.join("cfg/app.conf")), "port=80");
    assert_eq!(mode(&v.host_path.join("cfg/app.conf")), 0o640);
    assert_eq!(read(&v.host_path.join("tls/key")), "key");
    assert_eq!(mode(&v.host_path.join("tls/key")), 0o400);
    assert_eq!(read(&v.host_path.join("name")), "web");
    let canonical = v.host_path.canonicalize().expect("canonical");
    assert!(mounts::mount_at(&canonical).expect("mountinfo").is_some());

    let token = json!([{"name": "kube-api-access", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
    ]}}]);
    assert_eq!(
        setup_err(&pod(token.clone(), json!([])), &pd, &src),
        "MountVolume.SetUp failed for volume \"kube-api-access\" : serviceAccountToken projection is not supported yet"
    );
    src.service_account_token = Some("eyJhbGciOi".into());
    let vols = setup(&pod(token, json!([])), &pd, &src);
    let root = &vols.volumes["kube-api-access"].host_path;
    assert_eq!(read(&root.join("token")), "eyJhbGciOi");
    assert_eq!(read(&root.join("namespace")), "default");

    let bundle = json!([{"name": "b", "projected": {"sources": [
        {"clusterTrustBundle": {"name": "x", "path": "ca.crt"}},
        {"configMap": {"name": "gone"}}]}}]);
    assert_eq!(
        setup_err(&pod(bundle, json!([])), &pd, &src),
        "MountVolume.SetUp failed for volume \"b\" : [clusterTrustBundle projection is not supported yet, configmap \"gone\" not found]"
    );
}

#[test]
fn fs_group_sets_group_and_setgid() {
    require_root!();
    let pd = PodDir::new();
    let mut p = pod(
        json!([{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}}]),
        json!([]),
    );
    p["spec"]["securityContext"] = json!({"fsGroup": 2000});
    let vols = setup(&p, &pd, &cm_source());
    let e = std::fs::metadata(&vols.volumes["e"].host_path).expect("stat");
    assert_eq!(e.gid(), 2000);
    assert_eq!(e.mode() & 0o2000, 0o2000, "setgid on emptyDir");
    let f = std::fs::metadata(vols.volumes["c"].host_path.join("app.conf")).expect("stat");
    assert_eq!(f.gid(), 2000);
    assert_eq!(f.uid(), 0);
    assert_eq!(f.mode() & 0o7777, 0o644, "read-only volumes get g+r only");
}

fn mount_for<'a>(
    mounts: &'a [oci_spec::runtime::Mount],
    dest: &str,
) -> &'a oci_spec::runtime::Mount {
    mounts
        .iter()
        .find(|m| m.destination() == Path::new(dest))
        .unwrap_or_else(|| panic!("no mount at {dest}"))
}

fn options(m: &oci_spec::runtime::Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

#[test]
fn volume_mounts_become_bind_mounts() {
    let pd = PodDir::new();
    let host = pd.outside("shared");
    std::fs::create_dir_all(&host).expect("mkdir");
    let container = json!({"name": "app", "volumeMounts": [
        {"name": "e", "mountPath": "/scratch"},
        {"name": "e", "mountPath": "/scratch-ro", "readOnly": true},
        {"name": "c", "mountPath": "/etc/app"},
        {"name": "h", "mountPath": "/host", "mountPropagation": "HostToContainer"},
        {"name": "h", "mountPath": "/host2", "mountPropagation": "Bidirectional"}
    ]});
    let p = pod(
        json!([{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}},
               {"name": "h", "hostPath": {"path": host.to_str().expect("utf8")}}]),
        json!([container.clone()]),
    );
    let vols = setup(&p, &pd, &cm_source());
    let ms = container_mounts(&p, &container, &vols).expect("mounts");
    assert_eq!(ms.len(), 5);
    let scratch = mount_for(&ms, "/scratch");
    assert_eq!(scratch.typ().as_deref(), Some("bind"));
    assert_eq!(
        scratch.source().as_deref(),
        Some(vols.volumes["e"].host_path.as_path())
    );
    assert_eq!(options(scratch), ["rbind", "rprivate", "rw"]);
    assert_eq!(
        options(mount_for(&ms, "/scratch-ro")),
        ["rbind", "rprivate", "ro"]
    );
    assert_eq!(
        options(mount_for(&ms, "/etc/app")),
        ["rbind", "rprivate", "ro"],
        "configMap is always ro"
    );
    assert_eq!(options(mount_for(&ms, "/host")), ["rbind", "rslave", "rw"]);
    assert_eq!(
        options(mount_for(&ms, "/host2")),
        ["rbind", "rshared", "rw"]
    );
    assert_eq!(
        mount_for(&ms, "/host").source().as_deref(),
        Some(host.as_path())
    );

    let stray = json!({"name": "app", "volumeMounts": [{"name": "ghost", "mountPath": "/g"}]});
    assert_eq!(
        container_mounts(&p, &stray, &vols)
            .expect_err("unknown")
            .to_string(),
        "cannot find volume \"ghost\" to mount into container \"app\""
    );
    let none = json!({"name": "app"});
    assert!(container_mounts(&p, &none, &vols)
        .expect("no mounts")
        .is_empty());
}

#[test]
fn sub_paths_are_created_bound_and_confined() {
    require_root!();
    let pd = PodDir::new();
    let outside = pd.outside("secret-host-dir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("passwd"), "host data").expect("write");
    let p = pod(
        json!([{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}}]),
        json!([]),
    );
    let vols = setup(&p, &pd, &cm_source());
    let e_root = vols.volumes["e"].host_path.clone();
    let mounts_of = |vm: Value| {
        let c = json!({"name": "app", "volumeMounts": [vm],
                       "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                               {"name": "DIR", "value": "logs-$(POD)"}]});
        container_mounts(&p, &c, &vols)
    };

    // A configMap key as a single file.
    let ms = mounts_of(json!({"name": "c", "mountPath": "/etc/app.conf", "subPath": "app.conf"}))
        .expect("file subPath");
    let src = ms[0].source().clone().expect("source");
    assert!(src.starts_with(
        pd.dir
            .canonicalize()
            .expect("canonical")
            .join("volume-subpaths/c/app/0")
    ));
    assert_eq!(read(&src), "port=80");
    assert_eq!(options(&ms[0]), ["rbind", "rprivate", "ro"]);

    // A missing directory is created with the volume root's mode, then bound.
    let ms = mounts_of(json!({"name": "e", "mountPath": "/data", "subPath": "a/b"})).expect("dir");
    assert!(e_root.join("a/b").is_dir());
    assert_eq!(mode(&e_root.join("a/b")), 0o777);
    let bound = ms[0].source().clone().expect("source");
    std::fs::write(bound.join("via-bind"), "1").expect("write through bind");
    assert_eq!(read(&e_root.join("a/b/via-bind")), "1");
    // Re-preparing (container restart) reuses the bind.
    let again =
        mounts_of(json!({"name": "e", "mountPath": "/data", "subPath": "a/b"})).expect("again");
    assert_eq!(again[0].source(), ms[0].source());

    // subPathExpr from env (fieldRef and $(VAR) references).
    let ms = mounts_of(json!({"name": "e", "mountPath": "/logs", "subPathExpr": "$(DIR)"}))
        .expect("expr");
    assert!(ms[0].source().is_some());
    assert!(e_root.join("logs-web").is_dir());
    assert_eq!(
        mounts_of(json!({"name": "e", "mountPath": "/x", "subPathExpr": "$(NOPE)"}))
            .expect_err("missing var")
            .to_string(),
        "missing value for NOPE"
    );

    // Escapes.
    assert_eq!(
        mounts_of(json!({"name": "e", "mountPath": "/x", "subPath": "../../etc"}))
            .expect_err("backsteps")
            .to_string(),
        "unable to provision SubPath `../../etc`: must not contain '..'"
    );
    assert_eq!(
        mounts_of(json!({"name": "e", "mountPath": "/x", "subPath": "/etc"}))
            .expect_err("absolute")
            .to_string(),
        "error SubPath `/etc` must not be an absolute path"
    );
    std::os::unix::fs::symlink(&outside, e_root.join("evil")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../../../..", e_root.join("up")).expect("symlink");
    for sub in ["evil", "evil/passwd", "up", "up/etc"] {
        let err =
            mounts_of(json!({"name": "e", "mountPath": "/x", "subPath": sub})).expect_err("escape");
        assert!(
            matches!(err, VolumeError::SubPathEscape { .. }),
            "{sub}: {err}"
        );
    }
    // Creating through a symlink that leads out is refused, and nothing is created outside.
    let err = mounts_of(json!({"name": "e", "mountPath": "/x", "subPath": "evil/newdir"}))
        .expect_err("escape on create");
    assert_eq!(
        err.to_string(),
        "failed to create subPath directory for volumeMount \"e\" of container \"app\""
    );
    assert!(!outside.join("newdir").exists());
    // A symlink that stays inside the volume is fine.
    std::os::unix::fs::symlink("a", e_root.join("alias")).expect("symlink");
    mounts_of(json!({"name": "e", "mountPath": "/x", "subPath": "alias/b"})).expect("inside");

    // A configMap update reaches a subPath file at the next container start (new bind).
    let mut updated = cm_source();
    updated
        .configmaps
        .insert("cfg".into(), json!({"data": {"app.conf": "port=9090"}}));
    setup(&p, &pd, &updated);
    let ms = mounts_of(json!({"name": "c", "mountPath": "/etc/app.conf", "subPath": "app.conf"}))
        .expect("rebind");
    assert_eq!(
        read(ms[0].source().as_deref().expect("source")),
        "port=9090"
    );

    let pod_canonical = pd.dir.canonicalize().expect("canonical");
    assert!(!mounted_below(&pd.dir).is_empty());
    teardown_pod_volumes(&pd.dir).expect("teardown");
    assert!(mounts::mounts_below(&pod_canonical)
        .expect("mountinfo")
        .is_empty());
    assert!(!pd.dir.exists());
    assert_eq!(read(&outside.join("passwd")), "host data");
}

#[test]
fn teardown_removes_the_pod_but_never_host_data() {
    let pd = PodDir::new();
    let host = pd.outside("host-data");
    std::fs::create_dir_all(&host).expect("mkdir");
    std::fs::write(host.join("precious"), "keep").expect("write");
    let mut volumes = vec![
        json!({"name": "e", "emptyDir": {}}),
        json!({"name": "h", "hostPath": {"path": host.to_str().expect("utf8"), "type": "Directory"}}),
        json!({"name": "c", "configMap": {"name": "cfg"}}),
    ];
    if is_root() {
        volumes.push(json!({"name": "m", "emptyDir": {"medium": "Memory"}}));
    }
    let container = json!({"name": "app", "volumeMounts": [{"name": "h", "mountPath": "/h", "subPath": "sub"}]});
    let p = pod(Value::Array(volumes), json!([container.clone()]));
    let vols = setup(&p, &pd, &cm_source());
    // A container left symlinks pointing at host data inside its emptyDir.
    std::os::unix::fs::symlink(&host, vols.volumes["e"].host_path.join("link-dir"))
        .expect("symlink");
    std::os::unix::fs::symlink(
        host.join("precious"),
        vols.volumes["e"].host_path.join("link-file"),
    )
    .expect("symlink");
    if is_root() {
        container_mounts(&p, &container, &vols).expect("subPath of hostPath");
        std::fs::write(vols.volumes["m"].host_path.join("x"), "y").expect("write");
    }

    teardown_pod_volumes(&pd.dir).expect("teardown");
    assert!(!pd.dir.exists());
    assert_eq!(read(&host.join("precious")), "keep");
    assert!(
        host.join("sub").is_dir(),
        "subPath dir created in the hostPath stays"
    );
    // Idempotent.
    teardown_pod_volumes(&pd.dir).expect("second teardown");
}

#[test]
fn cleanup_orphans_removes_only_dead_pods() {
    let pd = PodDir::new();
    let root = pd.dir.parent().expect("pods root").to_path_buf();
    let live_dir = root.join("live-uid");
    let p = pod(json!([{"name": "e", "emptyDir": {}}]), json!([]));
    setup(&p, &pd, &sources());
    setup_pod_volumes(&p, &live_dir, &sources()).expect("setup live");
    std::fs::write(root.join("not-a-dir"), "").expect("write");
    let live: HashSet<String> = ["live-uid".to_string()].into_iter().collect();
    let removed = cleanup_orphans(&root, &live).expect("cleanup");
    assert_eq!(removed, ["uid-1"]);
    assert!(!pd.dir.exists());
    assert!(live_dir.join("volumes/kubernetes.io~empty-dir/e").is_dir());
    assert!(root.join("not-a-dir").exists());
    assert!(cleanup_orphans(&root.join("missing"), &live)
        .expect("no root")
        .is_empty());
}

#[test]
fn referenced_objects_lists_volumes_and_projections() {
    let p = pod(
        json!([
            {"name": "a", "configMap": {"name": "cm1"}},
            {"name": "b", "configMap": {"name": "cm2", "optional": true}},
            {"name": "c", "secret": {"secretName": "s1", "optional": true}},
            {"name": "d", "projected": {"sources": [
                {"configMap": {"name": "cm2", "optional": true}},
                {"secret": {"name": "s1"}},
                {"secret": {"name": "s2", "optional": true}},
                {"downwardAPI": {"items": []}}]}},
            {"name": "e", "emptyDir": {}}
        ]),
        json!([]),
    );
    let (cms, secrets) = referenced_objects(&p);
    assert_eq!(
        cms,
        vec![("cm1".to_string(), false), ("cm2".to_string(), true)]
    );
    assert_eq!(
        secrets,
        vec![("s1".to_string(), false), ("s2".to_string(), true)]
    );
    assert_eq!(referenced_objects(&json!({})), (vec![], vec![]));
}
