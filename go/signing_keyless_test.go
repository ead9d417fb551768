package wasmimage_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
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

// A keyed and a keyless requirement for one pattern (or one call) add up: a signature
// either accepts will do, whichever was given first; an image with no signature is
// still refused.
func TestKeyedAndKeylessRequirementsAddUp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	private, public := keyPair(t)
	_, rekorKey := keyPair(t)
	trust := wasmimage.KeylessTrust{
		FulcioRoots: selfSignedRoot(t),
		RekorKeys:   rekorKey,
		Issuer:      "https://issuer.example.test",
		Subject:     "ci@example.test",
	}
	client := newClient(t)
	_, signed, unsigned := pushSignedAndUnsigned(t, client, dir, private)

	keylessFirst := newClient(t,
		wasmimage.WithRequiredKeylessSignature("oci:*", trust, ""),
		wasmimage.WithRequiredSignature("oci:*", public, ""))
	if _, err := keylessFirst.Pull(ctx, signed); err != nil {
		t.Fatalf("keyed signature under keyless + keyed rules: %v", err)
	}
	if _, err := keylessFirst.Pull(ctx, unsigned); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("unsigned under keyless + keyed rules: got %v, want ErrSignatureInvalid", err)
	}
	onlyKeyless := newClient(t, wasmimage.WithRequiredKeylessSignature("oci:*", trust, ""))
	if _, err := onlyKeyless.Pull(ctx, signed); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("keyed signature under a keyless rule alone: got %v, want ErrSignatureInvalid", err)
	}

	if _, err := client.Pull(ctx, signed, wasmimage.WithVerifyKeys(public, ""), wasmimage.WithVerifyKeyless(trust, "")); err != nil {
		t.Fatalf("keyed signature, call requiring keyed or keyless: %v", err)
	}
	if _, err := client.Pull(ctx, signed, wasmimage.WithVerifyKeyless(trust, "")); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("keyed signature, call requiring keyless: got %v, want ErrSignatureInvalid", err)
	}
	if _, err := client.Pull(ctx, unsigned, wasmimage.WithVerifyKeys(public, ""), wasmimage.WithoutVerification()); err != nil {
		t.Fatalf("verification lifted after a requirement: %v", err)
	}
	if _, err := client.Pull(ctx, unsigned, wasmimage.WithoutVerification(), wasmimage.WithVerifyKeys(public, "")); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("a requirement after lifting: got %v, want ErrSignatureInvalid", err)
	}

	// One signature names one repository, so two requirements for one pattern naming
	// different ones cannot add up.
	if _, err := wasmimage.NewClient(
		wasmimage.WithRequiredSignature("oci:*", public, "example.test/a"),
		wasmimage.WithRequiredKeylessSignature("oci:*", trust, "example.test/b")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("two repositories for one pattern: got %v, want ErrInvalidArgument", err)
	}
	if _, err := client.Pull(ctx, signed, wasmimage.WithVerifyKeys(public, "example.test/a"), wasmimage.WithVerifyKeyless(trust, "")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("two repositories in one call: got %v, want ErrInvalidArgument", err)
	}
}

// keylessFixture is the folder of an image signed keyless by a test Fulcio and Rekor,
// with the trust to check it (core's keyless_fixture example, written by
// tests/run_all.sh); the test is skipped without one.
func keylessFixture(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("WASM_IMAGE_KEYLESS_FIXTURE")
	if dir == "" {
		t.Skip("skipped: WASM_IMAGE_KEYLESS_FIXTURE is unset: no keyless-signed image")
	}
	return dir
}

func readFixture(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A keyless signature from a Fulcio certificate verifies for the identity given, exact
// or as patterns, per call and per client pattern; another subject, issuer or Sigstore
// is ErrSignatureInvalid and writes nothing.
func TestKeylessSignaturesVerifyAgainstTheTrustGiven(t *testing.T) {
	fixture := keylessFixture(t)
	ctx := context.Background()
	location := "oci:" + filepath.Join(fixture, "layout") + ":v1"
	exact := wasmimage.KeylessTrust{
		FulcioRoots: readFixture(t, fixture, "fulcio_root.pem"),
		RekorKeys:   readFixture(t, fixture, "rekor.pub"),
		Issuer:      string(readFixture(t, fixture, "issuer")),
		Subject:     string(readFixture(t, fixture, "subject")),
	}
	client := newClient(t)
	img, err := client.Pull(ctx, location, wasmimage.WithVerifyKeyless(exact, ""))
	if err != nil {
		t.Fatalf("keyless signature, exact identity: %v", err)
	}
	if len(img.Module) < 8 || string(img.Module[:4]) != "\x00asm" {
		t.Errorf("pulled module starts %q", img.Module[:min(8, len(img.Module))])
	}
	img.Close()
	byPattern := exact
	byPattern.Issuer, byPattern.IssuerIsRegex = `https://issuer[.]example[.]test`, true
	byPattern.Subject, byPattern.SubjectIsRegex = `.*@example[.]test`, true
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	if _, err := client.PullToFile(ctx, location, out, wasmimage.WithVerifyKeyless(byPattern, "")); err != nil {
		t.Fatalf("keyless signature, identity patterns: %v", err)
	}
	strict := newClient(t, wasmimage.WithRequiredKeylessSignature("oci:*", exact, ""))
	if _, err := strict.Pull(ctx, location); err != nil {
		t.Fatalf("keyless signature under the client's policy: %v", err)
	}

	otherSubject, otherIssuer, otherSigstore := exact, exact, exact
	otherSubject.Subject = "someone-else@example.test"
	otherIssuer.Issuer = "https://other.example.test"
	otherSigstore.FulcioRoots = readFixture(t, fixture, "other_fulcio_root.pem")
	otherSigstore.RekorKeys = readFixture(t, fixture, "other_rekor.pub")
	for name, trust := range map[string]wasmimage.KeylessTrust{
		"another subject": otherSubject, "another issuer": otherIssuer, "another Sigstore": otherSigstore,
	} {
		if _, err := client.Pull(ctx, location, wasmimage.WithVerifyKeyless(trust, "")); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
			t.Errorf("%s: got %v, want ErrSignatureInvalid", name, err)
		}
		refused := filepath.Join(t.TempDir(), "refused.wasm")
		if _, err := client.PullToFile(ctx, location, refused, wasmimage.WithVerifyKeyless(trust, "")); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
			t.Errorf("%s, to a file: got %v, want ErrSignatureInvalid", name, err)
		}
		if _, err := os.Stat(refused); !os.IsNotExist(err) {
			t.Errorf("%s: a file was written (%v)", name, err)
		}
	}
}
