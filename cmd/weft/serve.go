package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/weft-stm/weft/server"
	"github.com/weft-stm/weft/store/pebblestore"
	"github.com/weft-stm/weft/store/redisstore"
	"github.com/weft-stm/weft/transport"
)

// runServe runs a Weft server until SIGINT or SIGTERM, then shuts it down
// gracefully.
func runServe(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stdout, stderr, nil)
}

// serve runs the server until ctx ends. It sends the address it listens on
// to ready, if not nil, once it accepts connections.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7878", "TCP `address` to listen on")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (PEM); with -tls-key")
	keyFile := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	devTLS := fs.Bool("dev-tls", false, "use TLS with a throwaway self-signed certificate (development only)")
	token := fs.String("token", os.Getenv("WEFT_TOKEN"), "accept only clients presenting this `token` (default: $WEFT_TOKEN, which other local users cannot read in the process's command line; else any client), each with write access to every share")
	configFile := fs.String("config", "", "read tokens, per-share permissions and shares from this JSON `file` (see the README); exclusive with -token")
	grace := fs.Duration("shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	verbose := fs.Bool("v", false, "log every commit's verdict (debug level)")
	maxSessions := fs.Int("max-sessions", server.DefaultMaxSessions, "serve at most `n` sessions at once; the next clients are told to try again later (0: no bound)")
	heartbeat := fs.Duration("heartbeat", server.DefaultHeartbeat, "ask clients to ping when they have sent nothing for this `duration`, and close a session silent for three times as long (0: none)")
	dataDir := fs.String("data", "", "keep the shares durably in `dir` (Pebble; created if missing)")
	storeURL := fs.String("store", "", "keep the shares in Redis at `url` (redis://host:port/db), which must run with appendfsync always")
	unsafeFsync := fs.Bool("allow-unsafe-fsync", false, "use a Redis store even without appendfsync always (acknowledged commits may be lost)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: weft serve [-listen addr] [-data dir | -store redis://...] [-tls-cert f -tls-key f | -dev-tls] [-token t | -config file]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *grace <= 0 {
		return fmt.Errorf("-shutdown-timeout %v: must be positive", *grace)
	}
	if *maxSessions < 0 || *heartbeat < 0 {
		return errors.New("-max-sessions and -heartbeat may not be negative (0 turns them off)")
	}
	if *configFile != "" && *token != "" {
		return errors.New("-config and -token (or $WEFT_TOKEN) are exclusive: put the token in the config's tokens")
	}
	if *unsafeFsync && *storeURL == "" {
		return errors.New("-allow-unsafe-fsync applies to a Redis store only: give -store too")
	}

	var tlsCfg *tls.Config
	switch {
	case *devTLS && (*certFile != "" || *keyFile != ""):
		return errors.New("-dev-tls and -tls-cert/-tls-key are exclusive")
	case (*certFile == "") != (*keyFile == ""):
		return errors.New("-tls-cert and -tls-key go together")
	case *certFile != "":
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			return err
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	case *devTLS:
		cert, err := transport.DevCertificate()
		if err != nil {
			return err
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := server.Config{
		DefaultAccess: server.AccessWrite,
		Logger:        slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		MaxSessions:   *maxSessions,
		Heartbeat:     *heartbeat,
	}
	if *maxSessions == 0 {
		cfg.MaxSessions = -1 // Config's "no bound"
	}
	if *heartbeat == 0 {
		cfg.Heartbeat = -1
	}
	if *token != "" {
		cfg.Tokens = map[string]string{*token: "token"}
	}
	if *configFile != "" {
		if err := loadServeConfig(*configFile, &cfg); err != nil {
			return err
		}
	}
	st, what, err := openStore(ctx, *dataDir, *storeURL, *unsafeFsync, cfg.Logger)
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
		cfg.Store = st
	}
	start := time.Now()
	srv, err := server.Open(cfg)
	if err != nil {
		return err
	}
	cfg.Logger.Info("store", "kind", what, "restored in", time.Since(start).Round(time.Millisecond))
	l, err := transport.ListenTCP(*listen, tlsCfg, cfg.Limits)
	if err != nil {
		return err
	}
	scheme := "tcp"
	if tlsCfg != nil {
		scheme = "tls"
	}
	fmt.Fprintf(stdout, "weft serve: listening on %s (%s)\n", l.Addr(), scheme)
	if !loopback(l.Addr()) {
		if len(cfg.Tokens) == 0 {
			cfg.Logger.Warn("no authentication: any client that reaches this address may open, read and write every share the permissions allow; give -token or -config", "addr", l.Addr())
		}
		if tlsCfg == nil {
			cfg.Logger.Warn("no TLS: tokens and data cross the network in the clear; give -tls-cert and -tls-key", "addr", l.Addr())
		}
	}
	if ready != nil {
		ready <- l.Addr()
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(context.WithoutCancel(ctx), l) }()
	select {
	case err := <-errc: // the listener failed
		sctx, cancel := context.WithTimeout(context.Background(), *grace)
		defer cancel()
		srv.Shutdown(sctx)
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "weft serve: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, server.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// openPebble is pebblestore.Open; tests replace it.
var openPebble = pebblestore.Open

// openStore opens the store the flags name: Pebble in dir, Redis at rawURL,
// or none (memory only). It also says which, for the log.
func openStore(ctx context.Context, dir, rawURL string, unsafeFsync bool, log *slog.Logger) (server.Store, string, error) {
	switch {
	case dir != "" && rawURL != "":
		return nil, "", errors.New("-data and -store are exclusive")
	case dir != "":
		// Open may never return (Pebble waits for a flush that a full
		// disk keeps failing): run it aside, so that SIGTERM still ends
		// serve. The process exits anyway; a store that opens after all
		// is closed.
		type result struct {
			st  *pebblestore.Store
			err error
		}
		done := make(chan result, 1)
		go func() {
			st, err := openPebble(dir, pebblestore.Options{Logger: log})
			done <- result{st, err}
		}()
		select {
		case r := <-done:
			if r.err != nil {
				return nil, "", r.err
			}
			return r.st, "pebble " + dir, nil
		case <-ctx.Done():
			go func() {
				if r := <-done; r.st != nil {
					r.st.Close()
				}
			}()
			return nil, "", fmt.Errorf("stopped while opening the store in %s, which had not opened (a full or failing disk? see the errors logged above)", dir)
		}
	case rawURL != "":
		st, err := redisstore.Open(ctx, rawURL, redisstore.Options{AllowUnsafeFsync: unsafeFsync, Logger: log})
		if err != nil {
			return nil, "", err
		}
		shown := "(unparsable url)"
		if u, err := url.Parse(rawURL); err == nil {
			shown = u.Redacted() // the log keeps no password
		}
		return st, "redis " + shown, nil
	}
	return nil, "memory (nothing survives a restart: use -data)", nil
}

// loopback reports whether addr (host:port) is reachable from this
// machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
