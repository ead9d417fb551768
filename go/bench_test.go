package wasmimage_test

import (
	"context"
	"testing"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// The cost of crossing into the library: one Resolve of an OCI layout on disk (a cgo
// call that reads index.json) and one ModuleFacts of the smallest module (a cgo call
// with no I/O). The benchmark family bench/harness/cases/go_face.py runs these with
// -bench.
func BenchmarkResolveOCILayout(b *testing.B) {
	client, err := wasmimage.NewClient()
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	img, err := wasmimage.Build(emptyModule)
	if err != nil {
		b.Fatal(err)
	}
	defer img.Close()
	location := "oci:" + b.TempDir() + ":v1"
	ctx := context.Background()
	if _, err := client.Push(ctx, img, location); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := client.Resolve(ctx, location); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkModuleFacts(b *testing.B) {
	for b.Loop() {
		if _, err := wasmimage.ModuleFacts(emptyModule); err != nil {
			b.Fatal(err)
		}
	}
}
