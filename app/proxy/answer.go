package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"
)

// answer is an SP's answer read whole while searching or listing. When it is
// already the client's answer, it is replayed through that SP's reverse proxy
// (forward), so it gets what every forwarded answer gets in ModifyResponse (the
// response-header policy, learning, the tracker and metrics) without a second call.
type answer struct {
	status int
	header http.Header
	body   []byte
	// start is when the call that got it left, for the upstream latency.
	start time.Time
}

// Bounds on an answer kept to be replayed: a member's document (a Glance image with
// many properties is a few KiB; past the bound the call is forwarded again), and an
// error body (the services' are a few hundred bytes; past it the SP counts as failed).
const (
	maxKeptMember = 1 << 20
	maxKeptError  = 64 << 10
)

// readAnswer keeps resp when its body is at most limit bytes; nil otherwise.
func readAnswer(resp *http.Response, start time.Time, limit int64) *answer {
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil || int64(len(body)) > limit {
		return nil
	}
	return &answer{status: resp.StatusCode, header: resp.Header.Clone(), body: body, start: start}
}

// RoundTrip hands the kept answer to the reverse proxy in place of the SP.
func (a *answer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	return &http.Response{Status: fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)), StatusCode: a.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: a.header.Clone(),
		Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: req}, nil
}

// clientError: an SP's refusal of the call as the client wrote it (its path, query,
// headers), which every cloud would refuse alike, so the client's to read. A 401 is
// a refused K2K token, 408 and 429 the SP's load: those are that SP failing.
func clientError(status int) bool {
	return status/100 == 4 && status != http.StatusUnauthorized && status != http.StatusRequestTimeout &&
		status != http.StatusTooManyRequests
}
