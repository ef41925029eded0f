// zap's program in the benchmark: "zap_bench MODE N PATH [THREADS]".
//
// A core built by hand from zap's production JSON encoder config, with the
// keys renamed to the workload's (timestamp, level, logger, message), the
// time in RFC 3339 UTC with microseconds, no caller, no stack trace and no
// sampler (zap's production sampler drops events).
//
// MODE sync is zapcore.Lock(*os.File): one write(2) per event. MODE async
// is zapcore.BufferedWriteSyncer over the file (256 KiB, flushed every 30 s
// and on Stop).
//
// THREADS > 1 runs that many goroutines, each logging N / THREADS events.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s sync|async N PATH [THREADS]\n", os.Args[0])
	os.Exit(2)
}

func main() {
	if len(os.Args) < 4 || len(os.Args) > 5 {
		usage()
	}
	mode := os.Args[1]
	n, err := strconv.ParseUint(os.Args[2], 10, 64)
	if err != nil || (mode != "sync" && mode != "async") {
		usage()
	}
	path := os.Args[3]
	threads := uint64(1)
	if len(os.Args) == 5 {
		threads, err = strconv.ParseUint(os.Args[4], 10, 64)
		if err != nil || threads < 1 || threads > 256 {
			usage()
		}
	}

	// Timestamps in UTC ("Z"), whatever the machine's zone.
	time.Local = time.UTC
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zap_bench: %v\n", err)
		os.Exit(1)
	}

	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "timestamp"
	enc.LevelKey = "level"
	enc.NameKey = "logger"
	enc.MessageKey = "message"
	enc.CallerKey = zapcore.OmitKey
	enc.FunctionKey = zapcore.OmitKey
	enc.StacktraceKey = zapcore.OmitKey
	enc.EncodeLevel = zapcore.LowercaseLevelEncoder
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02T15:04:05.000000Z07:00")

	var ws zapcore.WriteSyncer
	var buffered *zapcore.BufferedWriteSyncer
	if mode == "async" {
		buffered = &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(f)}
		ws = buffered
	} else {
		ws = zapcore.Lock(f)
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), ws, zapcore.InfoLevel)
	logger := zap.New(core).Named("orders").With(zap.String("service", "orders-api"))

	run := func(count uint64) {
		// The ids are per-event arguments, as a caller holds them.
		requestID := "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"
		userID := "user-4711"
		traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID := "00f067aa0ba902b7"
		for i := uint64(0); i < count; i++ {
			logger.Info("request completed",
				zap.String("request_id", requestID),
				zap.String("user_id", userID),
				zap.String("trace_id", traceID),
				zap.String("span_id", spanID),
				zap.String("method", "GET"),
				zap.String("path", "/api/orders/42"),
				zap.Int("status", 200),
				zap.Float64("duration_ms", 12.5+float64(i%100)/100.0))
		}
	}
	per := n / threads
	if threads == 1 {
		run(per)
	} else {
		var wg sync.WaitGroup
		for k := uint64(0); k < threads; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				run(per)
			}()
		}
		wg.Wait()
	}

	if buffered != nil {
		if err := buffered.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "zap_bench: %v\n", err)
			os.Exit(1)
		}
	}
	_ = logger.Sync()
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "zap_bench: %v\n", err)
		os.Exit(1)
	}
}
