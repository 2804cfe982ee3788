package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/wsgate/wsgate/config"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/pool"
	"github.com/wsgate/wsgate/server"
)

// runCheck is `wsgate check`: the gateway's flags are read as the gateway
// would read them (the configuration file or database they name
// included), validated whole, and the configuration in effect is printed
// with every default filled in. Exit 0 when it is good, 1 with the reason
// when it is not (like `nginx -t`), 2 for flags that do not parse.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsgate check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f gatewayFlags
	f.register(fs)
	fs.Usage = usage(fs, "wsgate check [gateway flags]: validate the configuration they name and print it in effect; exit 0 (good) or 1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "wsgate check: configuration is NOT valid:", err)
		return 1
	}
	if err := f.ops.check(); err != nil {
		return fail(err)
	}
	opts, warnings, err := f.Options(fs)
	for _, w := range warnings {
		fmt.Fprintln(stderr, "wsgate check: warning:", w)
	}
	if err != nil {
		return fail(err)
	}
	source, c := "flags", opts.Initial
	switch {
	case f.ConfigFile != "":
		source = "file " + f.ConfigFile
	case f.ConfigDB != "":
		source = "database"
		if c, err = loadDB(f.ConfigDB, config.GatewayConfig{Listen: opts.Server.Addr, AllowOrigins: opts.AllowOrigins}); err != nil {
			return fail(err)
		}
	}
	snap, err := config.Compile(c, source)
	if err != nil {
		return fail(err)
	}
	gwCfg := opts.Server
	gwCfg.Gateway = true // two descriptors a session, as gateway.New counts them
	srv, err := gwCfg.WithDefaults()
	if err != nil {
		return fail(err)
	}
	out, err := yaml.Marshal(effective(srv, opts, snap))
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "# wsgate check: the configuration from %s is valid; in effect, defaults filled in:\n%s", source, out)
	return 0
}

// loadDB reads the configuration from the database once.
func loadDB(url string, base config.GatewayConfig) (*config.GatewayConfig, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	defer conn.Close(context.Background())
	return config.LoadDB(ctx, conn, base)
}

// effectiveConfig is what check prints: the listener, limits and timeouts
// as the server applies them, and every backend's settings after
// defaults.
type effectiveConfig struct {
	Listen       string            `yaml:"listen,omitempty"`
	TLSListen    string            `yaml:"tls_listen,omitempty"`
	Limits       map[string]int64  `yaml:"limits"`
	Timeouts     map[string]string `yaml:"timeouts"`
	Groups       []effectiveGroup  `yaml:"groups"`
	AllowOrigins string            `yaml:"allow_origins"`
	Routes       []string          `yaml:"routes,omitempty"`
	DefaultGroup string            `yaml:"default_group,omitempty"`
}

type effectiveGroup struct {
	Name                string             `yaml:"name"`
	Balance             string             `yaml:"balance"`
	Subprotocols        []string           `yaml:"subprotocols,omitempty"`
	SubprotocolRequired bool               `yaml:"subprotocol_required,omitempty"`
	Backends            []effectiveBackend `yaml:"backends"`
}

type effectiveBackend struct {
	URL            string   `yaml:"url"`
	PoolTarget     int      `yaml:"pool_target"`
	MaxConns       string   `yaml:"max_conns"`
	Weight         int      `yaml:"weight"`
	ReleasePolicy  string   `yaml:"release_policy"`
	ResetMessage   string   `yaml:"reset_message,omitempty"`
	ResetAck       string   `yaml:"reset_ack,omitempty"`
	ResetQuiet     string   `yaml:"reset_quiet,omitempty"`
	ResetTimeout   string   `yaml:"reset_timeout,omitempty"`
	SessionStart   bool     `yaml:"session_start"`
	SessionHeaders []string `yaml:"session_headers,omitempty"`
	MaxLifetime    string   `yaml:"max_lifetime"`
	IdleTimeout    string   `yaml:"idle_timeout"`
	PingInterval   string   `yaml:"ping_interval"`
	PongTimeout    string   `yaml:"pong_timeout"`
	DialTimeout    string   `yaml:"dial_timeout"`
	Draining       bool     `yaml:"draining,omitempty"`
}

func effective(srv server.Config, opts gateway.Options, snap *config.Snapshot) effectiveConfig {
	e := effectiveConfig{
		Listen: srv.Addr, TLSListen: srv.TLSAddr, DefaultGroup: snap.Routing.Default, AllowOrigins: snap.Routing.Origins.String(),
		Limits: map[string]int64{"max_conns": int64(srv.MaxConns), "max_header_bytes": int64(srv.MaxHeaderBytes),
			"max_frame_bytes": srv.MaxFrameBytes, "max_message_bytes": srv.MaxMessageBytes, "flow_window": int64(srv.FlowWindow)},
		Timeouts: map[string]string{"handshake": srv.HandshakeTimeout.String(), "ping_interval": srv.PingInterval.String(),
			"pong_timeout": srv.PongTimeout.String(), "close": srv.CloseTimeout.String(), "acquire": opts.AcquireTimeout.String(),
			"stall": srv.StallTimeout.String(), "shutdown_grace": srv.ShutdownGrace.String()},
	}
	for _, r := range snap.Routing.Routes {
		kind := "prefix"
		if r.Exact {
			kind = "exact"
		}
		line := fmt.Sprintf("%s %s -> %s", kind, r.Path, r.Group)
		if r.Origins != nil {
			line += " (origins: " + r.Origins.String() + ")"
		}
		e.Routes = append(e.Routes, line)
	}
	index := map[string]int{}
	for _, g := range snap.Config.Groups {
		balance := g.Balance
		if balance == "" {
			balance = pool.BalancerNames[0]
		}
		index[g.Name] = len(e.Groups)
		e.Groups = append(e.Groups, effectiveGroup{Name: g.Name, Balance: balance, Subprotocols: g.Subprotocols, SubprotocolRequired: g.SubprotocolRequired})
	}
	for _, st := range snap.Backends {
		maxConns := "none"
		if st.Max > 0 {
			maxConns = strconv.Itoa(st.Max)
		}
		b := effectiveBackend{URL: st.URL, PoolTarget: st.Target, MaxConns: maxConns, Weight: st.Weight,
			ReleasePolicy: st.Policy.String(), SessionStart: st.SessionStart, SessionHeaders: st.SessionHeaders,
			MaxLifetime: st.MaxLifetime.String(), IdleTimeout: st.IdleTimeout.String(), PingInterval: st.PingInterval.String(),
			PongTimeout: st.PongTimeout.String(), DialTimeout: st.DialTimeout.String(), Draining: st.Draining}
		if st.Policy == pool.PolicyReset {
			b.ResetMessage, b.ResetAck = st.ResetMessage, st.ResetAck
			b.ResetQuiet, b.ResetTimeout = st.ResetQuiet.String(), st.ResetTimeout.String()
		}
		g := &e.Groups[index[st.Group]]
		g.Backends = append(g.Backends, b)
	}
	return e
}

// usage prints what modes there are, then what head says of this one,
// then its flags.
func usage(fs *flag.FlagSet, head string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprint(w, `Usage:
  wsgate [flags]                  the gateway
  wsgate echo [flags]             the same endpoint as an echo backend (tests, demos, the loadtest)
  wsgate check [flags]            validate the configuration the gateway's flags name, print it in effect; exit 0 or 1
  wsgate migrate -config-db URL   create or upgrade the PostgreSQL schema
  wsgate -version                 print the version

`)
		fmt.Fprintf(w, "%s\n\nFlags:\n", head)
		fs.PrintDefaults()
	}
}

// stdio is where check writes (tests give their own).
var stdio = struct{ out, err io.Writer }{os.Stdout, os.Stderr}
