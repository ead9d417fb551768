package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"os"
	"runtime"
	"sync"
)

// FetchOption configures one Fetch: WithPolicy, WithExpectedDigest, WithStaleOnError,
// and every CallOption (WithProgress, WithPlatform).
type FetchOption interface {
	applyFetch(*fetchConfig)
}

type fetchConfig struct {
	calls          []CallOption
	policy         *string
	expectedDigest *string
	staleOnError   *bool
}

type fetchOption func(*fetchConfig)

func (f fetchOption) applyFetch(c *fetchConfig) { f(c) }

// WithPolicy is the pull policy: "if-not-present" (the default: a digest-pinned location
// is answered from the cache with no request, a tag is resolved again at most every
// tag TTL), "always" (resolve the tag on every call, download only when its digest
// changed) or "never" (the cache only; ErrNotFound otherwise). Kubernetes' spellings
// ("IfNotPresent", …) work too; another word fails the Fetch with ErrInvalidArgument.
func WithPolicy(policy string) FetchOption {
	return fetchOption(func(c *fetchConfig) { c.policy = &policy })
}

// WithExpectedDigest is the digest the module or its manifest (or index) must have,
// "sha256:<hex>" or the bare hex (what Istio calls sha256). A mismatch fails the Fetch
// with ErrDigestMismatch and nothing is cached; a malformed digest with
// ErrInvalidArgument.
func WithExpectedDigest(digest string) FetchOption {
	return fetchOption(func(c *fetchConfig) { c.expectedDigest = &digest })
}

// StaleOnErrorOption says whether to serve the last module known for a location when
// resolving it again fails with a network, timeout, 5xx or rate-limit error (the Entry
// then says Stale, and the library logs a warning), so plugins keep running through a
// registry outage. It works as a CacheOption (the cache's default, which is false) and
// as a FetchOption (for one Fetch, overriding the cache's).
type StaleOnErrorOption struct{ enabled bool }

// WithStaleOnError turns stale-on-error on or off; see StaleOnErrorOption.
func WithStaleOnError(enabled bool) StaleOnErrorOption { return StaleOnErrorOption{enabled} }

func (o StaleOnErrorOption) applyCache(opts *C.wasm_image_cache_options_t, _ *cStrings) error {
	return takeError(C.wasm_image_cache_options_set_stale_on_error(opts, C.bool(o.enabled)))
}

func (o StaleOnErrorOption) applyFetch(c *fetchConfig) {
	enabled := o.enabled
	c.staleOnError = &enabled
}

// Entry is a fetched module, leased: its file stays readable at Path, in this and every
// other process, until Close (or, as a safety net, the garbage collector) releases the
// lease. Close it as soon as the module has been handed on: a leased module is never
// evicted. Use an Entry only through its pointer.
type Entry struct {
	// Path is the read-only module file, valid until Close.
	Path string
	// ModuleDigest is "sha256:…" of the module.
	ModuleDigest string
	// ManifestDigest is "sha256:…" of the manifest, or "" for a bare module (https://,
	// file://).
	ManifestDigest string
	// IndexDigest is "sha256:…" of the index the manifest was chosen from, or "".
	IndexDigest string
	// Variant is the image format's name ("oci", "compat", …), or "" for a bare module.
	Variant string
	// Size is the module's size in bytes.
	Size int64
	// RuntimeConfig is the image's runtime metadata as the JSON object the image holds,
	// unknown fields included, or nil when it has none.
	RuntimeConfig json.RawMessage
	// Stale says the module was served from the cache because the registry could not be
	// reached (stale-on-error).
	Stale bool

	mu      sync.RWMutex
	handle  *C.wasm_image_fetch_entry_t
	cleanup runtime.Cleanup
}

// Fetch gives the module at location for a control plane: from the client's cache (see
// WithCache) when the policy allows, else downloaded once however many goroutines and
// processes ask at the same time, verified and added. Every location form Pull takes
// works, plus "oci://HOST/REPO[:TAG][@DIGEST]", "https://HOST/PATH" (a bare module;
// "http://" only for hosts given to WithInsecure) and "file:///PATH". Errors are those
// of Pull, plus ErrNotFound under the "never" policy for a location not cached and
// ErrDigestMismatch for an expected digest that matches neither module nor manifest.
// Close the returned Entry to release its lease.
func (c *Client) Fetch(ctx context.Context, location string, opts ...FetchOption) (*Entry, error) {
	var cfg fetchConfig
	for _, opt := range opts {
		if opt != nil {
			opt.applyFetch(&cfg)
		}
	}
	var entry *Entry
	err := c.use(func(client *C.wasm_image_client_t) error {
		var strs cStrings
		defer strs.free()
		loc, err := strs.add("location", location)
		if err != nil {
			return err
		}
		fetchOptions, err := cfg.options(&strs)
		if err != nil {
			return err
		}
		defer C.wasm_image_fetch_options_free(fetchOptions)
		var handle *C.wasm_image_fetch_entry_t
		err = call(ctx, cfg.calls, func(callOpts *C.wasm_image_call_options_t) *C.wasm_image_error_t {
			return C.wasm_image_fetch(client, loc, fetchOptions, callOpts, &handle)
		})
		if err != nil {
			return err
		}
		entry = newEntry(handle)
		return nil
	})
	return entry, err
}

// options makes the C fetch options, or NULL when nothing differs from the defaults.
func (cfg *fetchConfig) options(strs *cStrings) (*C.wasm_image_fetch_options_t, error) {
	if cfg.policy == nil && cfg.expectedDigest == nil && cfg.staleOnError == nil {
		return nil, nil
	}
	options := C.wasm_image_fetch_options_new()
	err := func() error {
		if cfg.policy != nil {
			p, err := strs.add("policy", *cfg.policy)
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_fetch_options_set_policy(options, p)); err != nil {
				return err
			}
		}
		if cfg.expectedDigest != nil {
			d, err := strs.add("expected digest", *cfg.expectedDigest)
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_fetch_options_set_expected_digest(options, d)); err != nil {
				return err
			}
		}
		if cfg.staleOnError != nil {
			return takeError(C.wasm_image_fetch_options_set_stale_on_error(options, C.bool(*cfg.staleOnError)))
		}
		return nil
	}()
	if err != nil {
		C.wasm_image_fetch_options_free(options)
		return nil, err
	}
	return options, nil
}

// newEntry copies what a library entry says into Go memory and keeps the entry (its
// lease) until Close or the garbage collector.
func newEntry(handle *C.wasm_image_fetch_entry_t) *Entry {
	e := &Entry{
		Path:           C.GoString(C.wasm_image_fetch_entry_path(handle)),
		ModuleDigest:   C.GoString(C.wasm_image_fetch_entry_module_digest(handle)),
		ManifestDigest: optionalString(C.wasm_image_fetch_entry_manifest_digest(handle)),
		IndexDigest:    optionalString(C.wasm_image_fetch_entry_index_digest(handle)),
		Variant:        optionalString(C.wasm_image_fetch_entry_variant(handle)),
		Size:           int64(C.wasm_image_fetch_entry_size(handle)),
		Stale:          bool(C.wasm_image_fetch_entry_stale(handle)),
		handle:         handle,
	}
	if raw := C.wasm_image_fetch_entry_runtime_config_json(handle); raw != nil {
		e.RuntimeConfig = json.RawMessage(C.GoString(raw))
	}
	e.cleanup = runtime.AddCleanup(e, func(h *C.wasm_image_fetch_entry_t) { C.wasm_image_fetch_entry_free(h) }, handle)
	return e
}

// Module reads the module file. It fails with ErrInvalidArgument once the entry is
// closed (the file may then be gone) and with the os package's error when the file
// cannot be read.
func (e *Entry) Module() ([]byte, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.handle == nil {
		return nil, invalidArgument("the entry of %s was closed: its file may be gone", e.ModuleDigest)
	}
	return os.ReadFile(e.Path)
}

// Close releases the lease: eviction may then remove the file. Closing twice is fine.
func (e *Entry) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.handle != nil {
		e.cleanup.Stop()
		C.wasm_image_fetch_entry_free(e.handle)
		e.handle = nil
	}
	return nil
}
