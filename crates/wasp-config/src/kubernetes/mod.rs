//! WasmPlugin, TrafficExtension and EnvoyFilter resources read from the Kubernetes API: listed
//! and watched in the workload's namespace and Istio's root namespace, turned into the same
//! [`ResourceSet`] as resource files, so Istio's selection and ordering rules apply unchanged.
//!
//! The Secrets that `imagePullSecret` names are watched one by one, by name
//! (`fieldSelector=metadata.name=`): RBAC can then grant exactly those, and a Secret that
//! changes reaches the next fetch.
//!
//! The client is kube's: in-cluster configuration (service account token and CA,
//! `KUBERNETES_SERVICE_HOST`) or a kubeconfig, over rustls.

mod kinds;
mod reference;
mod report;
mod snapshot;
mod store;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::sources::KubernetesSettings;

pub use self::kinds::{ENVOY_FILTER, Kind, PLUGIN_KINDS, SECRET, TRAFFIC_EXTENSION, WASM_PLUGIN};
pub use self::reference::ObjectRef;
pub use self::report::{CONDITION_TYPE, CONTROLLER, Outcome, StatusReporter};
pub use self::snapshot::ApiResources;

/// Why the API server cannot be reached as configured.
#[derive(Debug, thiserror::Error)]
pub enum KubernetesError {
    /// The kubeconfig named cannot be read or used.
    #[error("kubeconfig {path}: {reason}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither in-cluster configuration nor a kubeconfig was found or usable.
    #[error("no Kubernetes configuration (in-cluster or kubeconfig): {0}")]
    Infer(String),
    /// The client could not be built from the configuration (TLS, proxy).
    #[error("Kubernetes client: {0}")]
    Client(String),
    /// RBAC does not let wasp list or watch the plugin resources.
    #[error(
        "the Kubernetes API refuses to let wasp read its plugin resources (RBAC: grant get, list \
         and watch on wasmplugins and trafficextensions.extensions.istio.io and \
         envoyfilters.networking.istio.io in the workload and root namespaces; see \
         deploy/base/rbac.yaml and deploy/root-namespace/rbac.yaml): {}",
        .0.join("; ")
    )]
    Forbidden(Vec<String>),
}

/// A client for the API server: from `settings.kubeconfig`, or in-cluster configuration,
/// or the usual kubeconfig (`KUBECONFIG`, `~/.kube/config`), as kubectl finds it.
pub async fn client(settings: &KubernetesSettings) -> Result<kube::Client, KubernetesError> {
    let config = match &settings.kubeconfig {
        Some(path) => {
            let error = |reason: String| KubernetesError::Kubeconfig {
                path: path.clone(),
                reason,
            };
            let file =
                kube::config::Kubeconfig::read_from(path).map_err(|e| error(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| error(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| KubernetesError::Infer(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| KubernetesError::Client(e.to_string()))
}

/// Follows the plugin resources of some namespaces; dropping it stops the watches.
pub struct KubernetesSource {
    objects: Arc<store::Objects>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How many plugin-kind watches run (each lists once before it watches).
    watches: usize,
}

impl KubernetesSource {
    /// Starts a watch of every plugin kind in each of `namespaces` (on the current tokio
    /// runtime). The first list may still be on its way when this returns: see
    /// [`KubernetesSource::changed`].
    pub fn start(client: kube::Client, namespaces: &[String]) -> KubernetesSource {
        let objects = Arc::new(store::Objects::default());
        let mut tasks = Vec::new();
        let mut seen = Vec::new();
        for namespace in namespaces {
            if seen.contains(namespace) {
                continue; // the workload may live in the root namespace
            }
            seen.push(namespace.clone());
            for kind in PLUGIN_KINDS {
                tasks.push(watch::spawn(
                    client.clone(),
                    kind,
                    namespace.clone(),
                    None,
                    objects.clone(),
                ));
            }
        }
        let watches = tasks.len();
        tasks.push(tokio::spawn(follow_secrets(client, objects.clone())));
        KubernetesSource {
            objects,
            tasks,
            watches,
        }
    }

    /// Waits until every watch has listed once — the plugin kinds, and then the pull secrets
    /// their resources name (the resources are then complete) — or `within` passed (the API
    /// server is slow or gone: what is there is used, and the watches go on trying). Returns
    /// whether they all listed.
    pub async fn wait_listed(&self, within: std::time::Duration) -> bool {
        matches!(self.first_lists(within).await, Ok(true))
    }

    /// As [`KubernetesSource::wait_listed`], but a watch of a plugin kind that RBAC forbids
    /// ends the wait at once with [`KubernetesError::Forbidden`]: retrying will not help, and
    /// starting without the resources would hide the misconfiguration. (A pull secret that
    /// cannot be read counts as listed: its plugin's fetch fails and says why.)
    pub async fn first_lists(&self, within: std::time::Duration) -> Result<bool, KubernetesError> {
        let mut listed = self.objects.listed();
        let mut changed = self.objects.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let failures = self.objects.failures();
            let forbidden: Vec<String> = failures
                .iter()
                .filter(|f| f.forbidden && f.scope.plural != SECRET.plural)
                .map(|f| f.message.clone())
                .collect();
            if !forbidden.is_empty() {
                return Err(KubernetesError::Forbidden(forbidden));
            }
            let done = {
                let listed = listed.borrow_and_update();
                let kinds = listed.iter().filter(|s| s.name.is_none()).count();
                kinds >= self.watches
                    && self.resources().set.pull_secret_names().into_iter().all(
                        |(namespace, name)| {
                            let scope = store::Scope {
                                plural: SECRET.plural,
                                namespace,
                                name: Some(name),
                            };
                            listed.contains(&scope) || failures.iter().any(|f| f.scope == scope)
                        },
                    )
            };
            if done {
                return Ok(true);
            }
            tokio::select! {
                r = listed.changed() => if r.is_err() { return Ok(false) },
                r = changed.changed() => if r.is_err() { return Ok(false) },
                () = tokio::time::sleep_until(deadline) => return Ok(false),
            }
        }
    }

    /// A receiver whose value moves whenever an object is added, changed or removed.
    pub fn changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.objects.subscribe()
    }

    /// The resources as last seen, the objects that did not parse (left out), and the object
    /// behind each resource.
    pub fn resources(&self) -> ApiResources {
        snapshot::resources(&self.objects.snapshot(), &self.objects.failures())
    }
}

impl Drop for KubernetesSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Keeps one watch on each Secret the resources name, starting and stopping them as the
/// resources change.
async fn follow_secrets(client: kube::Client, objects: Arc<store::Objects>) {
    let mut changed = objects.subscribe();
    let mut watches = SecretWatches::default();
    loop {
        let wanted = snapshot::resources(&objects.snapshot(), &[])
            .set
            .pull_secret_names();
        let gone: Vec<(String, String)> = watches
            .0
            .keys()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(task) = watches.0.remove(&key) {
                task.abort();
            }
            let scope = store::Scope {
                plural: SECRET.plural,
                namespace: key.0,
                name: Some(key.1),
            };
            objects.replace(&scope, Vec::new());
        }
        for key in wanted {
            if let std::collections::btree_map::Entry::Vacant(slot) = watches.0.entry(key) {
                let (namespace, name) = slot.key().clone();
                let task = watch::spawn(
                    client.clone(),
                    SECRET,
                    namespace,
                    Some(name),
                    objects.clone(),
                );
                slot.insert(task);
            }
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}

/// The Secret watches by `(namespace, name)`; they stop with their owner.
#[derive(Default)]
struct SecretWatches(BTreeMap<(String, String), tokio::task::JoinHandle<()>>);

impl Drop for SecretWatches {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}
