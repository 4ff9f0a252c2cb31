// Go Proxy-Wasm test plugin for wasp, written against the raw Proxy-Wasm ABI (0.2.x) with only
// the standard library: no proxy-wasm Go SDK is needed.
//
// Build (a WASI reactor that exports _initialize):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/go_hostcalls.wasm .
package main

import (
	"os"
	"runtime"
	"strconv"
	"unsafe"
)

// main is required by the Go toolchain but never runs in a c-shared (reactor) module.
func main() {}

// ---- Host functions (imports) ----------------------------------------------------------------
//
// Pointers are wasm32 addresses (uint32). Every return value is a proxy_status_t / WasmResult.

//go:wasmimport env proxy_log
func proxyLog(level, msgPtr, msgLen uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufType, start, maxLen, retPtrPtr, retLenPtr uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType, keyPtr, keyLen, valuePtr, valueLen uint32) uint32

const (
	logInfo = 2

	statusOk = 0

	bufferPluginConfiguration = 7

	mapRequestHeaders  = 0
	mapResponseHeaders = 2

	actionContinue = 0
)

// ---- Memory handed to the host ---------------------------------------------------------------

// allocations keeps every buffer returned by proxy_on_memory_allocate reachable, so that the GC
// (which never moves objects) cannot free it while the host owns it. A buffer is dropped again
// once the plugin has consumed the data the host wrote into it.
var allocations = map[uint32][]byte{}

//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) uint32 {
	n := size
	if n == 0 {
		n = 1 // &buf[0] needs at least one byte; the host writes nothing into it.
	}
	buf := make([]byte, n)
	addr := uint32(uintptr(unsafe.Pointer(&buf[0])))
	allocations[addr] = buf
	return addr
}

// takeHostBuffer copies out (and releases) a buffer the host allocated through
// proxy_on_memory_allocate and filled with length bytes.
func takeHostBuffer(addr, length uint32) []byte {
	buf, ok := allocations[addr]
	if !ok {
		return nil
	}
	delete(allocations, addr)
	if length > uint32(len(buf)) {
		length = uint32(len(buf))
	}
	out := make([]byte, length)
	copy(out, buf[:length])
	return out
}

// Out-parameters for hostcalls live in package variables: they have a fixed address (goroutine
// stacks, in contrast, can be moved) and the host may call back into proxy_on_memory_allocate
// while it fills them.
var (
	retPtr uint32
	retLen uint32
)

func addrOf(p *uint32) uint32 { return uint32(uintptr(unsafe.Pointer(p))) }

func stringAddr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

// ---- Helpers over the hostcalls --------------------------------------------------------------

func logAt(level uint32, msg string) {
	proxyLog(level, stringAddr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

func getBufferBytes(bufType, start, maxLen uint32) ([]byte, uint32) {
	retPtr, retLen = 0, 0
	status := proxyGetBufferBytes(bufType, start, maxLen, addrOf(&retPtr), addrOf(&retLen))
	if status != statusOk {
		return nil, status
	}
	return takeHostBuffer(retPtr, retLen), statusOk
}

func addHeader(mapType uint32, key, value string) uint32 {
	status := proxyAddHeaderMapValue(mapType, stringAddr(key), uint32(len(key)), stringAddr(value), uint32(len(value)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return status
}

// ---- Callbacks (exports) ---------------------------------------------------------------------

// proxy_abi_version_0_2_0 is the ABI marker; it is never called.
//
//go:wasmexport proxy_abi_version_0_2_0
func proxyAbiVersion020() {}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(contextID, parentContextID uint32) {}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootContextID, vmConfigSize uint32) uint32 {
	logAt(logInfo, "go vm_start")
	return 1
}

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootContextID, configSize uint32) uint32 {
	config := ""
	if configSize > 0 {
		data, status := getBufferBytes(bufferPluginConfiguration, 0, configSize)
		if status == statusOk {
			config = string(data)
		}
	}
	logAt(logInfo, "go configure config="+config)
	// "noop" makes the request callback return at once (bench/: the cost of a bare round trip).
	noop = config == "noop"
	return 1
}

var noop bool

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	if noop {
		return actionContinue
	}
	logAt(logInfo, "go request_headers n="+strconv.FormatUint(uint64(numHeaders), 10))
	addHeader(mapRequestHeaders, "x-go-plugin", "yes")
	if v := os.Getenv("GO_PLUGIN_ENV"); v != "" {
		addHeader(mapRequestHeaders, "x-go-env", v)
	}
	return actionContinue
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	return actionContinue
}

//go:wasmexport proxy_on_log
func proxyOnLog(contextID uint32) {}

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) {}
