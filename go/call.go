package wasmimage

/*
#include <stdint.h>
#include <wasm_image.h>

// Defined in callbacks.go (exported from Go).
extern void wasmimageProgress(void *user_data, wasm_image_progress_t *progress);

// The cgo.Handle travels as an integer in C's void *: Go never turns it back into a
// pointer, so no Go pointer is ever kept by C.
static wasm_image_error_t *wasmimage_set_progress(wasm_image_call_options_t *options, uintptr_t handle) {
	return wasm_image_call_options_set_progress(options,
		(wasm_image_progress_callback_t)wasmimageProgress, (void *)handle);
}
*/
import "C"

import (
	"context"
	"runtime/cgo"
)

// Progress is one report of a blob transfer: the blob, and how far it got. Reports come
// at most every 50 ms per blob and always at its start and end.
type Progress struct {
	// Digest is the blob's digest, "sha256:…".
	Digest string
	// MediaType is the blob's media type.
	MediaType string
	// Done is how many bytes of the blob moved so far.
	Done int64
	// Total is the blob's size in bytes.
	Total int64
}

// CallOption configures one call (Pull, PullToFile, Push, Copy, Resolve, Fetch).
type CallOption interface {
	FetchOption
	applyCall(*callConfig)
}

type callConfig struct {
	platform *string
	progress func(Progress)
	verify   []verifyConfig
	signing  *signingConfig
}

type progressOption func(Progress)

func (p progressOption) applyCall(c *callConfig) { c.progress = p }

func (p progressOption) applyFetch(c *fetchConfig) { c.calls = append(c.calls, p) }

// WithProgress calls report with the progress of every blob the call moves. report runs
// on the goroutine that made the call, so it needs no locking for data only that
// goroutine uses; it must not call wasm-image itself (such calls fail with
// ErrInvalidArgument). If it panics, the call is cancelled and the panic goes on from
// the call once the library has returned.
func WithProgress(report func(Progress)) CallOption { return progressOption(report) }

// callState is what the progress callback reaches through its cgo.Handle.
type callState struct {
	progress func(Progress)
	token    *C.wasm_image_cancel_token_t
	panicked any
}

// call runs one blocking C operation for ctx: the context's end cancels it through a
// token, progress reports reach the Go function, and a cancelled call's error matches
// the context's error. invoke gets NULL call options when nothing needs them.
func call(ctx context.Context, opts []CallOption, invoke func(*C.wasm_image_call_options_t) *C.wasm_image_error_t) error {
	if ctx.Err() != nil {
		e := &Error{Kind: KindCancelled, Message: "the context was done before the call started"}
		e.endedBy(ctx)
		return e
	}
	var cfg callConfig
	for _, opt := range opts {
		if opt != nil {
			opt.applyCall(&cfg)
		}
	}
	if cfg.progress == nil && cfg.platform == nil && len(cfg.verify) == 0 && cfg.signing == nil && ctx.Done() == nil {
		// Nothing to pass: the fast path, one cgo call.
		return takeError(invoke(nil))
	}

	options := C.wasm_image_call_options_new()
	defer C.wasm_image_call_options_free(options)
	var strs cStrings
	defer strs.free()
	if cfg.platform != nil {
		platform, err := strs.add("platform", *cfg.platform)
		if err != nil {
			return err
		}
		if err := takeError(C.wasm_image_call_options_set_platform(options, platform)); err != nil {
			return err
		}
	}
	if err := cfg.applySigning(options, &strs); err != nil {
		return err
	}

	state := &callState{progress: cfg.progress}
	if ctx.Done() != nil || cfg.progress != nil {
		// A token also lets a panicking progress callback stop the call.
		state.token = C.wasm_image_cancel_token_new()
		defer C.wasm_image_cancel_token_free(state.token)
		if err := takeError(C.wasm_image_call_options_set_cancel_token(options, state.token)); err != nil {
			return err
		}
	}
	if cfg.progress != nil {
		handle := cgo.NewHandle(state)
		defer handle.Delete()
		if err := takeError(C.wasmimage_set_progress(options, C.uintptr_t(handle))); err != nil {
			return err
		}
	}

	var stop func() bool
	cancelled := make(chan struct{})
	if ctx.Done() != nil {
		token := state.token
		stop = context.AfterFunc(ctx, func() {
			defer close(cancelled)
			C.wasm_image_error_free(C.wasm_image_cancel_token_cancel(token))
		})
	}

	result := takeError(invoke(options))

	if stop != nil && !stop() {
		// The context ended while the call ran: the canceller has started, and the
		// token must outlive it.
		<-cancelled
	}
	if state.panicked != nil {
		panic(state.panicked)
	}
	if e, ok := result.(*Error); ok && e.Kind == KindCancelled && ctx.Err() != nil {
		e.endedBy(ctx)
	}
	return result
}
