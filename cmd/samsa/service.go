package main

// Running the broker as a service: signals, SIGHUP reloads of config.toml,
// and systemd's notify protocol (READY, STATUS, WATCHDOG, RELOADING,
// STOPPING).

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/coreos/go-systemd/v22/daemon"

	"samsa/engine"
	"samsa/engine/replica"
	"samsa/netio"
)

// options is the broker's command line.
type options struct {
	Version    string // the binary's version, reported to clients
	ConfigPath string
	Listen     string // overrides listen
	DataDir    string // overrides data_dir
	ScramUsers []engine.ScramUser
}

// load reads config.toml and applies the command-line overrides.
func (o options) load() (fileConfig, error) {
	fc, err := loadConfig(o.ConfigPath)
	if err != nil {
		return fc, err
	}
	if o.Listen != "" {
		fc.Listen, fc.listenOverride = o.Listen, o.Listen
	}
	if o.DataDir != "" {
		fc.DataDir = o.DataDir
	}
	return fc, nil
}

// run runs a broker as a service until SIGINT or SIGTERM. It serves the
// ops HTTP listener ([admin] listen) from the start, so /healthz answers
// while logs recover; tells systemd (sd_notify, when NOTIFY_SOCKET is set)
// READY=1 once clients can connect, STATUS= lines, WATCHDOG=1 while the
// broker answers its own requests, and STOPPING=1 on shutdown; and reloads
// config.toml on SIGHUP.
func run(o options) error {
	fc, err := o.load()
	if err != nil {
		return err
	}
	var level slog.LevelVar
	logger, err := fc.newLogger(&level)
	if err != nil {
		return err
	}
	cfg, err := fc.engineConfig()
	if err != nil {
		return err
	}
	cfg.Version = o.Version
	cfg.ScramUsers = o.ScramUsers
	nopts, err := fc.netOptions(cfg)
	if err != nil {
		return err
	}
	extra, tlsSrc, err := fc.listenerOptions(nopts, &nopts)
	if err != nil {
		return err
	}
	// Signals are caught from the start: a SIGTERM during recovery waits
	// for it rather than killing the process mid-write.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)

	ops := &opsServer{logger: logger}
	if fc.HTTP.TokenFile != "" {
		raw, err := os.ReadFile(fc.HTTP.TokenFile)
		if err != nil {
			return fmt.Errorf("invalid config: admin.token_file: %w", err)
		}
		if ops.token = strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]); ops.token == "" {
			return errors.New("invalid config: admin.token_file holds no token")
		}
	}
	if fc.HTTP.TLS {
		if tlsSrc == nil {
			if tlsSrc, err = fc.loadTLS(); err != nil {
				return fmt.Errorf("invalid config: admin.tls: %w", err)
			}
		}
		src := tlsSrc // reloaded on SIGHUP with the listeners'
		ops.tls = &tls.Config{MinVersion: tls.VersionTLS12, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := src.cfg.Load().Clone()
			c.ClientAuth = tls.NoClientCert
			return c, nil
		}}
	}
	if fc.HTTP.Listen != "" {
		cfg.Metrics = engine.NewMetrics()
		ops.metrics = cfg.Metrics
		if err := ops.listen(fc.HTTP.Listen); err != nil {
			return err
		}
		defer ops.close()
	}
	notify(logger, "STATUS=recovering logs in "+cfg.DataDir)
	var linkTLS *netio.TLSOptions
	if fc.Replication.LinkTLS {
		if tlsSrc == nil {
			if tlsSrc, err = fc.loadTLS(); err != nil {
				return err
			}
		}
		linkTLS = tlsSrc.linkServerOptions(fc.Replication.PeerPrincipal, logger)
		if cfg.Replication.LinkCompression == replica.LinkLZ4 {
			linkTLS.Wrap = replica.NewLZ4Conn // lz4 inside the TLS session, as the peer dials
		}
	}
	srv, err := startServer(cfg, nopts, extra, linkTLS, logger)
	if err != nil {
		notify(logger, "STATUS=cannot start: "+err.Error())
		return err
	}
	srv.tls = tlsSrc
	ops.srv.Store(srv)
	notify(logger, daemon.SdNotifyReady+"\nSTATUS="+srv.status())
	stopWatchdog := watchdog(srv, logger)
	for s := range sig {
		if s != syscall.SIGHUP {
			logger.Info("signal received", "signal", s.String())
			break
		}
		notify(logger, daemon.SdNotifyReloading)
		fc = srv.reload(o, fc, &level)
		notify(logger, daemon.SdNotifyReady+"\nSTATUS="+srv.status())
	}
	stopWatchdog()
	ops.stopping.Store(true)
	notify(logger, daemon.SdNotifyStopping+"\nSTATUS=shutting down: draining requests")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.shutdown(ctx)
}

// notify sends a state to systemd; without NOTIFY_SOCKET it does nothing.
func notify(logger *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		logger.Warn("cannot notify systemd", "err", err)
	}
}

// status is the one-line STATUS= systemd shows.
func (s *server) status() string {
	role, epoch, topics := s.broker.Status()
	return fmt.Sprintf("serving %s as %s (epoch %d): %d topics, %d connections", s.addr(), role, epoch, topics, s.clients.Stats().Connections)
}

// watchdog pings systemd's watchdog (WatchdogSec) at a third of its
// interval, but only while the broker answers a request on its own client
// listener: stuck event loops or request handling stop the pings and
// systemd restarts the service. It returns a function that stops it.
func watchdog(s *server, logger *slog.Logger) (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		logger.Warn("ignoring the watchdog settings", "err", err)
	}
	if interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval / 3)
		defer t.Stop()
		failing := false
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if err := s.selfCheck(interval / 2); err != nil {
				if !failing {
					logger.Error("the broker does not answer itself; not pinging the watchdog", "err", err)
				}
				failing = true
				continue
			}
			if failing {
				logger.Info("the broker answers itself again")
			}
			failing = false
			notify(logger, daemon.SdNotifyWatchdog+"\nSTATUS="+s.status())
		}
	}()
	return func() { close(done); <-finished }
}

// selfCheck sends the broker a request on its own client listener, on a
// connection the connection limit lets in.
func (s *server) selfCheck(timeout time.Duration) error {
	c, err := s.clients.DialSelf(timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return s.broker.SelfCheck(c, timeout)
}

// reload re-reads config.toml (SIGHUP), applies what can change while
// running (log_level, topic_defaults, the net limits max_connections,
// max_request_bytes, max_queued_bytes and idle_timeout_ms) and logs what
// changed and what needs a restart. It returns the running config: applied
// changes in, the rest (still pending a restart) out, so a later reload
// reports them again.
func (s *server) reload(o options, cur fileConfig, level *slog.LevelVar) fileConfig {
	log := s.logger
	next, err := o.load()
	if err == nil {
		_, err = next.engineConfig() // validates the whole file
	}
	var lvl slog.Level
	if err == nil {
		lvl, err = next.level()
	}
	var defaults map[string]string
	if err == nil {
		defaults, err = next.topicDefaults()
	}
	if err != nil {
		log.Error("config reload failed; the running config stays", "config", o.ConfigPath, "err", err)
		return cur
	}
	// configDiff's keys are sorted and unique; each group of keys is
	// applied once, after the loop.
	var applied, restart []string
	var topicDefaults, limits bool
	for _, k := range configDiff(cur, next) {
		switch {
		case k == "log_level":
			level.Set(lvl)
			cur.LogLevel = next.LogLevel
		case k == "topic_defaults" || strings.HasPrefix(k, "topic_defaults."):
			topicDefaults = true
		case isNetLimit(k):
			limits = true
		default:
			restart = append(restart, k)
			continue
		}
		applied = append(applied, k)
	}
	if topicDefaults {
		// Validated with the whole file above.
		if err := s.broker.SetTopicDefaults(defaults); err != nil {
			log.Error("config reload: cannot apply topic_defaults", "err", err)
		} else {
			cur.TopicDefaults = next.TopicDefaults
		}
	}
	if limits {
		if err := next.Net.validate(); err != nil {
			log.Error("config reload: cannot apply the [net] limits", "err", err)
		} else {
			cur.Net.NetLimits = next.Net.NetLimits
			s.clients.SetLimits(cur.Net.limits())
		}
	}
	if s.tls != nil {
		// The files may have changed under the same names (certificate
		// rotation): new handshakes use what is on disk now.
		if err := s.tls.reload(); err != nil {
			log.Error("config reload: cannot reload the TLS certificates; the running ones stay", "err", err)
		} else {
			log.Info("TLS certificates reloaded", "cert_file", s.tls.conf.CertFile)
		}
	}
	if len(applied) == 0 && len(restart) == 0 {
		log.Info("config reloaded: nothing changed", "config", o.ConfigPath)
		return cur
	}
	log.Info("config reloaded", "config", o.ConfigPath, "applied", strings.Join(applied, " "), "needs_restart", strings.Join(restart, " "))
	if len(restart) > 0 {
		log.Warn("config changes that take effect only after a restart", "keys", strings.Join(restart, " "))
	}
	return cur
}

// isNetLimit reports whether a dotted config key is one of NetLimits'.
func isNetLimit(key string) bool {
	name, ok := strings.CutPrefix(key, "net.")
	if !ok {
		return false
	}
	name, _, _ = strings.Cut(name, ".") // the overrides' table
	t := reflect.TypeFor[NetLimits]()
	for i := range t.NumField() {
		if strings.Split(t.Field(i).Tag.Get("toml"), ",")[0] == name {
			return true
		}
	}
	return false
}

// configDiff lists the dotted keys whose values differ between a and b.
func configDiff(a, b fileConfig) []string {
	fa, fb := flatten(a), flatten(b)
	var out []string
	for k, v := range fa {
		if w, ok := fb[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// flatten maps a config to its TOML keys, dotted, and values.
func flatten(c fileConfig) map[string]any {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		panic("BUG: cannot encode the config: " + err.Error())
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		panic("BUG: cannot decode the encoded config: " + err.Error())
	}
	out := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			out[prefix+k] = v
		}
	}
	walk("", m)
	return out
}
