package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/vigilhq/vigil/alerting/rulefiles"
)

// The query API answers as Prometheus's HTTP API v1 does (same paths, parameters, JSON
// envelope and error types), so Grafana can use an agent as a Prometheus data source and
// promtool/amtool-style tools work against it.

// maxPoints is Prometheus's bound on the points of a range query's series.
const maxPoints = 11000

// Register adds the API's routes to mux.
func (e *Engine) Register(mux *http.ServeMux) {
	for _, m := range []string{"GET", "POST"} {
		mux.HandleFunc(m+" /api/v1/query", e.query)
		mux.HandleFunc(m+" /api/v1/query_range", e.queryRange)
		mux.HandleFunc(m+" /api/v1/series", e.series)
		mux.HandleFunc(m+" /api/v1/labels", e.labelNames)
	}
	mux.HandleFunc("GET /api/v1/label/{name}/values", e.labelValues)
	mux.HandleFunc("GET /api/v1/rules", e.rules)
	mux.HandleFunc("GET /api/v1/alerts", e.alerts)
	mux.HandleFunc("GET /api/v1/status/buildinfo", func(w http.ResponseWriter, _ *http.Request) {
		writeData(w, map[string]string{"version": "vigil", "application": "vigil"}, nil)
	})
}

type apiError struct {
	typ string // bad_data, execution, timeout, canceled, internal
	err error
}

func badData(format string, a ...any) *apiError {
	return &apiError{"bad_data", fmt.Errorf(format, a...)}
}

func writeData(w http.ResponseWriter, data any, warnings annotations.Annotations) {
	resp := map[string]any{"status": "success", "data": data}
	if len(warnings) > 0 {
		ws, infos := warnings.AsStrings("", 10, 10)
		if len(ws) > 0 {
			resp["warnings"] = ws
		}
		if len(infos) > 0 {
			resp["infos"] = infos
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func writeError(w http.ResponseWriter, e *apiError) {
	code := http.StatusBadRequest
	switch e.typ {
	case "execution":
		code = http.StatusUnprocessableEntity
	case "timeout":
		code = http.StatusServiceUnavailable
	case "canceled":
		code = 499
	case "internal":
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "errorType": e.typ, "error": e.err.Error()})
}

func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
			return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("cannot parse %q to a valid timestamp", s)
}

func parseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		d := f * float64(time.Second)
		if d >= math.MaxInt64 || d <= math.MinInt64 || math.IsNaN(d) {
			return 0, fmt.Errorf("cannot parse %q to a valid duration: out of range", s)
		}
		return time.Duration(d), nil
	}
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("cannot parse %q to a valid duration", s)
}

type queryData struct {
	ResultType parser.ValueType `json:"resultType"`
	Result     parser.Value     `json:"result"`
}

func (e *Engine) ctx(r *http.Request) (context.Context, context.CancelFunc, *apiError) {
	timeout := e.cfg.Query.Timeout
	if s := r.FormValue("timeout"); s != "" {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			return nil, nil, badData("invalid parameter \"timeout\": %q", s)
		}
		timeout = min(timeout, d)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	return ctx, cancel, nil
}

func (e *Engine) query(w http.ResponseWriter, r *http.Request) {
	ts, err := parseTime(r.FormValue("time"), time.Now())
	if err != nil {
		writeError(w, badData("invalid parameter \"time\": %v", err))
		return
	}
	ctx, cancel, aerr := e.ctx(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	defer cancel()
	q, err := e.promql.NewInstantQuery(ctx, e.store.Queryable(), nil, r.FormValue("query"), ts)
	if err != nil {
		writeError(w, badData("invalid parameter \"query\": %v", err))
		return
	}
	e.run(ctx, w, q)
}

func (e *Engine) queryRange(w http.ResponseWriter, r *http.Request) {
	start, err := parseTime(r.FormValue("start"), time.Time{})
	if err != nil || start.IsZero() {
		writeError(w, badData("invalid parameter \"start\": %q", r.FormValue("start")))
		return
	}
	end, err := parseTime(r.FormValue("end"), time.Time{})
	if err != nil || end.IsZero() {
		writeError(w, badData("invalid parameter \"end\": %q", r.FormValue("end")))
		return
	}
	if end.Before(start) {
		writeError(w, badData("invalid parameter \"end\": end timestamp must not be before start time"))
		return
	}
	step, err := parseDuration(r.FormValue("step"))
	if err != nil || step <= 0 {
		writeError(w, badData("invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"))
		return
	}
	if end.Sub(start)/step > maxPoints {
		writeError(w, badData("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"))
		return
	}
	ctx, cancel, aerr := e.ctx(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	defer cancel()
	q, err := e.promql.NewRangeQuery(ctx, e.store.Queryable(), nil, r.FormValue("query"), start, end, step)
	if err != nil {
		writeError(w, badData("invalid parameter \"query\": %v", err))
		return
	}
	e.run(ctx, w, q)
}

func (e *Engine) run(ctx context.Context, w http.ResponseWriter, q promql.Query) {
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		writeError(w, queryError(res.Err))
		return
	}
	writeData(w, queryData{ResultType: res.Value.Type(), Result: res.Value}, res.Warnings)
}

func queryError(err error) *apiError {
	var (
		timeout  promql.ErrQueryTimeout
		canceled promql.ErrQueryCanceled
		storageE promql.ErrStorage
	)
	switch {
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return &apiError{"timeout", err}
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return &apiError{"canceled", err}
	case errors.As(err, &storageE):
		return &apiError{"internal", err}
	}
	return &apiError{"execution", err}
}

// matchers parses the match[] parameters.
func matchers(r *http.Request) ([][]*labels.Matcher, *apiError) {
	var sets [][]*labels.Matcher
	for _, s := range r.Form["match[]"] {
		ms, err := rulefiles.Parser.ParseMetricSelector(s)
		if err != nil {
			return nil, badData("invalid parameter \"match[]\": %v", err)
		}
		sets = append(sets, ms)
	}
	return sets, nil
}

func (e *Engine) querier(r *http.Request) (storage.Querier, *storage.SelectHints, *apiError) {
	if err := r.ParseForm(); err != nil {
		return nil, nil, badData("%v", err)
	}
	start, err := parseTime(r.FormValue("start"), time.Unix(0, 0))
	if err != nil {
		return nil, nil, badData("invalid parameter \"start\": %v", err)
	}
	end, err := parseTime(r.FormValue("end"), time.Now().Add(time.Hour))
	if err != nil {
		return nil, nil, badData("invalid parameter \"end\": %v", err)
	}
	q, err := e.store.Queryable().Querier(start.UnixMilli(), end.UnixMilli())
	if err != nil {
		return nil, nil, &apiError{"internal", err}
	}
	return q, &storage.SelectHints{Start: start.UnixMilli(), End: end.UnixMilli(), Func: "series"}, nil
}

func (e *Engine) series(w http.ResponseWriter, r *http.Request) {
	q, hints, aerr := e.querier(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	defer q.Close()
	sets, aerr := matchers(r)
	if aerr == nil && len(sets) == 0 {
		aerr = badData("no match[] parameter provided")
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	seen := map[uint64]bool{}
	out := []labels.Labels{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		ss := q.Select(r.Context(), false, hints, ms...)
		for ss.Next() {
			ls := ss.At().Labels()
			if h := ls.Hash(); !seen[h] {
				seen[h] = true
				out = append(out, ls)
			}
		}
		if err := ss.Err(); err != nil {
			writeError(w, &apiError{"execution", err})
			return
		}
		warnings.Merge(ss.Warnings())
	}
	slices.SortFunc(out, labels.Compare)
	writeData(w, out, warnings)
}

func (e *Engine) labelNames(w http.ResponseWriter, r *http.Request) {
	e.strings(w, r, func(q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelNames(r.Context(), nil, ms...)
	})
}

func (e *Engine) labelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !validName(name) {
		writeError(w, badData("invalid label name: %q", name))
		return
	}
	e.strings(w, r, func(q storage.Querier, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
		return q.LabelValues(r.Context(), name, nil, ms...)
	})
}

// strings answers with the sorted union of what get returns for each match[] set (or for
// every series without one): label names or values.
func (e *Engine) strings(w http.ResponseWriter, r *http.Request, get func(storage.Querier, []*labels.Matcher) ([]string, annotations.Annotations, error)) {
	q, _, aerr := e.querier(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	defer q.Close()
	sets, aerr := matchers(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]bool{}
	var warnings annotations.Annotations
	for _, ms := range sets {
		vs, ws, err := get(q, ms)
		if err != nil {
			writeError(w, &apiError{"execution", err})
			return
		}
		warnings.Merge(ws)
		for _, v := range vs {
			seen[v] = true
		}
	}
	writeData(w, sortedKeys(seen), warnings)
}

func validName(s string) bool { return s == model.MetricNameLabel || validLabelName(s) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// alertJSON is an active alert as /api/v1/alerts and /api/v1/rules show it.
type alertJSON struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

func alertsOf(r *rules.AlertingRule) []alertJSON {
	out := []alertJSON{}
	for _, a := range r.ActiveAlerts() {
		j := alertJSON{
			Labels:      a.Labels,
			Annotations: a.Annotations,
			State:       a.State.String(),
			ActiveAt:    &a.ActiveAt,
			Value:       strconv.FormatFloat(a.Value, 'e', -1, 64),
		}
		if !a.KeepFiringSince.IsZero() {
			j.KeepFiringSince = &a.KeepFiringSince
		}
		out = append(out, j)
	}
	return out
}

func (e *Engine) alerts(w http.ResponseWriter, _ *http.Request) {
	out := []alertJSON{}
	for _, r := range e.mgr.AlertingRules() {
		out = append(out, alertsOf(r)...)
	}
	writeData(w, map[string]any{"alerts": out}, nil)
}

type ruleJSON struct {
	State          string         `json:"state,omitempty"`
	Name           string         `json:"name"`
	Query          string         `json:"query"`
	Duration       float64        `json:"duration,omitempty"`
	KeepFiringFor  float64        `json:"keepFiringFor,omitempty"`
	Labels         labels.Labels  `json:"labels"`
	Annotations    *labels.Labels `json:"annotations,omitempty"`
	Alerts         []alertJSON    `json:"alerts,omitempty"`
	Health         string         `json:"health"`
	LastError      string         `json:"lastError,omitempty"`
	EvaluationTime float64        `json:"evaluationTime"`
	LastEvaluation time.Time      `json:"lastEvaluation"`
	Type           string         `json:"type"`
}

type groupJSON struct {
	Name           string     `json:"name"`
	File           string     `json:"file"`
	Rules          []ruleJSON `json:"rules"`
	Interval       float64    `json:"interval"`
	Limit          int        `json:"limit"`
	EvaluationTime float64    `json:"evaluationTime"`
	LastEvaluation time.Time  `json:"lastEvaluation"`
}

func (e *Engine) rules(w http.ResponseWriter, r *http.Request) {
	typ := r.FormValue("type")
	if typ != "" && typ != "alert" && typ != "record" {
		writeError(w, badData("invalid parameter \"type\": %q (alert or record)", typ))
		return
	}
	groups := []groupJSON{}
	for _, g := range e.mgr.RuleGroups() {
		gj := groupJSON{
			Name: g.Name(), File: g.File(), Rules: []ruleJSON{}, Interval: g.Interval().Seconds(), Limit: g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(), LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rule := range g.Rules() {
			rj := ruleJSON{
				Name: rule.Name(), Query: rule.Query().String(), Labels: rule.Labels(), Health: string(rule.Health()),
				EvaluationTime: rule.GetEvaluationDuration().Seconds(), LastEvaluation: rule.GetEvaluationTimestamp(),
			}
			if err := rule.LastError(); err != nil {
				rj.LastError = err.Error()
			}
			switch rr := rule.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				ann := rr.Annotations()
				rj.Type, rj.State, rj.Annotations = "alerting", rr.State().String(), &ann
				rj.Duration, rj.KeepFiringFor = rr.HoldDuration().Seconds(), rr.KeepFiringFor().Seconds()
				rj.Alerts = alertsOf(rr)
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				rj.Type = "recording"
			}
			gj.Rules = append(gj.Rules, rj)
		}
		if typ == "" || len(gj.Rules) > 0 {
			groups = append(groups, gj)
		}
	}
	writeData(w, map[string]any{"groups": groups}, nil)
}
