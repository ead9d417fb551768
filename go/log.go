package wasmimage

/*
#include <wasm_image.h>

// Defined in callbacks.go (exported from Go).
extern void wasmimageLog(void *user_data, wasm_image_log_record_t *record);

static wasm_image_error_t *wasmimage_set_log(uint32_t max_level) {
	return wasm_image_set_log_callback(max_level, (wasm_image_log_callback_t)wasmimageLog, NULL);
}
*/
import "C"

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// LevelTrace is the slog level of the library's most detailed events, below
// slog.LevelDebug.
const LevelTrace = slog.LevelDebug - 4

// The library's levels, most severe first, as slog levels (index: C level - 1).
var logLevels = [...]slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug, LevelTrace}

var (
	logger   atomic.Pointer[slog.Logger]
	loggerMu sync.Mutex // orders SetLogger calls with the library's switch
)

// SetLogger sends the library's log events to l (nil stops them). Logging is
// process-wide in the library, so one logger serves every client. Each record has the
// library's message (its fields appended as key=value) and the attribute "target", the
// part of the library that logged (e.g. "wasm_image::client"); levels map ERROR, WARN,
// INFO, DEBUG to slog's and TRACE to LevelTrace.
//
// Records are produced on the goroutine that made a call, while it runs. Which levels
// cross from the library is decided now from l.Enabled: after changing the level of
// l's handler, call SetLogger again.
func SetLogger(l *slog.Logger) error {
	loggerMu.Lock()
	defer loggerMu.Unlock()
	maxLevel := 0
	if l != nil {
		for i, level := range logLevels {
			if l.Enabled(context.Background(), level) {
				maxLevel = i + 1
			}
		}
	}
	if maxLevel == 0 {
		logger.Store(nil)
		return takeError(C.wasm_image_set_log_callback(C.WASM_IMAGE_LOG_LEVEL_ERROR, nil, nil))
	}
	logger.Store(l)
	return takeError(C.wasmimage_set_log(C.uint32_t(maxLevel)))
}

func deliverLog(level int, target, message string) {
	l := logger.Load()
	if l == nil || level < 1 || level > len(logLevels) {
		return
	}
	slogLevel := logLevels[level-1]
	ctx := context.Background()
	if !l.Enabled(ctx, slogLevel) {
		return
	}
	defer func() {
		// A handler that panics must not unwind through the library; say so where
		// the program's own output goes.
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "wasmimage: the slog handler panicked on a record: %v\n", p)
		}
	}()
	record := slog.NewRecord(time.Now(), slogLevel, message, 0)
	record.AddAttrs(slog.String("target", target))
	_ = l.Handler().Handle(ctx, record)
}
