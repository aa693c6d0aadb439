package pool

import "sync"

// maxQueued bounds a slow subscriber's backlog; beyond it the oldest events
// are dropped (and counted). A consumer that re-reads Members() on every
// event loses nothing by that.
const maxQueued = 4096

// Subscribe returns membership changes from now on, in the order memberlist
// saw them, and a function that ends the subscription and closes the
// channel. Events are queued per subscriber, so a slow reader never stalls
// gossip. The member table (Members, Pick) is updated before an event is
// delivered. To build a cache, subscribe first, then read Members(), then
// apply events. The channel is closed by cancel and by Leave or Shutdown.
func (p *Pool) Subscribe() (<-chan Event, func()) {
	s := &subscriber{
		ch:   make(chan Event),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		met:  p.met,
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	p.subs[s] = struct{}{}
	p.subsRun.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.subsRun.Done()
		defer close(s.ch)
		s.run()
	}()
	cancel := func() {
		p.mu.Lock()
		delete(p.subs, s)
		p.mu.Unlock()
		s.stop()
	}
	return s.ch, cancel
}

// subscriber forwards queued events to its channel from its own goroutine.
type subscriber struct {
	ch   chan Event
	wake chan struct{}
	done chan struct{}
	once sync.Once
	met  *metrics

	mu    sync.Mutex
	queue []Event
}

// push queues ev without blocking.
func (s *subscriber) push(ev Event) {
	s.mu.Lock()
	if len(s.queue) >= maxQueued {
		s.queue = s.queue[1:]
		s.met.dropped.Inc()
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop ends run; the channel is closed when run returns.
func (s *subscriber) stop() { s.once.Do(func() { close(s.done) }) }

func (s *subscriber) run() {
	for {
		s.mu.Lock()
		var ev Event
		ok := len(s.queue) > 0
		if ok {
			ev = s.queue[0]
			s.queue[0] = Event{}
			s.queue = s.queue[1:]
		}
		s.mu.Unlock()
		if !ok {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.ch <- ev:
		case <-s.done:
			return
		}
	}
}
