// Package e2e holds end-to-end tests that run Weft as separate processes:
// the weft binary as the server, and the test binary re-executed as client
// programs. It has no code of its own; `go test ./e2e` builds the binary.
package e2e
