package server

// Open returns a server configured by cfg, with the shares its store holds
// restored (New with nothing to restore). It fails, naming the store, if
// the store cannot be read. (New's first Serve restores them too, and
// reports the same error; Open reports it before anything listens.)
func Open(cfg Config) (*Server, error) {
	s := New(cfg)
	if err := s.restoreOnce(); err != nil {
		return nil, err
	}
	return s, nil
}
