//! iptables FORWARD-chain compatibility. Docker (and some distributions) set the iptables
//! `filter FORWARD` policy to DROP. A verdict of ACCEPT in our own nftables table would not
//! override that (every base chain on a hook must accept), so routed pod traffic needs ACCEPT
//! rules in that very chain. That chain belongs to whichever iptables flavour the host uses
//! (legacy x_tables or iptables-nft), and only the host's own `iptables` binary edits it safely
//! for both, so this module runs it, as the CNI bridge plugin and Docker do. Without an
//! `iptables` binary there is no iptables FORWARD chain to worry about and nothing is done.
//!
//! Rules (inserted at the top of FORWARD, tagged with a comment, idempotent):
//! `-i <bridge> -j ACCEPT` and `-o <bridge> -j ACCEPT`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::NetworkError;

const CANDIDATES: &[&str] = &[
    "/usr/sbin/iptables",
    "/sbin/iptables",
    "/usr/bin/iptables",
    "/bin/iptables",
];

/// The host's `iptables` binary, if any.
fn find_iptables() -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("iptables"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain(CANDIDATES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

fn rules(bridge: &str) -> [Vec<String>; 2] {
    let comment = format!("kubelite: pod traffic of {bridge}");
    ["-i", "-o"].map(|dir| {
        [
            "FORWARD",
            dir,
            bridge,
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "ACCEPT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
}

/// Runs `iptables -w 30 <op> <rule>`; Ok(true) on exit 0, Ok(false) on exit 1 ("no such
/// rule" for -C/-D), Err otherwise.
fn run(bin: &Path, op: &[&str], rule: &[String]) -> Result<bool, NetworkError> {
    let out = Command::new(bin)
        .args(["-w", "30"])
        .args(op)
        .args(rule)
        .output()
        .map_err(|e| NetworkError::io(format!("running {}", bin.display()), e))?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) if op.first() != Some(&"-I") => Ok(false),
        _ => Err(NetworkError::Iptables(format!(
            "{} {} {}: {} {}",
            bin.display(),
            op.join(" "),
            rule.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Ensures the ACCEPT rules for `bridge` are in the FORWARD chain. Returns false when the host
/// has no iptables. Call from a thread in the host network namespace.
pub(crate) fn ensure_forward_accept(bridge: &str) -> Result<bool, NetworkError> {
    let Some(bin) = find_iptables() else {
        return Ok(false);
    };
    for rule in rules(bridge) {
        // -C fails with other codes when the table or chain does not exist yet: insert then.
        if !run(&bin, &["-C"], &rule).unwrap_or(false) {
            let mut insert = rule.clone();
            insert.insert(1, "1".to_string());
            run(&bin, &["-I"], &insert)?;
        }
    }
    Ok(true)
}

/// Removes the rules added by [`ensure_forward_accept`] (all copies).
pub(crate) fn remove_forward_accept(bridge: &str) -> Result<(), NetworkError> {
    let Some(bin) = find_iptables() else {
        return Ok(());
    };
    for rule in rules(bridge) {
        while run(&bin, &["-C"], &rule).unwrap_or(false) {
            if !run(&bin, &["-D"], &rule)? {
                break;
            }
        }
    }
    Ok(())
}
