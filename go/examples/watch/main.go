// Command watch follows a Wasm plugin the way a control plane does: it resolves a tag
// every interval, logs (with log/slog) when the digest changes, and pulls the new module
// into a file, which is replaced only once the new module is verified.
//
//	watch [-interval 30s] [-insecure HOST[:PORT]]... [-ca FILE] LOCATION OUTPUT.wasm
//
// Credentials come from the docker/podman config files (docker login), or from a
// Kubernetes pull secret's .dockerconfigjson given with -pull-secret FILE. It runs until
// interrupted (SIGINT or SIGTERM).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	interval := flag.Duration("interval", 30*time.Second, "how often to resolve the location")
	ca := flag.String("ca", "", "a PEM file of extra CA certificates to trust")
	pullSecret := flag.String("pull-secret", "", "a docker config JSON file (a Kubernetes .dockerconfigjson)")
	verbose := flag.Bool("v", false, "log the library's debug events too")
	var insecure listFlag
	flag.Var(&insecure, "insecure", "allow plain HTTP to this registry (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] LOCATION OUTPUT.wasm\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || *interval <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	location, output := flag.Arg(0), flag.Arg(1)

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := wasmimage.SetLogger(logger.With("source", "wasm-image")); err != nil {
		logger.Error("logging", "err", err)
		os.Exit(1)
	}

	opts := []wasmimage.Option{wasmimage.WithInsecure(insecure...)}
	if *ca != "" {
		opts = append(opts, wasmimage.WithCACertificatesFile(*ca))
	}
	if *pullSecret != "" {
		secret, err := os.ReadFile(*pullSecret)
		if err != nil {
			logger.Error("reading the pull secret", "err", err)
			os.Exit(1)
		}
		opts = append(opts, wasmimage.WithDockerConfigJSON(secret))
	}
	client, err := wasmimage.NewClient(opts...)
	if err != nil {
		logger.Error("making the client", "err", err)
		os.Exit(1)
	}
	defer client.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("watching", "location", location, "interval", interval.String(), "output", output)
	watch(ctx, logger, client, location, output, *interval)
	logger.Info("stopped")
}

// watch polls until ctx is done. A failed poll is logged and retried at the next tick:
// a registry that is down for a while must not stop the watcher.
func watch(ctx context.Context, logger *slog.Logger, client *wasmimage.Client, location, output string, interval time.Duration) {
	current := ""
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if digest, err := poll(ctx, logger, client, location, output, current); err != nil {
			if ctx.Err() != nil {
				return
			}
			level := slog.LevelWarn
			if errors.Is(err, wasmimage.ErrUnauthorized) || errors.Is(err, wasmimage.ErrForbidden) {
				level = slog.LevelError // needs a person: credentials
			}
			logger.Log(ctx, level, "poll failed", "location", location, "err", err)
		} else {
			current = digest
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// poll resolves location and, when its digest is not current, pulls the module into
// output. It returns the digest now in output.
func poll(ctx context.Context, logger *slog.Logger, client *wasmimage.Client, location, output, current string) (string, error) {
	desc, err := client.Resolve(ctx, location)
	if err != nil {
		return current, err
	}
	if desc.Digest == current {
		return current, nil
	}
	logger.Info("digest changed", "location", location, "from", current, "to", desc.Digest)
	img, err := client.PullToFile(ctx, location, output)
	if err != nil {
		return current, err
	}
	// The tag may have moved again between resolve and pull: what counts is what was
	// pulled, so the next poll sees any newer digest.
	pulled := img.ManifestDigest
	if img.IndexDigest != "" {
		pulled = img.IndexDigest
	}
	logger.Info("pulled", "location", location, "digest", pulled, "module", img.ModuleDigest,
		"variant", img.Variant, "bytes", img.ModuleSize, "output", output)
	return pulled, nil
}
