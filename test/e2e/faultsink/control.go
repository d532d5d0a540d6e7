package main

import (
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// newControlServer serves the control API:
//
//	POST /mode   {"fail_percent": 30, …}  replace the fault plan (see Mode); 400 on a bad plan
//	GET  /stats  [?seqs=1]                counters, and the accepted seqs as runs
//	POST /reset                           forget every record and counter
func newControlServer(s *Sink) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mode", func(w http.ResponseWriter, r *http.Request) {
		var m Mode
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			http.Error(w, "mode: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.SetMode(m); err != nil {
			http.Error(w, "mode: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.log.Info("mode set", "mode", m)
		writeJSON(w, s.Stats(false))
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Stats(r.URL.Query().Get("seqs") != ""))
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, s.Stats(false))
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
