//! The container's seccomp filter for a process started by `kubelite shim-exec`.
//!
//! libcontainer 0.7's tenant builder rebuilds the spec's `linux` section from the namespaces,
//! cgroups path, personality and time offsets only, so `linux.seccomp` never reaches the
//! exec'd process. runc (and so containerd/kubelet) installs the container's filter for exec
//! too. The one hook the tenant path offers inside the new process is the [`Executor`], which
//! runs last, after the user switch, the capability drop and `chdir`, right before `execve`;
//! [`SeccompExecutor`] loads the filter there (libcontainer's own loader, so the profile is
//! read exactly as for PID 1, masked comparisons included) and then execs as libcontainer's
//! default executor does.
//!
//! Loading a filter needs `no_new_privs` or `CAP_SYS_ADMIN`. With `noNewPrivileges` the
//! process already has the bit (libcontainer sets it first, as runc does). Without it runc
//! loads the filter before dropping capabilities; here the process's spec keeps
//! `CAP_SYS_ADMIN` in its effective and permitted sets through the drop ([`prepare`]), and the
//! executor applies the container's real capabilities right after loading the filter, so the
//! process still starts with exactly the container's capabilities and without
//! `no_new_privs`. (`CAP_SYS_ADMIN` is never added to the bounding set, so `execve` would
//! drop it anyway; re-applying the capabilities makes that explicit.)

use libcontainer::capabilities::drop_privileges;
use libcontainer::seccomp::{initialize_seccomp, is_notify};
use libcontainer::syscall::syscall::create_syscall;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxSeccomp, Process, Spec};

/// Runs the exec'd process under the container's seccomp filter.
#[derive(Clone)]
pub(super) struct SeccompExecutor {
    seccomp: LinuxSeccomp,
    /// The container's capabilities, re-applied after the filter is loaded when the process
    /// held `CAP_SYS_ADMIN` only to load it.
    restore: Option<LinuxCapabilities>,
}

/// The executor for an exec into a container with spec `spec` (None: the container has no
/// seccomp filter), adjusting `process` (the exec'd process's spec) so the filter can be
/// loaded. Err: a profile this path cannot install (a user-notification profile needs a
/// listener).
pub(super) fn prepare(
    spec: &Spec,
    process: &mut Process,
) -> Result<Option<SeccompExecutor>, String> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return Ok(None);
    };
    if is_notify(&seccomp) {
        return Err("seccomp profiles with SCMP_ACT_NOTIFY are not supported for exec".into());
    }
    let mut restore = None;
    if process.no_new_privileges() != Some(true) {
        if let Some(caps) = process.capabilities().clone() {
            let held = |set: &Option<Capabilities>| {
                set.as_ref()
                    .is_some_and(|s| s.contains(&Capability::SysAdmin))
            };
            if !(held(caps.effective()) && held(caps.permitted())) {
                let mut loader = caps.clone();
                let with_admin = |set: &Option<Capabilities>| {
                    let mut set = set.clone().unwrap_or_default();
                    set.insert(Capability::SysAdmin);
                    Some(set)
                };
                loader.set_effective(with_admin(caps.effective()));
                loader.set_permitted(with_admin(caps.permitted()));
                process.set_capabilities(Some(loader));
                restore = Some(caps);
            }
        }
    }
    Ok(Some(SeccompExecutor { seccomp, restore }))
}

impl Executor for SeccompExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let notify = initialize_seccomp(&self.seccomp)
            .map_err(|e| ExecutorError::Other(format!("seccomp: {}", super::error_chain(&e))))?;
        if let Some(fd) = notify {
            // Not reached: `prepare` refuses notification profiles.
            let _ = nix::unistd::close(fd);
        }
        if let Some(caps) = &self.restore {
            drop_privileges(caps, create_syscall().as_ref()).map_err(|e| {
                ExecutorError::Other(format!("capabilities: {}", super::error_chain(&e)))
            })?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{
        LinuxBuilder, LinuxCapabilitiesBuilder, LinuxSeccompBuilder, ProcessBuilder, SpecBuilder,
    };

    use super::*;

    fn caps(names: &[Capability]) -> Capabilities {
        names.iter().copied().collect()
    }

    fn spec(seccomp: bool) -> Spec {
        let mut linux = LinuxBuilder::default().build().unwrap();
        if seccomp {
            linux.set_seccomp(Some(LinuxSeccompBuilder::default().build().unwrap()));
        }
        SpecBuilder::default().linux(linux).build().unwrap()
    }

    fn process(no_new_privs: Option<bool>, set: &[Capability]) -> Process {
        let c = LinuxCapabilitiesBuilder::default()
            .bounding(caps(set))
            .effective(caps(set))
            .permitted(caps(set))
            .build()
            .unwrap();
        let mut p = ProcessBuilder::default().capabilities(c).build().unwrap();
        p.set_no_new_privileges(no_new_privs);
        p
    }

    #[test]
    fn no_filter_no_executor() {
        let mut p = process(None, &[Capability::Chown]);
        let before = p.clone();
        assert!(prepare(&spec(false), &mut p).unwrap().is_none());
        assert_eq!(p, before);
    }

    #[test]
    fn no_new_privs_loads_with_the_container_capabilities() {
        let mut p = process(Some(true), &[]);
        let before = p.clone();
        let e = prepare(&spec(true), &mut p).unwrap().unwrap();
        assert!(e.restore.is_none());
        assert_eq!(p, before);
    }

    #[test]
    fn without_no_new_privs_sys_admin_is_held_only_to_load() {
        let mut p = process(None, &[Capability::Chown]);
        let original = p.capabilities().clone().unwrap();
        let e = prepare(&spec(true), &mut p).unwrap().unwrap();
        assert_eq!(e.restore.as_ref(), Some(&original));
        let held = p.capabilities().clone().unwrap();
        let want = caps(&[Capability::Chown, Capability::SysAdmin]);
        assert_eq!(held.effective().as_ref(), Some(&want));
        assert_eq!(held.permitted().as_ref(), Some(&want));
        // Never in the bounding set: an execve cannot regain it.
        assert_eq!(held.bounding(), original.bounding());
        assert_eq!(held.inheritable(), original.inheritable());
        assert_eq!(held.ambient(), original.ambient());
    }

    #[test]
    fn sys_admin_containers_need_nothing_more() {
        let mut p = process(Some(false), &[Capability::SysAdmin]);
        let before = p.clone();
        let e = prepare(&spec(true), &mut p).unwrap().unwrap();
        assert!(e.restore.is_none());
        assert_eq!(p, before);
    }
}
