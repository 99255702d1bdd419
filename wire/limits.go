package wire

import "math"

// Limits bounds every size a decoder accepts. Each count or length is checked
// against its limit, and against the bytes left in the input, before anything
// is allocated for it.
//
// A zero (or negative) field means the default from DefaultLimits, so the
// zero Limits is the defaults. Fields above math.MaxInt32 are clamped to it,
// so that every limit fits a 32-bit signed integer in every SDK.
//
// The same struct travels in Welcome, where a server announces the limits it
// enforces; a client must not send anything that exceeds them (Writer checks).
// MaxPendingCommits and MaxOpenShares are session limits that the server
// enforces, not the codec.
type Limits struct {
	// MaxFrameSize is the largest frame body (type byte and payload, not the
	// length prefix) in bytes. Default 1 MiB.
	MaxFrameSize int `json:"max_frame_size,omitzero"`
	// MaxStringLen is the largest string or bytes field or value in bytes
	// (token, messages, string and bytes values). Default 256 KiB.
	MaxStringLen int `json:"max_string_len,omitzero"`
	// MaxNameLen is the largest share name and agent string in bytes.
	// Default 256.
	MaxNameLen int `json:"max_name_len,omitzero"`
	// MaxReads is the largest number of reads in a Commit and of conflicts in
	// an Abort. Default 16384.
	MaxReads int `json:"max_reads,omitzero"`
	// MaxWrites is the largest number of ops in a Commit, an Update or one
	// Change of a Delta. Default 16384.
	MaxWrites int `json:"max_writes,omitzero"`
	// MaxDeps is the largest number of dependencies of a Commit. Default 1024.
	MaxDeps int `json:"max_deps,omitzero"`
	// MaxObjects is the largest number of objects in a SnapshotChunk.
	// Default 4096.
	MaxObjects int `json:"max_objects,omitzero"`
	// MaxChanges is the largest number of changes in a Delta. Default 1024.
	MaxChanges int `json:"max_changes,omitzero"`
	// MaxElements is the largest number of values in a list append, of
	// fields in a create op, and of fields, entries or elements of one object
	// in a SnapshotChunk. Default 65536.
	MaxElements int `json:"max_elements,omitzero"`
	// MaxPendingCommits is the largest number of commits a client may have
	// sent and not yet seen acknowledged or aborted. Default 1024.
	MaxPendingCommits int `json:"max_pending_commits,omitzero"`
	// MaxOpenShares is the largest number of shares open at once in a
	// session. Default 256.
	MaxOpenShares int `json:"max_open_shares,omitzero"`
}

// DefaultLimits returns the default limits, with every field set.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameSize:      1 << 20,
		MaxStringLen:      256 << 10,
		MaxNameLen:        256,
		MaxReads:          16384,
		MaxWrites:         16384,
		MaxDeps:           1024,
		MaxObjects:        4096,
		MaxChanges:        1024,
		MaxElements:       65536,
		MaxPendingCommits: 1024,
		MaxOpenShares:     256,
	}
}

// WithDefaults returns l with every zero or negative field replaced by its
// default and every field above math.MaxInt32 clamped to it.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	fs, ds := l.fields(), d.fields()
	for i, f := range fs {
		switch {
		case *f <= 0:
			*f = *ds[i]
		case *f > math.MaxInt32:
			*f = math.MaxInt32
		}
	}
	return l
}

// fields returns pointers to the fields of l in wire order (see Welcome).
func (l *Limits) fields() [11]*int {
	return [11]*int{
		&l.MaxFrameSize, &l.MaxStringLen, &l.MaxNameLen, &l.MaxReads,
		&l.MaxWrites, &l.MaxDeps, &l.MaxObjects, &l.MaxChanges,
		&l.MaxElements, &l.MaxPendingCommits, &l.MaxOpenShares,
	}
}

// limitPaths are the field paths of the limits in Welcome, in wire order.
var limitPaths = [11]string{
	"limits.max_frame_size", "limits.max_string_len", "limits.max_name_len",
	"limits.max_reads", "limits.max_writes", "limits.max_deps",
	"limits.max_objects", "limits.max_changes", "limits.max_elements",
	"limits.max_pending_commits", "limits.max_open_shares",
}
