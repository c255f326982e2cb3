package supervisor

import (
	"fmt"
)

// The server's admin requests: start, terminate, restart, delete and kill a child by name,
// and what which_children and count_children report.

func (s *server) startChildReq(spec ChildSpec) Reply {
	if err := spec.Validate(); err != nil {
		return Reply{Err: err}
	}
	if c := s.find(spec.Name); c != nil {
		if c.pid != nil {
			return Reply{Err: fmt.Errorf("%w: %s", ErrAlreadyStarted, spec.Name)}
		}
		return Reply{Err: fmt.Errorf("%w: %s", ErrAlreadyPresent, spec.Name)}
	}
	c := &child{spec: spec, state: ChildStopped}
	s.children = append(s.children, c)
	if err := s.startChild(c); err != nil {
		s.remove(c)
		return Reply{Err: err}
	}
	s.publish(c, Started, nil, 0)
	return Reply{}
}

func (s *server) terminateChildReq(name string, finish func(Reply)) {
	c := s.find(name)
	if c == nil {
		finish(Reply{Err: fmt.Errorf("%w: %s", ErrNotFound, name)})
		return
	}
	s.terminate(c, func() {
		if c.spec.Restart == Temporary {
			s.remove(c)
		} else {
			c.state = ChildStopped
		}
		finish(Reply{})
	})
}

// terminated finds the child name for restart_child and delete_child, which OTP allows only on
// a child that is present and not running (nor about to be restarted).
func (s *server) terminated(name string) (*child, error) {
	c := s.find(name)
	switch {
	case c == nil:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	case c.pid != nil:
		return nil, fmt.Errorf("%w: %s", ErrRunning, name)
	case c.state == ChildRestarting:
		return nil, fmt.Errorf("%w: %s", ErrRestarting, name)
	}
	return c, nil
}

func (s *server) restartChildReq(name string) Reply {
	c, err := s.terminated(name)
	if err != nil {
		return Reply{Err: err}
	}
	if err := s.startChild(c); err != nil {
		return Reply{Err: err}
	}
	s.publish(c, Started, nil, 0)
	return Reply{}
}

func (s *server) deleteChildReq(name string) Reply {
	c, err := s.terminated(name)
	if err != nil {
		return Reply{Err: err}
	}
	s.remove(c)
	return Reply{}
}

func (s *server) killChildReq(name string, reason error) Reply {
	if s.stopping {
		return Reply{Err: ErrSupervisorStopped}
	}
	c := s.find(name)
	switch {
	case c == nil:
		return Reply{Err: fmt.Errorf("%w: %s", ErrNotFound, name)}
	case c.pid == nil:
		return Reply{}
	}
	if reason == nil {
		reason = ErrKilled
	}
	c.cell.record(reason)
	if c.op == nil {
		s.beginStop(c, false, nil)
	}
	return Reply{}
}

func (s *server) which() []ChildInfo {
	out := make([]ChildInfo, 0, len(s.children))
	for _, c := range s.children {
		st := c.state
		if c.pid != nil {
			st = ChildRunning
		}
		out = append(out, ChildInfo{Name: c.spec.Name, PID: c.pid, Type: c.spec.Type, State: st, Restarts: c.restarts, Incarnation: c.incarnation})
	}
	return out
}

func (s *server) count() Counts {
	var n Counts
	for _, c := range s.children {
		n.Specs++
		if c.pid != nil {
			n.Active++
		}
		if c.spec.Type == SupervisorType {
			n.Supervisors++
		} else {
			n.Workers++
		}
	}
	return n
}
