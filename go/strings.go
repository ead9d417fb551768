package wasmimage

/*
#include <stdlib.h>
#include <wasm_image.h>
*/
import "C"

import (
	"strings"
	"unsafe"
)

// cStrings holds the C copies of the strings passed to one C call, freed together.
type cStrings []*C.char

// add copies s to C memory. A NUL byte cannot cross the C ABI (C would see a shorter
// string), so it is refused rather than silently cutting the value.
func (cs *cStrings) add(what, s string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalidArgument("%s contains a NUL byte: %q", what, s)
	}
	p := C.CString(s)
	*cs = append(*cs, p)
	return p, nil
}

func (cs *cStrings) free() {
	for _, p := range *cs {
		C.free(unsafe.Pointer(p))
	}
	*cs = nil
}

// takeString copies a string the library allocated for the caller, and frees it.
func takeString(p *C.char) string {
	if p == nil {
		return ""
	}
	defer C.wasm_image_string_free(p)
	return C.GoString(p)
}
