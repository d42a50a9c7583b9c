//! Tests of the image store against synthetic archives built here and the busybox test image
//! built by `testdata/images/build-busybox.sh`. Tests that mount, mknod or chown need root
//! (CI runs as root) and say so when skipped.

use super::digest::Digest;
use super::rootfs::{mount_overlay, unmount};
use super::spec::Platform;
use super::unpack::{is_whiteout, lgetxattr};
use super::*;
use serde_json::json;
use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tar::{EntryType, Header};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("SKIPPED: this test needs root (overlay mounts, mknod, chown)");
            return;
        }
    };
}

// ---- fixtures ----

/// Builds a layer tar.
struct LayerTar {
    b: tar::Builder<Vec<u8>>,
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h
}

impl LayerTar {
    fn new() -> Self {
        LayerTar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn dir(mut self, path: &str) -> Self {
        let mut h = header(EntryType::Directory, 0o755, 0);
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn file(mut self, path: &str, content: &[u8]) -> Self {
        let mut h = header(EntryType::Regular, 0o644, content.len() as u64);
        self.b.append_data(&mut h, path, content).unwrap();
        self
    }

    fn with_header(mut self, mut h: Header, path: &str, content: &[u8]) -> Self {
        self.b.append_data(&mut h, path, content).unwrap();
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = header(EntryType::Link, 0o644, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    /// An entry with raw name bytes (the tar crate refuses to write `..`).
    fn raw(mut self, name: &str, kind: EntryType, link: &str, content: &[u8]) -> Self {
        let mut h = header(kind, 0o644, content.len() as u64);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.b.append(&h, content).unwrap();
        self
    }

    fn pax(mut self, ext: &[(&str, &[u8])]) -> Self {
        self.b.append_pax_extensions(ext.iter().copied()).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

/// An image's blobs.
#[derive(Clone)]
struct Built {
    blobs: Vec<Vec<u8>>,
    manifest: Vec<u8>,
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
}

impl Built {
    fn manifest_digest(&self) -> String {
        sha(&self.manifest)
    }
    fn id(&self) -> String {
        sha(&self.config)
    }
}

fn image_with(
    layers: &[Vec<u8>],
    gzip: bool,
    cmd: &[&str],
    arch: &str,
    diff_ids: Option<Vec<String>>,
) -> Built {
    let diff_ids = diff_ids.unwrap_or_else(|| layers.iter().map(|l| sha(l)).collect());
    let config = serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/", "Labels": {"t": cmd.join(" ")}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let stored: Vec<Vec<u8>> = layers
        .iter()
        .map(|l| if gzip { gz(l) } else { l.clone() })
        .collect();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": spec::MT_OCI_MANIFEST,
        "config": {"mediaType": spec::MT_OCI_CONFIG, "digest": sha(&config), "size": config.len()},
        "layers": stored.iter().map(|l| json!({
            "mediaType": if gzip { spec::MT_OCI_LAYER_GZIP } else { spec::MT_OCI_LAYER },
            "digest": sha(l), "size": l.len()})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let mut blobs = stored.clone();
    blobs.push(config.clone());
    blobs.push(manifest.clone());
    Built {
        blobs,
        manifest,
        config,
        layers: stored,
    }
}

fn image(layers: &[Vec<u8>], cmd: &[&str]) -> Built {
    image_with(layers, true, cmd, &Platform::host().architecture, None)
}

/// A tar of named files.
fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = header(EntryType::Regular, 0o644, content.len() as u64);
        b.append_data(&mut h, name, &content[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// An OCI layout tarball: `(annotations, image)` entries in index.json.
fn oci_archive(images: &[(Vec<(&str, &str)>, &Built)]) -> Vec<u8> {
    let mut files = vec![(
        "oci-layout".to_string(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    )];
    let mut seen = HashSet::new();
    let mut manifests = Vec::new();
    for (ann, img) in images {
        for blob in &img.blobs {
            let d = Digest::of(blob);
            if seen.insert(d.clone()) {
                files.push((format!("blobs/sha256/{}", d.hex()), blob.clone()));
            }
        }
        let ann: serde_json::Map<String, serde_json::Value> =
            ann.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        manifests.push(
            json!({"mediaType": spec::MT_OCI_MANIFEST, "digest": img.manifest_digest(),
            "size": img.manifest.len(), "annotations": ann}),
        );
    }
    files.push((
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": manifests})).unwrap(),
    ));
    tar_of(&files)
}

fn named(name: &str) -> Vec<(&str, &str)> {
    vec![(spec::ANNOTATION_CONTAINERD_NAME, name)]
}

struct Env {
    dir: tempfile::TempDir,
    store: ImageStore,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&dir.path().join("agent/images")).unwrap();
        Env { dir, store }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn import(&self, name: &str, bytes: &[u8]) -> Vec<String> {
        let p = self.write(name, bytes);
        self.store.import_archive(&p).unwrap()
    }

    fn names(&self, sub: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.store.root().join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn blobs(&self) -> Vec<String> {
        self.names("blobs/sha256")
    }

    /// Unpacked layer directories (without `empty`).
    fn layer_dirs(&self) -> Vec<String> {
        self.names("layers")
            .into_iter()
            .filter(|n| n != "empty")
            .collect()
    }
}

fn hex(d: &str) -> String {
    d.trim_start_matches("sha256:").to_string()
}

/// Unmounts on drop (declare it after the temporary directory it lives in).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount(&self.0).unwrap();
    }
}

// ---- busybox (testdata/images/build-busybox.sh) ----

/// Builds (or reuses) the busybox archives; None when the machine cannot.
fn busybox_archives() -> Option<(PathBuf, PathBuf)> {
    static BUILT: OnceLock<Option<(PathBuf, PathBuf)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/images");
            let have = |tool: &str| {
                std::env::var_os("PATH")
                    .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            };
            if !is_root() || !["umoci", "jq", "python3"].iter().all(|t| have(t)) || !Path::new("/bin/busybox").exists() {
                eprintln!("SKIPPED: building the busybox image needs root, busybox-static, umoci, jq and python3");
                return None;
            }
            let out = std::process::Command::new("sh")
                .arg(dir.join("build-busybox.sh"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "build-busybox.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Some((dir.join("out/busybox-oci.tar"), dir.join("out/busybox-docker.tar")))
        })
        .clone()
}

fn check_busybox(img: &Image) {
    assert_eq!(img.reference, "docker.io/library/busybox:latest");
    assert_eq!(img.config.cmd, vec!["sh"]);
    assert!(img
        .config
        .env
        .contains(&"PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string()));
    assert_eq!(img.config.working_dir, "/");
    assert_eq!(img.layers.len(), 1);
    let bb = img.layers[0].join("bin/busybox");
    let m = fs::metadata(&bb).unwrap();
    assert!(m.is_file() && m.permissions().mode() & 0o111 != 0);
    assert_eq!(
        fs::read_link(img.layers[0].join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(img.layers[0].join("usr/bin")).unwrap(),
        Path::new("../bin")
    );
    assert_eq!(
        fs::metadata(img.layers[0].join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert_eq!(m.mtime(), 1_700_000_000);
    assert!(img.id.starts_with("sha256:"));
}

#[test]
fn busybox_oci_and_docker_archives() {
    let Some((oci, docker)) = busybox_archives() else {
        return;
    };
    let env = Env::new();
    let refs = env.store.import_archive(&oci).unwrap();
    assert_eq!(
        refs,
        vec![
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:test"
        ]
    );
    let img = env.store.resolve("busybox").unwrap().unwrap();
    check_busybox(&img);
    assert_eq!(
        env.store.resolve("busybox:test").unwrap().unwrap().id,
        img.id
    );
    assert_eq!(
        env.store
            .resolve("docker.io/library/busybox:latest")
            .unwrap()
            .unwrap()
            .id,
        img.id
    );
    assert_eq!(
        env.store.resolve(&img.id).unwrap().unwrap().reference,
        img.reference
    );
    assert_eq!(
        env.store.resolve(&img.id[..11]).unwrap().unwrap().id,
        img.id
    );
    assert!(env.store.resolve("busybox:nope").unwrap().is_none());

    // Importing again changes nothing.
    let blobs = env.blobs();
    let listed = env.store.list().unwrap();
    assert_eq!(env.store.import_archive(&oci).unwrap(), refs);
    assert_eq!(env.blobs(), blobs);
    assert_eq!(env.store.list().unwrap(), listed);
    assert_eq!(listed.len(), 2);
    assert!(listed[0].size > 1_000_000);

    // The docker-save tarball of the same image: same config, hence same id and layer.
    let denv = Env::new();
    let drefs = denv.store.import_archive(&docker).unwrap();
    assert_eq!(
        drefs,
        vec![
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:test"
        ]
    );
    let dimg = denv.store.resolve("busybox").unwrap().unwrap();
    check_busybox(&dimg);
    assert_eq!(dimg.id, img.id);
    assert_eq!(dimg.layers[0].file_name(), img.layers[0].file_name());
    let dblobs = denv.blobs();
    assert_eq!(denv.store.import_archive(&docker).unwrap(), drefs);
    assert_eq!(denv.blobs(), dblobs);

    // Both into one store: one unpacked layer.
    env.store.import_archive(&docker).unwrap();
    assert_eq!(env.layer_dirs().len(), 1);

    // A container on it: writes go to the upper dir, the shared layer stays untouched.
    let ctr = env.dir.path().join("ctr");
    let rootfs = ctr.join("rootfs");
    mount_overlay(&img.layers, &ctr.join("upper"), &ctr.join("work"), &rootfs).unwrap();
    let _m = Mounted(rootfs.clone());
    let out = std::process::Command::new("chroot")
        .arg(&rootfs)
        .args([
            "/bin/sh",
            "-c",
            "echo hello > /tmp/x && cat /tmp/x && ls /usr/bin/wget",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n/usr/bin/wget\n"
    );
    assert_eq!(
        fs::read_to_string(ctr.join("upper/tmp/x")).unwrap(),
        "hello\n"
    );
    assert!(!img.layers[0].join("tmp/x").exists());
}

// ---- synthetic images ----

#[test]
fn oci_import_names_and_idempotence() {
    let env = Env::new();
    let a = image(&[LayerTar::new().file("a", b"1").finish()], &["a"]);
    let b = image(&[LayerTar::new().file("b", b"2").finish()], &["b"]);
    let c = image(&[LayerTar::new().file("c", b"3").finish()], &["c"]);
    let d = image(&[LayerTar::new().file("d", b"4").finish()], &["d"]);
    let archive = oci_archive(&[
        // containerd name, tag-only ref.name combined with it
        (
            vec![
                (spec::ANNOTATION_CONTAINERD_NAME, "example.com/app:1"),
                (spec::ANNOTATION_REF_NAME, "2"),
            ],
            &a,
        ),
        (named("b"), &b),
        // a full reference in ref.name (skopeo), a bare name (umoci)
        (vec![(spec::ANNOTATION_REF_NAME, "localhost:5000/c:v")], &c),
        (vec![(spec::ANNOTATION_REF_NAME, "dd")], &d),
        // unnamed
        (vec![], &d),
    ]);
    let refs = env.import("x.tar", &archive);
    assert_eq!(
        refs,
        vec![
            "example.com/app:2".to_string(),
            "docker.io/library/b:latest".into(),
            "localhost:5000/c:v".into(),
            "docker.io/library/dd:latest".into(),
            d.id(),
        ]
    );
    let img = env.store.resolve("example.com/app:2").unwrap().unwrap();
    assert_eq!(img.config.cmd, vec!["a"]);
    assert_eq!(img.id, a.id());
    assert_eq!(fs::read(img.layers[0].join("a")).unwrap(), b"1");
    // d is named, so it is not also listed by id.
    let listed: Vec<String> = env
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert_eq!(
        listed,
        vec![
            "docker.io/library/b:latest",
            "docker.io/library/dd:latest",
            "example.com/app:2",
            "localhost:5000/c:v"
        ]
    );
    // Digest references.
    let by_digest = format!("localhost:5000/c@{}", c.manifest_digest());
    assert_eq!(env.store.resolve(&by_digest).unwrap().unwrap().id, c.id());
    assert_eq!(
        env.store.resolve(&by_digest).unwrap().unwrap().reference,
        by_digest
    );
    assert!(env
        .store
        .resolve(&format!("localhost:5000/other@{}", c.manifest_digest()))
        .unwrap()
        .is_none());
    assert!(matches!(env.store.resolve("Bad Name"), Ok(None)));
    // Idempotent, and gzip-compressed archives work the same.
    let blobs = env.blobs();
    assert_eq!(env.import("x.tar.gz", &gz(&archive)), refs);
    assert_eq!(env.blobs(), blobs);
    // 4 layers, 4 configs, 4 manifests.
    assert_eq!(blobs.len(), 12);

    // A tag moving to another image leaves the old one listed by id.
    let b2 = image(&[LayerTar::new().file("b", b"new").finish()], &["b2"]);
    env.import("b2.tar", &oci_archive(&[(named("b:latest"), &b2)]));
    let listed: Vec<String> = env
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|s| s.reference)
        .collect();
    assert!(listed.contains(&b.id()));
    assert_eq!(env.store.resolve("b").unwrap().unwrap().id, b2.id());
    assert_eq!(
        env.store.resolve(&b.id()).unwrap().unwrap().reference,
        b.id()
    );
}

#[test]
fn oci_layout_in_a_directory_and_multi_arch_index() {
    let env = Env::new();
    let host = Platform::host().architecture;
    let other = if host == "arm64" { "amd64" } else { "arm64" };
    let mine = image(&[LayerTar::new().file("f", b"host").finish()], &["host"]);
    let theirs = image_with(
        &[LayerTar::new().file("f", b"other").finish()],
        true,
        &["other"],
        other,
        None,
    );
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": spec::MT_OCI_INDEX,
        "manifests": [
            {"mediaType": spec::MT_OCI_MANIFEST, "digest": theirs.manifest_digest(), "size": theirs.manifest.len(),
             "platform": {"architecture": other, "os": "linux"}},
            {"mediaType": spec::MT_OCI_MANIFEST, "digest": mine.manifest_digest(), "size": mine.manifest.len(),
             "platform": {"architecture": host, "os": "linux"}},
            {"mediaType": spec::MT_OCI_MANIFEST, "digest": sha(b"attestation"), "size": 1,
             "platform": {"architecture": "unknown", "os": "unknown"}},
        ]}))
    .unwrap();
    // Only this platform's blobs are in the archive (as `ctr export` of one platform writes),
    // all under a top-level directory.
    let mut files: Vec<(String, Vec<u8>)> = mine
        .blobs
        .iter()
        .chain([&index])
        .map(|b| (format!("img/blobs/sha256/{}", hex(&sha(b))), b.clone()))
        .collect();
    files.push((
        "img/index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            {"mediaType": spec::MT_OCI_INDEX, "digest": sha(&index), "size": index.len(),
             "annotations": {spec::ANNOTATION_CONTAINERD_NAME: "docker.io/library/multi:1"}}]}))
        .unwrap(),
    ));
    let refs = env.import("multi.tar", &tar_of(&files));
    assert_eq!(refs, vec!["docker.io/library/multi:1"]);
    let img = env.store.resolve("multi:1").unwrap().unwrap();
    assert_eq!(img.config.cmd, vec!["host"]);
    assert_eq!(fs::read(img.layers[0].join("f")).unwrap(), b"host");
    // The index digest designates the image too.
    assert_eq!(
        env.store
            .resolve(&format!("multi@{}", sha(&index)))
            .unwrap()
            .unwrap()
            .id,
        mine.id()
    );

    // An index without this platform is an error.
    let only_other =
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": spec::MT_OCI_INDEX,
        "manifests": [{"mediaType": spec::MT_OCI_MANIFEST, "digest": theirs.manifest_digest(),
            "size": theirs.manifest.len(), "platform": {"architecture": other, "os": "linux"}}]}))
        .unwrap();
    let files = vec![
        (
            format!("blobs/sha256/{}", hex(&sha(&only_other))),
            only_other.clone(),
        ),
        (
            "index.json".to_string(),
            serde_json::to_vec(
                &json!({"schemaVersion": 2, "manifests": [{"mediaType": spec::MT_OCI_INDEX,
                "digest": sha(&only_other), "size": only_other.len()}]}),
            )
            .unwrap(),
        ),
    ];
    let p = env.write("other.tar", &tar_of(&files));
    assert!(matches!(
        env.store.import_archive(&p),
        Err(ImageError::NoMatchingPlatform { .. })
    ));
}

/// A docker-save tarball (classic layout): `<id>/layer.tar`, `<config>.json`, manifest.json.
/// (RepoTags, layer tars, cmd) of one image.
type DockerImageSpec<'a> = (Option<Vec<&'a str>>, &'a [Vec<u8>], &'a [&'a str]);

fn docker_archive(images: &[DockerImageSpec<'_>], symlink_dupes: bool) -> (Vec<u8>, Vec<String>) {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let mut written: Vec<(String, String)> = Vec::new(); // diff id -> path
    let mut ids = Vec::new();
    for (n, (tags, layers, cmd)) in images.iter().enumerate() {
        let built = image_with(layers, false, cmd, &Platform::host().architecture, None);
        let cfg_name = format!("{}.json", hex(&built.id()));
        let mut h = header(EntryType::Regular, 0o644, built.config.len() as u64);
        b.append_data(&mut h, &cfg_name, &built.config[..]).unwrap();
        let mut paths = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let diff = sha(l);
            let path = format!("{}{n}{i}/layer.tar", &hex(&diff)[..16]);
            match written.iter().find(|(d, _)| *d == diff) {
                Some((_, first)) if symlink_dupes => {
                    let mut h = header(EntryType::Symlink, 0o777, 0);
                    b.append_link(&mut h, &path, format!("../{first}")).unwrap();
                }
                _ => {
                    let mut h = header(EntryType::Regular, 0o644, l.len() as u64);
                    b.append_data(&mut h, &path, &l[..]).unwrap();
                    written.push((diff, path.clone()));
                }
            }
            paths.push(path);
        }
        manifest.push(json!({"Config": cfg_name, "RepoTags": tags, "Layers": paths}));
        ids.push(built.id());
    }
    let m = serde_json::to_vec(&manifest).unwrap();
    let mut h = header(EntryType::Regular, 0o644, m.len() as u64);
    b.append_data(&mut h, "manifest.json", &m[..]).unwrap();
    (b.into_inner().unwrap(), ids)
}

#[test]
fn docker_save_import_with_shared_layers() {
    let env = Env::new();
    let base = LayerTar::new()
        .dir("etc")
        .file("etc/base", b"base")
        .finish();
    let top1 = LayerTar::new().file("one", b"1").finish();
    let top2 = LayerTar::new().file("two", b"2").finish();
    let (archive, ids) = docker_archive(
        &[
            (
                Some(vec!["myimg:1", "quay.io/x/y:2"]),
                &[base.clone(), top1],
                &["one"],
            ),
            (Some(vec!["other"]), &[base.clone(), top2], &["two"]),
            (None, &[base], &["none"]),
        ],
        true,
    );
    let refs = env.import("d.tgz", &gz(&archive));
    assert_eq!(
        refs,
        vec![
            "docker.io/library/myimg:1".to_string(),
            "quay.io/x/y:2".into(),
            "docker.io/library/other:latest".into(),
            ids[2].clone(),
        ]
    );
    let one = env.store.resolve("myimg:1").unwrap().unwrap();
    let two = env.store.resolve("other").unwrap().unwrap();
    assert_eq!(one.config.cmd, vec!["one"]);
    assert_eq!(two.config.cmd, vec!["two"]);
    assert_eq!(one.layers[0], two.layers[0]);
    assert_eq!(fs::read(one.layers[0].join("etc/base")).unwrap(), b"base");
    assert_eq!(fs::read(one.layers[1].join("one")).unwrap(), b"1");
    assert_eq!(
        env.store
            .resolve(&ids[2][7..19])
            .unwrap()
            .unwrap()
            .reference,
        ids[2]
    );
    // 3 distinct layers, 3 configs, 3 synthesized manifests.
    let blobs = env.blobs();
    assert_eq!(blobs.len(), 9);
    assert_eq!(env.import("d.tar", &archive), refs);
    assert_eq!(env.blobs(), blobs);
}

#[test]
fn import_directory_rescans_cheaply() {
    let env = Env::new();
    let airgap = env.dir.path().join("airgap");
    fs::create_dir(&airgap).unwrap();
    assert!(env
        .store
        .import_directory(&env.dir.path().join("absent"))
        .unwrap()
        .is_empty());
    let mk = |name: &str| {
        oci_archive(&[(
            named(name),
            &image(
                &[LayerTar::new().file(name, name.as_bytes()).finish()],
                &[name],
            ),
        )])
    };
    fs::write(airgap.join("a.tar"), mk("a")).unwrap();
    fs::write(airgap.join("b.tar.gz"), gz(&mk("b"))).unwrap();
    fs::write(airgap.join("c.TGZ"), gz(&mk("c"))).unwrap();
    fs::write(airgap.join("notes.txt"), "not an image").unwrap();
    fs::write(airgap.join(".partial.tar"), "hidden").unwrap();
    fs::write(airgap.join("broken.tar"), "not a tar").unwrap();

    let refs = env.store.import_directory(&airgap).unwrap();
    assert_eq!(
        refs,
        vec![
            "docker.io/library/a:latest",
            "docker.io/library/b:latest",
            "docker.io/library/c:latest"
        ]
    );
    assert_eq!(env.store.archives_read(), 4); // a, b, broken, c
                                              // Nothing changed: nothing is read, not even the broken archive.
    assert!(env.store.import_directory(&airgap).unwrap().is_empty());
    assert_eq!(env.store.archives_read(), 4);
    // A new archive and a replaced one are imported; the others are not read again.
    fs::write(airgap.join("d.tar"), mk("d")).unwrap();
    fs::write(airgap.join("broken.tar.tmp"), mk("e")).unwrap();
    fs::rename(airgap.join("broken.tar.tmp"), airgap.join("broken.tar")).unwrap();
    assert_eq!(
        env.store.import_directory(&airgap).unwrap(),
        vec!["docker.io/library/e:latest", "docker.io/library/d:latest"]
    );
    assert_eq!(env.store.archives_read(), 6);
    assert!(env.store.import_directory(&airgap).unwrap().is_empty());
    assert_eq!(env.store.archives_read(), 6);
    assert!(env.store.resolve("e").unwrap().is_some());
}

#[test]
fn whiteouts_and_opaque_dirs_in_overlay() {
    require_root!();
    let env = Env::new();
    let lower = LayerTar::new()
        .dir("a")
        .file("a/gone", b"x")
        .file("a/kept", b"k")
        .dir("b")
        .file("b/old", b"o")
        .dir("b/sub")
        .file("b/sub/deep", b"d")
        .dir("c")
        .file("c/file", b"c")
        .file("top-file", b"t")
        .finish();
    let upper = LayerTar::new()
        .file("a/.wh.gone", b"")
        .dir("b")
        .file("b/.wh..wh..opq", b"")
        .file("b/new", b"n")
        .file(".wh.c", b"")
        .file(".wh.top-file", b"")
        .file("a/added", b"a")
        .finish();
    let img = image(&[lower, upper], &["sh"]);
    env.import("w.tar", &oci_archive(&[(named("wh"), &img)]));
    let image = env.store.resolve("wh").unwrap().unwrap();
    assert_eq!(image.layers.len(), 2);
    let top = &image.layers[1];
    assert!(is_whiteout(&top.join("a/gone")));
    assert!(is_whiteout(&top.join("c")));
    assert!(is_whiteout(&top.join("top-file")));
    assert!(!top.join("a/.wh.gone").exists());
    assert_eq!(
        lgetxattr(&top.join("b"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(lgetxattr(&top.join("a"), "trusted.overlay.opaque").is_none());

    let ctr = env.dir.path().join("ctr");
    let rootfs = ctr.join("rootfs");
    mount_overlay(
        &image.layers,
        &ctr.join("upper"),
        &ctr.join("work"),
        &rootfs,
    )
    .unwrap();
    let m = Mounted(rootfs.clone());
    let names = |d: &str| {
        let mut v: Vec<String> = fs::read_dir(rootfs.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(""), vec!["a", "b"]);
    assert_eq!(names("a"), vec!["added", "kept"]);
    assert_eq!(names("b"), vec!["new"]);
    assert!(!rootfs.join("a/gone").exists());
    assert!(!rootfs.join("b/sub/deep").exists());
    assert!(!rootfs.join("c").exists());
    assert_eq!(fs::read(rootfs.join("a/kept")).unwrap(), b"k");
    // Writes land in the container's upper dir only.
    fs::write(rootfs.join("a/kept"), b"changed").unwrap();
    fs::remove_file(rootfs.join("b/new")).unwrap();
    assert_eq!(fs::read(image.layers[0].join("a/kept")).unwrap(), b"k");
    assert_eq!(fs::read(top.join("b/new")).unwrap(), b"n");
    assert_eq!(fs::read(ctr.join("upper/a/kept")).unwrap(), b"changed");
    assert!(is_whiteout(&ctr.join("upper/b/new")));
    drop(m);
    // Unmounting twice (or something never mounted) is fine.
    unmount(&rootfs).unwrap();
    unmount(&env.dir.path().join("never")).unwrap();
    // A single-layer image mounts too.
    let single = vec![image.layers[0].clone()];
    let rootfs2 = ctr.join("rootfs2");
    mount_overlay(&single, &ctr.join("upper2"), &ctr.join("work2"), &rootfs2).unwrap();
    let _m2 = Mounted(rootfs2.clone());
    assert!(rootfs2.join("a/gone").exists());
}

#[test]
fn unpack_keeps_metadata() {
    require_root!();
    let env = Env::new();
    let mut setuid = header(EntryType::Regular, 0o4755, 2);
    setuid.set_uid(1000);
    setuid.set_gid(2000);
    setuid.set_mtime(1_234_567_890);
    let mut private = header(EntryType::Directory, 0o700, 0);
    private.set_uid(33);
    private.set_mtime(1_111_111_111);
    let mut null = header(EntryType::Char, 0o666, 0);
    null.set_device_major(1).unwrap();
    null.set_device_minor(3).unwrap();
    let fifo = header(EntryType::Fifo, 0o600, 0);
    let mut link = header(EntryType::Symlink, 0o777, 0);
    link.set_uid(7);
    let layer = LayerTar::new()
        .with_header(private, "private/", b"")
        .pax(&[
            ("SCHILY.xattr.user.test", b"value"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ])
        .with_header(setuid, "private/suid", b"#!")
        .with_header(null, "dev/null", b"")
        .with_header(fifo, "run/fifo", b"")
        .hardlink("private/hard", "private/suid")
        .symlink("abs", "/etc/passwd")
        .raw("/rooted", EntryType::Regular, "", b"r")
        .with_header(
            {
                link.set_link_name("private/suid").unwrap();
                link
            },
            "rel",
            b"",
        )
        .finish();
    env.import(
        "m.tar",
        &oci_archive(&[(named("meta"), &image(&[layer], &["x"]))]),
    );
    let l = env.store.resolve("meta").unwrap().unwrap().layers.remove(0);
    let m = fs::metadata(l.join("private/suid")).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert_eq!((m.uid(), m.gid()), (1000, 2000));
    assert_eq!(m.mtime(), 1_234_567_890);
    assert_eq!(m.nlink(), 2);
    assert_eq!(fs::metadata(l.join("private/hard")).unwrap().ino(), m.ino());
    assert_eq!(
        lgetxattr(&l.join("private/suid"), "user.test").as_deref(),
        Some(&b"value"[..])
    );
    assert!(lgetxattr(&l.join("private/suid"), "trusted.overlay.opaque").is_none());
    let d = fs::metadata(l.join("private")).unwrap();
    assert_eq!(d.permissions().mode() & 0o7777, 0o700);
    assert_eq!(d.uid(), 33);
    assert_eq!(d.mtime(), 1_111_111_111);
    let n = fs::metadata(l.join("dev/null")).unwrap();
    assert!(n.file_type().is_char_device());
    assert_eq!(n.rdev(), libc::makedev(1, 3));
    assert!(fs::metadata(l.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::read_link(l.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(fs::symlink_metadata(l.join("rel")).unwrap().uid(), 7);
    assert_eq!(fs::read(l.join("rooted")).unwrap(), b"r");
    assert_eq!(
        fs::metadata(&l).unwrap().permissions().mode() & 0o7777,
        0o755
    );
}

#[test]
fn path_traversal_is_rejected() {
    let env = Env::new();
    let outside = env.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_s = outside.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            LayerTar::new()
                .raw("../evil", EntryType::Regular, "", b"x")
                .finish(),
        ),
        (
            "inner-dotdot",
            LayerTar::new()
                .dir("a")
                .raw("a/../../evil", EntryType::Regular, "", b"x")
                .finish(),
        ),
        (
            "through-symlink",
            LayerTar::new()
                .symlink("esc", &outside_s)
                .file("esc/pwned", b"x")
                .finish(),
        ),
        (
            "dir-through-symlink",
            LayerTar::new()
                .symlink("esc", &outside_s)
                .dir("esc/sub")
                .finish(),
        ),
        (
            "whiteout-through-symlink",
            LayerTar::new()
                .symlink("esc", &outside_s)
                .file("esc/.wh.x", b"")
                .finish(),
        ),
        (
            "hardlink-dotdot",
            LayerTar::new()
                .raw("hl", EntryType::Link, "../../../etc/passwd", b"")
                .finish(),
        ),
        (
            "hardlink-through-symlink",
            LayerTar::new()
                .symlink("esc", &outside_s)
                .hardlink("hl", "esc/file")
                .finish(),
        ),
        (
            "whiteout-dotdot",
            LayerTar::new()
                .raw(".wh...", EntryType::Regular, "", b"")
                .finish(),
        ),
    ];
    fs::write(outside.join("file"), b"secret").unwrap();
    for (name, layer) in cases {
        let img = image(&[layer], &[name]);
        env.import(&format!("{name}.tar"), &oci_archive(&[(named(name), &img)]));
        let err = env.store.resolve(name).unwrap_err();
        assert!(
            matches!(err, ImageError::UnsafePath { .. }),
            "{name}: {err}"
        );
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert!(!env.store.root().join("layers/evil").exists());
    assert!(!env.store.root().join("evil").exists());
    assert!(!env.dir.path().join("evil").exists());
    assert!(env.layer_dirs().is_empty(), "{:?}", env.layer_dirs());
}

#[test]
fn wrong_diff_id_is_rejected() {
    let env = Env::new();
    let layer = LayerTar::new().file("f", b"x").finish();
    let img = image_with(
        &[layer],
        true,
        &["x"],
        &Platform::host().architecture,
        Some(vec![sha(b"other")]),
    );
    env.import("bad.tar", &oci_archive(&[(named("bad"), &img)]));
    assert!(matches!(
        env.store.resolve("bad"),
        Err(ImageError::DigestMismatch { .. })
    ));
    assert!(env.layer_dirs().is_empty());
    // A blob whose content does not match its name in the archive.
    let good = image(&[LayerTar::new().file("g", b"g").finish()], &["g"]);
    let mut files = vec![("index.json".to_string(), serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
        {"mediaType": spec::MT_OCI_MANIFEST, "digest": good.manifest_digest(), "size": good.manifest.len()}]})).unwrap())];
    for b in &good.blobs {
        let mut content = b.clone();
        if b == &good.layers[0] {
            content.push(0);
        }
        files.push((format!("blobs/sha256/{}", hex(&sha(b))), content));
    }
    let p = env.write("tampered.tar", &tar_of(&files));
    assert!(matches!(
        env.store.import_archive(&p),
        Err(ImageError::DigestMismatch { .. })
    ));
    assert!(!env.blobs().iter().any(|b| b.starts_with('.')));
    let p = env.write("garbage.tar", b"definitely not a tar archive");
    assert!(env.store.import_archive(&p).is_err());
}

#[test]
fn remove_untags_and_frees_unused_blobs() {
    let env = Env::new();
    let base = LayerTar::new().file("base", b"b").finish();
    let a = image(
        &[base.clone(), LayerTar::new().file("a", b"a").finish()],
        &["a"],
    );
    let b = image(&[base, LayerTar::new().file("b", b"b").finish()], &["b"]);
    env.import(
        "ab.tar",
        &oci_archive(&[(named("a:1"), &a), (named("b:1"), &b), (named("b:2"), &b)]),
    );
    let ia = env.store.resolve("a:1").unwrap().unwrap();
    let ib = env.store.resolve("b:1").unwrap().unwrap();
    assert_eq!(env.blobs().len(), 7);
    assert_eq!(env.layer_dirs().len(), 3);

    assert!(env.store.remove("docker.io/library/a:1").unwrap());
    assert!(!env.store.remove("a:1").unwrap());
    assert!(env.store.resolve("a:1").unwrap().is_none());
    let mut want: Vec<String> = b.blobs.iter().map(|x| hex(&sha(x))).collect();
    want.sort();
    want.dedup();
    assert_eq!(env.blobs(), want);
    assert!(!ia.layers[1].exists());
    assert!(ia.layers[0].exists() && ib.layers[1].exists());

    // Untagging one of two names frees nothing.
    assert!(env.store.remove("b:2").unwrap());
    assert_eq!(env.blobs(), want);

    // A leased image's layers survive its removal, until the lease is released.
    let leased = env.store.lease("pod-uid/ctr", "b:1").unwrap().unwrap();
    assert_eq!(leased.layers, ib.layers);
    assert_eq!(env.store.leases().unwrap(), vec!["pod-uid/ctr"]);
    assert!(env.store.lease("other", "missing").unwrap().is_none());
    assert!(env.store.remove(&ib.id[..11]).unwrap()); // by id prefix
    assert!(env.blobs().is_empty());
    assert!(ib.layers.iter().all(|l| l.exists()));
    assert!(env.store.release("pod-uid/ctr").unwrap());
    assert!(!env.store.release("pod-uid/ctr").unwrap());
    // Layers still in use by the caller's own reckoning are kept too.
    let in_use: HashSet<PathBuf> = [ib.layers[1].clone()].into();
    assert_eq!(env.store.remove_unused_layers(&in_use).unwrap(), 1);
    assert_eq!(
        env.layer_dirs(),
        vec![ib.layers[1]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()]
    );
    assert_eq!(env.store.remove_unused_layers(&HashSet::new()).unwrap(), 1);
    assert!(env.layer_dirs().is_empty());
    assert!(env.store.list().unwrap().is_empty());
    // Re-import after removal works (blobs and layers come back).
    env.import("ab.tar", &oci_archive(&[(named("a:1"), &a)]));
    assert!(env
        .store
        .resolve("a:1")
        .unwrap()
        .unwrap()
        .layers
        .iter()
        .all(|l| l.exists()));
}

#[test]
fn write_blob_and_commit_for_a_puller() {
    let env = Env::new();
    let img = image(
        &[LayerTar::new().file("p", b"pulled").finish()],
        &["pulled"],
    );
    let guard = env.store.ingest().unwrap();
    let err = env
        .store
        .write_blob(&sha(b"something else"), &img.config[..])
        .unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }));
    assert!(env.blobs().is_empty());
    assert!(matches!(
        env.store.write_blob("sha256:xyz", &b""[..]),
        Err(ImageError::InvalidDigest(_))
    ));
    // Missing layer: commit refuses.
    env.store.write_blob(&img.id(), &img.config[..]).unwrap();
    let p = env
        .store
        .write_blob(&img.manifest_digest(), &img.manifest[..])
        .unwrap();
    assert_eq!(fs::read(p).unwrap(), img.manifest);
    assert!(matches!(
        env.store
            .commit_image("localhost:5000/pulled:1", &img.manifest_digest()),
        Err(ImageError::BlobNotFound(_))
    ));
    env.store
        .write_blob(&sha(&img.layers[0]), &img.layers[0][..])
        .unwrap();
    assert!(env.store.has_blob(&sha(&img.layers[0])).unwrap());
    // A digest in the reference must match.
    assert!(env
        .store
        .commit_image(
            &format!("localhost:5000/pulled@{}", sha(b"x")),
            &img.manifest_digest()
        )
        .is_err());
    env.store
        .commit_image("localhost:5000/pulled:1", &img.manifest_digest())
        .unwrap();
    env.store
        .commit_image(
            &format!("localhost:5000/pulled@{}", img.manifest_digest()),
            &img.manifest_digest(),
        )
        .unwrap();
    drop(guard);
    let got = env
        .store
        .resolve("localhost:5000/pulled:1")
        .unwrap()
        .unwrap();
    assert_eq!(got.config.cmd, vec!["pulled"]);
    assert_eq!(fs::read(got.layers[0].join("p")).unwrap(), b"pulled");
    assert!(matches!(
        env.store.commit_image("Bad", &img.manifest_digest()),
        Err(ImageError::InvalidReference { .. })
    ));
}

#[test]
fn concurrent_resolves_unpack_once() {
    let env = Env::new();
    let layers: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut t = LayerTar::new().dir("d");
            for j in 0..50 {
                t = t.file(&format!("d/{i}-{j}"), format!("{i}{j}").as_bytes());
            }
            t.finish()
        })
        .collect();
    env.import(
        "c.tar",
        &oci_archive(&[(named("conc"), &image(&layers, &["c"]))]),
    );
    // A second store on the same root stands for another process.
    let other = ImageStore::open(env.store.root()).unwrap();
    let results: Vec<Image> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let st = if i % 2 == 0 { &env.store } else { &other };
                s.spawn(move || st.resolve("conc").unwrap().unwrap())
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.iter().all(|r| r == &results[0]));
    assert_eq!(env.layer_dirs().len(), 3);
    assert_eq!(
        fs::read_dir(results[0].layers[2].join("d"))
            .unwrap()
            .count(),
        50
    );
}

#[test]
fn long_lowerdir_lists_mount_with_relative_paths() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("layers");
    let mut layers = Vec::new();
    for i in 0..60 {
        let l = parent.join(format!("{i:02}-{}", "x".repeat(57)));
        fs::create_dir_all(&l).unwrap();
        fs::write(l.join(format!("f{i}")), b"").unwrap();
        fs::write(l.join("same"), i.to_string()).unwrap();
        layers.push(l);
    }
    let total: usize = layers.iter().map(|l| l.as_os_str().len() + 1).sum();
    assert!(total > 4096);
    let rootfs = tmp.path().join("rootfs");
    mount_overlay(
        &layers,
        &tmp.path().join("upper"),
        &tmp.path().join("work"),
        &rootfs,
    )
    .unwrap();
    let _m = Mounted(rootfs.clone());
    assert_eq!(fs::read_to_string(rootfs.join("same")).unwrap(), "59");
    assert!((0..60).all(|i| rootfs.join(format!("f{i}")).exists()));
    // The working directory of the test process did not change.
    assert_ne!(std::env::current_dir().unwrap(), parent);
}

#[test]
fn overlay_mount_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (u, w, t) = (
        tmp.path().join("u"),
        tmp.path().join("w"),
        tmp.path().join("t"),
    );
    assert!(matches!(
        mount_overlay(&[], &u, &w, &t),
        Err(ImageError::Unsupported(_))
    ));
    let bad = vec![tmp.path().join("a:b")];
    assert!(matches!(
        mount_overlay(&bad, &u, &w, &t),
        Err(ImageError::InvalidMountPath(_))
    ));
    let many: Vec<PathBuf> = (0..100)
        .map(|i| {
            tmp.path()
                .join("l")
                .join(format!("{i:03}{}", "y".repeat(60)))
        })
        .collect();
    assert!(matches!(
        mount_overlay(&many, &u, &w, &t),
        Err(ImageError::TooManyLayers { .. })
    ));
    let scattered: Vec<PathBuf> = (0..100)
        .map(|i| {
            tmp.path()
                .join(format!("{i:03}{}", "z".repeat(20)))
                .join("layer")
        })
        .collect();
    assert!(matches!(
        mount_overlay(&scattered, &u, &w, &t),
        Err(ImageError::TooManyLayers { .. })
    ));
}
