package wasmimage

/*
#include <wasm_image.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"time"
)

// Cache is a module cache directory for control planes, shared by goroutines and by
// processes: each module stored once, read-only, named by its digest; concurrent
// fetches of one image make one download; a module leased by an Entry is never evicted.
// Give it to clients with WithCache and fetch through it with (*Client).Fetch. It is
// safe for concurrent use.
type Cache struct {
	// mu is held shared by every use and exclusively by Close, so the handle is never
	// freed under a running call.
	mu      sync.RWMutex
	handle  *C.wasm_image_cache_t
	dir     string
	cleanup runtime.Cleanup
}

// CacheOption configures OpenCache. Options not given keep the library's defaults: the
// directory $XDG_CACHE_HOME/wasm-image (else ~/.cache/wasm-image), no size or age
// bound, tags trusted for 60 s, no stale-on-error, sizes (not digests) checked on every
// hit.
type CacheOption interface {
	applyCache(*C.wasm_image_cache_options_t, *cStrings) error
}

type cacheOption func(*C.wasm_image_cache_options_t, *cStrings) error

func (f cacheOption) applyCache(o *C.wasm_image_cache_options_t, strs *cStrings) error {
	return f(o, strs)
}

// WithCacheDir is the cache directory, created when missing.
func WithCacheDir(dir string) CacheOption {
	return cacheOption(func(o *C.wasm_image_cache_options_t, strs *cStrings) error {
		d, err := strs.add("cache directory", dir)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_cache_options_set_dir(o, d))
	})
}

// WithTagTTL is how long a tag's resolution is trusted under the "if-not-present"
// policy before it is resolved again. Default 60 s.
func WithTagTTL(d time.Duration) CacheOption {
	return cacheOption(func(o *C.wasm_image_cache_options_t, _ *cStrings) error {
		ms, err := milliseconds("the tag TTL", d)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_cache_options_set_tag_ttl_ms(o, ms))
	})
}

// WithVerify re-hashes a module on every cache hit, so a damaged entry is never served
// even when its size is right. Default: false (sizes are checked on every hit).
func WithVerify(enabled bool) CacheOption {
	return cacheOption(func(o *C.wasm_image_cache_options_t, _ *cStrings) error {
		return takeError(C.wasm_image_cache_options_set_verify(o, C.bool(enabled)))
	})
}

// BoundOption is a bound on what the cache keeps. It works as a CacheOption (the
// cache's own bound, applied after every insert and by GC) and as a GCOption (a bound
// for one GC run).
type BoundOption struct {
	maxBytes *uint64
	maxAge   *time.Duration
}

// WithMaxBytes evicts least recently used modules, never leased ones, while their total
// size is above maxBytes. Default: no bound. GC(WithMaxBytes(0)) empties the cache of
// everything not leased.
func WithMaxBytes(maxBytes uint64) BoundOption { return BoundOption{maxBytes: &maxBytes} }

// WithMaxAge evicts modules, never leased ones, unused for longer than maxAge. Default:
// no bound.
func WithMaxAge(maxAge time.Duration) BoundOption { return BoundOption{maxAge: &maxAge} }

func (b BoundOption) applyCache(o *C.wasm_image_cache_options_t, _ *cStrings) error {
	if b.maxBytes != nil {
		if err := takeError(C.wasm_image_cache_options_set_max_bytes(o, C.uint64_t(*b.maxBytes))); err != nil {
			return err
		}
	}
	if b.maxAge != nil {
		ms, err := milliseconds("the maximum age", *b.maxAge)
		if err != nil {
			return err
		}
		return takeError(C.wasm_image_cache_options_set_max_age_ms(o, ms))
	}
	return nil
}

func (b BoundOption) applyGC(g *gcBounds) error {
	if b.maxBytes != nil {
		g.maxBytes = C.uint64_t(*b.maxBytes)
		g.hasMaxBytes = true
	}
	if b.maxAge != nil {
		ms, err := milliseconds("the maximum age", *b.maxAge)
		if err != nil {
			return err
		}
		g.maxAgeMS = ms
		g.hasMaxAge = true
	}
	return nil
}

// OpenCache opens (creating when needed) a cache directory. It fails with
// ErrInvalidArgument when the path is not a directory or no default directory can be
// found, and with ErrIO when it cannot be created.
func OpenCache(opts ...CacheOption) (*Cache, error) {
	options := C.wasm_image_cache_options_new()
	defer C.wasm_image_cache_options_free(options)
	var strs cStrings
	defer strs.free()
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.applyCache(options, &strs); err != nil {
			return nil, err
		}
	}
	var handle *C.wasm_image_cache_t
	if err := takeError(C.wasm_image_cache_open(options, &handle)); err != nil {
		return nil, err
	}
	c := &Cache{handle: handle, dir: C.GoString(C.wasm_image_cache_dir(handle))}
	c.cleanup = runtime.AddCleanup(c, func(h *C.wasm_image_cache_t) { C.wasm_image_cache_free(h) }, handle)
	return c, nil
}

// Close frees the cache handle. Clients made with it keep using the directory, and
// entries fetched through it stay valid until closed themselves. Closing twice is fine.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle != nil {
		c.cleanup.Stop()
		C.wasm_image_cache_free(c.handle)
		c.handle = nil
	}
	return nil
}

// use runs f with the live handle, holding the cache open meanwhile.
func (c *Cache) use(f func(*C.wasm_image_cache_t) error) error {
	if c == nil {
		return invalidArgument("no cache")
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.handle == nil {
		return invalidArgument("the cache is closed")
	}
	return f(c.handle)
}

// Dir is the cache directory.
func (c *Cache) Dir() string { return c.dir }

// CacheStats are the counters of one cache handle (this process's use of the directory).
type CacheStats struct {
	Hits uint64
	// StaleHits are hits served stale because the registry could not be reached.
	StaleHits       uint64
	Misses          uint64
	BytesDownloaded uint64
	Evictions       uint64
}

// Stats gives the handle's counters.
func (c *Cache) Stats() (CacheStats, error) {
	var stats CacheStats
	err := c.use(func(h *C.wasm_image_cache_t) error {
		var s C.wasm_image_cache_stats_t
		if err := takeError(C.wasm_image_cache_stats(h, &s)); err != nil {
			return err
		}
		stats = CacheStats{
			Hits:            uint64(s.hits),
			StaleHits:       uint64(s.stale_hits),
			Misses:          uint64(s.misses),
			BytesDownloaded: uint64(s.bytes_downloaded),
			Evictions:       uint64(s.evictions),
		}
		return nil
	})
	return stats, err
}

// CachedEntry is one complete module in the cache directory.
type CachedEntry struct {
	// ModuleDigest is "sha256:…" of the module.
	ModuleDigest string
	// Path is the read-only module file.
	Path string
	// Size is the module's size in bytes.
	Size int64
	// LastUsed is when the module was last fetched.
	LastUsed time.Time
	// Leased says whether an Entry (in any process) held the module when listed.
	Leased bool
}

// Entries lists the complete entries, least recently used first. It fails with ErrIO
// when the directory cannot be read.
func (c *Cache) Entries() ([]CachedEntry, error) {
	var out []CachedEntry
	err := c.use(func(h *C.wasm_image_cache_t) error {
		var list *C.wasm_image_cache_entries_t
		if err := takeError(C.wasm_image_cache_entries(h, &list)); err != nil {
			return err
		}
		defer C.wasm_image_cache_entries_free(list)
		n := C.wasm_image_cache_entries_count(list)
		out = make([]CachedEntry, 0, int(n))
		for i := C.size_t(0); i < n; i++ {
			out = append(out, CachedEntry{
				ModuleDigest: C.GoString(C.wasm_image_cache_entries_module_digest(list, i)),
				Path:         C.GoString(C.wasm_image_cache_entries_path(list, i)),
				Size:         int64(C.wasm_image_cache_entries_size(list, i)),
				LastUsed:     time.UnixMilli(int64(C.wasm_image_cache_entries_last_used_ms(list, i))),
				Leased:       bool(C.wasm_image_cache_entries_leased(list, i)),
			})
		}
		return nil
	})
	return out, err
}

// GCOption is a bound for one GC run: WithMaxBytes or WithMaxAge.
type GCOption interface {
	applyGC(*gcBounds) error
}

type gcBounds struct {
	maxBytes, maxAgeMS     C.uint64_t
	hasMaxBytes, hasMaxAge bool
}

// GCReport says what one GC run did.
type GCReport struct {
	// Removed is how many modules were evicted.
	Removed uint64
	// FreedBytes is their total size.
	FreedBytes uint64
	// KeptLeased is how many modules were due for eviction but leased, so kept.
	KeptLeased uint64
	// LeftoversRemoved is how many files of interrupted writers were removed.
	LeftoversRemoved uint64
}

// GC evicts least recently used modules, never a leased one (held by an Entry not yet
// closed, in any process), and removes what interrupted writers left. Without options
// it applies the cache's own bounds; WithMaxBytes and WithMaxAge give bounds for this
// run. It fails with ErrIO when the directory cannot be changed.
func (c *Cache) GC(opts ...GCOption) (GCReport, error) {
	var bounds gcBounds
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt.applyGC(&bounds); err != nil {
			return GCReport{}, err
		}
	}
	var report GCReport
	err := c.use(func(h *C.wasm_image_cache_t) error {
		// NULL means "the cache's own bound", so only given bounds get a pointer.
		maxBytes, maxAge := bounds.maxBytes, bounds.maxAgeMS
		var maxBytesArg, maxAgeArg *C.uint64_t
		if bounds.hasMaxBytes {
			maxBytesArg = &maxBytes
		}
		if bounds.hasMaxAge {
			maxAgeArg = &maxAge
		}
		var r C.wasm_image_gc_report_t
		if err := takeError(C.wasm_image_cache_gc(h, maxBytesArg, maxAgeArg, &r)); err != nil {
			return err
		}
		report = GCReport{
			Removed:          uint64(r.removed),
			FreedBytes:       uint64(r.freed_bytes),
			KeptLeased:       uint64(r.kept_leased),
			LeftoversRemoved: uint64(r.leftovers_removed),
		}
		return nil
	})
	return report, err
}

// Verify re-hashes every module; damaged entries are dropped (and fetched again when
// next asked for). It returns how many were checked and how many dropped.
func (c *Cache) Verify() (checked, dropped uint64, err error) {
	err = c.use(func(h *C.wasm_image_cache_t) error {
		var ch, dr C.uint64_t
		if err := takeError(C.wasm_image_cache_verify(h, &ch, &dr)); err != nil {
			return err
		}
		checked, dropped = uint64(ch), uint64(dr)
		return nil
	})
	return checked, dropped, err
}

// WithCache makes the client's Fetch use cache (without it, Fetch uses a cache in the
// default directory). The client keeps the directory in use after cache is closed.
func WithCache(cache *Cache) Option {
	return clientOption(func(b *clientBuilder) error {
		return cache.use(func(h *C.wasm_image_cache_t) error {
			return takeError(C.wasm_image_client_options_set_cache(b.options, h))
		})
	})
}
