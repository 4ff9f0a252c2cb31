//! A network (L4) plugin for the `tcp` workload: counts the bytes each way in two counters
//! (`tcp_count_downstream_bytes_total`, `tcp_count_upstream_bytes_total`) and lets every byte
//! through unchanged: the per-chunk cost of a network plugin that reads its data sizes.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { counters: None }) });
}}

struct Root {
    counters: Option<(u32, u32)>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let define = |name| hostcalls::define_metric(MetricType::Counter, name).ok();
        self.counters = define("tcp_count_downstream_bytes_total")
            .zip(define("tcp_count_upstream_bytes_total"));
        self.counters.is_some()
    }

    fn create_stream_context(&self, _: u32) -> Option<Box<dyn StreamContext>> {
        let (down, up) = self.counters?;
        Some(Box::new(Count { down, up }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::StreamContext)
    }
}

struct Count {
    down: u32,
    up: u32,
}

impl Context for Count {}

impl StreamContext for Count {
    fn on_downstream_data(&mut self, size: usize, _: bool) -> Action {
        let _ = hostcalls::increment_metric(self.down, size as i64);
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _: bool) -> Action {
        let _ = hostcalls::increment_metric(self.up, size as i64);
        Action::Continue
    }
}
