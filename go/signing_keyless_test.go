package wasmimage_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// selfSignedRoot makes a throwaway CA certificate as PEM, standing in for a Fulcio root.
func selfSignedRoot(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test fulcio root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestKeylessTrustArguments(t *testing.T) {
	_, rekorKey := keyPair(t)
	trust := wasmimage.KeylessTrust{
		FulcioRoots:    selfSignedRoot(t),
		RekorKeys:      rekorKey,
		Issuer:         "https://issuer.example.test",
		Subject:        ".*@example[.]test",
		SubjectIsRegex: true,
	}
	client, err := wasmimage.NewClient(wasmimage.WithRequiredKeylessSignature("oci:*", trust, ""))
	if err != nil {
		t.Fatalf("valid keyless trust: %v", err)
	}
	client.Close()

	badPattern := trust
	badPattern.Subject = "("
	junkRoots := trust
	junkRoots.FulcioRoots = []byte("junk")
	swapped := trust
	swapped.FulcioRoots, swapped.RekorKeys = trust.RekorKeys, trust.FulcioRoots
	for name, bad := range map[string]wasmimage.KeylessTrust{
		"malformed subject pattern": badPattern,
		"junk Fulcio roots":         junkRoots,
		"roots and keys swapped":    swapped,
	} {
		if _, err := wasmimage.NewClient(wasmimage.WithRequiredKeylessSignature("oci:*", bad, "")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
}
