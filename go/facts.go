package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

// Facts is what the structure of a Wasm binary says: kind, size, imports, exports and
// the proxy-wasm ABI versions it declares (see ModuleFacts).
type Facts struct {
	// Kind is "core-module" or "component".
	Kind string
	// Size is the binary's size in bytes.
	Size int64
	// Imports are "module.name" for core modules, import names for components.
	Imports []string
	// Exports are the export names.
	Exports []string
	// ProxyABIVersions are the proxy-wasm ABI versions the module declares (exports
	// proxy_abi_version_X_Y_Z), written "v0.2.1".
	ProxyABIVersions []string
}

// ModuleFacts reads the structure of module (a core module or a component). It is not a
// full validation, which is the engine's job; it fails with ErrInvalidFormat when the
// bytes are not Wasm or are malformed.
func ModuleFacts(module []byte) (*Facts, error) {
	p, n := bytesArg(module)
	if p == nil {
		var empty [1]byte
		p = (*C.uint8_t)(&empty[0])
	}
	var handle *C.wasm_image_module_facts_t
	if err := takeError(C.wasm_image_module_facts(p, n, &handle)); err != nil {
		return nil, err
	}
	defer C.wasm_image_module_facts_free(handle)
	facts := &Facts{
		Kind:             C.GoString(C.wasm_image_module_facts_kind_name(handle)),
		Size:             int64(C.wasm_image_module_facts_size(handle)),
		Imports:          []string{},
		Exports:          []string{},
		ProxyABIVersions: []string{},
	}
	for i := C.size_t(0); i < C.wasm_image_module_facts_import_count(handle); i++ {
		facts.Imports = append(facts.Imports, C.GoString(C.wasm_image_module_facts_import(handle, i)))
	}
	for i := C.size_t(0); i < C.wasm_image_module_facts_export_count(handle); i++ {
		facts.Exports = append(facts.Exports, C.GoString(C.wasm_image_module_facts_export(handle, i)))
	}
	for i := C.size_t(0); i < C.wasm_image_module_facts_proxy_abi_version_count(handle); i++ {
		facts.ProxyABIVersions = append(facts.ProxyABIVersions, C.GoString(C.wasm_image_module_facts_proxy_abi_version(handle, i)))
	}
	return facts, nil
}
