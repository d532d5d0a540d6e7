package server

import (
	"math"

	"github.com/vigilhq/vigil/internal/memlimit"
)

// Default budget of bytes in flight per listener (max_in_flight_bytes: 0). Receivers cannot see
// the memory limiter's settings (it is a processor, configured per pipeline), so the default is
// derived from what the limiter's limit_percentage is derived from: the memory available to the
// process (memlimit.Available). A quarter of it leaves room for the pipelines' queues and for the
// other listeners, and 256 MiB is far more than an agent needs in flight (256 requests of 1 MiB
// at once), while a gateway that wants more says so. The floor is what a few of the largest
// requests need, so that a small container does not refuse requests its size limits allow.
const (
	defaultInFlightFraction = 4
	defaultInFlightCap      = 256 << 20
)

// availableMemory is swapped by tests.
var availableMemory = memlimit.Available

// defaultInFlight is the default budget for a listener whose largest request is maxRequest
// bytes (compressed, and again decompressed).
func defaultInFlight(maxRequest int64) int64 {
	floor := max(4*maxRequest, MinInFlight(maxRequest))
	v := int64(defaultInFlightCap)
	if avail := availableMemory(); avail > 0 {
		v = min(v, int64(min(avail/defaultInFlightFraction, math.MaxInt64)))
	}
	return max(v, floor)
}
