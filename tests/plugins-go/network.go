package main

// The Go SDK's `network` example (examples/network) as a raw-ABI network context, for TCP
// listeners: it logs a new connection, the client's data, whether the upstream's address is
// known and the upstream's data, logs each close, and counts finished connections in a counter
// when the stream is done (the SDK's OnStreamDone, from proxy_on_log). With a configuration
// `{"network": {"prefix": "...", "close_on": "..."}}` it also puts the prefix in front of the
// client's bytes and closes the connection when the client sends close_on.

import (
	"runtime"
	"strings"
)

//go:wasmimport env proxy_close_stream
func proxyCloseStream(streamType uint32) uint32

//go:wasmimport env proxy_get_property
func proxyGetProperty(pathPtr, pathLen, retPtrPtr, retLenPtr uint32) uint32

//go:wasmimport env proxy_define_metric
func proxyDefineMetric(metricType, namePtr, nameLen, retIDPtr uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(metricID uint32, offset int64) uint32

const (
	bufferDownstreamData = 2
	bufferUpstreamData   = 3
	streamDownstream     = 2
	metricCounter        = 0
)

type networkConfig struct {
	Prefix  string `json:"prefix"`
	CloseOn string `json:"close_on"`
}

// tcpContexts are the contexts that saw proxy_on_new_connection (the others are HTTP streams).
var tcpContexts = map[uint32]bool{}

// connectionCounter is defined once, at the first connection.
var connectionCounter uint32
var counterDefined bool

func getProperty(path ...string) ([]byte, uint32) {
	joined := strings.Join(path, "\x00")
	retPtr, retLen = 0, 0
	status := proxyGetProperty(stringAddr(joined), uint32(len(joined)), addrOf(&retPtr), addrOf(&retLen))
	runtime.KeepAlive(joined)
	return takeReturned(status)
}

func countConnection() {
	if !counterDefined {
		name := "go_connections_total"
		retToken = 0
		if proxyDefineMetric(metricCounter, stringAddr(name), uint32(len(name)), addrOf(&retToken)) == statusOk {
			connectionCounter, counterDefined = retToken, true
		}
		runtime.KeepAlive(name)
	}
	if counterDefined {
		proxyIncrementMetric(connectionCounter, 1)
	}
}

//go:wasmexport proxy_on_new_connection
func proxyOnNewConnection(contextID uint32) uint32 {
	tcpContexts[contextID] = true
	logAt(logInfo, "new connection!")
	return actionContinue
}

//go:wasmexport proxy_on_downstream_data
func proxyOnDownstreamData(contextID, dataSize, endOfStream uint32) uint32 {
	if dataSize == 0 {
		return actionContinue
	}
	data, status := getBufferBytes(bufferDownstreamData, 0, dataSize)
	if status != statusOk {
		logAt(logError, "failed to get downstream data: "+statusName(status))
	}
	logAt(logInfo, ">>>>>> downstream data received >>>>>>\n"+string(data))
	if cfg := stream(contextID).root.config.Network; cfg != nil {
		if cfg.CloseOn != "" && strings.Contains(string(data), cfg.CloseOn) {
			logAt(logInfo, "closing the connection on "+cfg.CloseOn)
			proxyCloseStream(streamDownstream)
			return actionPause
		}
		if cfg.Prefix != "" {
			setBufferBytes(bufferDownstreamData, 0, 0, cfg.Prefix)
		}
	}
	return actionContinue
}

//go:wasmexport proxy_on_downstream_connection_close
func proxyOnDownstreamConnectionClose(contextID, peerType uint32) {
	logAt(logInfo, "downstream connection close!")
}

//go:wasmexport proxy_on_upstream_data
func proxyOnUpstreamData(contextID, dataSize, endOfStream uint32) uint32 {
	if dataSize == 0 {
		return actionContinue
	}
	// The example logs the address; it differs between two proxies' upstreams, so say
	// whether it is known.
	address, status := getProperty("upstream", "address")
	known := "no"
	if status == statusOk && len(address) > 0 {
		known = "yes"
	}
	logAt(logInfo, "remote address known: "+known)
	data, status := getBufferBytes(bufferUpstreamData, 0, dataSize)
	if status != statusOk {
		logAt(logError, "failed to get upstream data: "+statusName(status))
	}
	logAt(logInfo, "<<<<<< upstream data received <<<<<<\n"+string(data))
	return actionContinue
}

//go:wasmexport proxy_on_upstream_connection_close
func proxyOnUpstreamConnectionClose(contextID, peerType uint32) {
	logAt(logInfo, "upstream connection close!")
}

// onStreamDone is the SDK's OnStreamDone for a TCP context (called from proxy_on_log).
func onStreamDone(contextID uint32) {
	if !tcpContexts[contextID] {
		return
	}
	delete(tcpContexts, contextID)
	countConnection()
	logAt(logInfo, "connection complete!")
}
