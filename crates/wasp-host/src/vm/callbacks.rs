//! The callbacks a module exports, looked up once per VM.

use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

use crate::abi::AbiVersion;
use crate::state::VmState;

/// The headers callbacks lost their `end_of_stream` argument in 0.1.0.
#[derive(Clone)]
pub(super) enum HeadersFn {
    V1(TypedFunc<(u32, u32), u32>),
    V2(TypedFunc<(u32, u32, u32), u32>),
}

pub(super) type F1 = TypedFunc<u32, ()>;
pub(super) type F2 = TypedFunc<(u32, u32), ()>;
pub(super) type F3 = TypedFunc<(u32, u32, u32), ()>;
pub(super) type F1R = TypedFunc<u32, u32>;
pub(super) type F2R = TypedFunc<(u32, u32), u32>;
pub(super) type F3R = TypedFunc<(u32, u32, u32), u32>;
pub(super) type F5 = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The exported callbacks; `None` for those the module does not export (the host then acts
/// as if the callback had answered Continue).
pub(super) struct Callbacks {
    pub initialize: Option<TypedFunc<(), ()>>,
    pub start: Option<TypedFunc<(), ()>>,
    pub main: Option<F2R>,
    pub main_void: Option<TypedFunc<(), u32>>,
    pub context_create: Option<F2>,
    pub vm_start: Option<F2R>,
    pub configure: Option<F2R>,
    pub tick: Option<F1>,
    pub queue_ready: Option<F2>,
    pub request_headers: Option<HeadersFn>,
    pub request_body: Option<F3R>,
    pub request_trailers: Option<F2R>,
    pub response_headers: Option<HeadersFn>,
    pub response_body: Option<F3R>,
    pub response_trailers: Option<F2R>,
    pub http_call_response: Option<F5>,
    pub grpc_initial_metadata: Option<F3>,
    pub grpc_receive: Option<F3>,
    pub grpc_trailing_metadata: Option<F3>,
    pub grpc_close: Option<F3>,
    pub new_connection: Option<F1R>,
    pub downstream_data: Option<F3R>,
    pub upstream_data: Option<F3R>,
    pub downstream_close: Option<F2>,
    pub upstream_close: Option<F2>,
    pub done: Option<F1R>,
    pub log: Option<F1>,
    pub delete: Option<F1>,
}

impl Callbacks {
    /// Signatures were checked when the module was loaded, so a lookup only comes back empty
    /// for a callback that is not exported.
    pub fn resolve(instance: &Instance, store: &mut Store<VmState>, abi: AbiVersion) -> Callbacks {
        let headers = |store: &mut Store<VmState>, name: &str| {
            if abi.is_v0_1() {
                get(instance, store, name).map(HeadersFn::V1)
            } else {
                get(instance, store, name).map(HeadersFn::V2)
            }
        };
        Callbacks {
            initialize: get(instance, store, "_initialize"),
            start: get(instance, store, "_start"),
            main: get(instance, store, "main"),
            main_void: get(instance, store, "__main_void"),
            context_create: get(instance, store, "proxy_on_context_create"),
            vm_start: get(instance, store, "proxy_on_vm_start"),
            configure: get(instance, store, "proxy_on_configure"),
            tick: get(instance, store, "proxy_on_tick"),
            queue_ready: get(instance, store, "proxy_on_queue_ready"),
            request_headers: headers(store, "proxy_on_request_headers"),
            request_body: get(instance, store, "proxy_on_request_body"),
            request_trailers: get(instance, store, "proxy_on_request_trailers"),
            response_headers: headers(store, "proxy_on_response_headers"),
            response_body: get(instance, store, "proxy_on_response_body"),
            response_trailers: get(instance, store, "proxy_on_response_trailers"),
            http_call_response: get(instance, store, "proxy_on_http_call_response"),
            grpc_initial_metadata: get(instance, store, "proxy_on_grpc_receive_initial_metadata"),
            grpc_receive: get(instance, store, "proxy_on_grpc_receive"),
            grpc_trailing_metadata: get(instance, store, "proxy_on_grpc_receive_trailing_metadata"),
            grpc_close: get(instance, store, "proxy_on_grpc_close"),
            new_connection: get(instance, store, "proxy_on_new_connection"),
            downstream_data: get(instance, store, "proxy_on_downstream_data"),
            upstream_data: get(instance, store, "proxy_on_upstream_data"),
            downstream_close: get(instance, store, "proxy_on_downstream_connection_close"),
            upstream_close: get(instance, store, "proxy_on_upstream_connection_close"),
            done: get(instance, store, "proxy_on_done"),
            log: get(instance, store, "proxy_on_log"),
            delete: get(instance, store, "proxy_on_delete"),
        }
    }
}

fn get<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<VmState>,
    name: &str,
) -> Option<TypedFunc<P, R>> {
    instance.get_typed_func(&mut *store, name).ok()
}
