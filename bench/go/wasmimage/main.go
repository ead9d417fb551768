// Command wasmimage pulls a Wasm image with the Go face of wasm-image (package
// wasmimage), for the benchmark family bench/harness/cases/go_face.py. With -push
// MODULE it instead builds an image of MODULE (-variant oci|compat) and pushes it to
// LOCATION.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/wasm-image/wasm-image/bench/go/pullflags"
	wasmimage "github.com/wasm-image/wasm-image/go"
)

var (
	push    = flag.String("push", "", "build an image of this module and push it to LOCATION")
	variant = flag.String("variant", "oci", "the variant -push builds")
)

func main() {
	job := pullflags.Parse()
	var opts []wasmimage.Option
	if job.Insecure {
		opts = append(opts, wasmimage.WithInsecure(strings.SplitN(job.Location, "/", 2)[0]))
	}
	client, err := wasmimage.NewClient(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer client.Close()
	ctx := context.Background()

	if *push != "" {
		module, err := os.ReadFile(*push)
		if err == nil {
			var img *wasmimage.Image
			if img, err = wasmimage.Build(module, wasmimage.WithVariant(*variant)); err == nil {
				var digest string
				if digest, err = client.Push(ctx, img, job.Location); err == nil {
					fmt.Println(digest)
				}
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}

	job.Run(func(output string) (int64, error) {
		if output == "" {
			img, err := client.Pull(ctx, job.Location)
			if err != nil {
				return 0, err
			}
			defer img.Close()
			return int64(len(img.Module)), nil
		}
		img, err := client.PullToFile(ctx, job.Location, output)
		if err != nil {
			return 0, err
		}
		return img.ModuleSize, nil
	})
}
