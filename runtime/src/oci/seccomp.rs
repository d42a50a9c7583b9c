//! The `RuntimeDefault` seccomp profile: containerd's / moby's default profile, kept as data in
//! `seccomp_default.json`, rendered into an OCI `LinuxSeccomp` for one architecture and one
//! bounding capability set (rules carry `includes`/`excludes` conditions on both, as moby's
//! profile format does).
//!
//! libcontainer 0.7 reads `SCMP_CMP_MASKED_EQ` arguments the other way round from runc and the
//! OCI convention: it takes `valueTwo` as the mask and `value` as the expected result. Measured
//! here: with the standard encoding of the `clone` rule (`value` = namespace flags mask,
//! `valueTwo` = 0) the rule matched every `clone`, namespace flags included. So the rendered
//! profile swaps the two fields of masked comparisons ([`LIBCONTAINER_SWAPS_MASKED_EQ`]); the
//! data file keeps the standard encoding.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::security::cap_bit;
use super::SpecError;

/// Whether masked comparisons are emitted in libcontainer 0.7's order (`valueTwo` = mask).
pub const LIBCONTAINER_SWAPS_MASKED_EQ: bool = true;

const PROFILE_JSON: &str = include_str!("seccomp_default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Profile {
    #[serde(default)]
    #[allow(dead_code)]
    comment: String,
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    arch_map: BTreeMap<String, Vec<Arch>>,
    syscalls: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rule {
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Vec<LinuxSeccompArg>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
    #[serde(default)]
    #[allow(dead_code)]
    comment: String,
}

/// Conditions of a rule: Rust `target_arch` names and capability names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Filter {
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    caps: Vec<String>,
}

fn profile() -> Result<&'static Profile, SpecError> {
    static PROFILE: OnceLock<Result<Profile, String>> = OnceLock::new();
    PROFILE
        .get_or_init(|| serde_json::from_str(PROFILE_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| SpecError::Oci(format!("default seccomp profile: {e}")))
}

/// The default profile for architecture `arch` (Rust `target_arch`, e.g. `x86_64`) and a
/// container whose bounding capability mask is `caps` (bit n = capability number n). Unknown
/// architectures get the native one only.
pub fn default_profile(arch: &str, caps: u64) -> Result<LinuxSeccomp, SpecError> {
    let p = profile()?;
    let has_cap = |name: &String| cap_bit(name).is_some_and(|bit| caps & (1 << bit) != 0);
    let has_arch = |a: &String| a == arch;
    let mut syscalls = Vec::new();
    for rule in &p.syscalls {
        let included = (rule.includes.arches.is_empty()
            || rule.includes.arches.iter().any(has_arch))
            && rule.includes.caps.iter().all(has_cap);
        let excluded =
            rule.excludes.arches.iter().any(has_arch) || rule.excludes.caps.iter().any(has_cap);
        if !included || excluded {
            continue;
        }
        let mut sc = LinuxSyscall::default();
        sc.set_names(rule.names.clone());
        sc.set_action(rule.action);
        sc.set_errno_ret(rule.errno_ret);
        if !rule.args.is_empty() {
            let args = rule
                .args
                .iter()
                .map(for_libcontainer)
                .collect::<Result<_, _>>()?;
            sc.set_args(Some(args));
        }
        syscalls.push(sc);
    }
    let mut s = LinuxSeccomp::default();
    s.set_default_action(p.default_action);
    s.set_default_errno_ret(p.default_errno_ret);
    s.set_architectures(p.arch_map.get(arch).cloned());
    s.set_syscalls(Some(syscalls));
    Ok(s)
}

fn for_libcontainer(arg: &LinuxSeccompArg) -> Result<LinuxSeccompArg, SpecError> {
    if !(LIBCONTAINER_SWAPS_MASKED_EQ && arg.op() == LinuxSeccompOperator::ScmpCmpMaskedEq) {
        return Ok(*arg);
    }
    LinuxSeccompArgBuilder::default()
        .index(arg.index())
        .value(arg.value_two().unwrap_or(0))
        .value_two(arg.value())
        .op(arg.op())
        .build()
        .map_err(|e| SpecError::Oci(e.to_string()))
}
