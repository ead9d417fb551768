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
// matches anything; the most specific matching pattern decides. Failures are
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

// WithSignatureExempt exempts locations matching pattern (say "oci:*") from a broader
// WithRequiredSignature.
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
// replaces the client's policy for the call.
func WithVerifyKeys(publicKeysPEM []byte, repository string) CallOption {
	return signingOption(func(c *callConfig) {
		c.verify = &verifyConfig{keys: publicKeysPEM, repository: repository}
	})
}

// WithoutVerification checks no signature in this call, whatever the client's policy.
func WithoutVerification() CallOption {
	return signingOption(func(c *callConfig) { c.verify = &verifyConfig{skip: true} })
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
	repository string
	skip       bool
}

type signingConfig struct {
	key         []byte
	passwordEnv string
}

// applySigning passes the call's signing settings to the C call options.
func (c *callConfig) applySigning(options *C.wasm_image_call_options_t, strs *cStrings) error {
	if v := c.verify; v != nil {
		if v.skip {
			if err := takeError(C.wasm_image_call_options_skip_signature(options)); err != nil {
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
