package stm

// Test hooks, compiled only into this package's tests.

// Waiting returns how many transactions are blocked in Retry.
func Waiting(ws *Workspace) int { return int(ws.waiting.Load()) }

// ChainLen returns how many versions of v are still linked.
func ChainLen[T any](v *Var[T]) int { return v.ch.length() }

// SparesHeld returns how many chains the pooled transaction state the
// calling goroutine gets next keeps recycled versions for.
func SparesHeld() int {
	s := statePool.Get().(*txState)
	defer statePool.Put(s)
	n := 0
	for _, c := range s.spares.chains {
		if c != nil {
			n++
		}
	}
	return n
}
