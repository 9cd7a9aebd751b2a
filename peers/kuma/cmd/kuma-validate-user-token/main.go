// Command kuma-validate-user-token checks a user token with Kuma's own validator
// (pkg/core/tokens and the API server's user-token validator), so tests can ask Kuma, not
// meshid, whether a meshid-signed token is one a Kuma control plane accepts. kumactl has no
// offline validation of its own.
//
// Usage: kuma-validate-user-token -kid KID -public-key FILE < token
// On success it prints the user as JSON ({"Name":…,"Groups":…}) and exits 0; otherwise it
// prints Kuma's error on stderr and exits 1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-logr/logr"

	store_config "github.com/kumahq/kuma/pkg/config/core/resources/store"
	"github.com/kumahq/kuma/pkg/core/tokens"
	"github.com/kumahq/kuma/pkg/plugins/authn/api-server/tokens/issuer"
)

// noRevocations: revocation is meshid's to test; here only signature and claims matter.
type noRevocations struct{}

func (noRevocations) IsRevoked(context.Context, string) (bool, error) { return false, nil }

func main() {
	kid := flag.String("kid", "", "key ID the public key is known by")
	publicKey := flag.String("public-key", "", "PEM file with the RSA public key")
	flag.Parse()
	if err := run(*kid, *publicKey); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(kid, publicKeyFile string) error {
	pem, err := os.ReadFile(publicKeyFile)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	// Static keys, as a Kuma control plane configured with apiServer.authn.tokens.validator.publicKeys.
	accessor, err := tokens.NewStaticSigningKeyAccessor([]tokens.PublicKey{{KID: kid, PEM: string(pem)}})
	if err != nil {
		return err
	}
	validator := issuer.NewUserTokenValidator(tokens.NewValidator(logr.Discard(), []tokens.SigningKeyAccessor{accessor}, noRevocations{}, store_config.KubernetesStore))
	user, err := validator.Validate(context.Background(), strings.TrimSpace(string(raw)))
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(user)
}
