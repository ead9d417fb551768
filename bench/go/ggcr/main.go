// Command ggcr pulls a Wasm image with go-containerregistry's remote package, the way
// Go control planes (Istio's wasm image fetcher, Envoy Gateway) do: fetch the manifest,
// take the Wasm layer as is (oci variant) or find plugin.wasm in the tar layer (compat
// variant), and read the module into memory or a file. The peer in
// bench/harness/cases/go_face.py.
package main

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/wasm-image/wasm-image/bench/go/pullflags"
)

const wasmLayer = "application/vnd.module.wasm.content.layer.v1+wasm"

func main() {
	job := pullflags.Parse()
	var opts []name.Option
	if job.Insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(job.Location, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// One transport for all goroutines, as a control plane keeps one.
	puller, err := remote.NewPuller()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	job.Run(func(output string) (int64, error) {
		img, err := remote.Image(ref, remote.Reuse(puller))
		if err != nil {
			return 0, err
		}
		module, err := openModule(img)
		if err != nil {
			return 0, err
		}
		defer module.Close()
		if output == "" {
			data, err := io.ReadAll(module)
			if err == nil {
				err = module.verify()
			}
			return int64(len(data)), err
		}
		return writeFile(output, module)
	})
}

// layerModule is the module's bytes, read out of a layer whose digest ggcr checks only
// once the layer is read to its end.
type layerModule struct {
	io.Reader
	layer io.ReadCloser
}

// verify reads what is left of the layer after the module (in a compat layer, the tar's
// end), so ggcr compares the layer's digest, as wasm-image does before it reports success.
func (m layerModule) verify() error {
	_, err := io.Copy(io.Discard, m.layer)
	return err
}

func (m layerModule) Close() error { return m.layer.Close() }

// openModule gives a reader of the module; ggcr verifies the layer's digest as it is
// read to the end (layerModule.verify).
func openModule(img v1.Image) (layerModule, error) {
	layers, err := img.Layers()
	if err != nil {
		return layerModule{}, err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		mediaType, err := layers[i].MediaType()
		if err != nil {
			return layerModule{}, err
		}
		if string(mediaType) == wasmLayer {
			rc, err := layers[i].Compressed()
			return layerModule{rc, rc}, err
		}
	}
	// compat: plugin.wasm in the last layer that has it.
	for i := len(layers) - 1; i >= 0; i-- {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			return layerModule{}, err
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return layerModule{}, err
			}
			if strings.TrimPrefix(filepath.Clean(hdr.Name), "/") == "plugin.wasm" {
				return layerModule{tr, rc}, nil
			}
		}
		rc.Close()
	}
	return layerModule{}, errors.New("no Wasm module in the image")
}

// writeFile writes the module to a temporary file, checks the layer's digest, flushes
// the file to disk and renames it into place once complete: the same guarantee
// wasm-image gives (a crash or a bad layer never leaves a torn module for the proxy to
// load), so both do the same work.
func writeFile(path string, module layerModule) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pull-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(tmp, module)
	if err == nil {
		err = module.verify()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return n, err
}
