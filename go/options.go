package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"time"
	"unsafe"
)

// Option configures a Client (see NewClient). Options not given keep the library's
// defaults: credentials from the docker/podman config files, TLS everywhere with the
// system's CA certificates, connect timeout 10 s, read timeout 30 s, 3 retries with
// backoff from 200 ms up to 30 s, no bound on a whole call, limits of 256 MiB per
// module, 4 MiB per manifest or config, 1 GiB decompressed per layer, 10,000 tar
// entries, index depth 4 and 1,000 index entries, no mirrors, user agent
// "wasm-image/VERSION", Fetch through a cache in the default directory.
type Option interface {
	applyClient(*clientBuilder) error
}

// clientBuilder fills the C options object; strings it copies are freed with it.
type clientBuilder struct {
	options *C.wasm_image_client_options_t
	strs    cStrings
}

type clientOption func(*clientBuilder) error

func (f clientOption) applyClient(b *clientBuilder) error { return f(b) }

// bytesArg passes Go bytes for the duration of one C call (the library copies them).
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// milliseconds converts a Go duration to the C ABI's milliseconds, rounding up so that
// a positive duration never becomes zero.
func milliseconds(what string, d time.Duration) (C.uint64_t, error) {
	if d < 0 {
		return 0, invalidArgument("%s must not be negative, got %s", what, d)
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond), nil
}

// WithBasicAuth uses username and password for registry ("HOST[:PORT]", Docker Hub as
// "docker.io"): HTTP Basic, or exchanged for a bearer token when the registry asks for
// one. Explicit credentials win over every other source.
func WithBasicAuth(registry, username, password string) Option {
	return clientOption(func(b *clientBuilder) error {
		r, err := b.strs.add("registry", registry)
		if err != nil {
			return err
		}
		u, err := b.strs.add("username", username)
		if err != nil {
			return err
		}
		p, err := b.strs.add("password", password)
		if err != nil {
			return invalidArgument("the password for %s contains a NUL byte", registry)
		}
		return takeError(C.wasm_image_client_options_set_basic_auth(b.options, r, u, p))
	})
}

// WithBearerToken sends token as is (no token exchange) to registry.
func WithBearerToken(registry, token string) Option {
	return clientOption(func(b *clientBuilder) error {
		r, err := b.strs.add("registry", registry)
		if err != nil {
			return err
		}
		t, err := b.strs.add("token", token)
		if err != nil {
			return invalidArgument("the token for %s contains a NUL byte", registry)
		}
		return takeError(C.wasm_image_client_options_set_bearer_token(b.options, r, t))
	})
}

// WithDockerConfigJSON reads credentials from a docker config JSON given as bytes, such
// as the ".dockerconfigjson" of a Kubernetes pull secret. It is consulted after explicit
// credentials and before the config files. Malformed bytes fail with
// ErrInvalidArgument (from NewClient, or from the first call that looks up
// credentials). Empty bytes mean no such config.
func WithDockerConfigJSON(configJSON []byte) Option {
	return clientOption(func(b *clientBuilder) error {
		p, n := bytesArg(configJSON)
		return takeError(C.wasm_image_client_options_set_docker_config_json(b.options, p, n))
	})
}

// WithConfigFiles says whether to read $DOCKER_CONFIG/config.json,
// ~/.docker/config.json, $REGISTRY_AUTH_FILE and podman's auth.json (with credential
// helpers) when no explicit credentials match. Default: true. A control plane that must
// only use the credentials it was given passes false.
func WithConfigFiles(use bool) Option {
	return clientOption(func(b *clientBuilder) error {
		return takeError(C.wasm_image_client_options_set_use_config_files(b.options, C.bool(use)))
	})
}

// WithInsecure allows plain HTTP to each registry ("HOST[:PORT]", exactly as in
// locations). Nothing is ever downgraded automatically: every other registry uses TLS.
func WithInsecure(registries ...string) Option {
	return clientOption(func(b *clientBuilder) error {
		for _, registry := range registries {
			r, err := b.strs.add("insecure registry", registry)
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_client_options_add_insecure_registry(b.options, r)); err != nil {
				return err
			}
		}
		return nil
	})
}

// WithCACertificates trusts the CA certificates in pem (one or more PEM blocks) besides
// the system's; NewClient fails with ErrInvalidArgument when they cannot be read.
func WithCACertificates(pem []byte) Option {
	return clientOption(func(b *clientBuilder) error {
		p, n := bytesArg(pem)
		return takeError(C.wasm_image_client_options_add_ca_certificates_pem(b.options, p, n))
	})
}

// WithCACertificatesFile trusts the CA certificates in the PEM file at path, read by
// NewClient.
func WithCACertificatesFile(path string) Option {
	return clientOption(func(b *clientBuilder) error {
		p, err := b.strs.add("CA certificates path", path)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_add_ca_certificates_file(b.options, p))
	})
}

// WithConnectTimeout is the longest wait for a connection to open. Default 10 s.
func WithConnectTimeout(d time.Duration) Option {
	return clientOption(func(b *clientBuilder) error {
		ms, err := milliseconds("the connect timeout", d)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_set_connect_timeout_ms(b.options, ms))
	})
}

// WithReadTimeout is the longest wait for the next bytes of a response (a slow but
// moving download is fine). Default 30 s. For a limit on a whole call, give the call a
// context with a deadline.
func WithReadTimeout(d time.Duration) Option {
	return clientOption(func(b *clientBuilder) error {
		ms, err := milliseconds("the read timeout", d)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_set_read_timeout_ms(b.options, ms))
	})
}

// WithCallTimeout is the longest one call (Pull, Push, Copy, Resolve, Fetch) may take
// in all, retries included; it then fails with ErrTimeout. WithReadTimeout bounds each
// wait for bytes, which a server trickling a byte at a time never exceeds; this bounds
// the whole. Default 0, no bound. A call's context deadline bounds it too, and ends it
// with ErrCancelled instead.
func WithCallTimeout(d time.Duration) Option {
	return clientOption(func(b *clientBuilder) error {
		ms, err := milliseconds("the call timeout", d)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_set_call_timeout_ms(b.options, ms))
	})
}

// WithRetries is how many times a request is retried after the first try, on 429, 5xx
// and broken connections. Default 3; 0 disables retries.
func WithRetries(retries uint32) Option {
	return clientOption(func(b *clientBuilder) error {
		return takeError(C.wasm_image_client_options_set_max_retries(b.options, C.uint32_t(retries)))
	})
}

// WithRetryDelays sets the first backoff wait (it doubles at each retry; default
// 200 ms) and the cap of one wait and of a Retry-After the registry asks for (default
// 30 s).
func WithRetryDelays(base, max time.Duration) Option {
	return clientOption(func(b *clientBuilder) error {
		baseMS, err := milliseconds("the retry base delay", base)
		if err != nil {
			return err
		}
		maxMS, err := milliseconds("the retry max delay", max)
		if err != nil {
			return err
		}
		if err := takeError(C.wasm_image_client_options_set_retry_base_delay_ms(b.options, baseMS)); err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_set_retry_max_delay_ms(b.options, maxMS))
	})
}

// Limits bounds what a call accepts; exceeding one fails the call with
// ErrLimitExceeded. A zero field keeps the library's default for it.
type Limits struct {
	// MaxModuleBytes is the largest module accepted. Default 256 MiB.
	MaxModuleBytes uint64
	// MaxMetadataBytes is the largest manifest, index or config read into memory.
	// Default 4 MiB.
	MaxMetadataBytes uint64
	// MaxDecompressedBytes is the most bytes decompressed from one layer while looking
	// for the module. Default 1 GiB.
	MaxDecompressedBytes uint64
	// MaxTarEntries is the most tar entries looked at in one layer. Default 10,000.
	MaxTarEntries uint64
	// MaxIndexDepth is how many indexes may point at further indexes. Default 4.
	MaxIndexDepth uint32
	// MaxIndexEntries is the most entries in one index. Default 1,000.
	MaxIndexEntries uint64
}

// WithLimits sets the limits whose fields are not zero.
func WithLimits(limits Limits) Option {
	return clientOption(func(b *clientBuilder) error {
		set := []struct {
			value uint64
			apply func(C.uint64_t) *C.wasm_image_error_t
		}{
			{limits.MaxModuleBytes, func(v C.uint64_t) *C.wasm_image_error_t {
				return C.wasm_image_client_options_set_max_module_bytes(b.options, v)
			}},
			{limits.MaxMetadataBytes, func(v C.uint64_t) *C.wasm_image_error_t {
				return C.wasm_image_client_options_set_max_metadata_bytes(b.options, v)
			}},
			{limits.MaxDecompressedBytes, func(v C.uint64_t) *C.wasm_image_error_t {
				return C.wasm_image_client_options_set_max_decompressed_bytes(b.options, v)
			}},
			{limits.MaxTarEntries, func(v C.uint64_t) *C.wasm_image_error_t {
				return C.wasm_image_client_options_set_max_tar_entries(b.options, v)
			}},
			{uint64(limits.MaxIndexDepth), func(v C.uint64_t) *C.wasm_image_error_t {
				return C.wasm_image_client_options_set_max_index_depth(b.options, C.uint32_t(v))
			}},
			{limits.MaxIndexEntries, func(v C.uint64_t) *C.wasm_image_error_t {
				return C.wasm_image_client_options_set_max_index_entries(b.options, v)
			}},
		}
		for _, s := range set {
			if s.value == 0 {
				continue
			}
			if err := takeError(s.apply(C.uint64_t(s.value))); err != nil {
				return err
			}
		}
		return nil
	})
}

// WithMirror adds mirror ("HOST[:PORT]") to the mirrors tried, in the order added,
// before registry when reading (registries.conf style); writes always go to registry.
func WithMirror(registry, mirror string) Option {
	return clientOption(func(b *clientBuilder) error {
		r, err := b.strs.add("registry", registry)
		if err != nil {
			return err
		}
		m, err := b.strs.add("mirror", mirror)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_add_mirror(b.options, r, m))
	})
}

// WithUserAgent is the User-Agent sent to registries. Default "wasm-image/VERSION".
func WithUserAgent(userAgent string) Option {
	return clientOption(func(b *clientBuilder) error {
		ua, err := b.strs.add("user agent", userAgent)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_client_options_set_user_agent(b.options, ua))
	})
}

// PlatformOption chooses the platform to take from an index that offers several
// non-Wasm manifests. It works as a client Option (the client's default) and as a
// CallOption (for one call, overriding the client's).
type PlatformOption struct{ platform string }

// WithPlatform prefers platform, "OS/ARCH[/VARIANT]" (e.g. "wasip1/wasm",
// "linux/amd64"), when an index offers several non-Wasm manifests. Indexes with Wasm
// platforms prefer those without it.
func WithPlatform(platform string) PlatformOption { return PlatformOption{platform} }

func (o PlatformOption) applyClient(b *clientBuilder) error {
	p, err := b.strs.add("platform", o.platform)
	if err != nil {
		return err
	}
	return takeError(C.wasm_image_client_options_set_platform(b.options, p))
}

func (o PlatformOption) applyFetch(c *fetchConfig) { c.calls = append(c.calls, o) }

func (o PlatformOption) applyCall(c *callConfig) {
	platform := o.platform
	c.platform = &platform
}
