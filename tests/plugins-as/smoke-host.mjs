// A tiny Proxy-Wasm mock host in Node, to smoke-test the foreign test plugins outside wasp.
//
//   node --no-warnings smoke-host.mjs build/as_hostcalls.wasm as
//   node --no-warnings smoke-host.mjs ../plugins-go/build/go_hostcalls.wasm go
//
// It implements just the hostcalls these plugins use (everything else in `env` answers
// Unimplemented and is reported), runs root + HTTP-context scenarios and checks the log texts
// and header changes that wasp's tests grep for. WASI comes from node:wasi. Exits non-zero on
// a failed check.
import fs from "node:fs";
import { WASI } from "node:wasi";

const [wasmPath, prefix] = process.argv.slice(2);
if (!wasmPath || !prefix) {
  console.error("usage: node smoke-host.mjs PLUGIN.wasm PREFIX(as|go)");
  process.exit(2);
}

const OK = 0, NOT_FOUND = 1, UNIMPLEMENTED = 12;
const LEVELS = ["trace", "debug", "info", "warn", "error", "critical"];
const module = new WebAssembly.Module(fs.readFileSync(wasmPath));

let failures = 0;
function check(cond, what) {
  console.log(`${cond ? "ok  " : "FAIL"} ${what}`);
  if (!cond) failures++;
}

async function runVm({ config, env: wasiEnv = {} }) {
  const state = { logs: [], req: [], resp: [], local: null, unimplemented: [], config };
  let instance;
  const mem = () => new Uint8Array(instance.exports.memory.buffer);
  const view = () => new DataView(instance.exports.memory.buffer);
  const str = (p, n) => Buffer.from(mem().subarray(p, p + n)).toString("utf8");
  const alloc = (n) =>
    (instance.exports.proxy_on_memory_allocate ?? instance.exports.malloc)(n) >>> 0;
  const giveBytes = (bytes, ptrPtr, lenPtr) => {
    const p = alloc(bytes.length);
    mem().set(bytes, p);
    view().setUint32(ptrPtr, p, true);
    view().setUint32(lenPtr, bytes.length, true);
    return OK;
  };
  const map = (t) => (t === 0 ? state.req : t === 2 ? state.resp : null);

  const hostcalls = {
    proxy_log(level, p, n) {
      state.logs.push([LEVELS[level] ?? String(level), str(p, n)]);
      return OK;
    },
    proxy_get_buffer_bytes(type, start, max, ptrPtr, lenPtr) {
      if (type !== 7) return NOT_FOUND;
      const all = Buffer.from(state.config, "utf8");
      return giveBytes(all.subarray(start, start + max), ptrPtr, lenPtr);
    },
    proxy_get_header_map_value(type, kp, kn, ptrPtr, lenPtr) {
      const key = str(kp, kn).toLowerCase();
      const hit = (map(type) ?? []).find(([k]) => k === key);
      return hit ? giveBytes(Buffer.from(hit[1]), ptrPtr, lenPtr) : NOT_FOUND;
    },
    proxy_add_header_map_value(type, kp, kn, vp, vn) {
      map(type)?.push([str(kp, kn).toLowerCase(), str(vp, vn)]);
      return OK;
    },
    proxy_send_local_response(code, dp, dn, bp, bn, hp, hn, grpc) {
      const headers = [];
      if (hn >= 4) {
        const dv = view();
        const count = dv.getUint32(hp, true);
        let data = hp + 4 + 8 * count;
        for (let i = 0; i < count; i++) {
          const kl = dv.getUint32(hp + 4 + 8 * i, true), vl = dv.getUint32(hp + 8 + 8 * i, true);
          headers.push([str(data, kl), str(data + kl + 1, vl)]);
          data += kl + vl + 2;
        }
      }
      state.local = { code, details: str(dp, dn), body: str(bp, bn), headers, grpc };
      return OK;
    },
    proxy_set_effective_context: () => OK,
  };
  const env = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.module !== "env") continue;
    env[imp.name] = hostcalls[imp.name] ?? ((...args) => {
      state.unimplemented.push(imp.name);
      return UNIMPLEMENTED;
    });
  }
  const wasi = new WASI({ version: "preview1", args: ["plugin"], env: wasiEnv });
  instance = new WebAssembly.Instance(module, { ...wasi.getImportObject(), env });
  if (instance.exports._initialize) wasi.initialize(instance);
  else if (instance.exports._start) instance.exports._start();

  const x = instance.exports;
  x.proxy_on_context_create(1, 0);
  const vmStart = x.proxy_on_vm_start(1, 0);
  const configure = x.proxy_on_configure(1, Buffer.byteLength(config));
  const request = (headers) => {
    const id = 2 + (state.nextId = (state.nextId ?? 0) + 1);
    state.req = headers.map(([k, v]) => [k, v]);
    state.resp = [[":status", "200"]];
    state.local = null;
    state.logs = [];
    x.proxy_on_context_create(id, 1);
    const reqAction = x.proxy_on_request_headers(id, headers.length, 1);
    const respAction = state.local ? null : x.proxy_on_response_headers(id, 1, 1);
    x.proxy_on_done(id);
    x.proxy_on_log(id);
    x.proxy_on_delete(id);
    return { reqAction, respAction, ...state, req: [...state.req], resp: [...state.resp] };
  };
  const shutdown = () => {
    const done = x.proxy_on_done(1);
    x.proxy_on_delete(1);
    return done;
  };
  return { vmStart, configure, logs: [...state.logs], request, shutdown, state };
}

const has = (logs, level, text) => logs.some(([l, t]) => l === level && t === text);
const header = (list, key) => list.find(([k]) => k === key)?.[1];

const vm = await runVm({ config: "hello-config", env: { GO_PLUGIN_ENV: "from-env" } });
check(vm.vmStart === 1, `proxy_on_vm_start returned ${vm.vmStart}`);
check(has(vm.logs, "info", `${prefix} vm_start`), `log info "${prefix} vm_start"`);
check(vm.configure === 1, `proxy_on_configure returned ${vm.configure}`);
check(has(vm.logs, "info", `${prefix} configure config=hello-config`), "configure log");

const plain = vm.request([[":method", "GET"], [":path", "/"], ["host", "example"]]);
check(plain.reqAction === 0, `request_headers action ${plain.reqAction} (Continue)`);
check(has(plain.logs, "info", `${prefix} request_headers n=3`), "request_headers log n=3");
check(header(plain.req, `x-${prefix}-plugin`) === "yes", `request header x-${prefix}-plugin: yes`);
if (prefix === "go") {
  check(header(plain.req, "x-go-env") === "from-env", "request header x-go-env from GO_PLUGIN_ENV");
}
if (prefix === "as") {
  check(header(plain.resp, "x-as-response") === "1", "response header x-as-response: 1");
  check(has(plain.logs, "info", "as on_log"), "on_log log");

  const denied = vm.request([[":path", "/"], ["x-scenario", "local-reply"]]);
  check(denied.reqAction === 1, `local-reply action ${denied.reqAction} (StopIteration/Pause)`);
  check(denied.local?.code === 403 && denied.local?.body === "as denied", "local reply 403 'as denied'");
  check(header(denied.local?.headers ?? [], "x-as-local") === "1", "local reply header x-as-local: 1");

  const levels = vm.request([[":path", "/"], ["x-scenario", "log-levels"]]);
  for (const l of LEVELS) check(has(levels.logs, l, `as level ${l}`), `log ${l} "as level ${l}"`);

  const failing = await runVm({ config: "fail-configure" });
  check(failing.configure === 0, `proxy_on_configure(fail-configure) returned ${failing.configure}`);
}
// Shutting the plugin down calls proxy_on_done / proxy_on_delete for the root context too.
let rootDone;
try {
  rootDone = vm.shutdown();
} catch (e) {
  rootDone = `trap: ${e.message}`;
}
check(rootDone === 1, `proxy_on_done(root) returned ${rootDone}, proxy_on_delete(root) ok`);
const unimpl = [...new Set(vm.state.unimplemented)];
check(unimpl.length === 0, `no unimplemented hostcalls used (${unimpl.join(", ") || "none"})`);

console.log(`${failures === 0 ? "smoke passed" : "smoke FAILED"}: ${wasmPath}`);
process.exit(failures === 0 ? 0 : 1);
