//! The root context: VM start and plugin configuration (metrics, tick period, the shared
//! queue), the tick that resumes `tick-pause` requests, queue deliveries and the creation of
//! each HTTP context.

use log::info;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::time::Duration;

use crate::{HostcallsHttp, lossy, metrics, timers};

pub(crate) struct HostcallsRoot {
    context_id: u32,
    /// The plugin configuration was `tick=<ms>`: keep ticking after a `tick-pause` resume.
    tick_configured: bool,
}

impl HostcallsRoot {
    pub(crate) fn new(context_id: u32) -> Self {
        HostcallsRoot {
            context_id,
            tick_configured: false,
        }
    }
}

impl Context for HostcallsRoot {}

impl RootContext for HostcallsRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        let config = lossy(self.get_vm_configuration());
        info!("vm_start config={config}");
        config != "fail-vm-start"
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = lossy(self.get_plugin_configuration());
        info!("configure config={config}");
        if config == "fail-configure" {
            return false;
        }

        self.tick_configured = false;
        if let Some(Ok(ms)) = config.strip_prefix("tick=").map(str::parse::<u64>) {
            self.set_tick_period(Duration::from_millis(ms));
            self.tick_configured = true;
        }

        metrics::define();

        // `no-queue`: leave the queue to another plugin (the last to register it gets its
        // on_queue_ready, as in Envoy).
        if config != "no-queue" {
            let queue_id = self.register_shared_queue("hostcalls_queue");
            info!("queue registered id={queue_id}");
        }
        true
    }

    fn on_tick(&mut self) {
        info!("tick");
        timers::resume_paused(self.context_id);
        if !self.tick_configured {
            self.set_tick_period(Duration::ZERO);
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(msg)) = self.dequeue_shared_queue(queue_id) {
            info!(
                "queue_ready id={queue_id} msg={}",
                String::from_utf8_lossy(&msg)
            );
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(HostcallsHttp {
            context_id,
            scenario: String::new(),
            grpc_messages: Vec::new(),
            callout_token: None,
            dispatches_out: 0,
            dispatch_statuses: Vec::new(),
            log_properties: String::new(),
        }))
    }
}
