// Package server holds the listener settings every receiver shares (endpoint, TLS, bearer-token
// auth, size limits, timeouts) and turns them into listeners, an *http.Server and gRPC server
// options, so that each receiver gets the same security defaults without repeating them.
package server
