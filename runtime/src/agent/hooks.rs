//! Container lifecycle hooks (postStart, preStop), as kubelet's
//! `pkg/kubelet/lifecycle/handlers.go` runs them: `exec` through `kubelite shim-exec`,
//! `httpGet` (only a failed request fails the hook: the status code is not looked at), and
//! `sleep`. Each run is bounded by a deadline the caller chooses.

// The worker wires these in; until then nothing outside the tests calls them.

use super::probes::{self, go_quote, ExecOutcome, ProbeContext, Url, MAX_OUTPUT};
use serde_json::Value;
use std::time::Duration;

/// A hook that failed or did not finish in time. `message` is kubelet's text after the
/// reason, e.g. `Exec lifecycle hook ([sh -c exit 1]) for Container "c" in Pod
/// "p_ns(uid)" failed - error: command 'sh -c exit 1' exited with 1: , message: ""`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookError {
    pub message: String,
    /// The deadline passed before the hook finished (exec: its process was killed).
    pub timed_out: bool,
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HookError {}

/// Runs a `LifecycleHandler` for the container in `ctx`, bounded by `deadline` (pass
/// `Duration::MAX` for none).
pub async fn run_hook(
    handler: &Value,
    ctx: &ProbeContext,
    deadline: Duration,
) -> Result<(), HookError> {
    let container = go_quote(ctx.container_name().as_bytes());
    let pod = go_quote(ctx.pod.as_bytes());
    let until = tokio::time::Instant::now().checked_add(deadline);
    if let Some(exec) = handler.get("exec").filter(|v| v.is_object()) {
        let cmd: Vec<String> = exec
            .get("command")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string())
            .collect();
        let fail = |error: String, output: &[u8], timed_out: bool| {
            HookError {
            message: format!(
                "Exec lifecycle hook ([{}]) for Container {container} in Pod {pod} failed - error: {error}, message: {}",
                cmd.join(" "),
                go_quote(output)
            ),
            timed_out,
        }
        };
        match probes::run_in_container(&ctx.exec, &cmd, Some(deadline)).await {
            ExecOutcome::Exited { code: 0, .. } => Ok(()),
            ExecOutcome::Exited {
                code,
                stdout,
                stderr,
            } => {
                let mut output = stdout;
                output.extend_from_slice(&stderr);
                output.truncate(MAX_OUTPUT);
                Err(fail(
                    format!(
                        "command '{}' exited with {code}: {}",
                        cmd.join(" "),
                        String::from_utf8_lossy(&stderr)
                    ),
                    &output,
                    false,
                ))
            }
            ExecOutcome::TimedOut => Err(fail(
                format!("command {} timed out", go_quote(cmd.join(" ").as_bytes())),
                b"",
                true,
            )),
            ExecOutcome::Error(e) => Err(fail(e, b"", false)),
        }
    } else if let Some(action) = handler.get("httpGet").filter(|v| v.is_object()) {
        let path = action.get("path").and_then(Value::as_str).unwrap_or("");
        let fail = |error: String, timed_out: bool| {
            HookError {
            message: format!(
                "HTTP lifecycle hook ({path}) for Container {container} in Pod {pod} failed - error: {error}"
            ),
            timed_out,
        }
        };
        let url = Url::for_action(action, ctx).map_err(|e| fail(e, false))?;
        if url.scheme == "https" {
            return Err(fail(
                "HTTPS lifecycle hooks not supported yet".into(),
                false,
            ));
        }
        let headers = probes::action_headers(action);
        probes::http_get(url, &headers, "lifecycle", until, false)
            .await
            .map(|_| ())
            .map_err(|e| {
                let timed_out = e.contains("context deadline exceeded");
                fail(e, timed_out)
            })
    } else if let Some(sleep) = handler.get("sleep").filter(|v| v.is_object()) {
        let seconds = sleep.get("seconds").and_then(Value::as_i64).unwrap_or(0);
        let want = Duration::from_secs(seconds.max(0) as u64);
        if want <= deadline {
            tokio::time::sleep(want).await;
            Ok(())
        } else {
            if let Some(u) = until {
                tokio::time::sleep_until(u).await;
            }
            Err(HookError {
                message: format!(
                    "Sleep lifecycle hook ({seconds}) for Container {container} in Pod {pod} failed - error: container terminated before sleep hook finished"
                ),
                timed_out: true,
            })
        }
    } else {
        Err(HookError {
            message: format!("Cannot run handler: invalid handler: {handler}"),
            timed_out: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::probes::tests::{ctx_with, response, serve, wait_dead};
    use serde_json::json;

    #[tokio::test]
    async fn exec_hook_success_failure_timeout() {
        let d = tempfile::tempdir().unwrap();
        let ctx = ctx_with(d.path(), "c1", json!({"name": "c"}));
        let ok = json!({"exec": {"command": ["sh", "-c", "exit 0"]}});
        assert_eq!(run_hook(&ok, &ctx, Duration::MAX).await, Ok(()));

        let bad = json!({"exec": {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}});
        let e = run_hook(&bad, &ctx, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(
            e.message,
            "Exec lifecycle hook ([sh -c echo out; echo err >&2; exit 3]) for Container \"c\" in Pod \"p_ns(uid)\" failed - error: command 'sh -c echo out; echo err >&2; exit 3' exited with 3: err\n, message: \"out\\nerr\\n\""
        );
        assert!(!e.timed_out);

        let slow = json!({"exec": {"command": ["sleep", "60"]}});
        let e = run_hook(&slow, &ctx, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.timed_out);
        assert!(
            e.message.contains("error: command \"sleep 60\" timed out"),
            "{e}"
        );
        let pid: i32 = std::fs::read_to_string(d.path().join("child.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        wait_dead(pid).await;

        let gone = ctx_with(d.path(), "gone", json!({"name": "c"}));
        let e = run_hook(&ok, &gone, Duration::MAX).await.unwrap_err();
        assert!(
            e.message.contains("container is Stopped, not running"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn http_hook_ignores_status_fails_on_transport() {
        let d = tempfile::tempdir().unwrap();
        let (port, mut reqs) = serve(vec![
            response("200 OK", "", ""),
            response("500 Internal Server Error", "", "no"),
            String::new(),
        ])
        .await;
        let ctx = ctx_with(
            d.path(),
            "c1",
            json!({"name": "c", "ports": [{"name": "admin", "containerPort": port}]}),
        );
        let h = json!({"httpGet": {"path": "/hook", "port": "admin"}});
        assert_eq!(run_hook(&h, &ctx, Duration::MAX).await, Ok(()));
        let req = reqs.recv().await.unwrap();
        assert!(req.starts_with("GET /hook HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("User-Agent: kube-lifecycle/1.33\r\n"), "{req}");
        assert_eq!(run_hook(&h, &ctx, Duration::MAX).await, Ok(()));
        // No answer within the deadline.
        let e = run_hook(&h, &ctx, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(e.timed_out, "{e}");

        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let h = json!({"httpGet": {"path": "/hook", "port": closed}});
        let e = run_hook(&h, &ctx, Duration::MAX).await.unwrap_err();
        assert_eq!(
            e.message,
            format!("HTTP lifecycle hook (/hook) for Container \"c\" in Pod \"p_ns(uid)\" failed - error: Get \"http://127.0.0.1:{closed}/hook\": dial tcp 127.0.0.1:{closed}: connect: connection refused")
        );
        assert!(!e.timed_out);
    }

    #[tokio::test]
    async fn sleep_and_invalid_hooks() {
        let d = tempfile::tempdir().unwrap();
        let ctx = ctx_with(d.path(), "c1", json!({"name": "c"}));
        assert_eq!(
            run_hook(&json!({"sleep": {"seconds": 0}}), &ctx, Duration::MAX).await,
            Ok(())
        );
        let e = run_hook(&json!({"sleep": {"seconds": 30}}), &ctx, Duration::ZERO)
            .await
            .unwrap_err();
        assert!(e.timed_out);
        assert_eq!(
            e.message,
            "Sleep lifecycle hook (30) for Container \"c\" in Pod \"p_ns(uid)\" failed - error: container terminated before sleep hook finished"
        );
        let e = run_hook(&json!({}), &ctx, Duration::MAX).await.unwrap_err();
        assert!(e.message.starts_with("Cannot run handler: invalid handler"));
    }
}
