package wasmimage_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// keyPair makes a fresh P-256 key pair as PEM: (PKCS#8 private, SPKI public).
func keyPair(t *testing.T) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	private, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	public, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: private}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: public})
}

// pushSignedAndUnsigned builds a minimal module's image and pushes it to two layouts
// under dir: signed with private, and unsigned. It returns the image and both locations.
func pushSignedAndUnsigned(t *testing.T, client *wasmimage.Client, dir string, private []byte) (*wasmimage.Image, string, string) {
	t.Helper()
	img, err := wasmimage.Build([]byte("\x00asm\x01\x00\x00\x00"))
	if err != nil {
		t.Fatal(err)
	}
	signed := "oci:" + filepath.Join(dir, "signed") + ":v1"
	unsigned := "oci:" + filepath.Join(dir, "unsigned") + ":v1"
	if _, err := client.Push(context.Background(), img, signed, wasmimage.WithSigningKey(private, "")); err != nil {
		t.Fatalf("signed push: %v", err)
	}
	if _, err := client.Push(context.Background(), img, unsigned); err != nil {
		t.Fatal(err)
	}
	return img, signed, unsigned
}

func TestSigningAndVerificationPolicy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	private, public := keyPair(t)
	_, stranger := keyPair(t)
	client := newClient(t)
	img, signed, unsigned := pushSignedAndUnsigned(t, client, dir, private)

	if _, err := client.Pull(ctx, signed, wasmimage.WithVerifyKeys(public, "")); err != nil {
		t.Fatalf("verified pull: %v", err)
	}
	if _, err := client.Pull(ctx, unsigned, wasmimage.WithVerifyKeys(public, "")); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("unsigned: got %v, want ErrSignatureInvalid", err)
	}
	out := filepath.Join(dir, "plugin.wasm")
	if _, err := client.PullToFile(ctx, signed, out, wasmimage.WithVerifyKeys(stranger, "")); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("wrong key: got %v, want ErrSignatureInvalid", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a refused pull left %s behind (%v)", out, err)
	}

	// A client policy: the signed store needs the key, every other oci: store a key
	// nobody signed with; a call may lift it.
	strict := newClient(t,
		wasmimage.WithRequiredSignature("oci:*", stranger, ""),
		wasmimage.WithRequiredSignature("oci:"+filepath.Join(dir, "signed"), public, ""))
	if _, err := strict.Pull(ctx, signed); err != nil {
		t.Fatalf("policy pull: %v", err)
	}
	if _, err := strict.Pull(ctx, unsigned); !errors.Is(err, wasmimage.ErrSignatureInvalid) {
		t.Fatalf("policy, unsigned: got %v", err)
	}
	if _, err := strict.Pull(ctx, unsigned, wasmimage.WithoutVerification()); err != nil {
		t.Fatalf("lifted: %v", err)
	}
	lenient := newClient(t, wasmimage.WithRequiredSignature("oci:*", stranger, ""), wasmimage.WithSignatureExempt("oci:"+filepath.Join(dir, "unsigned")))
	if _, err := lenient.Pull(ctx, unsigned); err != nil {
		t.Fatalf("exempt: %v", err)
	}

	if _, err := wasmimage.NewClient(wasmimage.WithRequiredSignature("oci:*", []byte("junk"), "")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("junk key: got %v", err)
	}
	if _, err := client.Push(ctx, img, signed, wasmimage.WithSigningKey(public, "")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("public key as signing key: got %v", err)
	}
}
