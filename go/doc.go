// Package wasmimage builds, pushes, pulls and copies WebAssembly plugins stored as OCI
// images, for Go control planes. It is a thin cgo layer over the C ABI of wasm-image
// (libwasmimage), so a Go program gets the same formats, stores, authentication,
// retries, limits and error kinds as the Python and C faces.
//
// # Locations
//
// One string names where an image lives:
//
//	HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]   a registry (also written "docker://…")
//	oci:DIR[:TAG], oci:DIR@sha256:DIGEST     an OCI image layout directory (no server)
//	oci-archive:FILE[:TAG]                   a tar of an OCI layout
//	docker-archive:FILE[:REF]                what `docker save` writes (read only)
//
// # Operations
//
// A Client holds options and connections and is safe for concurrent use; its methods
// take a context.Context first: Pull (module into memory), PullToFile (module streamed
// to a file that appears only once verified), Push, Copy and Resolve (tag to digest, for
// polling). Build makes an image from module bytes and ModuleFacts reads a module's
// structure; neither does I/O. SetLogger sends the library's log events to a
// *slog.Logger.
//
// # Cancellation
//
// When a call's context is cancelled or its deadline passes, the library stops the call
// promptly and it returns an *Error of kind KindCancelled that also matches the
// context's error: errors.Is(err, context.Canceled) or errors.Is(err,
// context.DeadlineExceeded), and the cause given to context.WithCancelCause. No
// goroutine is left behind.
//
// # Errors
//
// Every failure is an *Error with a Kind (the kinds every face of wasm-image shares),
// a Message, and the registry's HTTPStatus, RegistryCode and RetryAfter when a registry
// response caused it. Compare kinds with the sentinels:
//
//	if errors.Is(err, wasmimage.ErrNotFound) { … }
//
// # Memory and threads
//
// Pull copies the module into Go memory once; PullToFile never holds it in memory.
// Library handles are freed by Close, and by the garbage collector as a safety net.
// Progress callbacks (WithProgress) and log records run on the goroutine that made the
// call. The library installs no signal handlers, so Go's own (profiling, preemption,
// os/signal) keep working.
//
// # Linking
//
// The package links libwasmimage statically through pkg-config: install the library
// with `ffi/install.sh --static-only PREFIX` from the wasm-image repository and set
// PKG_CONFIG_PATH=PREFIX/lib/pkgconfig when building. The version of the header and of
// the linked library are compared when the package is initialised; a mismatch panics
// with a message saying what to reinstall.
package wasmimage
