package client

// SetHookAfterFromCache sets a function Open runs between its load from
// the cache and the announcement of the share (nil: none).
func SetHookAfterFromCache(f func()) { hookAfterFromCache = f }

// LeaseTime is leaseTime.
const LeaseTime = leaseTime

// SelfReceives returns how many times committers received themselves
// (see receiver): messages, or a failed receive.
func SelfReceives(c *Client) uint64 { return c.selfReceives.Load() }

// Queued returns how many messages wait in the client's send queue.
func Queued(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.out)
}
