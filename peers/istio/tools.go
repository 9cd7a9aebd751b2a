//go:build tools

// Package tools pins pilot-agent in this module's graph so `go mod tidy` keeps it.
package tools

import (
	_ "istio.io/istio/pilot/cmd/pilot-agent"
)
