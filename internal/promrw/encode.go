package promrw

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// SeriesEncoder builds one 1.0 TimeSeries message at a time, for code that produces series
// rather than forwarding scanned ones (the scrape receiver, the OTLP translator). Labels must be
// added in sorted order, as remote write requires; the encoder does not sort them.
// Reset it between series; it keeps its buffer.
type SeriesEncoder struct {
	buf []byte
}

// Reset starts a new series.
func (e *SeriesEncoder) Reset() { e.buf = e.buf[:0] }

// Label adds a label.
func (e *SeriesEncoder) Label(name, value string) {
	e.buf = appendLabelString(e.buf, v1SeriesLabels, name, value)
}

// Sample adds a float sample (t in milliseconds).
func (e *SeriesEncoder) Sample(v float64, t int64) {
	e.buf = protowire.AppendTag(e.buf, v1SeriesSamples, protowire.BytesType)
	e.buf = protowire.AppendVarint(e.buf, uint64(1+8+1+protowire.SizeVarint(uint64(t))))
	e.buf = protowire.AppendTag(e.buf, sampleValue, protowire.Fixed64Type)
	e.buf = protowire.AppendFixed64(e.buf, math.Float64bits(v))
	e.buf = protowire.AppendTag(e.buf, sampleTimestamp, protowire.VarintType)
	e.buf = protowire.AppendVarint(e.buf, uint64(t))
}

// Histogram adds an already encoded prometheus.Histogram message.
func (e *SeriesEncoder) Histogram(msg []byte) {
	e.buf = appendField(e.buf, v1SeriesHistograms, msg)
}

// Exemplar adds an exemplar; labels are name, value pairs.
func (e *SeriesEncoder) Exemplar(labels []string, v float64, t int64) {
	size := 1 + 8 + 1 + protowire.SizeVarint(uint64(t))
	for i := 0; i+1 < len(labels); i += 2 {
		size += fieldSize(v1ExemplarLabels, labelSizeString(labels[i], labels[i+1]))
	}
	e.buf = protowire.AppendTag(e.buf, v1SeriesExemplars, protowire.BytesType)
	e.buf = protowire.AppendVarint(e.buf, uint64(size))
	for i := 0; i+1 < len(labels); i += 2 {
		e.buf = appendLabelString(e.buf, v1ExemplarLabels, labels[i], labels[i+1])
	}
	e.buf = protowire.AppendTag(e.buf, exemplarValue, protowire.Fixed64Type)
	e.buf = protowire.AppendFixed64(e.buf, math.Float64bits(v))
	e.buf = protowire.AppendTag(e.buf, exemplarTime, protowire.VarintType)
	e.buf = protowire.AppendVarint(e.buf, uint64(t))
}

// AppendTo appends the series to a request body and resets the encoder.
func (e *SeriesEncoder) AppendTo(dst []byte) []byte {
	dst = appendField(dst, v1RequestTimeseries, e.buf)
	e.Reset()
	return dst
}

// Metadata types of remote write 1.0 (prometheus.MetricMetadata.MetricType).
const (
	MetadataUnknown        = 0
	MetadataCounter        = 1
	MetadataGauge          = 2
	MetadataHistogram      = 3
	MetadataGaugeHistogram = 4
	MetadataSummary        = 5
	MetadataInfo           = 6
	MetadataStateset       = 7
)

// AppendMetadata appends a prometheus.MetricMetadata entry to a request body.
func AppendMetadata(dst []byte, typ int, family, help, unit string) []byte {
	size := 0
	if typ != 0 {
		size += 1 + protowire.SizeVarint(uint64(typ))
	}
	size += fieldSize(2, len(family))
	if help != "" {
		size += fieldSize(4, len(help))
	}
	if unit != "" {
		size += fieldSize(5, len(unit))
	}
	dst = protowire.AppendTag(dst, v1RequestMetadata, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(size))
	if typ != 0 {
		dst = protowire.AppendTag(dst, 1, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(typ))
	}
	dst = appendStringField(dst, 2, family)
	if help != "" {
		dst = appendStringField(dst, 4, help)
	}
	if unit != "" {
		dst = appendStringField(dst, 5, unit)
	}
	return dst
}

func labelSizeString(name, value string) int {
	return fieldSize(1, len(name)) + fieldSize(2, len(value))
}

func appendLabelString(dst []byte, num protowire.Number, name, value string) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(labelSizeString(name, value)))
	dst = appendStringField(dst, 1, name)
	return appendStringField(dst, 2, value)
}

func appendStringField(dst []byte, num protowire.Number, v string) []byte {
	dst = protowire.AppendTag(dst, num, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(v)))
	return append(dst, v...)
}
