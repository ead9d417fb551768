package wasmimage_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond for up to a minute (generous: CI machines are busy).
func waitFor(t *testing.T, what string, out *syncBuffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s; output:\n%s", what, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The example program, built and run: it pulls the tag, notices when the tag moves to
// another image, pulls that one, and stops cleanly on SIGINT.
func TestWatchExample(t *testing.T) {
	tb := needTestbed(t)
	binary := filepath.Join(t.TempDir(), "watch")
	build := exec.Command(goTool(t), "build", "-o", binary, "./examples/watch")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/watch: %v\n%s", err, out)
	}

	client := testbedClient(t, tb)
	ctx := context.Background()
	location := tb.Plain.Host + "/" + uniqueRepo("watch") + ":live"
	first, err := wasmimage.Build(tb.fixtureModule(t), wasmimage.WithRootIDs("first"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(ctx, first, location); err != nil {
		t.Fatal(err)
	}

	output := filepath.Join(t.TempDir(), "plugin.wasm")
	var out syncBuffer
	cmd := exec.Command(binary, "-interval", "300ms", "-insecure", tb.Plain.Host, location, output)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	waitFor(t, "the first pull", &out, func() bool { return strings.Contains(out.String(), first.ManifestDigest) && fileExists(output) })

	// Move the tag: the same module with other runtime metadata is another image.
	second, err := wasmimage.Build(tb.fixtureModule(t), wasmimage.WithRootIDs("second"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Push(ctx, second, location); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change to be noticed and pulled", &out, func() bool {
		text := out.String()
		return strings.Contains(text, "digest changed") && strings.Contains(text, "digest="+second.ManifestDigest)
	})
	written, err := os.ReadFile(output)
	if err != nil || sha256Digest(written) != tb.Fixtures.ModuleSHA256 {
		t.Fatalf("the output file: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("watch exited with %v; output:\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("watch did not stop on SIGINT; output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Fatalf("no clean stop in:\n%s", out.String())
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// goTool is the go command on PATH: the one running the tests, with the same
// environment (PKG_CONFIG_PATH, CGO flags) for building the example.
func goTool(t *testing.T) string {
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		if path := filepath.Join(goroot, "bin", "go"); fileExists(path) {
			return path
		}
	}
	path, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the example with: %v", err)
	}
	return path
}
