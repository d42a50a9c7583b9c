//! A cache of every object of one resource, kept current by list+watch through the API layer
//! (client-go's shared informer): controllers read from it instead of listing, and register
//! handlers that turn changes into work-queue keys. After a watch ends (or its revision was
//! compacted) it re-lists and reports the difference as changes, so no change is ever missed.

use crate::resources::Resource;
use crate::server::client::{Change, LocalClient};
use kubelite_storage::Revision;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Called for every change: (what happened, the object now, the object before if known).
pub type Handler = Arc<dyn Fn(Change, &Value, Option<&Value>) + Send + Sync>;

/// `namespace/name` (or `name` for cluster-scoped objects): the cache and work-queue key.
pub fn key_of(obj: &Value) -> String {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key made by [`key_of`] into namespace and name.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Arc<Value>>,
    /// Keys by namespace, so a controller's look at one namespace does not scan them all.
    by_ns: HashMap<String, HashSet<String>>,
}

impl State {
    fn index(&mut self, key: &str, obj: &Value) {
        if let Some(ns) = namespace(obj) {
            self.by_ns
                .entry(ns.to_string())
                .or_default()
                .insert(key.to_string());
        }
    }

    fn unindex(&mut self, key: &str, obj: &Value) {
        if let Some(ns) = namespace(obj) {
            if let Some(keys) = self.by_ns.get_mut(ns) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_ns.remove(ns);
                }
            }
        }
    }
}

fn namespace(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
}

/// The cache of one resource.
pub struct Informer {
    resource: &'static Resource,
    state: RwLock<State>,
    handlers: Mutex<Vec<Handler>>,
    /// The newest revision applied to the cache (0 until the first list).
    revision: tokio::sync::watch::Sender<Revision>,
}

impl Informer {
    pub fn new(resource: &'static Resource) -> Arc<Self> {
        Arc::new(Informer {
            resource,
            state: RwLock::new(State::default()),
            handlers: Mutex::new(Vec::new()),
            revision: tokio::sync::watch::channel(0).0,
        })
    }

    pub fn resource(&self) -> &'static Resource {
        self.resource
    }

    /// Registers a handler; handlers added before [`Informer::start`] see the initial list.
    pub fn on_change(&self, h: impl Fn(Change, &Value, Option<&Value>) + Send + Sync + 'static) {
        if let Ok(mut hs) = self.handlers.lock() {
            hs.push(Arc::new(h));
        }
    }

    /// Starts the list+watch loop in the background.
    pub fn start(self: &Arc<Self>, client: LocalClient) {
        let me = self.clone();
        tokio::spawn(async move { me.run(client).await });
    }

    pub fn get(&self, ns: Option<&str>, name: &str) -> Option<Arc<Value>> {
        let key = match ns {
            Some(ns) => format!("{ns}/{name}"),
            None => name.to_string(),
        };
        self.state.read().ok()?.objects.get(&key).cloned()
    }

    /// Every cached object in a namespace (all namespaces with None).
    pub fn list(&self, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Ok(st) = self.state.read() else {
            return Vec::new();
        };
        match ns {
            None => st.objects.values().cloned().collect(),
            Some(ns) => st
                .by_ns
                .get(ns)
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| st.objects.get(k).cloned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The newest revision the cache reflects.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// Waits until the first list is in the cache.
    pub async fn synced(&self) {
        self.caught_up(1).await;
    }

    /// Waits (at most 5 s) until the cache reflects every change up to `rev` of this resource,
    /// e.g. the objects a controller just wrote, so its next look does not act twice.
    pub async fn caught_up(&self, rev: Revision) {
        let mut rx = self.revision.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|r| *r >= rev)).await;
    }

    fn emit(&self, change: Change, obj: &Value, old: Option<&Value>) {
        let hs: Vec<Handler> = self.handlers.lock().map(|h| h.clone()).unwrap_or_default();
        for h in hs {
            h(change, obj, old);
        }
    }

    /// Replaces the cache with a fresh list and reports the differences.
    fn replace(&self, items: Vec<Value>, rev: Revision) {
        let mut fresh: HashMap<String, Arc<Value>> = HashMap::with_capacity(items.len());
        for it in items {
            fresh.insert(key_of(&it), Arc::new(it));
        }
        let old = match self.state.write() {
            Ok(mut st) => {
                st.by_ns.clear();
                for (k, obj) in &fresh {
                    st.index(k, obj);
                }
                std::mem::replace(&mut st.objects, fresh.clone())
            }
            Err(_) => return,
        };
        for (k, obj) in &fresh {
            match old.get(k) {
                None => self.emit(Change::Added, obj, None),
                Some(prev) if rv(prev) != rv(obj) => self.emit(Change::Modified, obj, Some(prev)),
                Some(_) => {}
            }
        }
        for (k, prev) in &old {
            if !fresh.contains_key(k) {
                self.emit(Change::Deleted, prev, Some(prev));
            }
        }
        self.revision.send_replace(rev.max(1));
    }

    fn apply(&self, change: Change, obj: Value, rev: Revision) {
        let key = key_of(&obj);
        let obj = Arc::new(obj);
        let prev = match self.state.write() {
            Ok(mut st) => match change {
                Change::Deleted => {
                    st.unindex(&key, &obj);
                    st.objects.remove(&key)
                }
                _ => {
                    st.index(&key, &obj);
                    st.objects.insert(key, obj.clone())
                }
            },
            Err(_) => return,
        };
        let change = match (change, &prev) {
            (Change::Modified, None) => Change::Added,
            (Change::Added, Some(_)) => Change::Modified,
            (c, _) => c,
        };
        self.emit(change, &obj, prev.as_deref());
        self.revision.send_if_modified(|r| {
            if rev > *r {
                *r = rev;
                true
            } else {
                false
            }
        });
    }

    async fn run(self: Arc<Self>, client: LocalClient) {
        let mut delay = Duration::from_millis(100);
        loop {
            let (items, rev) = match client.list(self.resource, None, "", "").await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(resource = self.resource.plural, error = %e, "informer list failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            self.replace(items, rev);
            let mut w = match client.watch(self.resource, None, "", "", rev).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::debug!(resource = self.resource.plural, error = %e, "informer watch failed");
                    // Not a hot re-list loop when watches keep failing.
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    continue;
                }
            };
            delay = Duration::from_millis(100);
            while let Some((change, obj, at)) = w.next_at().await {
                self.apply(change, obj, at);
            }
        }
    }
}

fn rv(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys() {
        let o = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert_eq!(key_of(&o), "ns/a");
        assert_eq!(split_key("ns/a"), (Some("ns"), "a"));
        let n = json!({"metadata": {"name": "node1"}});
        assert_eq!(key_of(&n), "node1");
        assert_eq!(split_key("node1"), (None, "node1"));
    }

    #[tokio::test]
    async fn replace_reports_differences() {
        let r = crate::resources::find("", "v1", "pods").expect("pods");
        let inf = Informer::new(r);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        inf.on_change(move |c, o, _| s.lock().unwrap().push((c, key_of(o))));
        let a = json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "1"}});
        let b = json!({"metadata": {"name": "b", "namespace": "n", "resourceVersion": "2"}});
        inf.replace(vec![a.clone(), b], 2);
        let a2 = json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "3"}});
        inf.replace(vec![a2], 3);
        let got = seen.lock().unwrap().clone();
        assert!(got.contains(&(Change::Added, "n/a".into())));
        assert!(got.contains(&(Change::Modified, "n/a".into())));
        assert!(got.contains(&(Change::Deleted, "n/b".into())));
        assert_eq!(inf.list(Some("n")).len(), 1);
        assert_eq!(inf.revision(), 3);
        inf.apply(Change::Deleted, a, 4);
        assert!(inf.get(Some("n"), "a").is_none());
        assert!(inf.list(Some("n")).is_empty());
        assert_eq!(inf.revision(), 4);
        let c = json!({"metadata": {"name": "c", "namespace": "m", "resourceVersion": "5"}});
        inf.apply(Change::Added, c, 5);
        assert_eq!(inf.list(Some("m")).len(), 1);
        assert!(inf.list(Some("n")).is_empty());
        assert_eq!(inf.list(None).len(), 1);
        assert_eq!(inf.revision(), 5);
    }
}
