// Package ack is how a client's acknowledgement follows its data: a completion handle per
// request, carried by the batches that hold the request's items, held by every component that
// answers before it is done with them, and completed when the last of them lets go.
package ack
