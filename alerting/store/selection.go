// Package store is the alerting engine's local store: a tsdb head with its WAL (store.go),
// holding only the series the rules can read, selected by the matchers of their expressions
// (selection.go; docs/alerting.md, "Selection").
package store

import (
	"fmt"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/vigilhq/vigil/alerting/rulefiles"
)

// Selection is a set of selectors: a series is selected if every matcher of at least one of
// them matches it. Selectors that name their metric (`__name__="x"`, the usual case) are
// indexed by that name, so a series is checked only against the selectors of its own name and
// those that do not name one. The zero value selects nothing.
type Selection struct {
	byName   map[string][][]*labels.Matcher
	unnamed  [][]*labels.Matcher
	everyone bool // a selector that matches every series ({__name__=~".+"} and the like)
}

// FromRuleFiles parses the rule files and selects what their expressions read. Errors name the
// file, as rulefiles.Parse does.
func FromRuleFiles(files ...string) (*Selection, []error) {
	s := &Selection{}
	errs := WalkRules(files, func(_ rulefmt.Rule, e parser.Expr) { s.AddParsed(e) })
	return s, errs
}

// WalkRules parses each rule file once and calls fn with every rule and its parsed
// expression. Errors name the file (and group, for an expression that does not parse).
func WalkRules(files []string, fn func(r rulefmt.Rule, e parser.Expr)) []error {
	var errs []error
	for _, f := range files {
		rgs, ferrs := rulefiles.Parse(f, nil)
		if len(ferrs) > 0 {
			errs = append(errs, ferrs...)
			continue
		}
		for _, g := range rgs.Groups {
			for _, r := range g.Rules {
				e, err := rulefiles.Parser.ParseExpr(r.Expr)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: group %q: %w", f, g.Name, err))
					continue
				}
				fn(r, e)
			}
		}
	}
	return errs
}

// AddExpr adds the selectors a PromQL expression reads.
func (s *Selection) AddExpr(expr string) error {
	e, err := rulefiles.Parser.ParseExpr(expr)
	if err != nil {
		return err
	}
	s.AddParsed(e)
	return nil
}

// AddParsed adds the selectors a parsed expression reads.
func (s *Selection) AddParsed(e parser.Expr) {
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			s.add(vs.LabelMatchers)
		}
		return nil
	})
}

// AddSelector adds a series selector (`{job="api"}`, `up`), as in alerting.store.keep.
func (s *Selection) AddSelector(sel string) error {
	ms, err := rulefiles.Parser.ParseMetricSelector(sel)
	if err != nil {
		return err
	}
	s.add(ms)
	return nil
}

func (s *Selection) add(ms []*labels.Matcher) {
	name, named := "", false
	for _, m := range ms {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name, named = m.Value, true
			break
		}
	}
	switch {
	case named:
		if s.byName == nil {
			s.byName = map[string][][]*labels.Matcher{}
		}
		s.byName[name] = append(s.byName[name], ms)
	case matchesEverything(ms):
		s.everyone = true
	default:
		s.unnamed = append(s.unnamed, ms)
	}
}

// matchesEverything reports whether the matchers are only `__name__=~".+"`, which every
// series matches.
func matchesEverything(ms []*labels.Matcher) bool {
	for _, m := range ms {
		if m.Name != model.MetricNameLabel || m.Type != labels.MatchRegexp || m.Value != ".+" {
			return false
		}
	}
	return len(ms) > 0
}

// SelectsEverything reports whether some selector matches every series, which makes the store
// keep everything it is fed (worth a warning in `vigil validate`).
func (s *Selection) SelectsEverything() bool { return s.everyone }

// MaySelectName reports whether some selector could match a series of that metric name: when
// it says no, the series need not be looked at further (its labels not even built). It does
// not allocate.
func (s *Selection) MaySelectName(name []byte) bool {
	if s.everyone || len(s.unnamed) > 0 {
		return true
	}
	_, ok := s.byName[string(name)]
	return ok
}

// Selects reports whether a rule can read the series.
func (s *Selection) Selects(ls labels.Labels) bool {
	if s.everyone {
		return true
	}
	for _, ms := range s.byName[ls.Get(model.MetricNameLabel)] {
		if matchAll(ms, ls) {
			return true
		}
	}
	for _, ms := range s.unnamed {
		if matchAll(ms, ls) {
			return true
		}
	}
	return false
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
