// Package componenttest holds the checks every component's tests run: the shared lifecycle
// contract (Shutdown without Start, Start then Shutdown twice, a valid default config) and
// consumers that record what reaches them.
package componenttest
