package component

import (
	"fmt"
	"strings"
)

// AckMode says when a client's request counts as acknowledged with respect to one exporter its
// data reaches: the `acknowledgements` key of an exporter or a pipeline.
type AckMode uint8

const (
	// AckDurable (the default): the exporter has taken the data into its sending queue: in
	// memory for a memory queue, written and fsynced for a persistent one. Buffering processors
	// in front hold the client's answer until their send to the exporter is done.
	AckDurable AckMode = iota
	// AckEndToEnd: the backend accepted the data.
	AckEndToEnd
	// AckNone: the client is answered as soon as the pipeline took the request (its memory
	// limiter and queue admission still push back), without waiting for buffering processors:
	// the OpenTelemetry Collector's behaviour, and lossy on a crash.
	AckNone
)

var ackModeNames = [...]string{AckDurable: "durable", AckEndToEnd: "end_to_end", AckNone: "none"}

func (m AckMode) String() string {
	if int(m) < len(ackModeNames) {
		return ackModeNames[m]
	}
	return fmt.Sprintf("AckMode(%d)", uint8(m))
}

// ParseAckMode parses durable, end_to_end or none.
func ParseAckMode(s string) (AckMode, error) {
	for m, name := range ackModeNames {
		if s == name {
			return AckMode(m), nil
		}
	}
	return 0, fmt.Errorf("must be one of %s, got %q", strings.Join(ackModeNames[:], ", "), s)
}
