package wasmimage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	wasmimage "github.com/wasm-image/wasm-image/go"
)

// proxied is a request the test bed's fault proxy carried.
type proxied struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

// requests lists what the fault proxy carried for repo. The proxy records a request's
// status before answering it, so every request a finished call made is listed.
func (tb *testbed) requests(t testing.TB, repo string) []proxied {
	t.Helper()
	resp, err := http.Get(tb.Faulty.Log + "?match=" + url.QueryEscape(repo))
	if err != nil {
		t.Fatalf("reading the proxy's log: %v", err)
	}
	defer resp.Body.Close()
	var all []proxied
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("parsing the proxy's log: %v", err)
	}
	var out []proxied
	for _, r := range all {
		if strings.HasPrefix(r.Path, "/v2/"+repo+"/") {
			out = append(out, r)
		}
	}
	return out
}

// blobGets counts the proxied GETs of one blob.
func blobGets(requests []proxied, digest string) int {
	n := 0
	for _, r := range requests {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/blobs/"+digest) {
			n++
		}
	}
	return n
}

func openCache(t testing.TB, opts ...wasmimage.CacheOption) *wasmimage.Cache {
	t.Helper()
	cache, err := wasmimage.OpenCache(append([]wasmimage.CacheOption{wasmimage.WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatalf("OpenCache: %v", err)
	}
	t.Cleanup(func() { cache.Close() })
	return cache
}

// pushFixture pushes an oci-variant image of module straight to the plain registry (the
// fault proxy forwards to it) and returns its manifest digest.
func pushFixture(t testing.TB, tb *testbed, module []byte, repo, tag string) string {
	t.Helper()
	img, err := wasmimage.Build(module)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	digest, err := testbedClient(t, tb).Push(context.Background(), img, tb.Plain.Host+"/"+repo+":"+tag)
	if err != nil {
		t.Fatalf("Push: %v", err)
	}
	return digest
}

func fetch(t testing.TB, client *wasmimage.Client, location string, opts ...wasmimage.FetchOption) *wasmimage.Entry {
	t.Helper()
	entry, err := client.Fetch(context.Background(), location, opts...)
	if err != nil {
		t.Fatalf("Fetch %s: %v", location, err)
	}
	t.Cleanup(func() { entry.Close() })
	return entry
}

func TestFetchByTagAndDigestAnswersHitsWithoutRequests(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	repo := uniqueRepo("fetch")
	manifest := pushFixture(t, tb, module, repo, "v1")
	cache := openCache(t, wasmimage.WithTagTTL(time.Hour))
	client := testbedClient(t, tb, wasmimage.WithCache(cache))

	entry := fetch(t, client, "oci://"+tb.Faulty.Host+"/"+repo+":v1")
	if entry.ModuleDigest != sha256Digest(module) || entry.ManifestDigest != manifest ||
		entry.Variant != "oci" || entry.Size != int64(len(module)) || entry.Stale {
		t.Fatalf("entry: %+v", entry)
	}
	got, err := entry.Module()
	if err != nil || !bytes.Equal(got, module) {
		t.Fatalf("Module: %d bytes, %v", len(got), err)
	}
	if info, err := os.Stat(entry.Path); err != nil || info.Mode().Perm()&0o222 != 0 {
		t.Fatalf("the module file should exist read-only: %v %v", info, err)
	}
	var rc struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(entry.RuntimeConfig, &rc); err != nil || rc.Type != "envoy_proxy" {
		t.Fatalf("runtime config %s: %v", entry.RuntimeConfig, err)
	}
	first := tb.requests(t, repo)
	if blobGets(first, entry.ModuleDigest) != 1 {
		t.Fatalf("the first fetch should download the module once: %+v", first)
	}

	// The tag inside its TTL and the pinned digest, under every spelling: the cache answers.
	for _, location := range []string{
		"oci://" + tb.Faulty.Host + "/" + repo + ":v1",
		"oci://" + tb.Faulty.Host + "/" + repo + "@" + manifest,
		tb.Faulty.Host + "/" + repo + "@" + manifest,
	} {
		again := fetch(t, client, location, wasmimage.WithExpectedDigest(strings.TrimPrefix(entry.ModuleDigest, "sha256:")))
		if again.Path != entry.Path || again.ManifestDigest != manifest {
			t.Fatalf("%s: %+v", location, again)
		}
	}
	if after := tb.requests(t, repo); len(after) != len(first) {
		t.Fatalf("cache hits made %d requests: %+v", len(after)-len(first), after[len(first):])
	}
	stats, err := cache.Stats()
	if err != nil || stats.Misses != 1 || stats.Hits != 3 || stats.BytesDownloaded < uint64(len(module)) {
		t.Fatalf("stats %+v, %v", stats, err)
	}
	entries, err := cache.Entries()
	if err != nil || len(entries) != 1 || entries[0].ModuleDigest != entry.ModuleDigest ||
		entries[0].Path != entry.Path || !entries[0].Leased || entries[0].LastUsed.IsZero() {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	if checked, dropped, err := cache.Verify(); err != nil || checked != 1 || dropped != 0 {
		t.Fatalf("Verify: %d checked, %d dropped, %v", checked, dropped, err)
	}
}

func TestFetchPolicies(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	repo := uniqueRepo("policy")
	pushFixture(t, tb, module, repo, "v1")
	cache := openCache(t, wasmimage.WithTagTTL(time.Hour))
	client := testbedClient(t, tb, wasmimage.WithCache(cache))
	location := "oci://" + tb.Faulty.Host + "/" + repo + ":v1"

	_, err := client.Fetch(context.Background(), location, wasmimage.WithPolicy("never"))
	if !errors.Is(err, wasmimage.ErrNotFound) {
		t.Fatalf("never, not cached: %v", err)
	}
	if n := len(tb.requests(t, repo)); n != 0 {
		t.Fatalf("the never policy made %d requests", n)
	}

	entry := fetch(t, client, location, wasmimage.WithPolicy("if-not-present"))
	before := len(tb.requests(t, repo))
	fetch(t, client, location, wasmimage.WithPolicy("never"))
	if n := len(tb.requests(t, repo)) - before; n != 0 {
		t.Fatalf("the never policy made %d requests for a cached module", n)
	}

	// always: the tag is resolved again, the module is not downloaded again.
	again := fetch(t, client, location, wasmimage.WithPolicy("always"))
	if again.ModuleDigest != entry.ModuleDigest {
		t.Fatalf("always: %+v", again)
	}
	added := tb.requests(t, repo)[before:]
	if len(added) == 0 || blobGets(added, entry.ModuleDigest) != 0 {
		t.Fatalf("always should resolve the tag and download nothing: %+v", added)
	}

	// A moved tag: always downloads the new module.
	moved := append(bytes.Clone(module), 0, 5, 4, 'p', 'a', 'd', '2') // a custom section more
	pushFixture(t, tb, moved, repo, "v1")
	now := fetch(t, client, location, wasmimage.WithPolicy("always"))
	if now.ModuleDigest != sha256Digest(moved) {
		t.Fatalf("always after the tag moved: %s, want %s", now.ModuleDigest, sha256Digest(moved))
	}

	if _, err := client.Fetch(context.Background(), location, wasmimage.WithPolicy("sometimes")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("an unknown policy: %v", err)
	}
	if _, err := client.Fetch(context.Background(), location, wasmimage.WithExpectedDigest("sha256:nothex")); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("a malformed expected digest: %v", err)
	}
}

func TestFetchExpectedDigestMismatchCachesNothing(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	repo := uniqueRepo("mismatch")
	manifest := pushFixture(t, tb, module, repo, "v1")
	cache := openCache(t)
	client := testbedClient(t, tb, wasmimage.WithCache(cache))

	wrong := "sha256:" + strings.Repeat("0", 64)
	_, err := client.Fetch(context.Background(), tb.Faulty.Host+"/"+repo+"@"+manifest, wasmimage.WithExpectedDigest(wrong))
	var e *wasmimage.Error
	if !errors.Is(err, wasmimage.ErrDigestMismatch) || !errors.As(err, &e) || !strings.Contains(e.Message, "expected digest") {
		t.Fatalf("a wrong expected digest: %v", err)
	}
	if entries, err := cache.Entries(); err != nil || len(entries) != 0 {
		t.Fatalf("a mismatch left entries: %+v, %v", entries, err)
	}
	// The manifest's digest is accepted as well as the module's.
	entry := fetch(t, client, tb.Faulty.Host+"/"+repo+"@"+manifest, wasmimage.WithExpectedDigest(manifest))
	if entry.ModuleDigest != sha256Digest(module) {
		t.Fatalf("entry %+v", entry)
	}
}

func TestALeaseKeepsTheFileThroughGC(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	repo := uniqueRepo("lease")
	pushFixture(t, tb, module, repo, "v1")
	cache := openCache(t)
	client := testbedClient(t, tb, wasmimage.WithCache(cache))

	entry, err := client.Fetch(context.Background(), tb.Faulty.Host+"/"+repo+":v1")
	if err != nil {
		t.Fatal(err)
	}
	report, err := cache.GC(wasmimage.WithMaxBytes(0))
	if err != nil || report.Removed != 0 || report.KeptLeased != 1 {
		t.Fatalf("GC under a lease: %+v, %v", report, err)
	}
	if got, err := entry.Module(); err != nil || !bytes.Equal(got, module) {
		t.Fatalf("the leased module after GC: %d bytes, %v", len(got), err)
	}

	entry.Close()
	entry.Close() // twice is fine
	report, err = cache.GC(wasmimage.WithMaxBytes(0))
	if err != nil || report.Removed != 1 || report.FreedBytes != uint64(len(module)) || report.KeptLeased != 0 {
		t.Fatalf("GC after Close: %+v, %v", report, err)
	}
	if _, err := os.Stat(entry.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the evicted file is still there: %v", err)
	}
	if _, err := entry.Module(); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("Module after Close: %v", err)
	}
	if stats, _ := cache.Stats(); stats.Evictions != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

// An Entry dropped without Close releases its lease when the garbage collector frees it.
func TestADroppedEntryReleasesItsLease(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	repo := uniqueRepo("dropped")
	pushFixture(t, tb, module, repo, "v1")
	cache := openCache(t)
	client := testbedClient(t, tb, wasmimage.WithCache(cache))

	func() {
		entry, err := client.Fetch(context.Background(), tb.Faulty.Host+"/"+repo+":v1")
		if err != nil {
			t.Fatal(err)
		}
		_ = entry.Path // dropped without Close
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		runtime.GC()
		report, err := cache.GC(wasmimage.WithMaxBytes(0))
		if err != nil {
			t.Fatal(err)
		}
		if report.Removed == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dropped entry's lease was never released: %+v", report)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConcurrentFetchesMakeOneDownload(t *testing.T) {
	tb := needTestbed(t)
	module := tb.fixtureModule(t)
	repo := uniqueRepo("together")
	pushFixture(t, tb, module, repo, "v1")
	digest := sha256Digest(module)
	// A slow blob keeps every fetch in flight while the first one downloads.
	tb.addFault(t, map[string]any{"match": repo + "/blobs/" + digest, "action": "delay", "seconds": 1.0, "times": -1})
	cache := openCache(t)
	client := testbedClient(t, tb, wasmimage.WithCache(cache))

	const goroutines = 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	start := make(chan struct{})
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			entry, err := client.Fetch(context.Background(), "oci://"+tb.Faulty.Host+"/"+repo+":v1")
			if err != nil {
				errs <- err
				return
			}
			defer entry.Close()
			if got, err := entry.Module(); err != nil || !bytes.Equal(got, module) {
				errs <- errors.New("a goroutine read a different module")
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := blobGets(tb.requests(t, repo), digest); n != 1 {
		t.Fatalf("%d goroutines made %d downloads of the module", goroutines, n)
	}
	if stats, _ := cache.Stats(); stats.Misses != 1 {
		t.Fatalf("stats %+v", stats)
	}
}

func TestCallTimeoutEndsAStalledFetch(t *testing.T) {
	tb := needTestbed(t)
	repo := uniqueRepo("stalled")
	pushFixture(t, tb, tb.fixtureModule(t), repo, "v1")
	// The registry accepts the request and then says nothing for far longer than the
	// call may take (but less than the read timeout, so only the call timeout can end it).
	tb.addFault(t, map[string]any{"match": repo, "action": "stall", "seconds": 20.0, "before_headers": true, "times": -1})
	client := testbedClient(t, tb, wasmimage.WithCache(openCache(t)), wasmimage.WithCallTimeout(time.Second))

	started := time.Now()
	_, err := client.Fetch(context.Background(), tb.Faulty.Host+"/"+repo+":v1")
	if !errors.Is(err, wasmimage.ErrTimeout) {
		t.Fatalf("a stalled registry under a call timeout: %v", err)
	}
	// Loose on purpose (a busy machine is slow): only the stall's own end would be wrong.
	if elapsed := time.Since(started); elapsed > 15*time.Second {
		t.Fatalf("the call timeout took effect after %s", elapsed)
	}
	if _, err := wasmimage.NewClient(wasmimage.WithCallTimeout(-time.Second)); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("a negative call timeout: %v", err)
	}
}

func TestFetchCancelledByItsContext(t *testing.T) {
	tb := needTestbed(t)
	repo := uniqueRepo("fetch-cancel")
	pushFixture(t, tb, tb.fixtureModule(t), repo, "v1")
	tb.addFault(t, map[string]any{"match": repo, "action": "stall", "seconds": 20.0, "before_headers": true, "times": -1})
	client := testbedClient(t, tb, wasmimage.WithCache(openCache(t)))

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := client.Fetch(ctx, tb.Faulty.Host+"/"+repo+":v1")
	if !errors.Is(err, wasmimage.ErrCancelled) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a fetch whose context expired: %v", err)
	}
}

func TestCacheBadInputs(t *testing.T) {
	file := t.TempDir() + "/not-a-directory"
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := wasmimage.OpenCache(wasmimage.WithCacheDir(file)); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("a file as the cache directory: %v", err)
	}
	if _, err := wasmimage.OpenCache(wasmimage.WithCacheDir(t.TempDir()), wasmimage.WithMaxAge(-time.Second)); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("a negative max age: %v", err)
	}
	if _, err := wasmimage.NewClient(wasmimage.WithCache(nil)); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("WithCache(nil): %v", err)
	}
	cache := openCache(t, wasmimage.WithStaleOnError(true), wasmimage.WithVerify(true), wasmimage.WithMaxBytes(1<<30))
	if !strings.HasPrefix(cache.Dir(), os.TempDir()) {
		t.Fatalf("Dir %q", cache.Dir())
	}
	cache.Close()
	cache.Close()
	if _, err := cache.Stats(); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("Stats of a closed cache: %v", err)
	}
	if _, err := wasmimage.NewClient(wasmimage.WithCache(cache)); !errors.Is(err, wasmimage.ErrInvalidArgument) {
		t.Fatalf("WithCache of a closed cache: %v", err)
	}
}
