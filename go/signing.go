package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

// Signed plugins: images signed and verified the way cosign does it (a
// "sha256-<digest>.sig" tag beside the image, or OCI referrers), so cosign sign and
// cosign verify --key interoperate with these calls in both directions.

// WithRequiredSignature requires, before a module from a location matching pattern is
// returned or cached, a cosign signature by one of the keys in publicKeysPEM (one or
// more PEM "PUBLIC KEY" blocks: ECDSA P-256 as cosign generate-key-pair writes, or
// Ed25519), made for repository ("HOST/NAME") unless repository is empty. Patterns name
// registries as "HOST[:PORT]/NAME" and stores as "oci:DIR", "oci-archive:FILE"; "*"
// matches anything; the most specific matching pattern decides, and requirements for
// the same pattern add up (see WithRequiredKeylessSignature). Failures are
// ErrSignatureInvalid, with nothing returned, written or cached. Without any, nothing is
// verified.
func WithRequiredSignature(pattern string, publicKeysPEM []byte, repository string) Option {
	return clientOption(func(b *clientBuilder) error {
		p, err := b.strs.add("pattern", pattern)
		if err != nil {
			return err
		}
		var r *C.char
		if repository != "" {
			if r, err = b.strs.add("repository", repository); err != nil {
				return err
			}
		}
		keys, n := bytesArg(publicKeysPEM)
		return takeError(C.wasm_image_client_options_require_signature(b.options, p, keys, n, r))
	})
}

// KeylessTrust is the trust material of cosign keyless signatures, checked offline:
// the certificate must chain to one of FulcioRoots (PEM "CERTIFICATE" blocks), its
// Rekor bundle must be signed by one of RekorKeys (PEM "PUBLIC KEY" blocks, ECDSA P-256
// or P-384), and it must name the OIDC issuer Issuer and the subject (email or URI)
// Subject, each compared exactly, or as a regular expression over the whole value when
// IssuerIsRegex or SubjectIsRegex is set.
type KeylessTrust struct {
	FulcioRoots    []byte
	RekorKeys      []byte
	Issuer         string
	IssuerIsRegex  bool
	Subject        string
	SubjectIsRegex bool
}

// keylessArgs are a KeylessTrust's C arguments, the strings owned by strs.
type keylessArgs struct {
	roots, rekor       *C.uint8_t
	rootsLen, rekorLen C.size_t
	issuer, subject    *C.char
	issuerIsRegex      C.bool
	subjectIsRegex     C.bool
}

func (t KeylessTrust) args(strs *cStrings) (keylessArgs, error) {
	var a keylessArgs
	var err error
	if a.issuer, err = strs.add("issuer", t.Issuer); err != nil {
		return a, err
	}
	if a.subject, err = strs.add("subject", t.Subject); err != nil {
		return a, err
	}
	a.roots, a.rootsLen = bytesArg(t.FulcioRoots)
	a.rekor, a.rekorLen = bytesArg(t.RekorKeys)
	a.issuerIsRegex = C.bool(t.IssuerIsRegex)
	a.subjectIsRegex = C.bool(t.SubjectIsRegex)
	return a, nil
}

// optionalRepository is repository as a C string, or NULL when it is empty (any).
func optionalRepository(strs *cStrings, repository string) (*C.char, error) {
	if repository == "" {
		return nil, nil
	}
	return strs.add("repository", repository)
}

// WithRequiredKeylessSignature requires, before a module from a location matching
// pattern is returned or cached, a cosign keyless signature that trust accepts, made
// for repository ("HOST/NAME") unless repository is empty. Patterns are as in
// WithRequiredSignature, and requirements for the same pattern add up: with keys from
// WithRequiredSignature and this trust, a signature either accepts will do (their
// repositories must agree, or NewClient fails with ErrInvalidArgument). Failures are
// ErrSignatureInvalid, with nothing returned, written or cached.
func WithRequiredKeylessSignature(pattern string, trust KeylessTrust, repository string) Option {
	return clientOption(func(b *clientBuilder) error {
		p, err := b.strs.add("pattern", pattern)
		if err != nil {
			return err
		}
		r, err := optionalRepository(&b.strs, repository)
		if err != nil {
			return err
		}
		a, err := trust.args(&b.strs)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_require_keyless_signature(b.options, p,
			a.roots, a.rootsLen, a.rekor, a.rekorLen,
			a.issuer, a.issuerIsRegex, a.subject, a.subjectIsRegex, r))
	})
}

// WithSignatureExempt exempts locations matching pattern (say "oci:*") from a broader
// WithRequiredSignature. For a pattern that also has a requirement, the later of the two
// stands.
func WithSignatureExempt(pattern string) Option {
	return clientOption(func(b *clientBuilder) error {
		p, err := b.strs.add("pattern", pattern)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_exempt_from_signature(b.options, p))
	})
}

type signingOption func(*callConfig)

func (o signingOption) applyCall(c *callConfig) { o(c) }

func (o signingOption) applyFetch(c *fetchConfig) { c.calls = append(c.calls, o) }

// WithVerifyKeys requires, for this call (Pull, PullToFile, Fetch), a cosign signature
// by one of the keys in publicKeysPEM, made for repository unless it is empty; it
// replaces the client's policy for the call. Given with WithVerifyKeyless, a signature
// either accepts will do.
func WithVerifyKeys(publicKeysPEM []byte, repository string) CallOption {
	return signingOption(func(c *callConfig) {
		c.verify = append(c.verify, verifyConfig{keys: publicKeysPEM, repository: repository})
	})
}

// WithVerifyKeyless requires, for this call (Pull, PullToFile, Fetch), a cosign keyless
// signature that trust accepts, made for repository unless it is empty; it replaces the
// client's policy for the call. Given with WithVerifyKeys, a signature either accepts
// will do.
func WithVerifyKeyless(trust KeylessTrust, repository string) CallOption {
	return signingOption(func(c *callConfig) {
		c.verify = append(c.verify, verifyConfig{keyless: &trust, repository: repository})
	})
}

// WithoutVerification checks no signature in this call, whatever the client's policy
// (a WithVerifyKeys or WithVerifyKeyless given after it applies again).
func WithoutVerification() CallOption {
	return signingOption(func(c *callConfig) { c.verify = append(c.verify, verifyConfig{skip: true}) })
}

// WithSigningKey makes Push sign the pushed manifest the way cosign sign does, with the
// private key in keyPEM: unencrypted PKCS#8, or cosign's encrypted cosign.key whose
// password is in the environment variable passwordEnv (e.g. "COSIGN_PASSWORD"; empty
// for an unencrypted key).
func WithSigningKey(keyPEM []byte, passwordEnv string) CallOption {
	return signingOption(func(c *callConfig) {
		c.signing = &signingConfig{key: keyPEM, passwordEnv: passwordEnv}
	})
}

type verifyConfig struct {
	keys       []byte
	keyless    *KeylessTrust
	repository string
	skip       bool
}

type signingConfig struct {
	key         []byte
	passwordEnv string
}

// applySigning passes the call's signing settings to the C call options, the
// verification options in the order given (the library combines them).
func (c *callConfig) applySigning(options *C.wasm_image_call_options_t, strs *cStrings) error {
	for _, v := range c.verify {
		if v.skip {
			if err := takeError(C.wasm_image_call_options_skip_signature(options)); err != nil {
				return err
			}
		} else if v.keyless != nil {
			r, err := optionalRepository(strs, v.repository)
			if err != nil {
				return err
			}
			a, err := v.keyless.args(strs)
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_call_options_require_keyless_signature(options,
				a.roots, a.rootsLen, a.rekor, a.rekorLen,
				a.issuer, a.issuerIsRegex, a.subject, a.subjectIsRegex, r)); err != nil {
				return err
			}
		} else {
			var r *C.char
			if v.repository != "" {
				var err error
				if r, err = strs.add("repository", v.repository); err != nil {
					return err
				}
			}
			keys, n := bytesArg(v.keys)
			if err := takeError(C.wasm_image_call_options_require_signature(options, keys, n, r)); err != nil {
				return err
			}
		}
	}
	if s := c.signing; s != nil {
		var env *C.char
		if s.passwordEnv != "" {
			var err error
			if env, err = strs.add("password environment variable", s.passwordEnv); err != nil {
				return err
			}
		}
		key, n := bytesArg(s.key)
		if err := takeError(C.wasm_image_call_options_set_signing_key(options, key, n, env)); err != nil {
			return err
		}
	}
	return nil
}
