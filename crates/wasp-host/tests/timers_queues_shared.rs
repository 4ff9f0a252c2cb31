//! Timers, shared queues and shared data: state that outlives one callback or one VM.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::*;
use wasp_host::{Effect, HeadersAction, StreamType, VmConfig};

fn vm_config(vm_id: &str) -> VmConfig {
    VmConfig {
        vm_id: vm_id.into(),
        ..VmConfig::default()
    }
}

#[test]
fn a_paused_request_is_resumed_by_the_next_tick() {
    let mut f = start("hostcalls", "");
    assert!(f.vm.take_effects().is_empty(), "no timer without tick=");
    let (ctx, _, action) = f.scenario("tick-pause", &[]);
    assert!(action.is_stop());
    // Armed from the HTTP context: the timer belongs to its root.
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::TickPeriod {
            root_context: f.root,
            period: Some(Duration::from_millis(10)),
        }]
    );
    f.vm.on_tick(f.root).unwrap();
    assert_eq!(f.recorder.logs().last().map(String::as_str), Some("tick"));
    assert_eq!(
        f.vm.take_effects(),
        vec![
            Effect::Continue {
                context: ctx,
                stream: StreamType::HttpRequest,
            },
            // Not configured with tick=: the plugin stops its timer again.
            Effect::TickPeriod {
                root_context: f.root,
                period: None,
            },
        ]
    );
    // A later tick finds nothing to resume.
    f.vm.on_tick(f.root).unwrap();
    let effects = f.vm.take_effects();
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Continue { .. })),
        "{effects:?}"
    );
}

#[test]
fn a_tick_for_a_request_that_ended_resumes_nothing() {
    let mut f = start("hostcalls", "");
    let (ctx, _, _) = f.scenario("tick-pause", &[]);
    f.vm.finish_stream(ctx).unwrap();
    f.vm.take_effects();
    f.vm.on_tick(f.root).unwrap();
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::TickPeriod {
            root_context: f.root,
            period: None,
        }]
    );
}

#[test]
fn a_configured_timer_is_armed_at_start() {
    let mut f = start("hostcalls", "tick=50");
    assert_eq!(
        f.vm.take_effects(),
        vec![Effect::TickPeriod {
            root_context: f.root,
            period: Some(Duration::from_millis(50)),
        }]
    );
    f.vm.on_tick(f.root).unwrap();
    f.vm.on_tick(f.root).unwrap();
    let ticks = f.recorder.logs().iter().filter(|l| *l == "tick").count();
    assert_eq!(ticks, 2);
    assert!(f.vm.take_effects().is_empty(), "the timer keeps running");
    // on_tick for something that is not a root context is refused without a guest call.
    let (ctx, _, _) = f.scenario("", &[]);
    assert!(f.vm.on_tick(ctx).is_err());
    assert!(f.vm.on_tick(9999).is_err());
}

const FULL_CYCLE: &str = "set1=ok,v=v1,stale=CasMismatch,fresh=ok,v=v2,del=ok,after-del=absent";

fn shared_data(f: &mut Fixture, key: &str) -> String {
    let (_, stream, action) = f.scenario("shared-data", &[("x-key", key)]);
    assert_eq!(action, HeadersAction::Continue);
    header(&stream, "x-shared").expect("x-shared")
}

#[test]
fn shared_data_cas_rules() {
    let mut f = start_with(
        "hostcalls",
        "",
        vm_config("shared-cas"),
        Recorder::default(),
    );
    assert_eq!(
        shared_data(&mut f, "cas-key"),
        "absent,set1=ok,v=v1,stale=CasMismatch,fresh=ok,v=v2,del=ok,after-del=absent"
    );
    // Deleted means gone from the store, not an empty value.
    assert_eq!(host().shared().data.get("shared-cas", b"cas-key"), None);
    // And the cycle can run again.
    assert_eq!(
        shared_data(&mut f, "cas-key"),
        format!("absent,{FULL_CYCLE}")
    );
}

/// A plugin that writes `k-wat` = `from-wat` into shared data when its VM starts.
fn shared_data_writer() -> Arc<wasp_host::PluginModule> {
    load_wat(&wat_plugin(
        r#"(import "env" "proxy_set_shared_data"
             (func $set (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 100) "k-wat")
  (data (i32.const 120) "from-wat")
  (data (i32.const 200) "set=00")
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
    (call $log_number (i32.const 200) (i32.const 6) (i32.const 204)
      (call $set (i32.const 100) (i32.const 5) (i32.const 120) (i32.const 8) (i32.const 0)))
    (i32.const 1))"#,
    ))
    .unwrap()
}

#[test]
fn shared_data_is_shared_by_vms_with_the_same_vm_id_only() {
    let writer = Recorder::default();
    let _writer = start_module_with(&shared_data_writer(), vm_config("shared-a"), &writer);
    assert_eq!(writer.logs(), ["set=00"]);

    // Another VM (another module, even) with the same vm_id sees the value...
    let mut same = start_with("hostcalls", "", vm_config("shared-a"), Recorder::default());
    // ...and one with another vm_id does not.
    let mut other = start_with("hostcalls", "", vm_config("shared-b"), Recorder::default());
    assert_eq!(
        shared_data(&mut other, "k-wat"),
        format!("absent,{FULL_CYCLE}")
    );
    // The other vm_id's delete did not touch shared-a's key.
    assert_eq!(
        host()
            .shared()
            .data
            .get("shared-a", b"k-wat")
            .map(|(v, _)| v),
        Some(b"from-wat".to_vec())
    );
    assert_eq!(
        shared_data(&mut same, "k-wat"),
        format!("present,{FULL_CYCLE}")
    );
    // Its delete is seen by every VM of shared-a.
    assert_eq!(host().shared().data.get("shared-a", b"k-wat"), None);
    let mut third = start_with("hostcalls", "", vm_config("shared-a"), Recorder::default());
    assert_eq!(
        shared_data(&mut third, "k-wat"),
        format!("absent,{FULL_CYCLE}")
    );
}

#[test]
fn queue_enqueue_notifies_the_registering_root_and_on_queue_ready_dequeues() {
    let notifier = Arc::new(QueueRecorder::default());
    let mut f = start_with(
        "hostcalls",
        "",
        VmConfig {
            vm_id: "queue-vm".into(),
            queue_notifier: Some(notifier.clone()),
            ..VmConfig::default()
        },
        Recorder::default(),
    );
    let id: u32 = f
        .recorder
        .logs()
        .iter()
        .find_map(|l| l.strip_prefix("queue registered id="))
        .expect("queue registered")
        .parse()
        .unwrap();
    assert_ne!(id, 0);
    assert_eq!(
        host()
            .shared()
            .queues
            .resolve("queue-vm", b"hostcalls_queue"),
        Some(id)
    );

    let (_, stream, action) = f.scenario("queue", &[]);
    assert_eq!(action, HeadersAction::Continue);
    assert_eq!(header(&stream, "x-queue").as_deref(), Some("ok"));
    assert_eq!(header(&stream, "x-queue-missing").as_deref(), Some("none"));
    assert_eq!(*notifier.ready.lock().unwrap(), vec![(f.root, id)]);

    f.vm.on_queue_ready(f.root, id).unwrap();
    let line = format!("queue_ready id={id} msg=hello-queue");
    assert_eq!(f.recorder.logs().last(), Some(&line));
    // The plugin drained the queue.
    assert_eq!(host().shared().queues.dequeue(id), Ok(None));
}

#[test]
fn the_last_vm_to_register_a_queue_is_notified() {
    let first = Arc::new(QueueRecorder::default());
    let second = Arc::new(QueueRecorder::default());
    let config = |notifier: &Arc<QueueRecorder>| VmConfig {
        vm_id: "queue-vm-2".into(),
        queue_notifier: Some(notifier.clone()),
        ..VmConfig::default()
    };
    let mut a = start_with("hostcalls", "", config(&first), Recorder::default());
    let b = start_with("hostcalls", "", config(&second), Recorder::default());
    let (_, stream, _) = a.scenario("queue", &[]);
    assert_eq!(header(&stream, "x-queue").as_deref(), Some("ok"));
    assert!(first.ready.lock().unwrap().is_empty());
    let ready = second.ready.lock().unwrap().clone();
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].0, b.root);
    // Queues are per vm_id: another vm_id has its own hostcalls_queue.
    let other = host()
        .shared()
        .queues
        .resolve("queue-vm-3", b"hostcalls_queue");
    assert_eq!(other, None);
}

#[test]
fn a_queue_nobody_subscribed_to_still_takes_messages() {
    let mut f = start_with(
        "hostcalls",
        "",
        vm_config("queue-vm-silent"),
        Recorder::default(),
    );
    let (_, stream, _) = f.scenario("queue", &[]);
    assert_eq!(header(&stream, "x-queue").as_deref(), Some("ok"));
    let id = host()
        .shared()
        .queues
        .resolve("queue-vm-silent", b"hostcalls_queue")
        .unwrap();
    assert_eq!(
        host().shared().queues.dequeue(id),
        Ok(Some(b"hello-queue".to_vec()))
    );
}
