//! A server killed with SIGKILL in the middle of 200 concurrent creates restarts with every
//! acknowledged object present.

mod common;

use common::Cluster;
use std::sync::{Arc, Mutex};

#[test]
fn acknowledged_creates_survive_kill_9() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut c = Cluster::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&c.ca_pem()).expect("ca"))
        .build()
        .expect("client");
    let token = c.token();
    let base = c.base_url();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let pid = c.pid();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let client = client.clone();
            let token = token.clone();
            let base = base.clone();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("cm-{i}");
                let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}});
                let r = client
                    .post(format!("{base}/api/v1/namespaces/default/configmaps"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                if let Ok(r) = r {
                    if r.status().as_u16() == 201 && r.bytes().await.is_ok() {
                        acked.lock().expect("lock").push(name);
                    }
                }
            }));
        }
        // Kill the server once some creates have been acknowledged and others are in flight.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while acked.lock().expect("lock").len() < 50 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 50,
        "only {} acknowledged before the kill",
        acked.len()
    );
    c.restart();
    let out = c.ok(&["get", "configmaps", "-o", "name"]);
    let present: std::collections::HashSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("configmap/"))
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged creates lost after kill -9: {missing:?}",
        missing.len()
    );
    // The store is consistent: every object is readable and a new write works.
    c.ok(&["create", "configmap", "after-restart", "--from-literal=a=1"]);
}
