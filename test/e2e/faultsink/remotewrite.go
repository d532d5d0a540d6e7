package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
)

// serveRemoteWrite takes Prometheus remote write 1.0 (snappy-compressed prompb.WriteRequest):
// each sample of a series labelled seq="N" records seq N. Faults are answered as a remote-write
// receiver would: 400 (reject: the sender drops), 429 with Retry-After (throttle), 503 (fail,
// hang), 204 on success.
func (s *Sink) serveRemoteWrite(w http.ResponseWriter, r *http.Request) {
	compressed, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		s.decodeErrors.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, err := snappy.Decode(nil, compressed)
	if err != nil {
		s.decodeErrors.Add(1)
		http.Error(w, "snappy: "+err.Error(), http.StatusBadRequest)
		return
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(body); err != nil {
		s.decodeErrors.Add(1)
		http.Error(w, "decode: "+err.Error(), http.StatusBadRequest)
		return
	}
	out := s.handle(r.Context(), remoteWritePayload(&req))
	switch out.fault {
	case accept:
		w.WriteHeader(http.StatusNoContent)
	case reject:
		http.Error(w, "faultsink: rejected on purpose", http.StatusBadRequest)
	case throttle:
		w.Header().Set("Retry-After", fmt.Sprint(int64(math.Ceil(out.retryAfter.Seconds()))))
		http.Error(w, "faultsink: throttled on purpose", http.StatusTooManyRequests)
	default:
		http.Error(w, "faultsink: "+out.fault.String()+" on purpose", http.StatusServiceUnavailable)
	}
}

func remoteWritePayload(req *prompb.WriteRequest) payload {
	var p payload
	for _, ts := range req.Timeseries {
		seq := int64(-1)
		for _, l := range ts.Labels {
			if l.Name == seqKey {
				if n, err := strconv.ParseInt(l.Value, 10, 64); err == nil {
					seq = n
				}
			}
		}
		for range len(ts.Samples) + len(ts.Histograms) {
			p.items++
			if seq < 0 {
				p.noSeq++
				continue
			}
			p.seqs = append(p.seqs, seq)
		}
	}
	return p
}
