package wasmimage_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// stalledLocation copies the fixture to a repository of its own behind the fault proxy,
// whose blob (or manifest) requests then stall for a minute: only cancellation can end
// a pull of it quickly.
func stalledLocation(t *testing.T, tb *testbed, client *wasmimage.Client, what string) string {
	t.Helper()
	repo := uniqueRepo("stall")
	if _, err := client.Copy(context.Background(), tb.Fixtures.OCILayout, tb.Plain.Host+"/"+repo+":v1"); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	tb.addFault(t, map[string]any{
		"match": repo + "/" + what, "action": "stall", "seconds": 60, "times": -1,
	})
	return tb.Faulty.Host + "/" + repo + ":v1"
}

// The figure the issue asks for (cancel to return within 200 ms) is a benchmark
// target; here the bound only proves the call did not wait for the stall to end.
const muchLessThanTheStall = 20 * time.Second

func TestCancellationReachesTheLibrary(t *testing.T) {
	tb := needTestbed(t)
	client := testbedClient(t, tb, wasmimage.WithRetries(0))

	for _, what := range []string{"blobs", "manifests"} {
		t.Run("cancel during "+what, func(t *testing.T) {
			location := stalledLocation(t, tb, client, what)
			ctx, cancel := context.WithCancel(context.Background())
			var cancelledAt time.Time
			timer := time.AfterFunc(300*time.Millisecond, func() {
				cancelledAt = time.Now()
				cancel()
			})
			defer timer.Stop()
			out := filepath.Join(t.TempDir(), "plugin.wasm")
			_, err := client.PullToFile(ctx, location, out)
			returned := time.Now()
			if !errors.Is(err, context.Canceled) || !errors.Is(err, wasmimage.ErrCancelled) {
				t.Fatalf("cancelled pull: %v, want context.Canceled and ErrCancelled", err)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("a cancel is no deadline: %v", err)
			}
			latency := returned.Sub(cancelledAt)
			t.Logf("returned %v after the cancel", latency)
			if latency > muchLessThanTheStall {
				t.Fatalf("the pull returned %v after the cancel: it waited for the stalled server", latency)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a cancelled pull left %s behind", out)
			}
		})
	}

	t.Run("deadline", func(t *testing.T) {
		location := stalledLocation(t, tb, client, "blobs")
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := client.Pull(ctx, location)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, wasmimage.ErrCancelled) {
			t.Fatalf("pull past its deadline: %v, want context.DeadlineExceeded", err)
		}
		if errors.Is(err, context.Canceled) {
			t.Fatalf("a deadline is not a cancel: %v", err)
		}
		if took := time.Since(start); took > muchLessThanTheStall {
			t.Fatalf("the pull took %v with a 400 ms deadline", took)
		}
	})

	t.Run("cancel with a cause", func(t *testing.T) {
		location := stalledLocation(t, tb, client, "blobs")
		ctx, cancel := context.WithCancelCause(context.Background())
		why := errors.New("the plugin was removed from the config")
		timer := time.AfterFunc(300*time.Millisecond, func() { cancel(why) })
		defer timer.Stop()
		_, err := client.Pull(ctx, location)
		if !errors.Is(err, why) || !errors.Is(err, context.Canceled) || !errors.Is(err, wasmimage.ErrCancelled) {
			t.Fatalf("pull cancelled with a cause: %v, want the cause, context.Canceled and ErrCancelled", err)
		}
	})

	t.Run("already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := client.Resolve(ctx, tb.Fixtures.OCILayout); !errors.Is(err, context.Canceled) {
			t.Fatalf("call with a done context: %v, want context.Canceled", err)
		}
	})

	t.Run("context not done", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if _, err := client.Pull(ctx, tb.Fixtures.BuildahOCI); err != nil {
			t.Fatalf("pull with a distant deadline: %v", err)
		}
	})
}

func TestProgressAndLogs(t *testing.T) {
	tb := needTestbed(t)
	client := testbedClient(t, tb)

	records := &recordingHandler{minLevel: wasmimage.LevelTrace}
	if err := wasmimage.SetLogger(slog.New(records)); err != nil {
		t.Fatalf("SetLogger: %v", err)
	}
	defer wasmimage.SetLogger(nil)

	var reports []wasmimage.Progress
	progress := wasmimage.WithProgress(func(p wasmimage.Progress) { reports = append(reports, p) })
	img, err := client.Pull(context.Background(), tb.Fixtures.BuildahOCI, progress)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	defer img.Close()
	if len(reports) == 0 {
		t.Fatal("no progress reports")
	}
	finished := false
	for _, p := range reports {
		if !strings.HasPrefix(p.Digest, "sha256:") || p.MediaType == "" || p.Done > p.Total {
			t.Fatalf("odd progress report %+v", p)
		}
		finished = finished || (p.Done == p.Total && p.Total > 0)
	}
	if !finished {
		t.Fatalf("no report of a finished blob in %+v", reports)
	}

	got := records.all()
	if len(got) == 0 {
		t.Fatal("no slog records from a pull")
	}
	for _, r := range got {
		if r.target == "" || r.message == "" {
			t.Fatalf("record without target or message: %+v", r)
		}
	}
	t.Logf("%d records, first: %s %s %q", len(got), got[0].level, got[0].target, got[0].message)

	t.Run("levels below the logger's are not delivered", func(t *testing.T) {
		quiet := &recordingHandler{minLevel: slog.LevelWarn}
		if err := wasmimage.SetLogger(slog.New(quiet)); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Resolve(context.Background(), tb.Fixtures.BuildahOCI); err != nil {
			t.Fatal(err)
		}
		for _, r := range quiet.all() {
			if r.level < slog.LevelWarn {
				t.Fatalf("a %s record reached a WARN logger", r.level)
			}
		}
	})

	t.Run("a panicking progress callback cancels the call and panics in the caller", func(t *testing.T) {
		defer func() {
			if p := recover(); p != "boom" {
				t.Fatalf("recovered %v, want the callback's panic", p)
			}
		}()
		client.Pull(context.Background(), tb.Fixtures.BuildahOCI, wasmimage.WithProgress(func(wasmimage.Progress) { panic("boom") }))
		t.Fatal("the panic did not reach the caller")
	})
}

type record struct {
	level   slog.Level
	target  string
	message string
}

// recordingHandler is a slog.Handler that keeps what it is given.
type recordingHandler struct {
	minLevel slog.Level // the least severe level it wants
	mu       sync.Mutex
	records  []record
}

func (h *recordingHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.minLevel
}

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{level: r.Level, message: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "target" {
			rec.target = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordingHandler) all() []record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]record(nil), h.records...)
}

// The library must leave Go's signals alone: CPU profiling (SIGPROF on every thread),
// an os/signal handler (SIGINT) and asynchronous preemption (SIGURG) all keep working
// while pulls run on library threads.
func TestSignalsDuringPulls(t *testing.T) {
	tb := needTestbed(t)
	client := testbedClient(t, tb)

	var profile bytes.Buffer
	if err := pprof.StartCPUProfile(&profile); err != nil {
		t.Skipf("skipped: CPU profiling is already on: %v", err)
	}
	profiling := true
	defer func() {
		if profiling {
			pprof.StopCPUProfile()
		}
	}()
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, syscall.SIGINT)
	defer signal.Stop(interrupts)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var pulls atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				img, err := client.Pull(ctx, tb.Fixtures.BuildahOCI)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				img.Close()
				pulls.Add(1)
			}
		}()
	}

	// A loop without function calls can only be stopped by SIGURG preemption; the GC
	// needs to stop it.
	spinning := make(chan struct{})
	go func() {
		defer close(spinning)
		deadline := time.Now().Add(300 * time.Millisecond)
		for n := 0; ; n++ {
			if n%(1<<20) == 0 && time.Now().After(deadline) {
				return
			}
		}
	}()
	runtime.GC()
	<-spinning

	for i := 0; i < 3; i++ {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-interrupts:
		case <-time.After(10 * time.Second):
			t.Fatal("SIGINT did not reach the os/signal handler during pulls")
		}
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("pull during signals: %v", err)
	}
	pprof.StopCPUProfile()
	profiling = false
	if profile.Len() == 0 {
		t.Fatal("the CPU profile is empty")
	}
	if pulls.Load() == 0 {
		t.Fatal("no pull finished while the signals flew")
	}
	t.Logf("%d pulls, %d bytes of CPU profile", pulls.Load(), profile.Len())
}

// Images dropped without Close are freed by the garbage collector: 10,000 pull and drop
// cycles of a 64 KiB module leave the resident size where it was.
func TestFinalizersFreeHandles(t *testing.T) {
	// The smallest module with a 64 KiB custom section ("pad") to make leaks visible.
	body := append([]byte{3, 'p', 'a', 'd'}, make([]byte, 64<<10)...)
	module := append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0}, uleb128(uint64(len(body)))...)
	module = append(module, body...)
	if _, err := wasmimage.ModuleFacts(module); err != nil {
		t.Fatalf("the padded module: %v", err)
	}
	img, err := wasmimage.Build(module)
	if err != nil {
		t.Fatal(err)
	}
	client := newClient(t)
	location := "oci:" + t.TempDir() + ":v1"
	if _, err := client.Push(context.Background(), img, location); err != nil {
		t.Fatal(err)
	}
	img.Close()

	cycles := 10_000
	if testing.Short() {
		cycles = 1_000
	}
	pullAndDrop := func(n int) {
		for i := 0; i < n; i++ {
			img, err := client.Pull(context.Background(), location)
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Module) != len(module) {
				t.Fatalf("module of %d bytes", len(img.Module))
			}
			// Dropped without Close.
			if i%500 == 499 {
				runtime.GC()
			}
		}
		runtime.GC()
		runtime.GC()
	}
	pullAndDrop(500) // warm up: pools, caches, the runtime's threads
	before := residentBytes(t)
	pullAndDrop(cycles)
	after := residentBytes(t)
	t.Logf("resident: %d MiB before, %d MiB after %d cycles", before>>20, after>>20, cycles)
	// Leaked library images would hold cycles × 64 KiB (625 MiB).
	if growth := after - before; growth > 48<<20 {
		t.Fatalf("resident size grew by %d MiB over %d pull/drop cycles", growth>>20, cycles)
	}
}

func uleb128(v uint64) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func residentBytes(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("skipped: no /proc/self/statm: %v", err)
	}
	fields := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
