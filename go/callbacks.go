package wasmimage

// The Go functions C calls back. They run on the goroutine that made the wasm-image
// call (the library delivers callbacks on the calling thread), and never let a Go panic
// unwind through the library's frames.

/*
#include <wasm_image.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export wasmimageProgress
func wasmimageProgress(userData unsafe.Pointer, report *C.wasm_image_progress_t) {
	state := cgo.Handle(uintptr(userData)).Value().(*callState)
	if state.panicked != nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			state.panicked = p
			C.wasm_image_error_free(C.wasm_image_cancel_token_cancel(state.token))
		}
	}()
	state.progress(Progress{
		Digest:    C.GoString(report.digest),
		MediaType: C.GoString(report.media_type),
		Done:      int64(report.done),
		Total:     int64(report.total),
	})
}

//export wasmimageLog
func wasmimageLog(_ unsafe.Pointer, record *C.wasm_image_log_record_t) {
	deliverLog(int(record.level), C.GoString(record.target), C.GoString(record.message))
}
