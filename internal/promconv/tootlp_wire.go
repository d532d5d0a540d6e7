package promconv

import (
	"fmt"
	"math"

	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilhq/vigil/internal/promrw"
)

// The readers below take what the conversion needs from the body in place, checking what they
// read: names and values become substrings of converter.s at their offset in the body.

// readMetadata collects the metric families' metadata (WriteRequest field 3) before the series,
// since senders put it anywhere in the body (Vigil's appender at the end, concatenated bodies
// in between) or in a body of its own (Prometheus), in which case the series get none.
func (c *converter) readMetadata() error {
	for pos := 0; pos < len(c.body); {
		num, typ, v, _, n, err := promrw.ReadField(c.body[pos:])
		if err != nil {
			return fmt.Errorf("%w: request field at byte %d: %v", promrw.ErrMalformed, pos, err)
		}
		if num == 3 && typ == protowire.BytesType {
			if err := c.readFamily(v, pos+n-len(v)); err != nil {
				return fmt.Errorf("%w: metadata at byte %d: %v", promrw.ErrMalformed, pos, err)
			}
		}
		pos += n
	}
	return nil
}

// readFamily reads a MetricMetadata {type = 1, metric_family_name = 2, help = 4, unit = 5}
// found at base. A family described twice (concatenated bodies) keeps what it was first given
// and gains what it lacked.
func (c *converter) readFamily(b []byte, base int) error {
	var (
		name string
		f    family
	)
	for pos := 0; pos < len(b); {
		num, typ, v, u, n, err := promrw.ReadField(b[pos:])
		if err != nil {
			return err
		}
		at := base + pos + n - len(v)
		pos += n
		switch num {
		case 1:
			if typ != protowire.VarintType {
				return fmt.Errorf("type has wire type %d", typ)
			}
			f.typ = metricType(u)
		case 2, 4, 5:
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d has wire type %d", num, typ)
			}
			s := c.s[at : at+len(v)]
			switch num {
			case 2:
				name = s
			case 4:
				f.help = s
			case 5:
				f.unit = s
			}
		}
	}
	if name == "" {
		return nil
	}
	if f.typ == "" {
		f.typ = model.MetricTypeUnknown
	}
	if c.meta == nil {
		c.meta = make(map[string]family)
	}
	if old, ok := c.meta[name]; ok {
		if old.typ == model.MetricTypeUnknown {
			old.typ = f.typ
		}
		if old.help == "" {
			old.help = f.help
		}
		if old.unit == "" {
			old.unit = f.unit
		}
		f = old
	}
	c.meta[name] = f
	return nil
}

func metricType(t uint64) model.MetricType {
	switch t {
	case promrw.MetadataCounter:
		return model.MetricTypeCounter
	case promrw.MetadataGauge:
		return model.MetricTypeGauge
	case promrw.MetadataHistogram:
		return model.MetricTypeHistogram
	case promrw.MetadataGaugeHistogram:
		return model.MetricTypeGaugeHistogram
	case promrw.MetadataSummary:
		return model.MetricTypeSummary
	case promrw.MetadataInfo:
		return model.MetricTypeInfo
	case promrw.MetadataStateset:
		return model.MetricTypeStateset
	}
	return model.MetricTypeUnknown
}

// parseSeries reads a TimeSeries {labels = 1, samples = 2, exemplars = 3, histograms = 4} found
// at base into the scratch fields. Histograms are only located: natives decodes them.
func (c *converter) parseSeries(raw []byte, base int) error {
	c.lbls, c.samples, c.exs, c.exLbls, c.hists = c.lbls[:0], c.samples[:0], c.exs[:0], c.exLbls[:0], c.hists[:0]
	for pos := 0; pos < len(raw); {
		num, typ, v, _, n, err := promrw.ReadField(raw[pos:])
		if err != nil {
			return err
		}
		at := base + pos + n - len(v)
		pos += n
		if num < 1 || num > 4 {
			continue
		}
		if typ != protowire.BytesType {
			return fmt.Errorf("field %d has wire type %d", num, typ)
		}
		switch num {
		case 1:
			l, err := c.parseLabel(v, at)
			if err != nil {
				return fmt.Errorf("label %d: %w", len(c.lbls), err)
			}
			c.lbls = append(c.lbls, l)
		case 2:
			s, err := parseSample(v)
			if err != nil {
				return fmt.Errorf("sample %d: %w", len(c.samples), err)
			}
			c.samples = append(c.samples, s)
		case 3:
			if err := c.parseExemplar(v, at); err != nil {
				return fmt.Errorf("exemplar %d: %w", len(c.exs), err)
			}
		case 4:
			c.hists = append(c.hists, span{off: at, n: len(v)})
		}
	}
	return nil
}

// parseLabel reads a Label {name = 1, value = 2} found at base.
func (c *converter) parseLabel(b []byte, base int) (label, error) {
	// Fast path for what every encoder writes for labels shorter than 128 bytes: name (tag
	// 0x0a, one length byte), then value (tag 0x12, one length byte), nothing else.
	if len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		n := int(b[1])
		if v := 2 + n; v+2 <= len(b) && b[v] == 0x12 && b[v+1] < 0x80 && v+2+int(b[v+1]) == len(b) {
			return label{name: c.s[base+2 : base+v], value: c.s[base+v+2 : base+len(b)]}, nil
		}
	}
	var l label
	for pos := 0; pos < len(b); {
		num, typ, v, _, n, err := promrw.ReadField(b[pos:])
		if err != nil {
			return l, err
		}
		at := base + pos + n - len(v)
		pos += n
		if num != 1 && num != 2 {
			continue
		}
		if typ != protowire.BytesType {
			return l, fmt.Errorf("field %d has wire type %d", num, typ)
		}
		if num == 1 {
			l.name = c.s[at : at+len(v)]
		} else {
			l.value = c.s[at : at+len(v)]
		}
	}
	return l, nil
}

// parseSample reads a Sample {value = 1 (double), timestamp = 2 (int64)}.
func parseSample(b []byte) (sample, error) {
	var s sample
	for pos := 0; pos < len(b); {
		num, typ, _, u, n, err := promrw.ReadField(b[pos:])
		if err != nil {
			return s, err
		}
		pos += n
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			s.v = math.Float64frombits(u)
		case num == 2 && typ == protowire.VarintType:
			s.t = int64(u)
		case num == 1 || num == 2:
			return s, fmt.Errorf("field %d has wire type %d", num, typ)
		}
	}
	return s, nil
}

// parseExemplar reads an Exemplar {labels = 1, value = 2 (double), timestamp = 3 (int64)} found
// at base.
func (c *converter) parseExemplar(b []byte, base int) error {
	e := exRef{lo: len(c.exLbls)}
	for pos := 0; pos < len(b); {
		num, typ, v, u, n, err := promrw.ReadField(b[pos:])
		if err != nil {
			return err
		}
		at := base + pos + n - len(v)
		pos += n
		switch {
		case num == 1 && typ == protowire.BytesType:
			l, err := c.parseLabel(v, at)
			if err != nil {
				return fmt.Errorf("label: %w", err)
			}
			c.exLbls = append(c.exLbls, l)
		case num == 2 && typ == protowire.Fixed64Type:
			e.v = math.Float64frombits(u)
		case num == 3 && typ == protowire.VarintType:
			e.t = int64(u)
		case num >= 1 && num <= 3:
			return fmt.Errorf("field %d has wire type %d", num, typ)
		}
	}
	e.hi = len(c.exLbls)
	c.exs = append(c.exs, e)
	return nil
}
