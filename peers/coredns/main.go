// Command coredns is CoreDNS with only the plugins the meshid playground needs: cluster DNS
// for Services from the kubernetes plugin, and nothing that can send a query off the machine.
//
// The stock CoreDNS main imports every plugin through core/plugin. This one imports the
// plugins it wants by hand and narrows dnsserver's directive list to them, so the binary
// builds faster, and a Corefile naming any other plugin (forward above all) fails to load
// instead of silently working.
package main

import (
	"fmt"
	"os"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// Each import registers one plugin with CoreDNS's server type.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

// directives is the order in which a query passes through the plugins of a server block. It
// keeps the relative order of CoreDNS's own generated list, because plugins are written
// against it: cache must sit above the kubernetes plugin so that it can store its answers,
// and errors and log above everything whose failures and queries they report.
//
// template answers the catch-all zone with NXDOMAIN in place of where a stock cluster
// forwards to an upstream resolver: the playground has no upstream and must not look for one.
var directives = []string{
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"cache",
	"template",
	"kubernetes",
}

func main() {
	// coremain reads dnsserver.Directives only when it parses the Corefile, so setting it
	// here, before Run, is early enough.
	if err := dnsserver.SetDirectives(directives); err != nil {
		fmt.Fprintln(os.Stderr, "coredns:", err)
		os.Exit(2)
	}
	coremain.Run()
}
