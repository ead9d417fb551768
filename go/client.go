package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
)

// Client holds options (credentials, TLS, timeouts, retries, limits, mirrors) and
// connection state (pools, tokens). It is safe for concurrent use by any number of
// goroutines, which share its connections: make one per configuration and keep it.
type Client struct {
	// mu is held shared by every call and exclusively by Close, so the handle is
	// never freed under a running call.
	mu     sync.RWMutex
	handle *C.wasm_image_client_t
	// cleanup frees the handle should the Client be dropped without Close.
	cleanup runtime.Cleanup
}

// NewClient makes a client with the given options; see Option for the defaults. Option
// values are checked here: a malformed CA certificate or docker config JSON, or a value
// out of range, fails with ErrInvalidArgument.
func NewClient(opts ...Option) (*Client, error) {
	b := clientBuilder{options: C.wasm_image_client_options_new()}
	defer C.wasm_image_client_options_free(b.options)
	defer b.strs.free()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.applyClient(&b); err != nil {
			return nil, err
		}
	}
	var handle *C.wasm_image_client_t
	if err := takeError(C.wasm_image_client_new(b.options, &handle)); err != nil {
		return nil, err
	}
	c := &Client{handle: handle}
	c.cleanup = runtime.AddCleanup(c, func(h *C.wasm_image_client_t) { C.wasm_image_client_free(h) }, handle)
	return c, nil
}

// Close frees the client. It waits for calls in flight to return (cancel their
// contexts to make that quick); calls made afterwards fail with ErrInvalidArgument.
// Closing twice is fine.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle != nil {
		c.cleanup.Stop()
		C.wasm_image_client_free(c.handle)
		c.handle = nil
	}
	return nil
}

// use runs f with the live handle, holding the client open meanwhile.
func (c *Client) use(f func(*C.wasm_image_client_t) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.handle == nil {
		return invalidArgument("the client is closed")
	}
	return f(c.handle)
}

// Pull fetches the image at location, verifies every digest and size, and returns it
// with its module in memory (copied once into Go memory). location is any location
// form the library reads: "HOST[:PORT]/REPO[:TAG][@sha256:…]" (also "docker://…"),
// "oci:DIR[:TAG]", "oci-archive:FILE[:TAG]", "docker-archive:FILE[:REF]". The returned Image holds library memory until Close (or the garbage
// collector) frees it.
func (c *Client) Pull(ctx context.Context, location string, opts ...CallOption) (*Image, error) {
	var image *Image
	err := c.use(func(client *C.wasm_image_client_t) error {
		var strs cStrings
		defer strs.free()
		loc, err := strs.add("location", location)
		if err != nil {
			return err
		}
		var handle *C.wasm_image_image_t
		err = call(ctx, opts, func(callOpts *C.wasm_image_call_options_t) *C.wasm_image_error_t {
			return C.wasm_image_pull(client, loc, callOpts, &handle)
		})
		if err != nil {
			return err
		}
		image = newImage(handle, true)
		return nil
	})
	return image, err
}

// PullToFile is Pull streaming the module into the file at path instead of memory: the
// file appears only once everything was verified, never half written. The returned
// Image has no Module (it is in the file) and cannot be pushed; everything else is
// there.
func (c *Client) PullToFile(ctx context.Context, location, path string, opts ...CallOption) (*Image, error) {
	var image *Image
	err := c.use(func(client *C.wasm_image_client_t) error {
		var strs cStrings
		defer strs.free()
		loc, err := strs.add("location", location)
		if err != nil {
			return err
		}
		file, err := strs.add("path", path)
		if err != nil {
			return err
		}
		var handle *C.wasm_image_image_t
		err = call(ctx, opts, func(callOpts *C.wasm_image_call_options_t) *C.wasm_image_error_t {
			return C.wasm_image_pull_to_file(client, loc, file, callOpts, &handle)
		})
		if err != nil {
			return err
		}
		// Nothing in it is needed for a push (it cannot be pushed): keep no library memory.
		image = newImage(handle, false)
		return nil
	})
	return image, err
}

// Push writes image (built, or pulled with Pull) to location: a registry,
// "oci:DIR:TAG" (made if missing) or "oci-archive:FILE:TAG". Blobs already there are not
// sent again. It returns the manifest digest, "sha256:…".
func (c *Client) Push(ctx context.Context, image *Image, location string, opts ...CallOption) (string, error) {
	if image == nil {
		return "", invalidArgument("no image to push")
	}
	var digest string
	err := c.use(func(client *C.wasm_image_client_t) error {
		return image.use(func(img *C.wasm_image_image_t) error {
			var strs cStrings
			defer strs.free()
			loc, err := strs.add("location", location)
			if err != nil {
				return err
			}
			var out *C.char
			err = call(ctx, opts, func(callOpts *C.wasm_image_call_options_t) *C.wasm_image_error_t {
				return C.wasm_image_push(client, img, loc, callOpts, &out)
			})
			digest = takeString(out)
			return err
		})
	})
	return digest, err
}

// Copy copies the image, or a whole index with every manifest it lists, from source to
// destination (any two locations), preserving digests: bytes are moved, never
// re-encoded. It returns the digest of the top manifest or index.
func (c *Client) Copy(ctx context.Context, source, destination string, opts ...CallOption) (string, error) {
	var digest string
	err := c.use(func(client *C.wasm_image_client_t) error {
		var strs cStrings
		defer strs.free()
		src, err := strs.add("source", source)
		if err != nil {
			return err
		}
		dst, err := strs.add("destination", destination)
		if err != nil {
			return err
		}
		var out *C.char
		err = call(ctx, opts, func(callOpts *C.wasm_image_call_options_t) *C.wasm_image_error_t {
			return C.wasm_image_copy(client, src, dst, callOpts, &out)
		})
		digest = takeString(out)
		return err
	})
	return digest, err
}

// Descriptor names the manifest or index a location resolves to.
type Descriptor struct {
	// Digest is "sha256:…" of the manifest or index.
	Digest string
	// MediaType is its media type.
	MediaType string
	// Size is its size in bytes.
	Size int64
}

// Resolve gives the digest of the manifest or index location names, without
// downloading the module (one request to a registry): what a control plane polls to
// learn that a tag moved.
func (c *Client) Resolve(ctx context.Context, location string, opts ...CallOption) (Descriptor, error) {
	var desc Descriptor
	err := c.use(func(client *C.wasm_image_client_t) error {
		var strs cStrings
		defer strs.free()
		loc, err := strs.add("location", location)
		if err != nil {
			return err
		}
		var digest, mediaType *C.char
		var size C.uint64_t
		err = call(ctx, opts, func(callOpts *C.wasm_image_call_options_t) *C.wasm_image_error_t {
			return C.wasm_image_resolve(client, loc, callOpts, &digest, &mediaType, &size)
		})
		desc = Descriptor{Digest: takeString(digest), MediaType: takeString(mediaType), Size: int64(size)}
		return err
	})
	return desc, err
}
