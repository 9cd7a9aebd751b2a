//go:build tools

// Package tools pins pilot-agent (a test peer) and pilot-discovery (istiod, the CA benchmark's
// peer) in this module's graph so `go mod tidy` keeps them.
package tools

import (
	_ "istio.io/istio/pilot/cmd/pilot-agent"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
