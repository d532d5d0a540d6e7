// Command faultsink is an OTLP trace sink for reliability tests: it records the `seq` attribute
// of every span it accepts (counting duplicates) and injects faults that a control API switches
// at runtime. See README.md.
package main
