// Package codec encodes what the stores keep: one wire.Change, or a slice
// of wire.Objects split into chunks of bounded size. It reuses the wire
// codec (a change travels as a wire.Delta of one change, objects as a
// wire.SnapshotChunk) so that the stores add no binary format of their own.
//
// Encoding is deterministic: the same value always gives the same bytes.
// Decoding accepts any size the encoder can produce (the wire limits are
// meant for untrusted peers, not for what the server itself stored) and
// fails with an error on malformed input, which the stores report as
// corruption.
package codec
