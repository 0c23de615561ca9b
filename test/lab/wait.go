package lab

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PollInterval is the default polling interval of WaitFor.
const PollInterval = 50 * time.Millisecond

// ErrTimeout is wrapped by WaitFor and Measure when the condition did not
// hold in time.
var ErrTimeout = errors.New("timed out")

// WaitFor polls cond every PollInterval until it returns true, cond returns
// a permanent error (wrapped with Permanent), timeout elapses or ctx ends.
// When cond returns false, its error (if any) says why; the timeout error
// names what was awaited and carries the last such error. A true result
// ends the wait whatever the error.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	return poll(ctx, timeout, PollInterval, what, cond)
}

// Poll is WaitFor with an explicit interval.
func Poll(ctx context.Context, timeout, interval time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	return poll(ctx, timeout, interval, what, cond)
}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks an error returned by a condition as final: WaitFor
// returns it at once instead of polling on.
func Permanent(err error) error { return permanent{err} }

func poll(ctx context.Context, timeout, interval time.Duration, what string, cond func(ctx context.Context) (bool, error)) error {
	if interval <= 0 {
		interval = PollInterval
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return fmt.Errorf("wait for %s: %w", what, p.err)
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("wait for %s: %w after %v (last error: %v)", what, ErrTimeout, timeout, last)
			}
			return fmt.Errorf("wait for %s: %w after %v", what, ErrTimeout, timeout)
		case <-t.C:
		}
	}
}

// Measure takes the time from an event to the first moment cond holds: it
// records the start, runs event, then polls cond every interval (5–10 ms is
// right for neighbour and route tables) for at most timeout. The result's
// resolution is the interval plus the cost of one cond call.
func Measure(ctx context.Context, timeout, interval time.Duration, event func() error, cond func(ctx context.Context) (bool, error)) (time.Duration, error) {
	start := time.Now()
	if err := event(); err != nil {
		return 0, fmt.Errorf("measure: event: %w", err)
	}
	var seen time.Duration
	err := poll(ctx, timeout, interval, "measured condition", func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if ok {
			seen = time.Since(start)
		}
		return ok, err
	})
	if err != nil {
		return time.Since(start), err
	}
	return seen, nil
}
