//! Authentication: bearer tokens (the admin token created at first start). Requests without
//! valid credentials get a 401 `Status`, except the public health and version endpoints that
//! Kubernetes serves to anyone (`system:public-info-viewer`).

/// An authenticated identity.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Knows the tokens this server accepts.
pub struct Authenticator {
    admin_token: String,
}

/// Paths anyone may read.
pub fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

impl Authenticator {
    pub fn new(admin_token: String) -> Self {
        Authenticator { admin_token }
    }

    /// The user a bearer token stands for.
    pub fn token_user(&self, token: &str) -> Option<User> {
        if !token.is_empty() && constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            Some(User {
                name: "kubelite-admin".into(),
                uid: "kubelite-admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
            })
        } else {
            None
        }
    }

    /// The user of an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<User> {
        let h = authorization?;
        let (scheme, token) = h.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.token_user(token.trim())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_admin_token_authenticates() {
        let a = Authenticator::new("secret".into());
        assert!(a.authenticate(Some("Bearer secret")).is_some());
        assert!(a.authenticate(Some("Bearer nope")).is_none());
        assert!(a.authenticate(Some("Basic secret")).is_none());
        assert!(a.authenticate(None).is_none());
        assert!(is_public("/readyz") && !is_public("/api"));
    }
}
