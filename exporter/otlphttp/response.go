package otlphttp

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vigilhq/vigil/exporter/otlp"
	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/client"
	"github.com/vigilhq/vigil/internal/consumererror"
)

const (
	// maxResponseBody bounds what is read of a response: an OTLP answer is a few hundred bytes,
	// and a misbehaving backend must not make the exporter buffer megabytes.
	maxResponseBody = 64 << 10
	// maxMessage bounds the backend's error text carried into errors and logs.
	maxMessage = 256
)

const (
	contentTypeProto = "application/x-protobuf"
	contentTypeJSON  = "application/json"
)

// outcome maps an HTTP answer to the sender's error types following the OTLP/HTTP
// specification: 2xx is success, possibly partial; 429, 502, 503 and 504 are retryable, after
// Retry-After if given; every other status is permanent, 413 marked otlp.ErrTooLarge. body is the (bounded) response body;
// sentJSON tells how to read a body whose Content-Type is missing.
func outcome(sig batch.Signal, resp *http.Response, body []byte, sentJSON bool, now time.Time) error {
	code := resp.StatusCode
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if code >= 200 && code < 300 {
		isJSON := sentJSON
		switch ct {
		case contentTypeJSON:
			isJSON = true
		case contentTypeProto, "application/protobuf":
			isJSON = false
		}
		p, err := otlp.PartialSuccess(sig, body, isJSON)
		if err != nil {
			// The backend said yes; an unreadable body does not undo that.
			return nil
		}
		if p != nil {
			return p
		}
		return nil
	}
	err := fmt.Errorf("export %s: HTTP %d %s", sig, code, http.StatusText(code))
	if msg := statusMessage(body, ct); msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return consumererror.NewRetryable(err, client.RetryAfter(resp.Header.Get("Retry-After"), now))
	case http.StatusRequestEntityTooLarge:
		// Permanent for this request, but a smaller one may pass: the Splitter cuts it.
		return consumererror.NewPermanent(fmt.Errorf("%w: %w", otlp.ErrTooLarge, err))
	}
	return consumererror.NewPermanent(err)
}

// statusMessage extracts the message of the google.rpc.Status an OTLP backend sends with an
// error, or falls back to the start of a plain-text body.
func statusMessage(body []byte, contentType string) string {
	if len(body) == 0 {
		return ""
	}
	st := &spb.Status{}
	switch contentType {
	case contentTypeProto, "application/protobuf":
		if proto.Unmarshal(body, st) == nil {
			return clean(st.GetMessage())
		}
		return ""
	case contentTypeJSON:
		if (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(body, st) == nil && st.GetMessage() != "" {
			return clean(st.GetMessage())
		}
	}
	return clean(string(body))
}

// clean makes backend text safe for one log line: valid UTF-8, no control characters, bounded.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
