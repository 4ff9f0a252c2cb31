//! One watch per kind and namespace, kept going by kube's watcher: it lists, watches from the
//! list's resourceVersion, resumes a broken watch from the last version (bookmarks keep it
//! fresh) and lists again on `410 Gone`. Each watch feeds [`Objects`].

use std::sync::Arc;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::kinds::Kind;
use super::store::{Objects, Scope, WatchFailure};

/// Watches `kind` in `namespace` (only the object `name`, if given) until the returned task
/// is aborted. Errors (the apiserver gone, 403) are recorded in [`Objects`] until the next
/// list succeeds, logged, and retried with kube's backoff; what was seen last stays.
pub fn spawn(
    client: kube::Client,
    kind: Kind,
    namespace: String,
    name: Option<String>,
    objects: Arc<Objects>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client, &namespace, &kind.api_resource());
        let mut config = watcher::Config::default();
        if let Some(name) = &name {
            // RBAC can grant one Secret by name; list and watch then need this selector.
            config = config.fields(&format!("metadata.name={name}"));
        }
        let scope = Scope {
            plural: kind.plural,
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let mut stream = std::pin::pin!(watcher::watcher(api, config).default_backoff());
        let mut listing: Vec<DynamicObject> = Vec::new();
        let mut first = true;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(object)) => listing.push(object),
                Ok(Event::InitDone) => {
                    objects.recovered(&scope);
                    objects.replace(&scope, std::mem::take(&mut listing));
                    if std::mem::take(&mut first) {
                        objects.first_list_done(&scope);
                    }
                }
                Ok(Event::Apply(object)) => objects.apply(kind.plural, object),
                Ok(Event::Delete(object)) => objects.delete(kind.plural, &object),
                Err(e) => {
                    let forbidden = is_forbidden(&e);
                    let message = e.to_string();
                    if forbidden {
                        tracing::error!(
                            kind = kind.kind,
                            namespace = %namespace,
                            name = name.as_deref().unwrap_or("*"),
                            "RBAC does not let wasp read {} (grant get, list and watch: see \
                             deploy/base/rbac.yaml); retrying, the last objects seen stay in use: {message}",
                            kind.plural
                        );
                    } else {
                        tracing::warn!(
                            kind = kind.kind,
                            namespace = %namespace,
                            name = name.as_deref().unwrap_or("*"),
                            "watch failed, retrying (the last objects seen stay in use): {message}"
                        );
                    }
                    objects.failed(WatchFailure {
                        scope: scope.clone(),
                        forbidden,
                        message,
                    });
                }
            }
        }
    })
}

/// Whether the apiserver refused the request (403).
fn is_forbidden(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => {
            matches!(e, kube::Error::Api(status) if status.code == 403)
        }
        watcher::Error::WatchError(status) => status.code == 403,
        watcher::Error::NoResourceVersion => false,
    }
}
