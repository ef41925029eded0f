// zerolog's program in the benchmark: "zerolog_bench MODE N PATH [THREADS]".
//
// zerolog.New over the file, with the logger name and the service bound
// once on its context, the field names set to the workload's (timestamp,
// level, message) and the time in RFC 3339 UTC with microseconds.
//
// MODE sync is the *os.File itself: one write(2) per event. MODE async is
// zerolog's diode writer (a ring of 1000, polled every 10 ms, as in
// zerolog's README). It is lossy by design: it never blocks the
// caller, drops what the poller has not taken in time, and Close stops the
// poller without draining the ring. What was lost is counted and reported
// on stderr as "zerolog_bench: dropped X of N events".
//
// THREADS > 1 runs that many goroutines, each logging N / THREADS events.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/diode"
)

func usage() {
	fmt.Fprintf(os.Stderr, "usage: %s sync|async N PATH [THREADS]\n", os.Args[0])
	os.Exit(2)
}

// countingWriter counts the events that reached the file. The diode's
// poller is its only caller, so it needs no lock.
type countingWriter struct {
	w     io.Writer
	lines uint64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.lines++
	return c.w.Write(p)
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

	zerolog.TimestampFieldName = "timestamp"
	zerolog.LevelFieldName = "level"
	zerolog.MessageFieldName = "message"
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000000Z07:00"
	zerolog.TimestampFunc = func() time.Time { return time.Now().UTC() }
	zerolog.SetGlobalLevel(zerolog.InfoLevel)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "zerolog_bench: %v\n", err)
		os.Exit(1)
	}

	var out io.Writer = f
	var dw *diode.Writer
	var counted *countingWriter
	if mode == "async" {
		counted = &countingWriter{w: f}
		w := diode.NewWriter(counted, 1000, 10*time.Millisecond, nil)
		dw = &w
		out = w
	}
	logger := zerolog.New(out).With().Timestamp().
		Str("logger", "orders").Str("service", "orders-api").Logger()

	run := func(count uint64) {
		// The ids are per-event arguments, as a caller holds them.
		requestID := "3f2b8c1e-6a4d-4f7e-9b1a-0c5d2e7f8a91"
		userID := "user-4711"
		traceID := "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID := "00f067aa0ba902b7"
		for i := uint64(0); i < count; i++ {
			logger.Info().
				Str("request_id", requestID).
				Str("user_id", userID).
				Str("trace_id", traceID).
				Str("span_id", spanID).
				Str("method", "GET").
				Str("path", "/api/orders/42").
				Int("status", 200).
				Float64("duration_ms", 12.5+float64(i%100)/100.0).
				Msg("request completed")
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

	if dw != nil {
		_ = dw.Close()
		total := per * threads
		if counted.lines < total {
			fmt.Fprintf(os.Stderr, "zerolog_bench: dropped %d of %d events\n",
				total-counted.lines, total)
		}
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "zerolog_bench: %v\n", err)
		os.Exit(1)
	}
}
