package supervisor

import (
	"time"
)

// The server's restarting: what a child's exit does, under the restart strategy and
// intensity, and the backoff between restarts.

func shouldRestart(t RestartType, reason error) bool {
	switch t {
	case Permanent:
		return true
	case Transient:
		return !isNormal(reason)
	default:
		return false
	}
}

// processExit applies the OTP rules to an exit that the supervisor did not
// cause.
func (s *server) processExit(c *child, done func()) {
	if !c.exitPending || c.removed || c.pid != nil || s.stopping {
		done()
		return
	}
	c.exitPending = false
	reason := c.exitReason
	if !shouldRestart(c.spec.Restart, reason) {
		if c.spec.Restart == Temporary {
			s.remove(c)
		} else {
			c.state = ChildStopped
		}
		if c.spec.Significant && s.autoShutdownDue() {
			s.shutdown(nil, false, done)
			return
		}
		done()
		return
	}
	if s.countRestart() {
		s.giveUp(reason, done)
		return
	}
	s.stopGroup(c, func() { s.restartPending(done, false) })
}

// stopGroup begins the restart that the strategy makes for c, as OTP's
// restart/3 does: it stops the running children of c's group (see group)
// other than c, in reverse declaration order, removes the temporary ones
// and marks every other child of the group as waiting to be restarted,
// also one that was not running (stopped with TerminateChild, or a
// transient child that ended normally): the supervisor keeps its
// specification, so the restart starts it. Then it calls then.
func (s *server) stopGroup(c *child, then func()) {
	group := s.group(c)
	bystanders := make([]*child, 0, len(group))
	for _, b := range group {
		if b != c {
			bystanders = append(bystanders, b)
		}
	}
	s.stopSeq(s.reversed(bystanders), func() {
		for _, b := range group {
			if b.removed {
				continue
			}
			if b.spec.Restart == Temporary {
				s.remove(b)
				continue
			}
			b.state = ChildRestarting
		}
		then()
	})
}

// group returns the children the strategy restarts with c, in declaration
// order.
func (s *server) group(c *child) []*child {
	switch s.spec.Flags.Strategy {
	case OneForAll:
		return append([]*child(nil), s.children...)
	case RestForOne:
		for i, x := range s.children {
			if x == c {
				return append([]*child(nil), s.children[i:]...)
			}
		}
	}
	return []*child{c}
}

// restartPending makes one restart round: it starts the children waiting
// to be restarted, in declaration order, after the backoff delay if there
// is one (see restartDelay). With waited set, that delay has already
// passed (the job comes from a restartTimer message).
//
// A failed start counts as a restart. With one_for_one the round goes on
// with the next child; otherwise the restart of the failed child's group
// starts over, as in OTP's restart_multiple_children: stopGroup stops the
// children of that group that run again (one_for_all: all of them;
// rest_for_one: the ones after the failed child) and the next round starts
// the group from its first child.
//
// A round never runs into the next one: while children still wait to be
// restarted, the next round is a restartTimer message to ourselves, sent at
// once or after the backoff delay (OTP's try_again_restart). So the
// mailbox is served between rounds, also when starts keep failing without
// backoff: WhichChildren, StartChild, Stop and the others are answered.
func (s *server) restartPending(done func(), waited bool) {
	if s.stopping || !s.anyRestarting() {
		done()
		return
	}
	if d := s.restartDelay(); d > 0 && !waited {
		s.scheduleRestart(d)
		done()
		return
	}
	s.cancelRestartTimer() // this round is the one a pending timer or message would start
	for _, c := range append([]*child(nil), s.children...) {
		if c.removed || c.state != ChildRestarting || c.pid != nil || c.exitPending {
			continue
		}
		err := s.startChild(c)
		if err == nil {
			c.restarts++
			s.publish(c, Restarted, nil, c.restarts)
			continue
		}
		s.publish(c, Exited, err, c.restarts)
		if s.countRestart() {
			s.giveUp(err, done)
			return
		}
		if s.spec.Flags.Strategy != OneForOne {
			s.stopGroup(c, func() { s.tryAgain(done) })
			return
		}
	}
	s.tryAgain(done)
}

// tryAgain schedules the next restart round if children still wait to be
// restarted, and ends the current job.
func (s *server) tryAgain(done func()) {
	if !s.stopping && s.anyRestarting() {
		s.scheduleRestart(s.restartDelay())
	}
	done()
}

// scheduleRestart makes the next restart round a restartTimer message to
// ourselves after d, or at once if d is zero. It replaces a round already
// scheduled.
func (s *server) scheduleRestart(d time.Duration) {
	s.cancelRestartTimer()
	msg := &restartTimer{gen: s.timerGen}
	if d <= 0 {
		s.system.Root.Send(s.self, msg)
		return
	}
	s.restartTimer = s.after(d, msg)
	for _, c := range s.children {
		if !c.removed && c.state == ChildRestarting && c.pid == nil && !c.exitPending {
			s.publish(c, BackingOff, nil, c.restarts)
		}
	}
}

func (s *server) restartDelay() time.Duration {
	return restartDelay(s.spec.Flags.Backoff, len(s.restartLog))
}

// restartDelay is the backoff before a restart round when the restart log
// holds n restarts within the period, the one being made included: none for
// the first (OTP restarts at once), then Backoff steps 0, 1, 2, ... so that
// only repeated restarts slow down.
func restartDelay(b Backoff, n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return b.Delay(n - 2)
}

func (s *server) anyRestarting() bool {
	for _, c := range s.children {
		if c.state == ChildRestarting && c.pid == nil && !c.exitPending {
			return true
		}
	}
	return false
}

// countRestart records a restart and reports whether the intensity is
// exceeded.
func (s *server) countRestart() bool {
	now := time.Now()
	kept := s.restartLog[:0]
	for _, t := range s.restartLog {
		if now.Sub(t) < s.spec.Flags.Period {
			kept = append(kept, t)
		}
	}
	s.restartLog = append(kept, now)
	return len(s.restartLog) > s.spec.Flags.Intensity
}

func (s *server) giveUp(last error, done func()) {
	esc := &EscalationError{Supervisor: s.self.Id, Restarts: len(s.restartLog), Period: s.spec.Flags.Period, Last: last}
	s.publishSelf(GaveUp, esc, len(s.restartLog))
	s.shutdown(esc, true, done)
}

func (s *server) autoShutdownDue() bool {
	switch s.spec.Flags.AutoShutdown {
	case AnySignificant:
		return true
	case AllSignificant:
		for _, c := range s.children {
			if c.spec.Significant && (c.pid != nil || c.state == ChildRestarting) {
				return false
			}
		}
		return true
	}
	return false
}

func (s *server) cancelRestartTimer() {
	if s.restartTimer != nil {
		s.restartTimer.Stop()
		s.restartTimer = nil
	}
	s.timerGen++
}
