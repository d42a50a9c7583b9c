//! Persistent IP address management for the pod CIDR, in the style of the CNI `host-local`
//! plugin: one file per allocated address (named after the address, containing the owner's pod
//! uid) plus `last_reserved_ip.0` for round-robin allocation.
//!
//! A reservation is created atomically and exclusively: the owner is written to a temporary
//! file, fsynced, then hard-linked to the address's name (`link(2)` fails with `EEXIST` if the
//! address is taken), so an address is never handed out twice, even across processes, and a
//! crash never leaves a half-written reservation. The network address, the gateway (`.1`) and
//! the broadcast address are never handed out. Reservations survive agent restarts and reboots;
//! whatever belongs to pods that no longer exist is freed by garbage collection.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ipnet::Ipv4Net;

use super::error::NetworkError;

const LAST_RESERVED: &str = "last_reserved_ip.0";
const TMP_PREFIX: &str = ".tmp-";

/// File-backed allocator of the host addresses of one IPv4 CIDR.
#[derive(Debug)]
pub(crate) struct Ipam {
    dir: PathBuf,
    cidr: Ipv4Net,
}

impl Ipam {
    /// Opens (creating if needed) the allocation directory and removes temporary files left by
    /// a crash in the middle of an allocation.
    pub(crate) fn open(dir: &Path, cidr: Ipv4Net) -> Result<Ipam, NetworkError> {
        if cidr.prefix_len() > 30 {
            return Err(NetworkError::InvalidConfig(format!(
                "pod CIDR {cidr} has no room for pods (prefix must be /30 or shorter)"
            )));
        }
        fs::create_dir_all(dir)
            .map_err(|e| NetworkError::io(format!("creating {}", dir.display()), e))?;
        let entries = fs::read_dir(dir)
            .map_err(|e| NetworkError::io(format!("reading {}", dir.display()), e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(Ipam {
            dir: dir.to_path_buf(),
            cidr: cidr.trunc(),
        })
    }

    /// The gateway address (first host address), which is never allocated to a pod.
    pub(crate) fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + 1)
    }

    /// Addresses that may be handed out, in order: network+2 ..= broadcast-1.
    fn range(&self) -> (u32, u32) {
        let first = u32::from(self.cidr.network()) + 2;
        let last = u32::from(self.cidr.broadcast()) - 1;
        (first, last)
    }

    /// Every reservation found on disk (any CIDR), as (address, owner).
    pub(crate) fn allocations(&self) -> Result<Vec<(Ipv4Addr, String)>, NetworkError> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| NetworkError::io(format!("reading {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(|e| NetworkError::io(format!("reading {}", self.dir.display()), e))?;
            let name = entry.file_name();
            let Some(ip) = name.to_str().and_then(|n| n.parse::<Ipv4Addr>().ok()) else {
                continue;
            };
            let owner = match fs::read_to_string(entry.path()) {
                Ok(s) => s.trim().to_string(),
                // Released concurrently by another process: not an allocation any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(NetworkError::io(
                        format!("reading {}", entry.path().display()),
                        e,
                    ))
                }
            };
            out.push((ip, owner));
        }
        out.sort();
        Ok(out)
    }

    /// The address reserved for `owner` inside the CIDR, if any.
    pub(crate) fn lookup(&self, owner: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
        Ok(self
            .allocations()?
            .into_iter()
            .find(|(ip, o)| o == owner && self.cidr.contains(ip))
            .map(|(ip, _)| ip))
    }

    /// Reserves an address for `owner`, or returns the one it already has (idempotent).
    /// New addresses are handed out round-robin, starting after the last one reserved, so a
    /// just-released address is not immediately reused.
    pub(crate) fn allocate(&self, owner: &str) -> Result<Ipv4Addr, NetworkError> {
        if owner.is_empty() || owner.contains(['\n', '/', '\0']) {
            return Err(NetworkError::InvalidArgument(format!(
                "invalid IPAM owner {owner:?}"
            )));
        }
        let existing = self.allocations()?;
        if let Some((ip, _)) = existing
            .iter()
            .find(|(ip, o)| o == owner && self.cidr.contains(ip))
        {
            return Ok(*ip);
        }
        let taken: HashSet<u32> = existing.iter().map(|(ip, _)| u32::from(*ip)).collect();
        let (first, last) = self.range();
        let start = match self.last_reserved() {
            Some(ip) if (first..last).contains(&ip) => ip + 1,
            _ => first,
        };
        let tmp = self.write_tmp(owner)?;
        let result = self.claim_from(start, first, last, &taken, &tmp);
        let _ = fs::remove_file(&tmp);
        let ip = result?;
        self.set_last_reserved(ip);
        Ok(ip)
    }

    fn claim_from(
        &self,
        start: u32,
        first: u32,
        last: u32,
        taken: &HashSet<u32>,
        tmp: &Path,
    ) -> Result<Ipv4Addr, NetworkError> {
        let candidates = (start..=last).chain(first..start);
        for candidate in candidates {
            if taken.contains(&candidate) {
                continue;
            }
            let ip = Ipv4Addr::from(candidate);
            let target = self.dir.join(ip.to_string());
            match fs::hard_link(tmp, &target) {
                Ok(()) => {
                    sync_dir(&self.dir)?;
                    return Ok(ip);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(NetworkError::io(
                        format!("reserving {}", target.display()),
                        e,
                    ))
                }
            }
        }
        Err(NetworkError::IpamExhausted(self.cidr))
    }

    /// Frees every address reserved for `owner`; returns them.
    pub(crate) fn release(&self, owner: &str) -> Result<Vec<Ipv4Addr>, NetworkError> {
        let mut freed = Vec::new();
        for (ip, o) in self.allocations()? {
            if o != owner {
                continue;
            }
            let path = self.dir.join(ip.to_string());
            match fs::remove_file(&path) {
                Ok(()) => freed.push(ip),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(NetworkError::io(format!("releasing {}", path.display()), e)),
            }
        }
        if !freed.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(freed)
    }

    fn last_reserved(&self) -> Option<u32> {
        fs::read_to_string(self.dir.join(LAST_RESERVED))
            .ok()
            .and_then(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
    }

    /// Best effort: the hint only spreads allocations; losing it is harmless.
    fn set_last_reserved(&self, ip: Ipv4Addr) {
        let tmp = self.dir.join(format!("{TMP_PREFIX}last"));
        if fs::write(&tmp, ip.to_string()).is_ok()
            && fs::rename(&tmp, self.dir.join(LAST_RESERVED)).is_err()
        {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Writes `owner` to a fresh, fsynced temporary file in the allocation directory.
    fn write_tmp(&self, owner: &str) -> Result<PathBuf, NetworkError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(owner.as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            NetworkError::io(format!("writing {}", tmp.display()), e)
        })?;
        Ok(tmp)
    }
}

fn sync_dir(dir: &Path) -> Result<(), NetworkError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| NetworkError::io(format!("syncing {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Net {
        s.parse().expect("test CIDR")
    }

    #[test]
    fn network_ipam_allocates_round_robin_and_skips_reserved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ipam = Ipam::open(dir.path(), cidr("10.1.2.0/29")).expect("open");
        assert_eq!(ipam.gateway(), Ipv4Addr::new(10, 1, 2, 1));
        // /29: .0 network, .1 gateway, .7 broadcast → .2 ..= .6 usable.
        let got: Vec<_> = (0..5)
            .map(|i| ipam.allocate(&format!("pod-{i}")).expect("allocate"))
            .collect();
        let want: Vec<_> = (2..=6).map(|h| Ipv4Addr::new(10, 1, 2, h)).collect();
        assert_eq!(got, want);
        assert!(matches!(
            ipam.allocate("pod-5"),
            Err(NetworkError::IpamExhausted(_))
        ));
        // Idempotent for an existing owner, even when exhausted.
        assert_eq!(
            ipam.allocate("pod-3").expect("again"),
            Ipv4Addr::new(10, 1, 2, 5)
        );
        // A released address is reused only after the ones following the last reservation.
        assert_eq!(
            ipam.release("pod-1").expect("release"),
            vec![Ipv4Addr::new(10, 1, 2, 3)]
        );
        assert!(ipam.release("pod-1").expect("release twice").is_empty());
        assert_eq!(
            ipam.allocate("pod-9").expect("reuse"),
            Ipv4Addr::new(10, 1, 2, 3)
        );
    }

    #[test]
    fn network_ipam_persists_and_cleans_crash_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = {
            let ipam = Ipam::open(dir.path(), cidr("10.1.3.0/24")).expect("open");
            ipam.allocate("a").expect("a")
        };
        fs::write(dir.path().join(format!("{TMP_PREFIX}99-1")), "junk").expect("leftover");
        let ipam = Ipam::open(dir.path(), cidr("10.1.3.0/24")).expect("reopen");
        assert_eq!(ipam.lookup("a").expect("lookup"), Some(a));
        assert_eq!(ipam.allocate("a").expect("a again"), a);
        let b = ipam.allocate("b").expect("b");
        assert_ne!(a, b);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with(TMP_PREFIX)),
            "{names:?}"
        );
        assert!(Ipam::open(dir.path(), cidr("10.1.3.0/31")).is_err());
        assert!(ipam.allocate("").is_err());
        assert!(ipam.allocate("a/b").is_err());
    }
}
