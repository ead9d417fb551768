package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"context"
	"fmt"
	"time"
)

// Kind is the kind of a failure, the same fixed set every face of wasm-image reports
// (its String is the kind's name, e.g. "NOT_FOUND"). The numbers are the C ABI's.
type Kind uint32

// The error kinds. Each has a sentinel error (ErrNotFound for KindNotFound, …) to use
// with errors.Is.
const (
	KindInvalidArgument  Kind = C.WASM_IMAGE_ERROR_KIND_INVALID_ARGUMENT  // a parameter is wrong
	KindInvalidReference Kind = C.WASM_IMAGE_ERROR_KIND_INVALID_REFERENCE // a location that cannot be parsed
	KindNotFound         Kind = C.WASM_IMAGE_ERROR_KIND_NOT_FOUND         // no such repository, tag, digest, directory or blob
	KindUnauthorized     Kind = C.WASM_IMAGE_ERROR_KIND_UNAUTHORIZED      // HTTP 401: no or bad credentials
	KindForbidden        Kind = C.WASM_IMAGE_ERROR_KIND_FORBIDDEN         // HTTP 403
	KindRateLimited      Kind = C.WASM_IMAGE_ERROR_KIND_RATE_LIMITED      // HTTP 429, still after the retries
	KindInvalidFormat    Kind = C.WASM_IMAGE_ERROR_KIND_INVALID_FORMAT    // not a Wasm image, or malformed
	KindDigestMismatch   Kind = C.WASM_IMAGE_ERROR_KIND_DIGEST_MISMATCH   // content does not match its digest or size
	KindLimitExceeded    Kind = C.WASM_IMAGE_ERROR_KIND_LIMIT_EXCEEDED    // larger than a configured limit
	KindNetwork          Kind = C.WASM_IMAGE_ERROR_KIND_NETWORK           // connection refused, reset, TLS, DNS
	KindTimeout          Kind = C.WASM_IMAGE_ERROR_KIND_TIMEOUT           // a connect or read timeout expired
	KindCancelled        Kind = C.WASM_IMAGE_ERROR_KIND_CANCELLED         // the call's context was cancelled or expired
	KindIO               Kind = C.WASM_IMAGE_ERROR_KIND_IO                // a local file could not be read or written
	KindRegistry         Kind = C.WASM_IMAGE_ERROR_KIND_REGISTRY          // another registry error (see HTTPStatus, RegistryCode)
	KindInternal         Kind = C.WASM_IMAGE_ERROR_KIND_INTERNAL          // a bug in wasm-image
	KindSignatureInvalid Kind = C.WASM_IMAGE_ERROR_KIND_SIGNATURE_INVALID // a verification policy applies and no signature satisfied it
)

// String gives the kind's name as every face spells it ("NOT_FOUND"), or "Kind(N)" for
// a number the linked library does not know.
func (k Kind) String() string {
	if name := C.wasm_image_error_kind_name(C.uint32_t(k)); name != nil {
		return C.GoString(name)
	}
	return fmt.Sprintf("Kind(%d)", uint32(k))
}

// Sentinels, one per kind: errors.Is(err, ErrNotFound) holds for every *Error of that
// kind. ErrCancelled also matches context.Canceled.
var (
	ErrInvalidArgument  error = &kindError{KindInvalidArgument}
	ErrInvalidReference error = &kindError{KindInvalidReference}
	ErrNotFound         error = &kindError{KindNotFound}
	ErrUnauthorized     error = &kindError{KindUnauthorized}
	ErrForbidden        error = &kindError{KindForbidden}
	ErrRateLimited      error = &kindError{KindRateLimited}
	ErrInvalidFormat    error = &kindError{KindInvalidFormat}
	ErrDigestMismatch   error = &kindError{KindDigestMismatch}
	ErrLimitExceeded    error = &kindError{KindLimitExceeded}
	ErrNetwork          error = &kindError{KindNetwork}
	ErrTimeout          error = &kindError{KindTimeout}
	ErrCancelled        error = &kindError{KindCancelled}
	ErrIO               error = &kindError{KindIO}
	ErrRegistry         error = &kindError{KindRegistry}
	ErrInternal         error = &kindError{KindInternal}
	ErrSignatureInvalid error = &kindError{KindSignatureInvalid}
)

// kindError is the type of the sentinels: a kind and nothing else.
type kindError struct{ kind Kind }

func (e *kindError) Error() string { return "wasmimage: " + e.kind.String() }

// Is lets errors.Is(ErrCancelled, context.Canceled) hold, so code that only knows the
// context package still recognises a cancelled call.
func (e *kindError) Is(target error) bool {
	return e.kind == KindCancelled && target == context.Canceled
}

// Error is a failure reported by wasm-image: its kind, a message naming what failed and
// where (never a password or token), and what the registry said when a registry
// response caused it. Use errors.As to get at it and errors.Is with the sentinels.
type Error struct {
	// Kind is the failure's kind; errors.Is(err, ErrX) compares it.
	Kind Kind
	// Message says what failed, where, and what was expected.
	Message string
	// HTTPStatus is the status of the registry response that caused the error, or 0.
	HTTPStatus int
	// RegistryCode is the distribution error code of that response ("MANIFEST_UNKNOWN",
	// "DENIED", …), or "".
	RegistryCode string
	// RetryAfter is how long the registry asked to wait before trying again (the
	// Retry-After of a 429 or 503), or 0 when it did not say.
	RetryAfter time.Duration

	// causes are the context's error and, when it differs, its cause
	// (context.WithCancelCause), when the context ended the call.
	causes []error
}

// Error gives "wasmimage: KIND: message".
func (e *Error) Error() string {
	return "wasmimage: " + e.Kind.String() + ": " + e.Message
}

// Is matches the sentinel of the error's kind; a cancelled call also matches
// context.Canceled (or, through Unwrap, context.DeadlineExceeded when the context's
// deadline ended it).
func (e *Error) Is(target error) bool {
	if sentinel, ok := target.(*kindError); ok {
		return sentinel.kind == e.Kind
	}
	return e.Kind == KindCancelled && e.causes == nil && target == context.Canceled
}

// Unwrap gives the context's error (context.Canceled or context.DeadlineExceeded) and
// its cause (context.Cause) when the context ended the call, else nothing.
func (e *Error) Unwrap() []error { return e.causes }

// endedBy records that ctx ended the call.
func (e *Error) endedBy(ctx context.Context) {
	e.causes = []error{ctx.Err()}
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		e.causes = append(e.causes, cause)
	}
}

// takeError turns an error the library returned into an *Error and frees it; nil for
// success.
func takeError(err *C.wasm_image_error_t) error {
	if err == nil {
		return nil
	}
	defer C.wasm_image_error_free(err)
	out := &Error{
		Kind:       Kind(C.wasm_image_error_kind(err)),
		Message:    C.GoString(C.wasm_image_error_message(err)),
		HTTPStatus: int(C.wasm_image_error_http_status(err)),
		RetryAfter: time.Duration(C.wasm_image_error_retry_after(err)) * time.Second,
	}
	if code := C.wasm_image_error_registry_code(err); code != nil {
		out.RegistryCode = C.GoString(code)
	}
	return out
}

// invalidArgument reports a Go value the C ABI cannot carry (a string with a NUL byte, a
// negative duration) with the kind the library itself would use.
func invalidArgument(format string, args ...any) error {
	return &Error{Kind: KindInvalidArgument, Message: fmt.Sprintf(format, args...)}
}
