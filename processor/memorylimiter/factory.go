package memorylimiter

import (
	"fmt"

	"github.com/vigilhq/vigil/internal/batch"
	"github.com/vigilhq/vigil/internal/component"
	"github.com/vigilhq/vigil/internal/memlimit"
)

// Type is the name configs use for this processor.
const Type = "memory_limiter"

// NewFactory returns the memory limiter's factory. Put the processor first in each pipeline, so
// data is refused before other processors spend memory on it.
func NewFactory() component.ProcessorFactory {
	return component.ProcessorFactory{
		Type:        Type,
		Signals:     batch.Signals,
		MutatesData: false,
		NewConfig:   func() component.Config { return NewConfig() },
		Create: component.CreateProcessor(func(set component.Settings, c *Config, _ batch.Signal, next component.Consumer) (component.Processor, error) {
			hard, soft, err := c.limits(func() (uint64, error) { return memlimit.Total("/") })
			if err != nil {
				return nil, fmt.Errorf("%s: %w", set.ID, err)
			}
			set.Logger.Debug("memory limiter configured", "limit_mib", hard/mib, "soft_limit_mib", soft/mib,
				"check_interval", c.CheckInterval)
			return newLimiter(set, c, hard, soft, next), nil
		}),
	}
}
