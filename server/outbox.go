package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/weft-stm/weft/wire"
)

// push queues msgs to be sent together, in order, and reports whether they
// were. It never blocks: a session whose queue already holds
// Config.QueueSize items has fallen behind, and is closed with Error code
// limit; the messages queued for it are dropped. It may be called from any
// goroutine, under a share's lock.
func (s *session) push(msgs ...wire.Message) bool {
	s.out.Lock()
	defer s.out.Unlock()
	if s.out.closing {
		return false
	}
	if len(s.out.items) >= s.srv.cfg.QueueSize {
		s.out.items = nil
		s.out.closing = true
		s.out.final = &wire.Error{Code: wire.CodeLimit,
			Message: fmt.Sprintf("session fell behind: more than %d messages waiting to be sent", s.srv.cfg.QueueSize)}
		s.log.Warn("session fell behind; closing it", "principal", s.principal, "queue", s.srv.cfg.QueueSize)
		s.cancelDrop()
		s.stopRead()
		return false
	}
	s.out.items = append(s.out.items, msgs)
	s.signal()
	return true
}

// signal wakes the writer. s.out is locked.
func (s *session) signal() {
	select {
	case s.out.wake <- struct{}{}:
	default:
	}
}

// finish tells the writer to send what is queued, then final (unless a
// final Error was already chosen), and stop.
func (s *session) finish(final *wire.Error) {
	s.out.Lock()
	defer s.out.Unlock()
	if !s.out.closing {
		s.out.closing = true
		s.out.final = final
	}
	s.signal()
}

// abandon drops everything left to write, final Error included, and
// interrupts the write in progress.
func (s *session) abandon() {
	s.out.Lock()
	s.out.items, s.out.closing, s.out.final = nil, true, nil
	s.out.Unlock()
	s.cancelHard()
}

// writeLoop is the session's writer goroutine: it sends the queued items
// in order, then the final Error, and returns. Each round takes every item
// queued and sends them with one SendBatch, so that a burst of Acks and
// Updates to a session costs one write. A failed write ends the session.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	var items [][]wire.Message // the items taken, reused between rounds
	var batch []wire.Message   // their messages, in order
	for {
		s.out.Lock()
		if len(s.out.items) > 0 {
			items, s.out.items = s.out.items, items[:0]
			s.out.Unlock()
			for _, item := range items {
				batch = append(batch, item...)
			}
			err := s.conn.SendBatch(s.dropCtx, batch)
			// Drop the references, so that sent messages are not kept
			// alive by the reused slices.
			clear(items)
			clear(batch)
			batch = batch[:0]
			if err != nil {
				s.writeFailed(err)
			}
			continue
		}
		if s.out.closing {
			final := s.out.final
			s.out.Unlock()
			if final != nil {
				ctx, cancel := context.WithTimeout(s.hardCtx, s.srv.cfg.FlushTimeout)
				if err := s.conn.Send(ctx, final); err != nil {
					s.log.Debug("final error not sent", "err", err)
				}
				cancel()
			}
			return
		}
		s.out.Unlock()
		select {
		case <-s.out.wake:
		case <-s.dropCtx.Done():
		}
	}
}

// writeFailed ends the session after SendBatch failed: the connection is
// broken, or the writes were abandoned, or (a bug) a message is invalid
// under the limits, and then none of the batch was sent. The error's field
// path starts with the type of the invalid message.
func (s *session) writeFailed(err error) {
	var fe *wire.FieldError
	invalid := errors.As(err, &fe)
	s.out.Lock()
	if !s.out.closing {
		s.out.closing = true
		if invalid {
			s.out.final = &wire.Error{Code: wire.CodeInternal, Message: "the server could not encode a message"}
		}
	}
	s.out.items = nil
	s.out.Unlock()
	if invalid {
		s.log.Error("message invalid under the session's limits", "err", err)
	} else if s.dropCtx.Err() == nil {
		s.log.Debug("write failed", "err", err)
	}
	s.stopRead()
}
