//! The container's command line (Kubernetes `command`/`args` over the image's
//! `ENTRYPOINT`/`CMD`, as kubelet and containerd combine them) and kubelet's `$(VAR)`
//! expansion.

use serde_json::Value;

use super::{ImageConfigLite, SpecError};

/// Expands `$(VAR)` references in `s` with `env` exactly like kubelet
/// (`third_party/forked/golang/expansion`): `$$` is an escaped `$`, a reference to an unknown
/// variable (or an unterminated `$(`) is left as written, and a `$` followed by anything else
/// is kept. When a name occurs several times in `env` the last value wins.
pub fn expand_vars(s: &str, env: &[(String, String)]) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut checkpoint = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            i += 1;
            continue;
        }
        out.push_str(&s[checkpoint..i]);
        match bytes[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'(' => match s[i + 2..].find(')') {
                Some(len) => {
                    let name = &s[i + 2..i + 2 + len];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, v)) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    i += 2 + len + 1;
                }
                None => {
                    out.push_str("$(");
                    i += 2;
                }
            },
            // Not a reference: keep the `$`; the next character is copied as ordinary text.
            _ => {
                out.push('$');
                i += 1;
            }
        }
        checkpoint = i;
    }
    out.push_str(&s[checkpoint..]);
    out
}

/// The process arguments of `container` run from an image with config `image`, with
/// `$(VAR)` references in `command`/`args` expanded against the container's literal `env`
/// values (`value:` entries, themselves expanded in order as kubelet does; `valueFrom`
/// entries are not resolved here — [`command_line_with_env`] takes the resolved environment).
pub fn command_line(container: &Value, image: &ImageConfigLite) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<(String, String)> = Vec::new();
    for e in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(value)) = (
            e.get("name").and_then(Value::as_str),
            e.get("value").and_then(Value::as_str),
        ) else {
            continue;
        };
        let value = expand_vars(value, &env);
        env.push((name.to_string(), value));
    }
    command_line_with_env(container, image, &env)
}

/// The process arguments, Kubernetes rules (as kubelet + containerd's CRI apply them):
///
/// | `command` | `args` | runs |
/// | --- | --- | --- |
/// | — | — | image `ENTRYPOINT` + image `CMD` |
/// | set | — | `command` (image `ENTRYPOINT` and `CMD` ignored) |
/// | — | set | image `ENTRYPOINT` + `args` |
/// | set | set | `command` + `args` |
///
/// An image `ENTRYPOINT` of exactly `[""]` counts as none. `$(VAR)` references in `command`
/// and `args` are expanded against `env` (the container's resolved environment). Nothing to
/// run is [`SpecError::NoCommand`].
pub fn command_line_with_env(
    container: &Value,
    image: &ImageConfigLite,
    env: &[(String, String)],
) -> Result<Vec<String>, SpecError> {
    let strings = |key: &str| -> Vec<String> {
        container
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| expand_vars(s, env))
            .collect()
    };
    let mut command = strings("command");
    let mut args = strings("args");
    if command.is_empty() {
        if args.is_empty() {
            args = image.cmd.clone();
        }
        if !(image.entrypoint.len() == 1 && image.entrypoint[0].is_empty()) {
            command = image.entrypoint.clone();
        }
    }
    if command.is_empty() && args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    command.extend(args);
    Ok(command)
}
