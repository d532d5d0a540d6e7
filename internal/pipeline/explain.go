package pipeline

import (
	"fmt"
	"strings"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/internal/component"
)

// ExplainAcks says, for each pipeline, when its clients are answered: the acknowledgement mode
// of each exporter it feeds, what that mode means for the exporter, and which processors make
// clients wait for their sends. `vigil validate` prints it.
func ExplainAcks(cfg *config.Config, f component.Factories) []string {
	var out []string
	for _, pid := range sortedPipelines(cfg) {
		p := cfg.Service.Pipelines[pid]
		if cfg.AcksNone(pid) {
			out = append(out, fmt.Sprintf("pipeline %s: acknowledgements none: a client is answered as soon as the pipeline took "+
				"its request; what processors or memory queues hold when the process dies is lost", pid))
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "pipeline %s: a client is answered once every exporter has its data:", pid)
		for _, id := range p.Exporters {
			mode := cfg.AckMode(pid, id)
			fmt.Fprintf(&b, "\n  exporter %s: %s", id, mode)
			switch point := ackPoint(cfg.Exporters[id], mode); {
			case mode == component.AckNone:
				b.WriteString(": not waited for beyond taking the data")
			case point != "":
				b.WriteString(": " + point)
			default:
				b.WriteString(": the exporter has handled the data (it has no queue)")
			}
		}
		for _, id := range p.Processors {
			if !f.Processors[id.Type].Buffers {
				continue
			}
			fmt.Fprintf(&b, "\n  processor %s holds data before sending it on; clients wait for its send", id)
			if h, ok := cfg.Processors[id].(component.Holding); ok && h.MaxHold() > 0 {
				fmt.Fprintf(&b, " (up to %s)", h.MaxHold())
			}
			b.WriteString("; batch in the exporter (sending_queue.batch) to answer at once")
		}
		out = append(out, b.String())
	}
	return out
}

func ackPoint(cfg component.Config, m component.AckMode) string {
	if a, ok := cfg.(component.AckPointer); ok {
		return a.AckPoint(m)
	}
	return ""
}
