//! Image references as Docker reads them (distribution/reference `ParseNormalizedNamed` +
//! `TagNameOnly`): `busybox` → `docker.io/library/busybox:latest`, `foo/bar` →
//! `docker.io/foo/bar:latest`, `localhost:5000/x` → `localhost:5000/x:latest`; digests are kept
//! (`name@sha256:…` gets no `:latest`), invalid names are refused.

use super::ImageError;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// Repository path inside the registry (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`.
    pub digest: Option<String>,
}

/// Normalizes an image reference the way Docker and the kubelet do (see the module doc).
pub fn normalize_reference(s: &str) -> Result<String, ImageError> {
    Ok(Reference::parse_normalized(s)?.to_string())
}

fn invalid(s: &str, reason: &'static str) -> ImageError {
    ImageError::InvalidReference {
        reference: s.to_string(),
        reason,
    }
}

impl Reference {
    /// Parses and normalizes; a reference with neither tag nor digest gets `:latest`.
    pub(crate) fn parse_normalized(s: &str) -> Result<Self, ImageError> {
        if s.is_empty() {
            return Err(invalid(s, "empty"));
        }
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                s,
                "a 64-character hexadecimal string is an image id, not a name",
            ));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                validate_digest(s, d)?;
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = name_tag.rfind('/');
        let (name, tag) = match name_tag.rfind(':') {
            Some(i) if last_slash.is_none_or(|j| i > j) => {
                let tag = &name_tag[i + 1..];
                if !valid_tag(tag) {
                    return Err(invalid(s, "invalid tag"));
                }
                (&name_tag[..i], Some(tag.to_string()))
            }
            _ => (name_tag, None),
        };
        if name.is_empty() {
            return Err(invalid(s, "empty repository name"));
        }
        let (domain, remainder) = split_docker_domain(name);
        if remainder.to_ascii_lowercase() != remainder {
            return Err(invalid(s, "repository name must be lowercase"));
        }
        if !valid_domain(&domain) {
            return Err(invalid(s, "invalid registry host"));
        }
        if !remainder.split('/').all(valid_path_component) {
            return Err(invalid(s, "invalid repository name"));
        }
        if domain.len() + 1 + remainder.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(s, "repository name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t,
        };
        Ok(Reference {
            domain,
            path: remainder,
            tag,
            digest,
        })
    }

    /// `domain/path`, without tag or digest.
    pub(crate) fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// Docker's `splitDockerDomain`: the first component is a registry host only if it has a `.` or
/// `:`, is `localhost`, or has upper-case letters.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_ascii_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `host[:port]` where host is dot-separated `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?` labels or
/// a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
pub(crate) fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// `algorithm:hex` with a known algorithm and its exact hex length.
fn validate_digest(s: &str, d: &str) -> Result<(), ImageError> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or_else(|| invalid(s, "invalid digest"))?;
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(invalid(s, "unsupported digest algorithm")),
    };
    if hex.len() != len || !super::digest::is_lower_hex(hex) {
        return Err(invalid(s, "invalid digest"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_reference_table() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let ok: Vec<(String, String)> = vec![
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            ("index.docker.io/busybox:x", "docker.io/library/busybox:x"),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest",
            ),
            ("foo/bar", "docker.io/foo/bar:latest"),
            ("foo/bar/baz:v1", "docker.io/foo/bar/baz:v1"),
            ("localhost/x", "localhost/x:latest"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("localhost:5000/x:T_a.g-1", "localhost:5000/x:T_a.g-1"),
            ("127.0.0.1:5000/a/b:1", "127.0.0.1:5000/a/b:1"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
            ("quay.io/coreos/etcd", "quay.io/coreos/etcd:latest"),
            ("Registry/x", "Registry/x:latest"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("a__b.c-d---e", "docker.io/library/a__b.c-d---e:latest"),
            ("x/a__b.c-d---e", "docker.io/x/a__b.c-d---e:latest"),
            ("localhost:5000", "docker.io/library/localhost:5000"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .chain([
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
            ),
            (
                format!("localhost:5000/x@{d}"),
                format!("localhost:5000/x@{d}"),
            ),
        ])
        .collect();
        for (input, want) in &ok {
            assert_eq!(&normalize_reference(input).unwrap(), want, "{input}");
            // Normalizing is idempotent.
            assert_eq!(&normalize_reference(want).unwrap(), want, "{want}");
        }
        let bad = [
            "".to_string(),
            "Busybox".into(),
            "quay.io/Org/x".into(),
            "busybox:".into(),
            ":tag".into(),
            "busybox:-x".into(),
            "busybox:a/b".into(),
            format!("busybox:{}", "t".repeat(129)),
            "a/../b".into(),
            "a__b.c/f".into(), // a registry host (it has a dot), and an invalid one
            "/busybox".into(),
            "busybox/".into(),
            "a//b".into(),
            "a_-b".into(),
            "a___b".into(),
            "-a".into(),
            "a.".into(),
            "busybox@".into(),
            "busybox@sha256:abc".into(),
            format!("busybox@sha256:{}", "AB".repeat(32)),
            format!("busybox@md5:{}", "ab".repeat(32)),
            "ab".repeat(32),
            "host:port/x".into(),
            "-host.io/x".into(),
            "bad_host.io/x".into(),
            "[zz]/x".into(),
            "busy box".into(),
            format!("{}.io/x", "a".repeat(260)),
        ];
        for input in &bad {
            assert!(
                matches!(
                    normalize_reference(input),
                    Err(ImageError::InvalidReference { .. })
                ),
                "{input:?} -> {:?}",
                normalize_reference(input)
            );
        }
        let r = Reference::parse_normalized("localhost:5000/x:1").unwrap();
        assert_eq!(r.repository(), "localhost:5000/x");
        assert_eq!(r.tag.as_deref(), Some("1"));
    }
}
