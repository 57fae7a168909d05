package daemon

import (
	"context"
	"sync"
)

// tasks owns the node's goroutines that outlive the call that started them (a rolling
// restart's coordinator, the stop of PostgreSQL during a requested restart, job pruning):
// their context ends when the node shuts down, and shutdown waits for every one of them.
type tasks struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newTasks() *tasks {
	ctx, cancel := context.WithCancel(context.Background())
	return &tasks{ctx: ctx, cancel: cancel}
}

// run starts f in its own goroutine with the tasks' context.
func (t *tasks) run(f func(ctx context.Context)) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f(t.ctx)
	}()
}

// stop ends the tasks' context and waits for every task to return.
func (t *tasks) stop() {
	t.cancel()
	t.wg.Wait()
}
