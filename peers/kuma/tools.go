//go:build tools

// Package tools pins kumactl in this module's graph so `go mod tidy` keeps it.
package tools

import (
	_ "github.com/kumahq/kuma/app/kumactl"
)
