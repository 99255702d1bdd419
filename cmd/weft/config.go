package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/weft-stm/weft/server"
)

// serveConfig is the file `weft serve -config FILE` reads: who may
// connect, what each principal may do with each share, and which shares
// exist. Every field is optional; an unknown one is an error.
//
//	{
//	  "tokens":         {"token of alice": "alice", "token of the feeder": "feeder"},
//	  "default_access": "none",
//	  "permissions":    {"quotes": {"feeder": "write", "*": "read"},
//	                     "*":      {"alice": "write"}},
//	  "shares":         ["quotes"],
//	  "no_create":      false
//	}
//
// tokens maps each accepted token to its principal (none: any client, as
// "anonymous"); permissions maps a share, then a principal, to "none",
// "read" or "write", with "*" for any share or any principal
// (server.Config.Permissions says which entry wins); default_access
// applies where permissions say nothing (default "none"); shares are
// created at start, and with no_create no other share can be opened.
type serveConfig struct {
	Tokens        map[string]string            `json:"tokens"`
	DefaultAccess string                       `json:"default_access"`
	Permissions   map[string]map[string]string `json:"permissions"`
	Shares        []string                     `json:"shares"`
	NoCreate      bool                         `json:"no_create"`
}

// loadServeConfig reads path into cfg's access fields.
func loadServeConfig(path string, cfg *server.Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-config: %w", err)
	}
	var sc serveConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		return fmt.Errorf("-config %s: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("-config %s: more than one JSON value", path)
	}
	cfg.Tokens = sc.Tokens
	cfg.DefaultAccess = server.AccessNone
	if sc.DefaultAccess != "" {
		if cfg.DefaultAccess, err = parseAccess(sc.DefaultAccess); err != nil {
			return fmt.Errorf("-config %s: default_access: %w", path, err)
		}
	}
	cfg.Permissions = map[string]map[string]server.Access{}
	for share, byPrincipal := range sc.Permissions {
		cfg.Permissions[share] = map[string]server.Access{}
		for principal, s := range byPrincipal {
			a, err := parseAccess(s)
			if err != nil {
				return fmt.Errorf("-config %s: permissions[%q][%q]: %w", path, share, principal, err)
			}
			cfg.Permissions[share][principal] = a
		}
	}
	cfg.Shares, cfg.NoCreate = sc.Shares, sc.NoCreate
	return nil
}

func parseAccess(s string) (server.Access, error) {
	for _, a := range []server.Access{server.AccessNone, server.AccessRead, server.AccessWrite} {
		if s == a.String() {
			return a, nil
		}
	}
	return 0, fmt.Errorf("access %q: want none, read or write", s)
}
