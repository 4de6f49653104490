package bench

import (
	"context"
	"fmt"
	"time"
)

// The soak's chaos: the primary and the standby SIGKILLed in turn and
// restarted, and nodes that exit unbidden noticed.

// leader returns the node that leads, asking the nodes that are up.
func (k *soak) leader(ctx context.Context) *PairNode {
	for i, n := range k.pair.Nodes {
		if k.pid[i].Load() == 0 {
			continue
		}
		if l, err := n.Leader(ctx); err == nil && l == n.ID {
			return n
		}
	}
	return nil
}

// chaos kills the primary and the standby in turn every KillEvery, and
// restarts any node that died unbidden, until ctx ends; then it brings
// back any node that is down. The only goroutine that touches the pair's
// processes while the soak runs.
func (k *soak) chaos(ctx context.Context) {
	defer k.bringBack(context.WithoutCancel(ctx))
	kill := time.NewTicker(k.s.KillEvery)
	defer kill.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	primaryNext := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			k.checkAlive(ctx)
			continue
		case <-kill.C:
		}
		if ctx.Err() != nil {
			return // the tick and the end came together
		}
		if primaryNext {
			k.killPrimary(ctx)
		} else {
			k.killStandby(ctx)
		}
		primaryNext = !primaryNext
	}
}

// checkAlive restarts a node that exited although it was not killed.
func (k *soak) checkAlive(ctx context.Context) {
	for i, n := range k.pair.Nodes {
		if k.pid[i].Load() == 0 || n.Running() {
			continue
		}
		k.pid[i].Store(0)
		k.mu.Lock()
		k.rep.Unexpected++
		k.mu.Unlock()
		k.fail(fmt.Errorf("node %d exited unexpectedly: %v", n.ID, n.Alive()))
		k.restart(ctx, n)
	}
}

// bringBack restarts the nodes that are down, bounded by setupTimeout.
func (k *soak) bringBack(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	for i, n := range k.pair.Nodes {
		if k.pid[i].Load() == 0 || !n.Running() {
			k.restart(rctx, n)
		}
	}
}

func (k *soak) restart(ctx context.Context, n *PairNode) bool {
	if err := n.Restart(ctx); err != nil {
		k.fail(fmt.Errorf("cannot restart node %d: %w", n.ID, err))
		return false
	}
	k.pid[n.ID-1].Store(int64(n.PID()))
	k.mu.Lock()
	k.nodeEvents[n.ID-1] = append(k.nodeEvents[n.ID-1], k.elapsed())
	k.mu.Unlock()
	return true
}

// wait sleeps d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// killPrimary SIGKILLs the node that leads, waits for the standby's
// auto_failover, restarts the killed node after RestartDelay and waits
// until it is back in sync as the standby.
func (k *soak) killPrimary(ctx context.Context) {
	primary := k.leader(ctx)
	if primary == nil {
		k.event("no node leads: skipping the primary kill")
		return
	}
	standby := k.pair.Peer(primary)
	killed := time.Now()
	primary.Kill()
	k.pid[primary.ID-1].Store(0)
	k.mu.Lock()
	k.rep.Kills[0]++
	k.mu.Unlock()
	k.event("SIGKILL node %d (the primary)", primary.ID)
	err := poll(ctx, time.Minute, 50*time.Millisecond, func() (bool, error) {
		l, _ := standby.Leader(ctx)
		return l == standby.ID, nil
	}, func() error { return fmt.Errorf("node %d did not take over within a minute", standby.ID) })
	if err != nil {
		if ctx.Err() == nil {
			k.fail(err)
		}
	} else {
		took := time.Since(killed)
		k.mu.Lock()
		k.rep.FailoverMs = append(k.rep.FailoverMs, ms(took))
		k.mu.Unlock()
		k.event("node %d leads, %v after the kill", standby.ID, took.Round(time.Millisecond))
	}
	if !wait(ctx, k.s.RestartDelay) || !k.restart(ctx, primary) {
		return
	}
	k.event("node %d restarted", primary.ID)
	if err := k.pair.WaitInSync(ctx, standby, k.topics[:]...); err != nil {
		if ctx.Err() == nil {
			k.fail(err)
		}
		return
	}
	k.event("node %d in sync as the standby, %v after the kill", primary.ID, time.Since(killed).Round(time.Millisecond))
}

// killStandby SIGKILLs the standby, restarts it after RestartDelay and
// waits until it is back in sync.
func (k *soak) killStandby(ctx context.Context) {
	primary := k.leader(ctx)
	if primary == nil {
		k.event("no node leads: skipping the standby kill")
		return
	}
	standby := k.pair.Peer(primary)
	if k.pid[standby.ID-1].Load() == 0 {
		k.event("node %d is down: skipping the standby kill", standby.ID)
		return
	}
	killed := time.Now()
	standby.Kill()
	k.pid[standby.ID-1].Store(0)
	k.mu.Lock()
	k.rep.Kills[1]++
	k.mu.Unlock()
	k.event("SIGKILL node %d (the standby)", standby.ID)
	if !wait(ctx, k.s.RestartDelay) || !k.restart(ctx, standby) {
		return
	}
	k.event("node %d restarted", standby.ID)
	if err := k.pair.WaitInSync(ctx, primary, k.topics[:]...); err != nil {
		if ctx.Err() == nil {
			k.fail(err)
		}
		return
	}
	k.event("node %d in sync again, %v after the kill", standby.ID, time.Since(killed).Round(time.Millisecond))
}
