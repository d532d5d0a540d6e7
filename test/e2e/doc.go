// Package e2e holds end-to-end tests that run the vigil binary against real peers (telemetrygen,
// a second vigil, Jaeger v2). They build with -tags e2e and are started by test/e2e/run.sh.
package e2e
