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
// exist. Every field is optional; an unknown one is an error, and so is a
// key spelled otherwise (encoding/json would match "TOKENS" to tokens) or
// given twice, in any object of the file (encoding/json keeps the last:
// a token given twice would get the second principal), and tokens given
// but empty (which would turn authentication off: leave tokens out for
// that).
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
	top, err := checkKeys(b)
	if err != nil {
		return fmt.Errorf("-config %s: %w", path, err)
	}
	if top["tokens"] && len(sc.Tokens) == 0 {
		return fmt.Errorf(`-config %s: "tokens" is empty, which would accept any client: to run without authentication, leave "tokens" out`, path)
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

// configKeys are the keys of the config file, spelled as documented.
var configKeys = map[string]bool{"tokens": true, "default_access": true, "permissions": true, "shares": true, "no_create": true}

// checkKeys walks the JSON document b (one value, already decoded without
// error) with encoding/json's token stream: it refuses a key given twice
// in any object, and a top-level key not spelled exactly as in
// configKeys. It returns the top-level keys.
func checkKeys(b []byte) (map[string]bool, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var top map[string]bool
	var walk func(where string) error
	walk = func(where string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			keys := map[string]bool{}
			if where == "" {
				top = keys
			}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key := kt.(string) // the decoder gives an object's keys as strings
				in := "the top level"
				if where != "" {
					in = where
				}
				if keys[key] {
					return fmt.Errorf("key %q appears twice in %s", key, in)
				}
				keys[key] = true
				next := fmt.Sprintf("%s[%q]", where, key)
				if where == "" {
					if !configKeys[key] {
						return fmt.Errorf("unknown key %q (the keys are tokens, default_access, permissions, shares and no_create, in lower case)", key)
					}
					next = key
				}
				if err := walk(next); err != nil {
					return err
				}
			}
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", where, i)); err != nil {
					return err
				}
			}
		default:
			return nil // a scalar
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return top, nil
}
