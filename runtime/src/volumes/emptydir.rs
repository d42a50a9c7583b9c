//! `emptyDir` volumes and the tmpfs that backs memory-medium volumes. On disk: a directory of
//! mode 0777 created once (a re-run keeps it and its data). `medium: Memory`: a tmpfs mounted on
//! that directory (its root is 1777, tmpfs's default) sized like kubelet does: the smallest of
//! node allocatable memory, the pod's memory limit and `sizeLimit`, and unbounded when none is
//! known. An existing tmpfs mount is reused, so data survives container and agent restarts.

use super::error::VolumeError;
use super::{mounts, ownership, VolumeSources};
use crate::oci::Quantity;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const DEFAULT_PERM: u32 = 0o777;

/// Sets up the emptyDir at `dir`. Returns whether it is memory-backed.
pub(crate) fn setup(
    pod: &Value,
    dir: &Path,
    source: &Value,
    fs_group: Option<u32>,
    src: &VolumeSources,
) -> Result<bool, VolumeError> {
    let medium = source.get("medium").and_then(Value::as_str).unwrap_or("");
    match medium {
        "" => {
            let created = ensure_dir(dir)?;
            if let (true, Some(gid)) = (created, fs_group) {
                ownership::apply_fs_group(dir, gid, false)?;
            }
            Ok(false)
        }
        "Memory" => {
            let size = memory_size(pod, source.get("sizeLimit"), src)?;
            ensure_tmpfs(dir, size, fs_group, false)?;
            Ok(true)
        }
        m if m.starts_with("HugePages") => Err(VolumeError::UnsupportedVolumeType(format!(
            "emptyDir with medium {m}"
        ))),
        m => Err(VolumeError::UnknownMedium(m.to_string())),
    }
}

/// Creates `dir` (0777) if missing; returns whether it was created. A symlink or a file in its
/// place is an error.
pub(crate) fn ensure_dir(dir: &Path) -> Result<bool, VolumeError> {
    match std::fs::symlink_metadata(dir) {
        Ok(md) if md.is_dir() => return Ok(false),
        Ok(_) => {
            return Err(VolumeError::InvalidSpec(format!(
                "{} exists and is not a directory",
                dir.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(VolumeError::io(format!("stat {}", dir.display()), e)),
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| VolumeError::io(format!("mkdir {}", parent.display()), e))?;
    }
    std::fs::create_dir(dir).map_err(|e| VolumeError::io(format!("mkdir {}", dir.display()), e))?;
    // Whatever the umask.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DEFAULT_PERM))
        .map_err(|e| VolumeError::io(format!("chmod {}", dir.display()), e))?;
    Ok(true)
}

/// Makes sure a tmpfs is mounted at `dir` (creating the directory first). Returns whether it
/// was mounted now (false: already there).
pub(crate) fn ensure_tmpfs(
    dir: &Path,
    size: Option<u64>,
    fs_group: Option<u32>,
    read_only: bool,
) -> Result<bool, VolumeError> {
    ensure_dir(dir)?;
    let canonical = dir
        .canonicalize()
        .map_err(|e| VolumeError::io(format!("resolving {}", dir.display()), e))?;
    if let Some(m) = mounts::mount_at(&canonical)? {
        if m.fstype == "tmpfs" {
            return Ok(false);
        }
    }
    mounts::mount_tmpfs(&canonical, size)?;
    if let Some(gid) = fs_group {
        ownership::apply_fs_group(&canonical, gid, read_only)?;
    }
    Ok(true)
}

/// kubelet's `calculateEmptyDirMemorySize`, in bytes; `None` for no limit at all.
pub(crate) fn memory_size(
    pod: &Value,
    size_limit: Option<&Value>,
    src: &VolumeSources,
) -> Result<Option<u64>, VolumeError> {
    let mut size: Option<i128> = match src.node_allocatable.get("memory") {
        Some(v) => Some(i128::from(parse("node allocatable memory", v)?.value())),
        None => None,
    };
    let mut narrow = |candidate: i128| {
        if candidate > 0 && size.is_none_or(|s| candidate <= s) {
            size = Some(candidate);
        }
    };
    if let Some(limit) = pod_memory_limit(pod)? {
        narrow(limit);
    }
    if let Some(v) = size_limit {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        narrow(i128::from(parse("sizeLimit", &text)?.value()));
    }
    Ok(size.and_then(|s| u64::try_from(s).ok()))
}

/// The pod's memory limit as its cgroup would get it: only when every container declares one;
/// the larger of the sum over app containers and the largest init container.
fn pod_memory_limit(pod: &Value) -> Result<Option<i128>, VolumeError> {
    let spec = pod.get("spec");
    let list = |k: &str| -> Vec<Value> {
        spec.and_then(|s| s.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let limit_of = |c: &Value| -> Result<Option<i128>, VolumeError> {
        match c
            .pointer("/resources/limits/memory")
            .and_then(Value::as_str)
        {
            Some(v) => Ok(Some(i128::from(parse("memory limit", v)?.value()))),
            None => Ok(None),
        }
    };
    let apps = list("containers");
    if apps.is_empty() {
        return Ok(None);
    }
    let mut sum: i128 = 0;
    for c in &apps {
        match limit_of(c)? {
            Some(l) => sum += l,
            None => return Ok(None),
        }
    }
    let mut max_init: i128 = 0;
    for c in &list("initContainers") {
        match limit_of(c)? {
            Some(l) => max_init = max_init.max(l),
            None => return Ok(None),
        }
    }
    Ok(Some(sum.max(max_init)))
}

fn parse(what: &str, v: &str) -> Result<Quantity, VolumeError> {
    Quantity::parse(v).ok_or_else(|| VolumeError::InvalidQuantity {
        what: what.to_string(),
        value: v.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_size_takes_the_smallest_known_limit() {
        let mut src = VolumeSources::default();
        let pod = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(memory_size(&pod, None, &src).expect("size"), None);
        assert_eq!(
            memory_size(&pod, Some(&json!("64Mi")), &src).expect("size"),
            Some(64 << 20)
        );
        src.node_allocatable.insert("memory".into(), "1Gi".into());
        assert_eq!(memory_size(&pod, None, &src).expect("size"), Some(1 << 30));
        let limited = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "100Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "28Mi"}}}]}});
        assert_eq!(
            memory_size(&limited, None, &src).expect("size"),
            Some(128 << 20)
        );
        assert_eq!(
            memory_size(&limited, Some(&json!("2Gi")), &src).expect("size"),
            Some(128 << 20)
        );
        assert!(memory_size(&pod, Some(&json!("lots")), &src).is_err());
    }
}
