package main

// The raw Proxy-Wasm ABI (0.2.x) as the Go SDK calls it: the host functions this plugin
// imports, the memory the host allocates in it, and thin helpers over both. Pointers are wasm32
// addresses (uint32); every host function returns a proxy_status_t.

import (
	"encoding/binary"
	"math"
	"runtime"
	"strconv"
	"unsafe"
)

//go:wasmimport env proxy_log
func proxyLog(level, msgPtr, msgLen uint32) uint32

//go:wasmimport env proxy_get_buffer_bytes
func proxyGetBufferBytes(bufType, start, maxLen, retPtrPtr, retLenPtr uint32) uint32

//go:wasmimport env proxy_set_buffer_bytes
func proxySetBufferBytes(bufType, start, length, dataPtr, dataLen uint32) uint32

//go:wasmimport env proxy_get_header_map_value
func proxyGetHeaderMapValue(mapType, keyPtr, keyLen, retPtrPtr, retLenPtr uint32) uint32

//go:wasmimport env proxy_add_header_map_value
func proxyAddHeaderMapValue(mapType, keyPtr, keyLen, valuePtr, valueLen uint32) uint32

//go:wasmimport env proxy_replace_header_map_value
func proxyReplaceHeaderMapValue(mapType, keyPtr, keyLen, valuePtr, valueLen uint32) uint32

//go:wasmimport env proxy_remove_header_map_value
func proxyRemoveHeaderMapValue(mapType, keyPtr, keyLen uint32) uint32

//go:wasmimport env proxy_http_call
func proxyHttpCall(upstreamPtr, upstreamLen, headersPtr, headersLen, bodyPtr, bodyLen, trailersPtr, trailersLen, timeoutMs, tokenPtr uint32) uint32

//go:wasmimport env proxy_continue_stream
func proxyContinueStream(streamType uint32) uint32

//go:wasmimport env proxy_set_tick_period_milliseconds
func proxySetTickPeriodMilliseconds(period uint32) uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(contextID uint32) uint32

//go:wasmimport env proxy_register_shared_queue
func proxyRegisterSharedQueue(namePtr, nameLen, tokenPtr uint32) uint32

//go:wasmimport env proxy_resolve_shared_queue
func proxyResolveSharedQueue(vmIDPtr, vmIDLen, namePtr, nameLen, tokenPtr uint32) uint32

//go:wasmimport env proxy_enqueue_shared_queue
func proxyEnqueueSharedQueue(token, dataPtr, dataLen uint32) uint32

//go:wasmimport env proxy_dequeue_shared_queue
func proxyDequeueSharedQueue(token, retPtrPtr, retLenPtr uint32) uint32

//go:wasmimport env proxy_call_foreign_function
func proxyCallForeignFunction(namePtr, nameLen, argPtr, argLen, retPtrPtr, retLenPtr uint32) uint32

const (
	logInfo  = 2
	logError = 4

	statusOk = 0

	bufferHttpRequestBody     = 0
	bufferHttpResponseBody    = 1
	bufferPluginConfiguration = 7

	mapRequestHeaders      = 0
	mapResponseHeaders     = 2
	mapHttpCallRespHeaders = 6

	streamRequest  = 0
	streamResponse = 1

	actionContinue = 0
	// The Go SDK's ActionPause: StopIteration for headers, buffer for bodies.
	actionPause = 1

	// The Go SDK passes this as `start` to append to a buffer and as `length` to replace it.
	wholeBuffer = math.MaxInt32
)

// statusName spells a proxy_status_t as the Go SDK's errors do, for headers and logs.
func statusName(status uint32) string {
	names := []string{"ok", "not found", "bad argument", "serialization failure", "parse failure",
		"bad expression", "invalid memory access", "empty", "cas mismatch", "result mismatch",
		"internal failure", "broken connection", "unimplemented"}
	if int(status) < len(names) {
		return names[status]
	}
	return "status " + strconv.FormatUint(uint64(status), 10)
}

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
	retPtr   uint32
	retLen   uint32
	retToken uint32
)

func addrOf(p *uint32) uint32 { return uint32(uintptr(unsafe.Pointer(p))) }

func stringAddr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func bytesAddr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

// takeReturned reads the buffer a hostcall returned through retPtr/retLen.
func takeReturned(status uint32) ([]byte, uint32) {
	if status != statusOk {
		return nil, status
	}
	return takeHostBuffer(retPtr, retLen), statusOk
}

// ---- Helpers over the hostcalls --------------------------------------------------------------

func logAt(level uint32, msg string) {
	proxyLog(level, stringAddr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
}

func getBufferBytes(bufType, start, maxLen uint32) ([]byte, uint32) {
	retPtr, retLen = 0, 0
	return takeReturned(proxyGetBufferBytes(bufType, start, maxLen, addrOf(&retPtr), addrOf(&retLen)))
}

func setBufferBytes(bufType, start, length uint32, data string) uint32 {
	status := proxySetBufferBytes(bufType, start, length, stringAddr(data), uint32(len(data)))
	runtime.KeepAlive(data)
	return status
}

// getHeader answers "" for a header that is missing.
func getHeader(mapType uint32, key string) string {
	retPtr, retLen = 0, 0
	value, _ := takeReturned(proxyGetHeaderMapValue(mapType, stringAddr(key), uint32(len(key)), addrOf(&retPtr), addrOf(&retLen)))
	runtime.KeepAlive(key)
	return string(value)
}

func addHeader(mapType uint32, key, value string) uint32 {
	status := proxyAddHeaderMapValue(mapType, stringAddr(key), uint32(len(key)), stringAddr(value), uint32(len(value)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return status
}

func replaceHeader(mapType uint32, key, value string) uint32 {
	status := proxyReplaceHeaderMapValue(mapType, stringAddr(key), uint32(len(key)), stringAddr(value), uint32(len(value)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return status
}

func removeHeader(mapType uint32, key string) uint32 {
	status := proxyRemoveHeaderMapValue(mapType, stringAddr(key), uint32(len(key)))
	runtime.KeepAlive(key)
	return status
}

// encodePairs serializes headers as the ABI wants them: a count, every name and value length,
// then every name and value followed by a NUL, all little-endian.
func encodePairs(pairs [][2]string) []byte {
	buf := binary.LittleEndian.AppendUint32(nil, uint32(len(pairs)))
	for _, p := range pairs {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(p[0])))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(p[1])))
	}
	for _, p := range pairs {
		buf = append(buf, p[0]...)
		buf = append(buf, 0)
		buf = append(buf, p[1]...)
		buf = append(buf, 0)
	}
	return buf
}

func httpCall(cluster string, headers [][2]string, body string, timeoutMs uint32) (uint32, uint32) {
	encoded := encodePairs(headers)
	retToken = 0
	status := proxyHttpCall(stringAddr(cluster), uint32(len(cluster)), bytesAddr(encoded), uint32(len(encoded)),
		stringAddr(body), uint32(len(body)), 0, 0, timeoutMs, addrOf(&retToken))
	runtime.KeepAlive(cluster)
	runtime.KeepAlive(encoded)
	runtime.KeepAlive(body)
	return retToken, status
}

func registerQueue(name string) (uint32, uint32) {
	retToken = 0
	status := proxyRegisterSharedQueue(stringAddr(name), uint32(len(name)), addrOf(&retToken))
	runtime.KeepAlive(name)
	return retToken, status
}

func resolveQueue(vmID, name string) (uint32, uint32) {
	retToken = 0
	status := proxyResolveSharedQueue(stringAddr(vmID), uint32(len(vmID)), stringAddr(name), uint32(len(name)), addrOf(&retToken))
	runtime.KeepAlive(vmID)
	runtime.KeepAlive(name)
	return retToken, status
}

func enqueue(token uint32, data string) uint32 {
	status := proxyEnqueueSharedQueue(token, stringAddr(data), uint32(len(data)))
	runtime.KeepAlive(data)
	return status
}

func dequeue(token uint32) ([]byte, uint32) {
	retPtr, retLen = 0, 0
	return takeReturned(proxyDequeueSharedQueue(token, addrOf(&retPtr), addrOf(&retLen)))
}

func callForeign(name string, arg []byte) ([]byte, uint32) {
	retPtr, retLen = 0, 0
	status := proxyCallForeignFunction(stringAddr(name), uint32(len(name)), bytesAddr(arg), uint32(len(arg)), addrOf(&retPtr), addrOf(&retLen))
	runtime.KeepAlive(name)
	runtime.KeepAlive(arg)
	return takeReturned(status)
}
