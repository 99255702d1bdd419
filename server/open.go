package server

// Open returns a server configured by cfg, with the shares its store holds
// restored (New with nothing to restore). It fails, naming the store, if
// the store cannot be read.
func Open(cfg Config) (*Server, error) {
	s := New(cfg)
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}
