//! `hostPath` volumes: the path is used in place (nothing is created inside the pod directory
//! and nothing is ever removed). `type` is checked like kubelet's `checkType`: `DirectoryOrCreate`
//! creates a missing directory (0755, with parents), `FileOrCreate` a missing empty file (0644,
//! parent must exist), and the other types must match what is there (symlinks followed).

use super::error::VolumeError;
use serde_json::Value;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt};
use std::path::PathBuf;

/// Validates and prepares a hostPath source; returns the host path to bind.
pub(crate) fn setup(source: &Value) -> Result<PathBuf, VolumeError> {
    let path = source.get("path").and_then(Value::as_str).unwrap_or("");
    if path.is_empty() {
        return Err(VolumeError::InvalidSpec("hostPath without path".into()));
    }
    if path.split('/').any(|p| p == "..") {
        return Err(VolumeError::HostPathBacksteps(path.to_string()));
    }
    let typ = source.get("type").and_then(Value::as_str).unwrap_or("");
    match typ {
        "" => {}
        "DirectoryOrCreate" => {
            if !exists(path) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(path)
                    .map_err(|e| VolumeError::io(format!("mkdir {path}"), e))?;
            }
            check(path, "Directory", "directory")?;
        }
        "Directory" => check(path, "Directory", "directory")?,
        "FileOrCreate" => {
            if !exists(path) {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o644)
                    .open(path)
                    .map_err(|e| VolumeError::io(format!("open {path}"), e))?;
            }
            check(path, "File", "file")?;
        }
        "File" => check(path, "File", "file")?,
        "Socket" => check(path, "Socket", "socket file")?,
        "CharDevice" => check(path, "CharDevice", "character device")?,
        "BlockDevice" => check(path, "BlockDevice", "block device")?,
        other => return Err(VolumeError::InvalidHostPathType(other.to_string())),
    }
    Ok(PathBuf::from(path))
}

fn exists(path: &str) -> bool {
    std::fs::metadata(path).is_ok()
}

/// kubelet's `typeMatchedOrError`.
fn check(path: &str, expected: &'static str, description: &'static str) -> Result<(), VolumeError> {
    let md = std::fs::metadata(path).map_err(|_| VolumeError::HostPathMissing(path.to_string()))?;
    let ft = md.file_type();
    let actual = if ft.is_dir() {
        "Directory"
    } else if ft.is_file() {
        "File"
    } else if ft.is_socket() {
        "Socket"
    } else if ft.is_char_device() {
        "CharDevice"
    } else if ft.is_block_device() {
        "BlockDevice"
    } else {
        return Err(VolumeError::HostPathUnknownType {
            path: path.to_string(),
            expected: description,
        });
    };
    if actual != expected {
        return Err(VolumeError::HostPathTypeMismatch {
            path: path.to_string(),
            expected: description,
            actual,
        });
    }
    Ok(())
}
