package loki

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The JSON form: {"streams":[{"stream":{"app":"x"},"values":[["<unix ns>","line",{"k":"v"}]]}]}.
type jsonRequest struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values []json.RawMessage `json:"values"`
	} `json:"streams"`
}

// DecodeJSON reads the JSON form of a push request.
func DecodeJSON(b []byte, lim Limits) ([]Stream, error) {
	var req jsonRequest
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	out := make([]Stream, 0, len(req.Streams))
	entries := 0
	for i, js := range req.Streams {
		s := Stream{}
		for k, v := range js.Stream {
			if !validName(k) {
				return nil, fmt.Errorf("%w: streams[%d]: %q is not a valid label name", ErrMalformed, i, trunc(k))
			}
			s.Labels = append(s.Labels, Label{Name: k, Value: v})
		}
		if len(s.Labels) == 0 {
			return nil, fmt.Errorf("%w: streams[%d] has no labels", ErrMalformed, i)
		}
		slices.SortFunc(s.Labels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
		if err := lim.checkLabels(fmt.Sprintf("streams[%d]", i), s.Labels); err != nil {
			return nil, err
		}
		for j, raw := range js.Values {
			var tuple []json.RawMessage
			if err := json.Unmarshal(raw, &tuple); err != nil || len(tuple) < 2 || len(tuple) > 3 {
				return nil, fmt.Errorf("%w: streams[%d].values[%d]: want [\"<unix ns>\", \"line\"] or with a metadata object", ErrMalformed, i, j)
			}
			var ts, line string
			if err := json.Unmarshal(tuple[0], &ts); err != nil {
				return nil, fmt.Errorf("%w: streams[%d].values[%d]: the timestamp is a string of nanoseconds", ErrMalformed, i, j)
			}
			ns, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: streams[%d].values[%d]: timestamp %q: %v", ErrMalformed, i, j, trunc(ts), err)
			}
			if err := json.Unmarshal(tuple[1], &line); err != nil {
				return nil, fmt.Errorf("%w: streams[%d].values[%d]: the line is a string", ErrMalformed, i, j)
			}
			if lim.MaxLineBytes > 0 && len(line) > lim.MaxLineBytes {
				return nil, fmt.Errorf("%w: streams[%d].values[%d]: a line of %d bytes, the limit is %d", ErrTooMany, i, j, len(line), lim.MaxLineBytes)
			}
			e := Entry{Timestamp: time.Unix(0, ns).UTC(), Line: line}
			if len(tuple) == 3 {
				var md map[string]string
				if err := json.Unmarshal(tuple[2], &md); err != nil {
					return nil, fmt.Errorf("%w: streams[%d].values[%d]: structured metadata is an object of strings", ErrMalformed, i, j)
				}
				for k, v := range md {
					e.Metadata = append(e.Metadata, Label{Name: k, Value: v})
				}
				slices.SortFunc(e.Metadata, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
				if err := lim.checkMetadata(e.Metadata); err != nil {
					return nil, fmt.Errorf("streams[%d].values[%d]: %w", i, j, err)
				}
			}
			entries++
			if lim.MaxEntriesPerBody > 0 && entries > lim.MaxEntriesPerBody {
				return nil, fmt.Errorf("%w: more than %d entries in one request", ErrTooMany, lim.MaxEntriesPerBody)
			}
			s.Entries = append(s.Entries, e)
		}
		out = append(out, s)
	}
	return out, nil
}
