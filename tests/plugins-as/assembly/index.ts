// AssemblyScript Proxy-Wasm test plugin for wasp, built on @gcoredev/proxy-wasm-sdk-as.
//
// The SDK's own `log()` writes to WASI stdout (a FastEdge work-around) instead of calling
// `proxy_log`, so this plugin logs through the raw `proxy_log` import: the host's log capture
// then sees exactly the texts and levels below.

// The ABI entry points (proxy_on_*, proxy_abi_version_0_2_1, malloc) come from the SDK, except
// proxy_on_done and proxy_on_delete: the SDK's versions look every context up in its map of
// *HTTP* contexts, which does not hold the root context, so calling them for the root context
// (as a host does when it shuts a plugin down) aborts with "Key does not exist" and traps.
// The local exports below take precedence over the `export *`.
export * from "@gcoredev/proxy-wasm-sdk-as/assembly/proxy";
import * as sdk from "@gcoredev/proxy-wasm-sdk-as/assembly/exports";

import {
  RootContext,
  Context,
  registerRootContext,
  FilterHeadersStatusValues,
  LogLevelValues,
  stream_context,
  send_http_response,
  makeHeaderPair,
  Headers,
} from "@gcoredev/proxy-wasm-sdk-as/assembly";
import { proxy_log } from "@gcoredev/proxy-wasm-sdk-as/assembly/imports";
import { getRootContext } from "@gcoredev/proxy-wasm-sdk-as/assembly/runtime";

// Id of the root context, once the SDK has created it (0 = none yet; 0 is never a context id).
let rootContextId: u32 = 0;

export function proxy_on_done(context_id: u32): u32 {
  if (rootContextId != 0 && context_id == rootContextId) {
    return getRootContext(context_id).onDone() ? 1 : 0;
  }
  return sdk.proxy_on_done(context_id);
}

export function proxy_on_delete(context_id: u32): void {
  if (rootContextId != 0 && context_id == rootContextId) {
    getRootContext(context_id).onDelete();
    return;
  }
  sdk.proxy_on_delete(context_id);
}

function plog(level: LogLevelValues, message: string): void {
  const buf = String.UTF8.encode(message);
  proxy_log(level as usize, changetype<usize>(buf), buf.byteLength);
}

class HostcallsRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new HostcallsHttp(context_id, this);
  }

  onStart(vm_configuration_size: usize): bool {
    plog(LogLevelValues.info, "as vm_start");
    return true;
  }

  onConfigure(configuration_size: u32): bool {
    // The SDK reads the plugin configuration (buffer type 7) into getConfiguration().
    super.onConfigure(configuration_size);
    const config = this.getConfiguration();
    plog(LogLevelValues.info, "as configure config=" + config);
    return config != "fail-configure";
  }
}

class HostcallsHttp extends Context {
  constructor(context_id: u32, root_context: HostcallsRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(num_headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    plog(LogLevelValues.info, "as request_headers n=" + num_headers.toString());
    stream_context.headers.request.add("x-as-plugin", "yes");

    const scenario = stream_context.headers.request.get("x-scenario");
    if (scenario == "local-reply") {
      const headers: Headers = [makeHeaderPair("x-as-local", "1")];
      send_http_response(403, "as_local_reply", String.UTF8.encode("as denied"), headers);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (scenario == "log-levels") {
      plog(LogLevelValues.trace, "as level trace");
      plog(LogLevelValues.debug, "as level debug");
      plog(LogLevelValues.info, "as level info");
      plog(LogLevelValues.warn, "as level warn");
      plog(LogLevelValues.error, "as level error");
      plog(LogLevelValues.critical, "as level critical");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(num_headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-as-response", "1");
    return FilterHeadersStatusValues.Continue;
  }

  onLog(): void {
    plog(LogLevelValues.info, "as on_log");
  }
}

registerRootContext((context_id: u32): RootContext => {
  rootContextId = context_id;
  return new HostcallsRoot(context_id);
}, "as_hostcalls");
