//! First-start credentials: a cluster CA, a serving certificate signed by it, and the admin
//! bearer token, all kept under `<data-dir>/tls/`; plus the admin kubeconfig.
//!
//! The CA and token are created once and reused on every start. The serving certificate is
//! re-issued from the same CA whenever its subject alternative names change (new `--tls-san`,
//! new host name), so existing kubeconfigs stay valid.

use base64::Engine;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Errors creating or loading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The credentials the server needs at run time.
#[derive(Clone)]
pub struct Credentials {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_token: String,
}

const CA_CN: &str = "kubelite-ca";

fn ca_params() -> Result<CertificateParams, CertError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_CN);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2034, 1, 1);
    Ok(p)
}

fn write_private(path: &Path, data: &str) -> Result<(), CertError> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(data.as_bytes()).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

fn read_opt(path: &Path) -> Result<Option<String>, CertError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CertError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

/// The SANs the serving certificate must carry.
pub fn serving_sans(extra: &[String]) -> Vec<String> {
    let mut sans = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ];
    if let Ok(h) = fs::read_to_string("/proc/sys/kernel/hostname") {
        sans.push(h.trim().to_string());
    }
    sans.extend(extra.iter().cloned());
    sans.retain(|s| !s.is_empty());
    let mut seen = std::collections::HashSet::new();
    sans.retain(|s| seen.insert(s.clone()));
    sans
}

/// Loads the credentials under `<data_dir>/tls`, creating what is missing.
pub fn ensure(data_dir: &Path, extra_sans: &[String]) -> Result<Credentials, CertError> {
    let dir = data_dir.join("tls");
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(io(&dir))?;

    let ca_key_path = dir.join("ca.key");
    let ca_crt_path = dir.join("ca.crt");
    let (ca_key, ca_pem) = match (read_opt(&ca_key_path)?, read_opt(&ca_crt_path)?) {
        (Some(k), Some(c)) => (KeyPair::from_pem(&k)?, c),
        _ => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            write_private(&ca_key_path, &key.serialize_pem())?;
            write_private(&ca_crt_path, &cert.pem())?;
            (key, cert.pem())
        }
    };

    let sans = serving_sans(extra_sans);
    let sans_path = dir.join("serving.sans");
    let crt_path = dir.join("serving.crt");
    let key_path = dir.join("serving.key");
    let want = sans.join("\n");
    let (serving_cert_pem, serving_key_pem) = match (
        read_opt(&sans_path)?,
        read_opt(&crt_path)?,
        read_opt(&key_path)?,
    ) {
        (Some(s), Some(c), Some(k)) if s == want => (c, k),
        _ => {
            let key = KeyPair::generate()?;
            let mut p = CertificateParams::new(Vec::<String>::new())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "kubelite-apiserver");
            p.distinguished_name = dn;
            p.subject_alt_names = sans
                .iter()
                .map(|s| match s.parse::<IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => s.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()?;
            p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
            p.not_before = rcgen::date_time_ymd(2024, 1, 1);
            p.not_after = rcgen::date_time_ymd(2034, 1, 1);
            let issuer = Issuer::new(ca_params()?, &ca_key);
            let cert = p.signed_by(&key, &issuer)?;
            write_private(&key_path, &key.serialize_pem())?;
            write_private(&crt_path, &cert.pem())?;
            write_private(&sans_path, &want)?;
            (cert.pem(), key.serialize_pem())
        }
    };

    let token_path = dir.join("admin.token");
    let admin_token = match read_opt(&token_path)? {
        Some(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let bytes: [u8; 32] = rand::rng().random();
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            write_private(&token_path, &t)?;
            t
        }
    };
    Ok(Credentials {
        ca_pem,
        serving_cert_pem,
        serving_key_pem,
        admin_token,
    })
}

/// The admin kubeconfig for `server_url` (e.g. `https://127.0.0.1:6443`).
pub fn kubeconfig(creds: &Credentials, server_url: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(creds.ca_pem.as_bytes());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubelite\n  cluster:\n    server: {server_url}\n    certificate-authority-data: {ca}\nusers:\n- name: kubelite-admin\n  user:\n    token: {token}\ncontexts:\n- name: kubelite\n  context:\n    cluster: kubelite\n    user: kubelite-admin\n    namespace: default\ncurrent-context: kubelite\n",
        token = creds.admin_token
    )
}

/// Writes the kubeconfig (mode 0600) atomically.
pub fn write_kubeconfig(path: &Path, content: &str) -> Result<(), CertError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(parent))?;
    }
    write_private(path, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_created_once_and_reused() {
        let d = tempfile::tempdir().expect("tempdir");
        let a = ensure(d.path(), &[]).expect("first");
        let b = ensure(d.path(), &[]).expect("second");
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.admin_token, b.admin_token);
        assert_eq!(a.serving_cert_pem, b.serving_cert_pem);
        let c = ensure(d.path(), &["10.1.2.3".into()]).expect("new san");
        assert_eq!(a.ca_pem, c.ca_pem);
        assert_ne!(a.serving_cert_pem, c.serving_cert_pem);
    }
}
