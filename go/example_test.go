package wasmimage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// The smallest valid Wasm module: the magic number and version 1.
var emptyModule = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Build a plugin image, store it in an OCI layout directory (no server needed) and pull
// it back.
func Example() {
	dir, _ := os.MkdirTemp("", "wasmimage-example")
	defer os.RemoveAll(dir)
	store := "oci:" + filepath.Join(dir, "store") + ":add-header"

	client, err := wasmimage.NewClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	built, err := wasmimage.Build(emptyModule, wasmimage.WithRootIDs("add_header_root_id"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer built.Close()
	digest, err := client.Push(context.Background(), built, store)
	if err != nil {
		fmt.Println(err)
		return
	}

	img, err := client.Pull(context.Background(), store)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer img.Close()
	fmt.Println(img.Variant, len(img.Module), "bytes")
	fmt.Println(img.ModuleDigest)
	fmt.Println("same manifest:", img.ManifestDigest == digest)
	fmt.Println(img.RuntimeConfig.Type, img.RuntimeConfig.RootIDs)
	// Output:
	// oci 8 bytes
	// sha256:93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476
	// same manifest: true
	// envoy_proxy [add_header_root_id]
}

// Every failure is an *Error whose kind the sentinels match.
func ExampleError() {
	client, err := wasmimage.NewClient()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	dir, _ := os.MkdirTemp("", "wasmimage-example")
	defer os.RemoveAll(dir)

	_, err = client.Pull(context.Background(), "oci:"+filepath.Join(dir, "missing")+":v1")
	var e *wasmimage.Error
	if errors.As(err, &e) {
		fmt.Println(e.Kind, errors.Is(err, wasmimage.ErrNotFound))
	}
	// Output:
	// NOT_FOUND true
}

// Resolve tells whether a tag moved without downloading the module.
func ExampleClient_Resolve() {
	dir, _ := os.MkdirTemp("", "wasmimage-example")
	defer os.RemoveAll(dir)
	store := "oci:" + filepath.Join(dir, "store") + ":v1"
	client, _ := wasmimage.NewClient()
	defer client.Close()
	built, _ := wasmimage.Build(emptyModule)
	pushed, _ := client.Push(context.Background(), built, store)

	desc, err := client.Resolve(context.Background(), store)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(desc.Digest == pushed, desc.MediaType)
	// Output:
	// true application/vnd.oci.image.manifest.v1+json
}

// Facts of a module, read without running it.
func ExampleModuleFacts() {
	facts, err := wasmimage.ModuleFacts(emptyModule)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(facts.Kind, facts.Size, len(facts.Exports))
	// Output:
	// core-module 8 0
}

// Fetch a module through a cache directory: the first Fetch stores it, later ones are
// answered from the cache, and each Entry keeps its file until Close.
func ExampleClient_Fetch() {
	dir, _ := os.MkdirTemp("", "wasmimage-example")
	defer os.RemoveAll(dir)
	module := filepath.Join(dir, "add-header.wasm")
	if err := os.WriteFile(module, emptyModule, 0o644); err != nil {
		fmt.Println(err)
		return
	}

	cache, err := wasmimage.OpenCache(wasmimage.WithCacheDir(filepath.Join(dir, "cache")))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	client, err := wasmimage.NewClient(wasmimage.WithCache(cache))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	for i := 0; i < 2; i++ {
		entry, err := client.Fetch(context.Background(), "file://"+module,
			wasmimage.WithExpectedDigest("sha256:93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476"))
		if err != nil {
			fmt.Println(err)
			return
		}
		data, err := entry.Module()
		fmt.Println(entry.ModuleDigest, len(data), "bytes", err)
		entry.Close()
	}
	stats, _ := cache.Stats()
	fmt.Println("misses:", stats.Misses, "hits:", stats.Hits)

	_, err = client.Fetch(context.Background(), "file://"+module, wasmimage.WithExpectedDigest("sha256:"+strings.Repeat("0", 64)))
	fmt.Println(errors.Is(err, wasmimage.ErrDigestMismatch))
	// Output:
	// sha256:93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476 8 bytes <nil>
	// sha256:93a44bbb96c751218e4c00d479e4c14358122a389acca16205b1e4d0dc5f9476 8 bytes <nil>
	// misses: 1 hits: 1
	// true
}
