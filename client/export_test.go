package client

// SetHookAfterFromCache sets a function Open runs between its load from
// the cache and the announcement of the share (nil: none).
func SetHookAfterFromCache(f func()) { hookAfterFromCache = f }
