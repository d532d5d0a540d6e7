package batch

import "fmt"

// Signal is the kind of telemetry a batch carries.
type Signal uint8

const (
	Traces Signal = iota + 1
	Metrics
	Logs
)

// Signals lists every signal in a stable order.
var Signals = []Signal{Traces, Metrics, Logs}

func (s Signal) String() string {
	switch s {
	case Traces:
		return "traces"
	case Metrics:
		return "metrics"
	case Logs:
		return "logs"
	}
	return fmt.Sprintf("signal(%d)", uint8(s))
}

// ParseSignal maps a pipeline type name ("traces", "metrics", "logs") to its Signal.
func ParseSignal(s string) (Signal, error) {
	switch s {
	case "traces":
		return Traces, nil
	case "metrics":
		return Metrics, nil
	case "logs":
		return Logs, nil
	}
	return 0, fmt.Errorf("unknown signal %q (want traces, metrics or logs)", s)
}
