// Go Proxy-Wasm test plugin for wasp, written against the raw Proxy-Wasm ABI (0.2.x) with only
// the standard library: no proxy-wasm Go SDK is needed. It does what the Go SDK's public
// examples do (scenarios.go), driven by the `x-scenario` request header.
//
// Build (a WASI reactor that exports _initialize):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o build/go_hostcalls.wasm .
package main

import (
	"os"
	"sort"
	"strconv"
)

// main is required by the Go toolchain but never runs in a c-shared (reactor) module.
func main() {}

// rootContext is one plugin of this VM (several plugins may share a VM).
type rootContext struct {
	id     uint32
	config pluginConfig
	// "noop" makes the request callback return at once (bench/: the cost of a bare round trip).
	noop bool
	// Requests paused by `go-foreign-tick`; the next tick resumes them.
	tickPaused []uint32
}

// httpContext is one request.
type httpContext struct {
	id       uint32
	root     *rootContext
	scenario string
	// `go-body-eos`: how to edit each body once it is complete ("" leaves it alone).
	requestOp, responseOp string
	// `go-multiple-dispatches`: callouts still out.
	dispatches int
}

var (
	roots   = map[uint32]*rootContext{}
	streams = map[uint32]*httpContext{}
)

// stream answers a context the host named; an unknown id gets a blank one rather than a crash.
func stream(id uint32) *httpContext {
	if s, ok := streams[id]; ok {
		return s
	}
	s := &httpContext{id: id, root: &rootContext{}}
	streams[id] = s
	return s
}

// proxy_abi_version_0_2_0 is the ABI marker; it is never called.
//
//go:wasmexport proxy_abi_version_0_2_0
func proxyAbiVersion020() {}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(contextID, parentContextID uint32) {
	if parentContextID == 0 {
		roots[contextID] = &rootContext{id: contextID}
		return
	}
	root, ok := roots[parentContextID]
	if !ok {
		root = &rootContext{id: parentContextID}
	}
	streams[contextID] = &httpContext{id: contextID, root: root}
}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootContextID, vmConfigSize uint32) uint32 {
	logAt(logInfo, "go vm_start")
	return 1
}

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootContextID, configSize uint32) uint32 {
	text := ""
	if configSize > 0 {
		data, status := getBufferBytes(bufferPluginConfiguration, 0, configSize)
		if status == statusOk {
			text = string(data)
		}
	}
	logAt(logInfo, "go configure config="+text)
	config, err := parseConfig(text)
	if err != nil {
		logAt(logError, "go configure: invalid configuration: "+err.Error())
		return 0
	}
	root, ok := roots[rootContextID]
	if !ok {
		root = &rootContext{id: rootContextID}
		roots[rootContextID] = root
	}
	root.config = config
	root.noop = text == "noop"
	if config.RegisterQueue != "" {
		_, status := registerQueue(config.RegisterQueue)
		logAt(logInfo, "go queue registered name="+config.RegisterQueue+" status="+statusName(status))
	}
	return 1
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	s := stream(contextID)
	if s.root.noop {
		return actionContinue
	}
	logAt(logInfo, "go request_headers n="+strconv.FormatUint(uint64(numHeaders), 10))
	addHeader(mapRequestHeaders, "x-go-plugin", "yes")
	if v := os.Getenv("GO_PLUGIN_ENV"); v != "" {
		addHeader(mapRequestHeaders, "x-go-env", v)
	}
	names := make([]string, 0, len(s.root.config.Headers))
	for name := range s.root.config.Headers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		addHeader(mapRequestHeaders, name, s.root.config.Headers[name])
	}
	if q := s.root.config.SendQueue; q != nil {
		sendToQueue(q)
	}
	s.scenario = getHeader(mapRequestHeaders, "x-scenario")
	return s.onRequestHeaders()
}

//go:wasmexport proxy_on_request_body
func proxyOnRequestBody(contextID, bodySize, endOfStream uint32) uint32 {
	return stream(contextID).onBody(bufferHttpRequestBody, bodySize, endOfStream != 0)
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	return stream(contextID).onResponseHeaders()
}

//go:wasmexport proxy_on_response_body
func proxyOnResponseBody(contextID, bodySize, endOfStream uint32) uint32 {
	return stream(contextID).onBody(bufferHttpResponseBody, bodySize, endOfStream != 0)
}

// The host owns callouts by root context and answers them there (Envoy does): as the Go SDK,
// the plugin remembers which request sent each one and makes that request effective again.
var callouts = map[uint32]uint32{}

//go:wasmexport proxy_on_http_call_response
func proxyOnHttpCallResponse(contextID, token, numHeaders, bodySize, numTrailers uint32) {
	caller, ok := callouts[token]
	if !ok {
		logAt(logError, "go callout response for an unknown token")
		return
	}
	delete(callouts, token)
	if s, ok := streams[caller]; ok && proxySetEffectiveContext(caller) == statusOk {
		s.onDispatchResponse()
	}
}

//go:wasmexport proxy_on_tick
func proxyOnTick(rootContextID uint32) {
	if root, ok := roots[rootContextID]; ok {
		root.onTick()
	}
}

//go:wasmexport proxy_on_queue_ready
func proxyOnQueueReady(rootContextID, token uint32) {
	for {
		msg, status := dequeue(token)
		if status != statusOk {
			return
		}
		logAt(logInfo, "go queue_ready msg="+string(msg))
	}
}

//go:wasmexport proxy_on_log
func proxyOnLog(contextID uint32) { onStreamDone(contextID) }

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) uint32 { return 1 }

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) {
	delete(streams, contextID)
	delete(roots, contextID)
}
