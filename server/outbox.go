package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weft-stm/weft/wire"
)

// The outbox. Messages are queued under s.out and sent in queue order by
// whichever goroutine holds s.out.writing: the session's reader, which
// sends its own answers itself when it is about to wait for the next
// message (so that a round trip costs no goroutine hand-off on the
// server), or the writer goroutine (writeLoop), woken for what other
// sessions queue (Updates), for a backlog, and to finish the session.
// The holder sends until the queue is empty and only then clears writing,
// so a message queued while another goroutine sends is sent by it, in
// order.

// directMax is the number of items the reader lets wait in the queue while
// it handles messages already received; past it the writer goroutine is
// woken, so that a client streaming commits has them answered while the
// reader goes on, and the queue does not grow to the session's limit.
const directMax = 64

// push queues msgs, answers of the reader goroutine, to be sent together,
// in order, and reports whether they were. The reader sends them itself
// (flush) before it waits for the next message. It never blocks: see
// enqueue.
func (s *session) push(msgs ...wire.Message) bool {
	return s.enqueue(msgs, false)
}

// deliver queues m for a session from another session's goroutine (an
// Update, under the share's lock), waking the writer goroutine unless a
// send is in progress, whose sender will send m too.
func (s *session) deliver(m wire.Message) bool {
	return s.enqueue([]wire.Message{m}, true)
}

// enqueue never blocks: a session whose queue already holds
// Config.QueueSize items has fallen behind, and is closed with Error code
// limit; the messages queued for it are dropped. It may be called from any
// goroutine, under a share's lock.
func (s *session) enqueue(msgs []wire.Message, wake bool) bool {
	s.out.Lock()
	defer s.out.Unlock()
	if s.out.closing {
		return false
	}
	size := 0 // of the Updates, encoded once for every session
	for _, m := range msgs {
		if e, ok := m.(*wire.Encoded); ok {
			size += e.Len()
		}
	}
	full := ""
	switch cfg := &s.srv.cfg; {
	case s.out.items >= cfg.QueueSize:
		full = fmt.Sprintf("more than %d messages waiting to be sent", cfg.QueueSize)
	case s.out.bytes > 0 && s.out.bytes+size > cfg.QueueBytes:
		full = fmt.Sprintf("more than %d bytes of updates waiting to be sent", cfg.QueueBytes)
	}
	if full != "" {
		s.dropLocked()
		s.out.closing = true
		s.out.final = &wire.Error{Code: wire.CodeLimit, Message: "session fell behind: " + full}
		s.log.Warn("session fell behind; closing it", "principal", s.principal, "queue", full)
		s.cancelDrop()
		s.stopRead()
		return false
	}
	s.out.bytes += size
	s.out.msgs = append(s.out.msgs, msgs...)
	s.out.items++
	if len(msgs) > 1 { // a transfer: see awaitTransfers
		s.out.transfers++
		s.owed.Add(1)
	}
	if !s.out.writing && (wake || s.out.items >= directMax) {
		s.signal()
	}
	return true
}

// signal wakes the writer. s.out is locked.
func (s *session) signal() {
	select {
	case s.out.wake <- struct{}{}:
	default:
	}
}

// flush is called by the reader goroutine before it waits for the next
// message: unless another goroutine is sending, it sends what is queued
// itself. Once reading has stopped it leaves that to the writer
// goroutine, whose sends FlushTimeout bounds.
func (s *session) flush() {
	s.out.Lock()
	if s.out.writing || s.out.items == 0 {
		s.out.Unlock()
		return
	}
	if s.readCtx.Err() != nil {
		s.signal()
		s.out.Unlock()
		return
	}
	s.out.writing, s.out.reader = true, true
	s.drainLocked()
}

// awaitTransfers is the reader's back-pressure on opens: before it reads
// the next message, every transfer (snapshot or deltas) in the queue
// must have been sent, by itself or the writer goroutine. A transfer is
// built whole, and counts as one item of the queue however large the
// share, so a client that opened and closed a share again and again
// without reading its answers would otherwise have the server hold a
// copy of the share for each open. (A transfer that waits for the
// durability of the share's changes is not in the queue yet: the session
// goes on meanwhile.) It returns early once reading stopped (a session
// that fell behind, a failed write, Shutdown).
func (s *session) awaitTransfers() {
	for s.owed.Load() > 0 {
		s.flush() // unless the writer goroutine sends already
		if s.owed.Load() == 0 {
			return
		}
		select {
		case <-s.out.sent:
		case <-s.readCtx.Done():
			return
		}
	}
}

// dropLocked empties the queue, which is not sent. s.out is locked.
func (s *session) dropLocked() {
	s.out.msgs, s.out.items, s.out.bytes = nil, 0, 0
	if n := s.out.transfers; n > 0 {
		s.out.transfers = 0
		s.transfersDone(n)
	}
}

// transfersDone counts n transfers off owed and wakes awaitTransfers:
// they were sent, or dropped.
func (s *session) transfersDone(n int) {
	s.owed.Add(-int32(n))
	select {
	case s.out.sent <- struct{}{}:
	default:
	}
}

// readStopped runs when the reader's context ends. If the reader is
// sending, it has finished handling its message and will handle no other
// (serve checks the context after flush): it is done as far as Shutdown's
// first phase goes, and its send gets FlushTimeout, as the writer
// goroutine's would.
func (s *session) readStopped() {
	s.out.Lock()
	defer s.out.Unlock()
	if s.out.reader {
		s.endHandling()
		if s.out.flushTimer == nil {
			s.out.flushTimer = time.AfterFunc(s.srv.cfg.FlushTimeout, s.abandon)
		}
	}
}

// drainLocked sends the queue until it is empty. s.out is locked and the
// caller holds writing; it returns with s.out unlocked and writing
// cleared. A failed send ends the session (writeFailed empties the queue).
func (s *session) drainLocked() {
	for s.out.items > 0 {
		// The two slices of messages swap roles, so that neither is
		// reallocated once grown.
		batch, transfers := s.out.msgs, s.out.transfers
		s.out.msgs, s.out.items, s.out.transfers, s.out.bytes = s.out.spare[:0], 0, 0, 0
		s.out.Unlock()
		err := s.conn.SendBatch(s.dropCtx, batch)
		// Drop the references, so that sent messages are not kept alive
		// by the reused slice.
		clear(batch)
		if err != nil {
			s.writeFailed(err)
		}
		if transfers > 0 {
			s.transfersDone(transfers)
		}
		s.out.Lock()
		s.out.spare = batch[:0]
	}
	s.out.writing, s.out.reader = false, false
	if s.out.closing {
		s.signal() // the writer goroutine sends the final Error
	}
	s.out.Unlock()
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
	s.dropLocked()
	s.out.closing, s.out.final = true, nil
	s.out.Unlock()
	s.cancelHard()
}

// writeLoop is the session's writer goroutine: it sends the queued items
// in order when the reader does not, then the final Error, and returns.
// Each round takes every item queued and sends them with one SendBatch,
// so that a burst of Acks and Updates to a session costs one write. A
// failed write ends the session.
func (s *session) writeLoop() {
	defer close(s.writerDone)
	for {
		s.out.Lock()
		switch {
		case s.out.writing:
			// The reader is sending: it empties the queue, and wakes
			// this goroutine when it is done if the session is closing.
			s.out.Unlock()
			<-s.out.wake
			continue
		case s.out.items > 0:
			s.out.writing = true
			s.drainLocked()
			continue
		case s.out.closing:
			s.out.writing = true // for good: nothing is sent after the final Error
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
	s.dropLocked()
	s.out.Unlock()
	if invalid {
		s.log.Error("message invalid under the session's limits", "err", err)
	} else if s.dropCtx.Err() == nil {
		s.log.Debug("write failed", "err", err)
	}
	s.stopRead()
}
