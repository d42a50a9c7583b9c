//! The container's user: kubelet's `runAsNonRoot` verification and containerd's resolution of
//! uid, gid and additional gids — `runAsUser`/`runAsGroup` (container, then pod security
//! context) over the image's `USER` (`uid`, `name`, `uid:gid`, `name:group`, …), with names
//! and group memberships looked up in the rootfs' `/etc/passwd` and `/etc/group` (the only file
//! access of the spec builder; symlinks are resolved inside the rootfs).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::{effective_sc, ImageConfigLite, SpecError};

/// uid, gid and supplementary gids of the container process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// Numeric user id.
    pub uid: u32,
    /// Numeric primary group id.
    pub gid: u32,
    /// Supplementary groups (sorted, without duplicates, including `gid`).
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Id(u32),
    Name(String),
}

fn parse_part(s: &str, whole: &str) -> Result<Part, SpecError> {
    if s.is_empty() {
        return Err(SpecError::User(format!("invalid user {whole:?}")));
    }
    if let Ok(id) = s.parse::<u32>() {
        return Ok(Part::Id(id));
    }
    if s.parse::<i64>().is_ok() {
        return Err(SpecError::User(format!(
            "invalid user {whole:?}: id out of range"
        )));
    }
    Ok(Part::Name(s.to_string()))
}

fn id_field(pod: &Value, container: &Value, key: &str) -> Result<Option<u32>, SpecError> {
    match effective_sc(pod, container, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                SpecError::Invalid(format!("securityContext.{key} {v} is out of range"))
            }),
    }
}

/// `name_namespace(uid)`, kubelet's `format.Pod`.
pub(crate) fn format_pod(pod: &Value) -> String {
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or("");
    format!(
        "{}_{}({})",
        s("/metadata/name"),
        s("/metadata/namespace"),
        s("/metadata/uid")
    )
}

/// kubelet's `verifyRunAsNonRoot`: with `runAsNonRoot: true` the container must not run as
/// uid 0 — an explicit `runAsUser: 0`, or an image user (`image_user`, the image config's
/// `USER`) that is root or empty. A non-numeric image user cannot be verified and is refused
/// too. kubelet checks this before it asks the runtime to create anything.
pub fn verify_run_as_non_root(
    pod: &Value,
    container: &Value,
    image_user: &str,
) -> Result<(), SpecError> {
    let non_root = effective_sc(pod, container, "runAsNonRoot").and_then(Value::as_bool);
    if non_root != Some(true) {
        return Ok(());
    }
    let pod_name = format_pod(pod);
    let ctr_name = container.get("name").and_then(Value::as_str).unwrap_or("");
    if let Some(uid) = effective_sc(pod, container, "runAsUser").and_then(Value::as_i64) {
        if uid == 0 {
            return Err(SpecError::RunAsNonRoot(format!(
                "container's runAsUser breaks non-root policy (pod: {pod_name:?}, container: {ctr_name})"
            )));
        }
        return Ok(());
    }
    let user = image_user.split(':').next().unwrap_or("");
    if user.is_empty() {
        return Err(run_as_root(&pod_name, ctr_name));
    }
    match user.parse::<i64>() {
        Ok(0) => Err(run_as_root(&pod_name, ctr_name)),
        Ok(_) => Ok(()),
        Err(_) => Err(SpecError::RunAsNonRoot(format!(
            "container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root (pod: {pod_name:?}, container: {ctr_name})"
        ))),
    }
}

fn run_as_root(pod_name: &str, ctr_name: &str) -> SpecError {
    SpecError::RunAsNonRoot(format!(
        "container has runAsNonRoot and image will run as root (pod: {pod_name:?}, container: {ctr_name})"
    ))
}

/// Resolves the process user:
/// - user: effective `runAsUser`, else the image `USER`'s user part, else 0;
/// - group: effective `runAsGroup`, else (only when the image user is used) the image `USER`'s
///   group part, else the user's primary group in `/etc/passwd`, else 0;
/// - additional gids: the primary gid, the groups of `/etc/group` listing the user as a member
///   (unless the pod's `supplementalGroupsPolicy` is `Strict`), the pod's `fsGroup` and
///   `supplementalGroups`; sorted and deduplicated as containerd merges them.
///
/// Names that `/etc/passwd` / `/etc/group` don't know are errors; a numeric uid missing from
/// `/etc/passwd` is fine (primary gid 0). Note that kubelet + containerd drop the group of a
/// numeric image `USER uid:gid`; it is honoured here, as Docker does.
pub fn resolve_user(
    pod: &Value,
    container: &Value,
    image: &ImageConfigLite,
    rootfs: &Path,
) -> Result<ResolvedUser, SpecError> {
    let run_as_user = id_field(pod, container, "runAsUser")?;
    let run_as_group = id_field(pod, container, "runAsGroup")?;
    let (user, image_group) = match run_as_user {
        Some(uid) => (Part::Id(uid), None),
        None if !image.user.is_empty() => match image.user.split_once(':') {
            Some((u, g)) => (
                parse_part(u, &image.user)?,
                if g.is_empty() {
                    None
                } else {
                    Some(parse_part(g, &image.user)?)
                },
            ),
            None => (parse_part(&image.user, &image.user)?, None),
        },
        None => (Part::Id(0), None),
    };
    let group = run_as_group.map(Part::Id).or(image_group);

    let passwd = read_in_root(rootfs, "/etc/passwd")?
        .map(|s| parse_passwd(&s))
        .unwrap_or_default();
    let (uid, primary_gid, username) = match &user {
        Part::Id(uid) => {
            let entry = passwd.iter().find(|e| e.uid == *uid);
            (
                *uid,
                entry.map_or(0, |e| e.gid),
                entry.map(|e| e.name.clone()),
            )
        }
        Part::Name(name) => {
            let entry = passwd.iter().find(|e| &e.name == name).ok_or_else(|| {
                SpecError::User(format!(
                    "unable to find user {name}: no matching entries in passwd file"
                ))
            })?;
            (entry.uid, entry.gid, Some(name.clone()))
        }
    };

    let strict = pod
        .pointer("/spec/securityContext/supplementalGroupsPolicy")
        .and_then(Value::as_str)
        == Some("Strict");
    let need_groups = matches!(group, Some(Part::Name(_))) || (!strict && username.is_some());
    let groups = if need_groups {
        read_in_root(rootfs, "/etc/group")?
            .map(|s| parse_group(&s))
            .unwrap_or_default()
    } else {
        Vec::new()
    };

    let gid = match group {
        None => primary_gid,
        Some(Part::Id(g)) => g,
        Some(Part::Name(name)) => groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.gid)
            .ok_or_else(|| {
                SpecError::User(format!(
                    "unable to find group {name}: no matching entries in group file"
                ))
            })?,
    };

    let mut additional = vec![gid];
    if let (false, Some(name)) = (strict, &username) {
        additional.extend(
            groups
                .iter()
                .filter(|g| &g.name != name && g.members.iter().any(|m| m == name))
                .map(|g| g.gid),
        );
    }
    let pod_sc_ids = |key: &str| -> Vec<u32> {
        let v = pod.pointer(&format!("/spec/securityContext/{key}"));
        match v {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_u64)
                .filter_map(|n| u32::try_from(n).ok())
                .collect(),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .into_iter()
                .collect(),
            None => Vec::new(),
        }
    };
    additional.extend(pod_sc_ids("fsGroup"));
    additional.extend(pod_sc_ids("supplementalGroups"));
    additional.sort_unstable();
    additional.dedup();

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

#[derive(Debug, Clone)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_passwd(s: &str) -> Vec<PasswdEntry> {
    s.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut f = line.split(':');
            let name = f.next()?.to_string();
            let _password = f.next()?;
            let uid = f.next()?.trim().parse().ok()?;
            let gid = f.next()?.trim().parse().ok()?;
            Some(PasswdEntry { name, uid, gid })
        })
        .collect()
}

fn parse_group(s: &str) -> Vec<GroupEntry> {
    s.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut f = line.split(':');
            let name = f.next()?.to_string();
            let _password = f.next()?;
            let gid = f.next()?.trim().parse().ok()?;
            let members = f
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            Some(GroupEntry { name, gid, members })
        })
        .collect()
}

/// Reads `path` (absolute, inside the container) from `root`, following symlinks as if
/// `root` were `/`. `None` if the file does not exist.
fn read_in_root(root: &Path, path: &str) -> Result<Option<String>, SpecError> {
    let err = |e: io::Error| SpecError::User(format!("reading {path} of the container: {e}"));
    let host_path = resolve_in_root(root, path).map_err(err)?;
    match std::fs::read(&host_path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(e)),
    }
}

/// The host path of container path `unsafe_path` under `root`, with every symlink resolved
/// within `root` (absolute targets are relative to `root`, `..` stops at `root`).
pub(crate) fn resolve_in_root(root: &Path, unsafe_path: &str) -> io::Result<PathBuf> {
    const MAX_LINKS: u32 = 40;
    fn components(p: &Path) -> impl Iterator<Item = OsString> + '_ {
        p.components().filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
    }
    let mut pending: VecDeque<OsString> = components(Path::new(unsafe_path)).collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links resolving {unsafe_path}"
                    )));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                let mut next: VecDeque<OsString> = components(&target).collect();
                next.extend(pending);
                pending = next;
            }
            _ => resolved.push(c),
        }
    }
    Ok(root.join(resolved))
}
