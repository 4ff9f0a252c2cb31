//! Status back to the cluster: for each plugin resource this proxy selected, a Kubernetes
//! Event (events.k8s.io/v1) saying whether it loaded, and a condition in the resource's
//! status (Istio's CRDs have a status subresource), with the reason `/plugins` shows.
//!
//! Only changes are written: an object is reported again when its outcome, its generation or
//! its identity (uid) changes, not on every reload of the others. Writes that fail (the
//! apiserver gone) are retried. A write that RBAC refuses (403) is not tried again in that
//! namespace: least-privilege RBAC may leave out `*/status`, or everything in Istio's root
//! namespace, whose resources every proxy of the mesh shares (deploy/ grants neither there).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::reference::ObjectRef;

/// The condition type wasp writes in a resource's `status.conditions`.
pub const CONDITION_TYPE: &str = "WaspPluginLoaded";

/// `reportingController` of wasp's Events.
pub const CONTROLLER: &str = "wasp.io/proxy";

/// Events and conditions say this much of a reason at most (an Event's note is 1 kB).
const NOTE_LIMIT: usize = 900;

/// How long a failed write waits before it is tried again.
const RETRY: Duration = Duration::from_secs(2);

/// What became of one plugin resource on this proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its module was fetched and its plugin runs on every worker.
    Loaded,
    /// Its module could not be fetched (registry, pull secret, checksum): the reason.
    FetchFailed(String),
    /// Its module was fetched but its plugin does not run (it did not compile, its VM did not
    /// start, or it trapped): the reason.
    VmFailed(String),
    /// The resource does not parse or is invalid, and was left out: the error.
    Invalid(String),
}

impl Outcome {
    /// The Event's and condition's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Outcome::Loaded => "Loaded",
            Outcome::FetchFailed(_) => "FetchFailed",
            Outcome::VmFailed(_) => "VMFailed",
            Outcome::Invalid(_) => "Invalid",
        }
    }

    /// The more serious of two outcomes (one resource may declare several plugins).
    pub fn worse(self, other: Outcome) -> Outcome {
        let rank = |o: &Outcome| match o {
            Outcome::Loaded => 0,
            Outcome::VmFailed(_) => 1,
            Outcome::FetchFailed(_) => 2,
            Outcome::Invalid(_) => 3,
        };
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }

    /// The sentence an Event's note and a condition's message carry.
    fn message(&self, instance: &str) -> String {
        let text = match self {
            Outcome::Loaded => format!("loaded by {instance}"),
            Outcome::FetchFailed(why) => format!("{instance} could not fetch its module: {why}"),
            Outcome::VmFailed(why) => format!("{instance} could not run it: {why}"),
            Outcome::Invalid(why) => format!("{instance} left it out: {why}"),
        };
        truncate(text, NOTE_LIMIT)
    }
}

/// Reports outcomes in the background; dropping it stops the reporting.
pub struct StatusReporter {
    wanted: watch::Sender<Vec<(ObjectRef, Outcome)>>,
    task: tokio::task::JoinHandle<()>,
}

impl StatusReporter {
    /// Starts reporting on the current tokio runtime, as `instance` (the pod's name).
    pub fn start(client: kube::Client, instance: String) -> StatusReporter {
        let (wanted, rx) = watch::channel(Vec::new());
        let task = tokio::spawn(run(client, instance, rx));
        StatusReporter { wanted, task }
    }

    /// The outcome of every resource now; what changed since the last call is written.
    pub fn report(&self, outcomes: Vec<(ObjectRef, Outcome)>) {
        self.wanted.send_if_modified(|now| {
            let changed = *now != outcomes;
            *now = outcomes;
            changed
        });
    }
}

impl Drop for StatusReporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What has been written of one object: its event and its condition, separately (one may
/// fail while the other lands).
#[derive(Default)]
struct Written {
    event: Option<Outcome>,
    condition: Option<Outcome>,
}

async fn run(
    client: kube::Client,
    instance: String,
    mut wanted: watch::Receiver<Vec<(ObjectRef, Outcome)>>,
) {
    let mut written: BTreeMap<ObjectRef, Written> = BTreeMap::new();
    // (namespace, what) that RBAC refused: not tried again.
    let mut refused: BTreeSet<(String, &'static str)> = BTreeSet::new();
    loop {
        let now = wanted.borrow_and_update().clone();
        // Objects gone from the selection are forgotten: reported again if they come back.
        written.retain(|object, _| now.iter().any(|(o, _)| o == object));
        let mut pending = false;
        for (object, outcome) in &now {
            let done = written.entry(object.clone()).or_default();
            let allowed =
                |refused: &BTreeSet<_>, what| !refused.contains(&(object.namespace.clone(), what));
            if allowed(&refused, EVENTS) && done.event.as_ref() != Some(outcome) {
                match publish_event(&client, &instance, object, outcome).await {
                    Ok(()) => done.event = Some(outcome.clone()),
                    Err(e) => pending |= failed(&mut refused, object, EVENTS, &e),
                }
            }
            if allowed(&refused, CONDITIONS) && done.condition.as_ref() != Some(outcome) {
                match write_condition(&client, &instance, object, outcome).await {
                    Ok(()) => done.condition = Some(outcome.clone()),
                    Err(e) => pending |= failed(&mut refused, object, CONDITIONS, &e),
                }
            }
        }
        let changed = if pending {
            tokio::select! {
                r = wanted.changed() => r,
                () = tokio::time::sleep(RETRY) => Ok(()),
            }
        } else {
            wanted.changed().await
        };
        if changed.is_err() {
            return;
        }
    }
}

const EVENTS: &str = "events";
const CONDITIONS: &str = "status conditions";

/// Notes a write that failed: refused by RBAC (not tried again in that namespace), or to be
/// retried (returns true).
fn failed(
    refused: &mut BTreeSet<(String, &'static str)>,
    object: &ObjectRef,
    what: &'static str,
    error: &kube::Error,
) -> bool {
    match error {
        kube::Error::Api(status) if status.code == 403 => {
            tracing::info!(
                "RBAC does not let wasp write {what} in namespace {} ({}): none are written \
                 there; /plugins still shows every outcome",
                object.namespace,
                status.message
            );
            refused.insert((object.namespace.clone(), what));
            false
        }
        _ => {
            tracing::warn!("cannot write {what} of {object} (will retry): {error}");
            true
        }
    }
}

/// Creates one Event about `object` in its namespace.
async fn publish_event(
    client: &kube::Client,
    instance: &str,
    object: &ObjectRef,
    outcome: &Outcome,
) -> Result<(), kube::Error> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            // As kubectl and client-go name events: the object's name and a unique suffix.
            name: Some(format!("{}.{:x}", object.name, now.as_nanosecond())),
            namespace: Some(object.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(
            match outcome {
                Outcome::Loaded => "Normal",
                _ => "Warning",
            }
            .into(),
        ),
        reason: Some(outcome.reason().into()),
        action: Some("LoadPlugin".into()),
        note: Some(outcome.message(instance)),
        regarding: Some(object.reference()),
        reporting_controller: Some(CONTROLLER.into()),
        reporting_instance: Some(truncate(instance.to_string(), 128)),
        ..Event::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), &object.namespace);
    events.create(&PostParams::default(), &event).await?;
    Ok(())
}

/// Sets wasp's condition in `object`'s status, keeping every other condition: read, change,
/// write back with the version read (a conflict reads again).
async fn write_condition(
    client: &kube::Client,
    instance: &str,
    object: &ObjectRef,
    outcome: &Outcome,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &object.namespace,
        &object.kind.api_resource(),
    );
    let mut attempts = 0;
    loop {
        attempts += 1;
        let Some(mut current) = api.get_opt(&object.name).await? else {
            return Ok(()); // deleted meanwhile: nothing to say
        };
        if object.uid.is_some() && current.metadata.uid != object.uid {
            return Ok(()); // a new object of the same name: its own report comes
        }
        if !set_condition(&mut current.data, instance, object, outcome) {
            return Ok(());
        }
        match api
            .replace_status(&object.name, &PostParams::default(), &current)
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 409 && attempts < 5 => continue,
            other => return other.map(|_| ()),
        }
    }
}

/// Puts wasp's condition into `data.status.conditions`; false when it already says this.
fn set_condition(data: &mut Value, instance: &str, object: &ObjectRef, outcome: &Outcome) -> bool {
    let status = if *outcome == Outcome::Loaded {
        "True"
    } else {
        "False"
    };
    let message = outcome.message(instance);
    if !data.is_object() {
        *data = json!({});
    }
    let conditions = data
        .as_object_mut()
        .map(|d| d.entry("status").or_insert_with(|| json!({})))
        .and_then(|s| {
            if !s.is_object() {
                *s = json!({});
            }
            s.as_object_mut()
        })
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(conditions) = conditions else {
        return false;
    };
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let Some(list) = conditions.as_array_mut() else {
        return false;
    };
    let ours = list.iter().position(|c| c["type"] == CONDITION_TYPE);
    let old = ours.map(|i| list[i].clone());
    let same = |field: &str, value: &Value| old.as_ref().is_some_and(|o| o[field] == *value);
    let generation = json!(object.generation);
    if same("status", &json!(status))
        && same("reason", &json!(outcome.reason()))
        && same("message", &json!(message))
        && same("observedGeneration", &generation)
    {
        return false;
    }
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let transition = match &old {
        Some(o) if o["status"] == status => o["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let condition = json!({
        "type": CONDITION_TYPE,
        "status": status,
        "reason": outcome.reason(),
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    });
    match ours {
        Some(i) => list[i] = condition,
        None => list.push(condition),
    }
    true
}

/// At most `limit` bytes, cut on a character boundary.
fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut cut = limit - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::kinds::WASM_PLUGIN;

    fn object() -> ObjectRef {
        ObjectRef {
            kind: WASM_PLUGIN,
            namespace: "default".into(),
            name: "p".into(),
            uid: Some("u1".into()),
            generation: Some(2),
        }
    }

    #[test]
    fn the_condition_is_added_next_to_others_and_not_rewritten_when_unchanged() {
        let mut data = json!({"spec": {}, "status": {"conditions": [{"type": "Reconciled", "status": "True"}]}});
        assert!(set_condition(
            &mut data,
            "pod-a",
            &object(),
            &Outcome::Loaded
        ));
        let list = data["status"]["conditions"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["type"], "Reconciled");
        assert_eq!(list[1]["type"], CONDITION_TYPE);
        assert_eq!(list[1]["status"], "True");
        assert_eq!(list[1]["observedGeneration"], 2);
        assert!(!set_condition(
            &mut data,
            "pod-a",
            &object(),
            &Outcome::Loaded
        ));

        let failed = Outcome::FetchFailed("401 Unauthorized".into());
        assert!(set_condition(&mut data, "pod-a", &object(), &failed));
        let ours = &data["status"]["conditions"][1];
        assert_eq!(ours["status"], "False");
        assert_eq!(ours["reason"], "FetchFailed");
        assert!(
            ours["message"]
                .as_str()
                .unwrap()
                .contains("401 Unauthorized")
        );
    }

    #[test]
    fn a_status_that_is_not_an_object_is_replaced() {
        let mut data = json!({"status": "broken"});
        assert!(set_condition(
            &mut data,
            "pod-a",
            &object(),
            &Outcome::Loaded
        ));
        assert_eq!(data["status"]["conditions"][0]["reason"], "Loaded");
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let cut = truncate("é".repeat(1000), 11);
        assert!(cut.len() <= 11 && cut.ends_with("..."), "{cut}");
    }

    #[test]
    fn the_worst_outcome_wins() {
        let vm = Outcome::VmFailed("trap".into());
        assert_eq!(Outcome::Loaded.worse(vm.clone()), vm);
        assert_eq!(vm.clone().worse(Outcome::Loaded), vm);
    }
}
