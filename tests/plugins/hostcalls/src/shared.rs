//! State shared between contexts: shared data (get, set with CAS, remove), shared queues
//! (resolve, enqueue; the root dequeues) and a per-VM request count (`vm-shared`).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, Bytes, Status};
use std::cell::Cell;

use crate::{HostcallsHttp, lossy};

thread_local! {
    // Requests seen by every plugin of this VM (`vm-shared`): plugins that share a VM share it.
    static VM_REQUESTS: Cell<u32> = const { Cell::new(0) };
}

/// `ok` or the Debug form of the error status (e.g. `CasMismatch`).
fn outcome(result: Result<(), Status>) -> String {
    match result {
        Ok(()) => "ok".to_string(),
        Err(status) => format!("{status:?}"),
    }
}

impl HostcallsHttp {
    pub(crate) fn shared_data(&self) -> Action {
        let key = self.get_http_request_header("x-key").unwrap_or_default();
        let value = |v: Option<Bytes>| v.map_or("absent".to_string(), |v| lossy(Some(v)));
        let mut steps = Vec::new();

        let (v, _) = self.get_shared_data(&key);
        steps.push(if v.is_some() { "present" } else { "absent" }.to_string());
        let r = self.set_shared_data(&key, Some(b"v1"), None);
        steps.push(format!("set1={}", outcome(r)));
        let (v, cas) = self.get_shared_data(&key);
        steps.push(format!("v={}", value(v)));
        // A CAS the host never handed out must be rejected...
        let stale = cas.unwrap_or(0).wrapping_add(1000);
        let r = self.set_shared_data(&key, Some(b"v2"), Some(stale));
        steps.push(format!("stale={}", outcome(r)));
        // ...and the current one accepted.
        let r = self.set_shared_data(&key, Some(b"v2"), cas);
        steps.push(format!("fresh={}", outcome(r)));
        let (v, _) = self.get_shared_data(&key);
        steps.push(format!("v={}", value(v)));
        let r = self.remove_shared_data(&key, None);
        steps.push(format!("del={}", outcome(r)));
        let (v, _) = self.get_shared_data(&key);
        steps.push(match v {
            None => "after-del=absent".to_string(),
            Some(v) => format!("after-del=present:{}", v.len()),
        });

        self.set_http_request_header("x-shared", Some(&steps.join(",")));
        Action::Continue
    }

    pub(crate) fn queue(&self) -> Action {
        let result = match hostcalls::resolve_shared_queue("", "hostcalls_queue") {
            Ok(Some(id)) => outcome(self.enqueue_shared_queue(id, Some(b"hello-queue"))),
            Ok(None) => "not-found".to_string(),
            Err(status) => format!("{status:?}"),
        };
        self.set_http_request_header("x-queue", Some(&result));
        let missing = match hostcalls::resolve_shared_queue("", "no-such-queue") {
            Ok(Some(_)) => "some",
            _ => "none",
        };
        self.set_http_request_header("x-queue-missing", Some(missing));
        Action::Continue
    }

    pub(crate) fn vm_shared(&self) -> Action {
        let n = VM_REQUESTS.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        self.add_http_request_header("x-vm-requests", &n.to_string());
        Action::Continue
    }
}
