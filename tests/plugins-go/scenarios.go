package main

// What the Go SDK's public examples do, one scenario each (the `x-scenario` request header;
// names start with `go-` so that a chain with the Rust test plugin never runs both).

import "strconv"

// dispatchCount is how many callouts `go-multiple-dispatches` sends at once.
const dispatchCount = 3

func (s *httpContext) onRequestHeaders() uint32 {
	switch s.scenario {
	case "go-body-eos":
		// As the SDK's http_body example: the body changes size, so its length goes.
		s.requestOp = getHeader(mapRequestHeaders, "x-go-body-op")
		s.responseOp = getHeader(mapRequestHeaders, "x-go-response-op")
		if s.requestOp != "" {
			removeHeader(mapRequestHeaders, "content-length")
		}
	case "go-foreign-tick":
		// As the SDK's foreign_call_on_tick example, the foreign function runs in on_tick; the
		// request waits for it. The period applies to this context's root.
		s.root.tickPaused = append(s.root.tickPaused, s.id)
		proxySetTickPeriodMilliseconds(10)
		return actionPause
	}
	return actionContinue
}

func (s *httpContext) onResponseHeaders() uint32 {
	switch s.scenario {
	case "go-body-eos":
		if s.responseOp != "" {
			removeHeader(mapResponseHeaders, "content-length")
		}
	case "go-multiple-dispatches":
		// As the SDK's multiple_dispatches example: several callouts from one callback, with an
		// empty :authority, and the response resumed when the last one is back.
		headers := [][2]string{{":method", "GET"}, {":authority", ""}, {":path", "/go-dispatch"}, {"accept", "*/*"}, {"x-empty", ""}}
		for i := 0; i < dispatchCount; i++ {
			token, status := httpCall("callout", headers, "", 5000)
			if status != statusOk {
				logAt(logError, "go dispatch failed: "+statusName(status))
				continue
			}
			callouts[token] = s.id
			s.dispatches++
		}
		if s.dispatches > 0 {
			return actionPause
		}
	}
	return actionContinue
}

func (s *httpContext) onDispatchResponse() {
	s.dispatches--
	status := getHeader(mapHttpCallRespHeaders, ":status")
	logAt(logInfo, "go dispatch response status="+status+" remaining="+strconv.Itoa(s.dispatches))
	if s.dispatches == 0 {
		addHeader(mapResponseHeaders, "x-go-dispatches", strconv.Itoa(dispatchCount))
		proxyContinueStream(streamResponse)
	}
}

// onBody buffers a body until its end, then edits it once, as the SDK's http_body example.
func (s *httpContext) onBody(buffer, size uint32, endOfStream bool) uint32 {
	op := s.requestOp
	if buffer == bufferHttpResponseBody {
		op = s.responseOp
	}
	if s.scenario != "go-body-eos" || op == "" {
		return actionContinue
	}
	if !endOfStream {
		return actionPause
	}
	var status uint32
	switch op {
	case "append":
		status = setBufferBytes(buffer, wholeBuffer, 0, " [appended by go]")
	case "prepend":
		status = setBufferBytes(buffer, 0, 0, "[prepended by go] ")
	case "replace":
		status = setBufferBytes(buffer, 0, wholeBuffer, "[replaced by go]")
	default:
		body, _ := getBufferBytes(buffer, 0, size)
		status = setBufferBytes(buffer, 0, size, "["+op+"] "+string(body))
	}
	logAt(logInfo, "go body edited at end of stream op="+op+" size="+strconv.FormatUint(uint64(size), 10)+
		" status="+statusName(status))
	return actionContinue
}

// sendToQueue enqueues a line on another VM's queue, as the SDK's shared_queue sender.
func sendToQueue(q *queueRef) {
	token, status := resolveQueue(q.VMID, q.Name)
	if status == statusOk {
		status = enqueue(token, "request "+getHeader(mapRequestHeaders, ":path"))
	}
	addHeader(mapRequestHeaders, "x-go-enqueue", statusName(status))
}

// onTick calls foreign functions from the root and resumes the requests that wait for them.
func (r *rootContext) onTick() {
	paused := r.tickPaused
	r.tickPaused = nil
	for _, id := range paused {
		result := "none"
		compressed, status := callForeign("compress", []byte("hello hello hello hello"))
		if status == statusOk {
			var plain []byte
			plain, status = callForeign("uncompress", compressed)
			result = string(plain)
		}
		_, missing := callForeign("no_such_function", nil)
		logAt(logInfo, "go tick foreign roundtrip="+result+" status="+statusName(status)+
			" missing="+statusName(missing))
		if proxySetEffectiveContext(id) == statusOk {
			replaceHeader(mapRequestHeaders, "x-go-foreign", result)
			proxyContinueStream(streamRequest)
		}
	}
	proxySetEffectiveContext(r.id)
	proxySetTickPeriodMilliseconds(0)
}
