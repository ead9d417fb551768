package wasmimage

// The one place that says how the package links: pkg-config finds the header and the
// library that `ffi/install.sh --static-only PREFIX` installs, so the Go binary carries
// the library inside it and needs no shared object at run time.

/*
#cgo pkg-config: wasmimage
#include <wasm_image.h>
*/
import "C"

import "fmt"

// headerVersion is the version the header this package was compiled against names; the
// header's version macros come from the Cargo workspace version, the one source of it.
const headerVersion = C.WASM_IMAGE_VERSION_STRING

// Version returns the version of wasm-image this package was built for, "MAJOR.MINOR.PATCH"
// (the header's WASM_IMAGE_VERSION_* macros). The linked library is checked to be the
// same version when the package is initialised.
func Version() string { return headerVersion }

func init() {
	if err := checkVersion(headerVersion, C.GoString(C.wasm_image_version())); err != nil {
		panic(err)
	}
}

// checkVersion refuses a library that is not the version of the header the package was
// compiled with: a mismatch means the install of libwasmimage and the Go module differ,
// and every handle or enum could mean something else.
func checkVersion(header, library string) error {
	if header != library {
		return fmt.Errorf("wasmimage: compiled against wasm_image.h %s but linked with libwasmimage %s: "+
			"install the library of the same version (ffi/install.sh --static-only PREFIX) and rebuild", header, library)
	}
	return nil
}
