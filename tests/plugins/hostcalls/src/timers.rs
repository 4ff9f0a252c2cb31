//! `tick-pause`: a request paused until the root's next tick, which resumes it through the
//! effective context; a request that ends first is forgotten.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Action;
use std::cell::RefCell;
use std::time::Duration;

use crate::HostcallsHttp;

thread_local! {
    // Contexts paused by the `tick-pause` scenario; the root's next on_tick resumes them.
    static TICK_PAUSED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

impl HostcallsHttp {
    pub(crate) fn tick_pause(&self) -> Action {
        TICK_PAUSED.with(|p| p.borrow_mut().push(self.context_id));
        // RootContext::set_tick_period is not reachable from an HTTP context; the
        // host applies the raw hostcall to the effective context's root.
        let _ = hostcalls::set_tick_period(Duration::from_millis(10));
        Action::Pause
    }
}

/// From the root's on_tick: resumes every paused request, then points the effective context
/// back at the root.
pub(crate) fn resume_paused(root_context_id: u32) {
    // Take the list first: resuming may re-enter the module for the paused request.
    let paused = TICK_PAUSED.with(|p| std::mem::take(&mut *p.borrow_mut()));
    let switched = !paused.is_empty();
    for id in paused {
        // Hostcalls act on the effective context, so point it at the paused request.
        if hostcalls::set_effective_context(id).is_ok() {
            let _ = hostcalls::resume_http_request();
        }
    }
    if switched {
        let _ = hostcalls::set_effective_context(root_context_id);
    }
}

/// From on_done: a request that ended while paused must not be resumed by a later tick.
pub(crate) fn forget_paused(id: u32) {
    TICK_PAUSED.with(|p| p.borrow_mut().retain(|&paused| paused != id));
}
