//! Hidden subcommands the node agent starts itself with: `kubelite shim <launch.json>` (one
//! per container: owns it for its whole life) and `kubelite shim-exec` (one process inside a
//! running container, for kubectl exec). Both run libcontainer, which must not share a
//! process with threads or a tracing subscriber: dispatch them before anything else in
//! `main` (no tracing init, no tokio runtime). They never return. [`dispatch_helper`] parses
//! their command lines with a parser of their own: a helper lives as long as its container,
//! and building clap's tree of every `kubelite` subcommand would leave ~75 KiB of heap
//! touched in each one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use kubelite_runtime::shim::{self, ExecRequest};

/// The command line of the helpers alone.
#[derive(Parser)]
#[command(name = "kubelite")]
struct HelperCli {
    #[command(subcommand)]
    command: Helper,
}

#[derive(Subcommand)]
enum Helper {
    Shim(ShimArgs),
    #[command(name = "shim-exec")]
    ShimExec(ShimExecArgs),
}

/// Runs `kubelite shim` / `kubelite shim-exec` (never returning) when the first argument names
/// one; returns otherwise. Call first thing in `main`.
pub fn dispatch_helper() {
    let first = std::env::args_os().nth(1);
    if !matches!(
        first.as_deref().and_then(|a| a.to_str()),
        Some("shim" | "shim-exec")
    ) {
        return;
    }
    match HelperCli::parse().command {
        Helper::Shim(args) => run(args),
        Helper::ShimExec(args) => run_exec(args),
    }
}

/// `kubelite shim <LAUNCH_FILE>`.
#[derive(Args, Debug)]
pub struct ShimArgs {
    /// JSON file describing the container (written by the agent).
    pub launch_file: PathBuf,
}

/// `kubelite shim-exec --root <DIR> --id <ID> [--env K=V]... [--cwd DIR] [--tty]
/// [--resize-fd FD] -- ARGS...` (built by `kubelite_runtime::shim::exec_command_with`).
#[derive(Args, Debug)]
pub struct ShimExecArgs {
    /// libcontainer root directory (the container's state root).
    #[arg(long)]
    pub root: PathBuf,
    /// Container id.
    #[arg(long)]
    pub id: String,
    /// Environment override, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container (absolute).
    #[arg(long)]
    pub cwd: Option<String>,
    /// Run on a new terminal, relayed through this process's stdin/stdout.
    #[arg(long)]
    pub tty: bool,
    /// With --tty: an inherited descriptor carrying terminal sizes ("<columns> <rows>" lines).
    #[arg(long, value_name = "FD")]
    pub resize_fd: Option<i32>,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    pub args: Vec<String>,
}

/// Runs the shim; never returns.
pub fn run(args: ShimArgs) -> ! {
    shim::run_shim(&args.launch_file)
}

/// Runs shim-exec; never returns (exits with the process's status).
pub fn run_exec(args: ShimExecArgs) -> ! {
    shim::run_exec(&ExecRequest {
        state_root: args.root,
        id: args.id,
        args: args.args,
        env: args.env,
        cwd: args.cwd,
        tty: args.tty,
        resize_fd: args.resize_fd,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        exec: ShimExecArgs,
    }

    /// What `exec_command` builds parses back into the same request.
    #[test]
    fn exec_command_round_trip() {
        let args = ["sh".to_string(), "-c".into(), "echo --tty -x".into()];
        let env = ["A=b=c".to_string(), "B=".into()];
        let cmd = shim::exec_command(
            std::path::Path::new("/bin/kubelite"),
            std::path::Path::new("/run/kubelite/containers"),
            "c-1",
            &args,
            &env,
            Some("/tmp"),
            true,
        );
        let argv = std::iter::once(std::ffi::OsString::from("kubelite"))
            .chain(cmd.get_args().skip(1).map(|a| a.to_owned()));
        let parsed = Cli::try_parse_from(argv).unwrap().exec;
        assert_eq!(parsed.root, PathBuf::from("/run/kubelite/containers"));
        assert_eq!(parsed.id, "c-1");
        assert_eq!(parsed.env, env);
        assert_eq!(parsed.cwd.as_deref(), Some("/tmp"));
        assert!(parsed.tty);
        assert_eq!(parsed.args, args);

        let plain = shim::exec_command(
            std::path::Path::new("/bin/kubelite"),
            std::path::Path::new("/r"),
            "c",
            &["true".to_string()],
            &[],
            None,
            false,
        );
        let argv = std::iter::once(std::ffi::OsString::from("kubelite"))
            .chain(plain.get_args().skip(1).map(|a| a.to_owned()));
        let parsed = Cli::try_parse_from(argv).unwrap().exec;
        assert!(!parsed.tty && parsed.env.is_empty() && parsed.cwd.is_none());
        assert_eq!(parsed.args, ["true"]);
        assert_eq!(parsed.resize_fd, None);

        let opts = shim::ExecOptions {
            tty: true,
            resize_fd: Some(3),
            ..Default::default()
        };
        let resizable = shim::exec_command_with(
            std::path::Path::new("/bin/kubelite"),
            std::path::Path::new("/r"),
            "c",
            &["sh".to_string()],
            &opts,
        );
        let argv = std::iter::once(std::ffi::OsString::from("kubelite"))
            .chain(resizable.get_args().skip(1).map(|a| a.to_owned()));
        let parsed = Cli::try_parse_from(argv).unwrap().exec;
        assert!(parsed.tty);
        assert_eq!(parsed.resize_fd, Some(3));
        assert_eq!(parsed.args, ["sh"]);
    }
}
