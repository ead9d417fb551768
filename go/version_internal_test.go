package wasmimage

import (
	"strings"
	"testing"
)

func TestVersionAgreesWithTheLinkedLibrary(t *testing.T) {
	// init already compared them (the test binary would not start otherwise); the
	// comparison itself must refuse a mismatch with a message that says what to do.
	if err := checkVersion(Version(), Version()); err != nil {
		t.Fatalf("equal versions refused: %v", err)
	}
	err := checkVersion("0.1.0", "0.2.0")
	if err == nil {
		t.Fatal("a header 0.1.0 with a library 0.2.0 was accepted")
	}
	for _, want := range []string{"0.1.0", "0.2.0", "ffi/install.sh"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("the mismatch message %q does not mention %s", err, want)
		}
	}
}

func TestKindNamesAreTheSharedOnes(t *testing.T) {
	names := map[Kind]string{
		KindInvalidArgument: "INVALID_ARGUMENT", KindInvalidReference: "INVALID_REFERENCE",
		KindNotFound: "NOT_FOUND", KindUnauthorized: "UNAUTHORIZED", KindForbidden: "FORBIDDEN",
		KindRateLimited: "RATE_LIMITED", KindInvalidFormat: "INVALID_FORMAT",
		KindDigestMismatch: "DIGEST_MISMATCH", KindLimitExceeded: "LIMIT_EXCEEDED",
		KindNetwork: "NETWORK", KindTimeout: "TIMEOUT", KindCancelled: "CANCELLED", KindIO: "IO",
		KindRegistry: "REGISTRY", KindInternal: "INTERNAL", KindSignatureInvalid: "SIGNATURE_INVALID",
	}
	sentinels := []error{ErrInvalidArgument, ErrInvalidReference, ErrNotFound, ErrUnauthorized,
		ErrForbidden, ErrRateLimited, ErrInvalidFormat, ErrDigestMismatch, ErrLimitExceeded,
		ErrNetwork, ErrTimeout, ErrCancelled, ErrIO, ErrRegistry, ErrInternal,
		ErrSignatureInvalid}
	if len(sentinels) != len(names) {
		t.Fatalf("%d sentinels for %d kinds", len(sentinels), len(names))
	}
	for kind, name := range names {
		if kind.String() != name {
			t.Errorf("Kind %d is %q, want %q", uint32(kind), kind.String(), name)
		}
		found := 0
		for _, sentinel := range sentinels {
			if (&Error{Kind: kind}).Is(sentinel) {
				found++
			}
		}
		if found != 1 {
			t.Errorf("%s matches %d sentinels, want 1", name, found)
		}
	}
	if got := Kind(999).String(); got != "Kind(999)" {
		t.Errorf("an unknown kind is %q", got)
	}
}
