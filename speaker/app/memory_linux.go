package app

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// DefaultGCPercent is the speaker's GOGC when the environment sets none:
// its heap is small and mostly long-lived (caches), so a tighter goal costs
// little CPU and keeps the resident set down.
const DefaultGCPercent = 50

// tuneMemory keeps the speaker's resident set small; it runs at start and
// once more after start-up (trimWhenReady).
//
// The binary carries every role (operator, controller, speaker), and the
// kernel maps its read-only pages into the process 64 KiB at a time around
// every page touched (fault-around): after start-up most of the binary's
// text and pclntab counts in the resident set although the speaker uses a
// fraction of it. madvise(MADV_RANDOM) on the executable's read-only
// mappings turns fault-around off for them and MADV_DONTNEED drops what
// start-up mapped; pages the speaker uses fault back in one by one. Both
// calls only concern clean, read-only, file-backed pages: nothing is lost,
// the page cache keeps them, and a failure merely keeps the larger
// resident set.
func tuneMemory() (trimmed int, err error) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("find the executable: %w", err)
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("read mappings: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[5] != exe || (fs[1] != "r-xp" && fs[1] != "r--p") {
			continue
		}
		lo, hi, _ := strings.Cut(fs[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		for _, advice := range []uintptr{unix.MADV_RANDOM, unix.MADV_DONTNEED} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), advice); errno != 0 {
				return trimmed, fmt.Errorf("madvise(%d) on %s: %w", advice, fs[0], errno)
			}
		}
		trimmed += int(end - start)
	}
	return trimmed, sc.Err()
}

// trimSchedule is when trimWhenReady trims after the first decision: soon
// (start-up is over), then every trimEvery. A trim costs a forced GC and
// two madvise calls per mapping (a few milliseconds); the pages the
// speaker keeps using fault back in from the page cache in microseconds.
var trimSchedule = []time.Duration{time.Second}

const trimEvery = 30 * time.Second

// trimWhenReady trims again once the speaker made its first decision, and
// later on (trimSchedule, trimEvery): pages that start-up or a burst of
// work touched (cache sync, decoding the first lists, writing records) are
// not needed afterwards, and free heap pages go back to the system.
func trimWhenReady(ctx context.Context, ready func() error, log logr.Logger) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for ready() != nil {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	start := time.Now()
	for i := 0; ; i++ {
		next := trimEvery
		if i < len(trimSchedule) {
			next = trimSchedule[i] - time.Since(start)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		debug.FreeOSMemory()
		if n, err := tuneMemory(); err != nil {
			log.V(1).Info("Cannot trim the executable's resident pages", "error", err.Error())
			return
		} else {
			log.V(4).Info("Trimmed the executable's resident pages", "bytes", n)
		}
	}
}
