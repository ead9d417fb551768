package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
	"unsafe"
)

// Image is a Wasm module with its image: what Pull, PullToFile and Build return. The
// fields are copies in Go memory; the library's own copy, which Push sends, stays
// behind the Image until Close (or the garbage collector) frees it, so changing a field
// changes nothing that is pushed. Use an Image only through its pointer: a copy of the
// struct would share the library image (go vet reports such copies).
type Image struct {
	// Module is the Wasm module's bytes; nil for an image from PullToFile.
	Module []byte
	// ModuleSize is the module's size in bytes (also for an image from PullToFile).
	ModuleSize int64
	// Variant is the image's format: "oci" or "compat" (the two variants of the Wasm
	// Image specification) or another format's name ("wasm-artifact", "wasm-to-oci",
	// "wasmcloud", "wasi-image", "oci-artifact").
	Variant string
	// ModuleDigest is "sha256:…" of the module bytes.
	ModuleDigest string
	// ManifestDigest is "sha256:…" of the manifest (what Push returns).
	ManifestDigest string
	// IndexDigest is "sha256:…" of the index the manifest was chosen from, or "" when the
	// location named a manifest.
	IndexDigest string
	// ManifestMediaType is the manifest's media type (OCI's or Docker's).
	ManifestMediaType string
	// Manifest is the manifest exactly as stored (its SHA-256 is ManifestDigest).
	Manifest []byte
	// Config is the config blob exactly as stored.
	Config []byte
	// RuntimeConfig is the image's runtime metadata, or nil when it has none.
	RuntimeConfig *RuntimeConfig
	// Annotations are the manifest's annotations (empty, not nil, when there are none).
	Annotations map[string]string

	mu      sync.RWMutex
	handle  *C.wasm_image_image_t
	cleanup runtime.Cleanup
}

// RuntimeConfig is the runtime metadata of an image: which runtime loads the module and
// how.
type RuntimeConfig struct {
	// Type is the runtime type, e.g. "envoy_proxy"; "" when the metadata names none.
	Type string
	// ABIVersions are the ABI versions the module supports, e.g. "v0.2.1".
	ABIVersions []string
	// RootIDs are the filter's root context names.
	RootIDs []string
	// Raw is the whole metadata as a JSON object, unknown fields included, as the
	// image's own tools wrote it.
	Raw json.RawMessage
}

// newImage copies what a library image holds into Go memory. With keep, the Image holds
// on to the library image (Push needs it) until Close or the garbage collector;
// otherwise it is freed at once.
func newImage(handle *C.wasm_image_image_t, keep bool) *Image {
	img := &Image{
		ModuleSize:        int64(C.wasm_image_image_module_size(handle)),
		Variant:           C.GoString(C.wasm_image_image_variant(handle)),
		ModuleDigest:      C.GoString(C.wasm_image_image_module_digest(handle)),
		ManifestDigest:    C.GoString(C.wasm_image_image_manifest_digest(handle)),
		IndexDigest:       optionalString(C.wasm_image_image_index_digest(handle)),
		ManifestMediaType: C.GoString(C.wasm_image_image_manifest_media_type(handle)),
		Annotations:       map[string]string{},
	}
	var n C.size_t
	if p := C.wasm_image_image_module(handle, &n); p != nil {
		img.Module = copyBytes(p, n)
	}
	img.Manifest = copyBytes(C.wasm_image_image_manifest(handle, &n), n)
	img.Config = copyBytes(C.wasm_image_image_config(handle, &n), n)
	if C.wasm_image_image_has_runtime_config(handle) {
		rc := &RuntimeConfig{
			Type:        optionalString(C.wasm_image_image_runtime_type(handle)),
			ABIVersions: []string{},
			RootIDs:     []string{},
		}
		for i := C.size_t(0); i < C.wasm_image_image_abi_version_count(handle); i++ {
			rc.ABIVersions = append(rc.ABIVersions, C.GoString(C.wasm_image_image_abi_version(handle, i)))
		}
		for i := C.size_t(0); i < C.wasm_image_image_root_id_count(handle); i++ {
			rc.RootIDs = append(rc.RootIDs, C.GoString(C.wasm_image_image_root_id(handle, i)))
		}
		if raw := C.wasm_image_image_runtime_config_json(handle); raw != nil {
			rc.Raw = json.RawMessage(C.GoString(raw))
		}
		img.RuntimeConfig = rc
	}
	for i := C.size_t(0); i < C.wasm_image_image_annotation_count(handle); i++ {
		key := C.GoString(C.wasm_image_image_annotation_key(handle, i))
		img.Annotations[key] = C.GoString(C.wasm_image_image_annotation_value(handle, i))
	}
	if !keep {
		C.wasm_image_image_free(handle)
		return img
	}
	img.handle = handle
	img.cleanup = runtime.AddCleanup(img, func(h *C.wasm_image_image_t) { C.wasm_image_image_free(h) }, handle)
	return img
}

// Close frees the library's copy of the image; the Go fields stay usable, but the image
// can no longer be pushed. Closing twice is fine.
func (img *Image) Close() error {
	img.mu.Lock()
	defer img.mu.Unlock()
	if img.handle != nil {
		img.cleanup.Stop()
		C.wasm_image_image_free(img.handle)
		img.handle = nil
	}
	return nil
}

// use runs f with the library image, holding it meanwhile.
func (img *Image) use(f func(*C.wasm_image_image_t) error) error {
	img.mu.RLock()
	defer img.mu.RUnlock()
	if img.handle == nil {
		if img.Module == nil && img.ModuleDigest != "" {
			return invalidArgument("the image of %s came from PullToFile: its module is in the file, so it cannot be pushed", img.ManifestDigest)
		}
		return invalidArgument("the image was closed (or not made by Pull or Build): it cannot be pushed")
	}
	return f(img.handle)
}

// Facts reads the structure of the image's module (see ModuleFacts). An image from
// PullToFile has no module in memory: read the file and call ModuleFacts.
func (img *Image) Facts() (*Facts, error) {
	if img.Module == nil {
		return nil, invalidArgument("the image has no module in memory (it came from PullToFile): pass the file's bytes to ModuleFacts")
	}
	return ModuleFacts(img.Module)
}

func optionalString(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// copyBytes copies n bytes of library memory into a new Go slice (nil for none).
func copyBytes(p *C.uint8_t, n C.size_t) []byte {
	if p == nil {
		return nil
	}
	src := unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
	// A fresh large allocation comes from memory the runtime knows is zero, so this
	// writes nothing before the copy: one pass over the bytes.
	dst := make([]byte, len(src))
	// Copied a piece at a time with a yield between pieces: one copy of a large module
	// is a single memmove that cannot be preempted, and a garbage collection starting
	// meanwhile (the allocation above may start one) spins signalling this goroutine
	// until it reaches a safe point, burning both CPUs for as long as the copy takes.
	for at := 0; at < len(src); at += copyPiece {
		copy(dst[at:], src[at:min(at+copyPiece, len(src))])
		runtime.Gosched()
	}
	return dst
}

// copyPiece is the most copyBytes copies between yields: tens of microseconds.
const copyPiece = 256 << 10
