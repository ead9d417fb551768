package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"sort"
	"time"
)

// BuildOption configures Build. Without options Build writes the "oci" variant with
// runtime type "envoy_proxy", the ABI versions the module exports
// (proxy_abi_version_*), no root ids, no annotations, an OCI manifest and no timestamps
// unless SOURCE_DATE_EPOCH is set, so builds are reproducible.
type BuildOption func(*buildBuilder) error

type buildBuilder struct {
	options *C.wasm_image_build_options_t
	strs    cStrings
}

// WithVariant chooses the format written: "oci" (default) or "compat". The other formats
// are read, not written.
func WithVariant(variant string) BuildOption {
	return func(b *buildBuilder) error {
		v, err := b.strs.add("variant", variant)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_build_options_set_variant(b.options, v))
	}
}

// WithRuntimeType is the runtime type recorded in the runtime metadata (default
// "envoy_proxy").
func WithRuntimeType(runtimeType string) BuildOption {
	return func(b *buildBuilder) error {
		t, err := b.strs.add("runtime type", runtimeType)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_build_options_set_runtime_type(b.options, t))
	}
}

// WithABIVersions records ABI versions (e.g. "v0.2.1") instead of those the module
// exports.
func WithABIVersions(versions ...string) BuildOption {
	return func(b *buildBuilder) error {
		for _, version := range versions {
			v, err := b.strs.add("ABI version", version)
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_build_options_add_abi_version(b.options, v)); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithRootIDs records the filter's root context names.
func WithRootIDs(rootIDs ...string) BuildOption {
	return func(b *buildBuilder) error {
		for _, rootID := range rootIDs {
			r, err := b.strs.add("root id", rootID)
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_build_options_add_root_id(b.options, r)); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithAnnotations sets manifest annotations (a later value for the same key wins).
func WithAnnotations(annotations map[string]string) BuildOption {
	return func(b *buildBuilder) error {
		// In key order, so the same map always makes the same calls.
		keys := make([]string, 0, len(annotations))
		for key := range annotations {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		for _, key := range keys {
			k, err := b.strs.add("annotation key", key)
			if err != nil {
				return err
			}
			v, err := b.strs.add("annotation value", annotations[key])
			if err != nil {
				return err
			}
			if err := takeError(C.wasm_image_build_options_set_annotation(b.options, k, v)); err != nil {
				return err
			}
		}
		return nil
	}
}

// WithManifestFormat chooses the manifest format: "oci" (default) or "docker" (Docker
// schema 2, only with the "compat" variant).
func WithManifestFormat(format string) BuildOption {
	return func(b *buildBuilder) error {
		f, err := b.strs.add("manifest format", format)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_build_options_set_manifest_format(b.options, f))
	}
}

// WithSourceDateEpoch writes t (to the second) as the image's timestamps, overriding
// SOURCE_DATE_EPOCH.
func WithSourceDateEpoch(t time.Time) BuildOption {
	return func(b *buildBuilder) error {
		if t.Unix() < 0 {
			return invalidArgument("the source date epoch must not be before 1970, got %s", t)
		}
		return takeError(C.wasm_image_build_options_set_source_date_epoch(b.options, C.uint64_t(t.Unix())))
	}
}

// Build makes an image of module (a Wasm core module or component) without writing it
// anywhere: push it with (*Client).Push. It fails with ErrInvalidFormat when the bytes
// are not Wasm and ErrInvalidArgument for options that do not fit together.
func Build(module []byte, opts ...BuildOption) (*Image, error) {
	b := buildBuilder{options: C.wasm_image_build_options_new()}
	defer C.wasm_image_build_options_free(b.options)
	defer b.strs.free()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&b); err != nil {
			return nil, err
		}
	}
	p, n := bytesArg(module)
	if p == nil {
		// The library wants a pointer even for no bytes; zero bytes are not Wasm.
		var empty [1]byte
		p = (*C.uint8_t)(&empty[0])
	}
	var handle *C.wasm_image_image_t
	if err := takeError(C.wasm_image_build(p, n, b.options, &handle)); err != nil {
		return nil, err
	}
	return newImage(handle, true), nil
}
