// ambient-ca-client asks a CA for a workload certificate the way Istio's ambient node proxy
// (ztunnel) does: IstioCertificateService.CreateCertificate from istio.io/api's generated
// client, the caller's token as `authorization: Bearer`, and the identity it wants in the
// request's metadata Struct under ImpersonatedIdentity, with a CSR that names that identity.
// It prints one JSON line with the gRPC status and the issued leaf's URIs, so a test can
// assert both; it exits non-zero only when it could not make the call at all.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"
)

// The key istiod reads (istio.io/istio pkg/security.ImpersonatedIdentity).
const impersonatedIdentity = "ImpersonatedIdentity"

type result struct {
	Code    string   `json:"code"`
	Message string   `json:"message,omitempty"`
	URIs    []string `json:"uris,omitempty"`
	Chain   int      `json:"chain,omitempty"`
}

func main() {
	addr := flag.String("addr", "", "CA address host:port")
	rootFile := flag.String("root", "", "PEM file with the roots that sign the CA's serving certificate")
	serverName := flag.String("server-name", "istiod.istio-system.svc", "name to verify on the CA's serving certificate")
	tokenFile := flag.String("token-file", "", "file holding the caller's service-account token")
	impersonate := flag.String("impersonate", "", "SPIFFE ID to ask for on behalf of a workload (empty: the caller's own)")
	ttl := flag.Int64("ttl", 3600, "requested lifetime in seconds")
	flag.Parse()
	if err := run(*addr, *rootFile, *serverName, *tokenFile, *impersonate, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "ambient-ca-client:", err)
		os.Exit(2)
	}
}

func run(addr, rootFile, serverName, tokenFile, impersonate string, ttl int64) error {
	rootPEM, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		return fmt.Errorf("no certificate in %s", rootFile)
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		return err
	}
	csr, err := makeCSR(impersonate)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12})))
	if err != nil {
		return err
	}
	defer conn.Close()

	request := &pb.IstioCertificateRequest{Csr: string(csr), ValidityDuration: ttl}
	if impersonate != "" {
		request.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{impersonatedIdentity: structpb.NewStringValue(impersonate)}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+strings.TrimSpace(string(token)))
	response, err := pb.NewIstioCertificateServiceClient(conn).CreateCertificate(ctx, request)

	out := result{}
	if err != nil {
		s := status.Convert(err)
		out.Code, out.Message = s.Code().String(), s.Message()
	} else {
		out.Code, out.Chain = "OK", len(response.CertChain)
		if len(response.CertChain) == 0 {
			return fmt.Errorf("an empty certificate chain")
		}
		block, _ := pem.Decode([]byte(response.CertChain[0]))
		if block == nil {
			return fmt.Errorf("the chain's first entry is not PEM")
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		for _, u := range leaf.URIs {
			out.URIs = append(out.URIs, u.String())
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// makeCSR makes a P-256 key and a CSR naming the wanted identity as its one URI SAN, as
// ztunnel names the identity it asks for; none when the caller asks for its own.
func makeCSR(identity string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	template := &x509.CertificateRequest{}
	if identity != "" {
		u, err := url.Parse(identity)
		if err != nil {
			return nil, err
		}
		template.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, template, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}
