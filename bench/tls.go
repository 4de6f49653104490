package bench

// The tls workload: what TLS (and SASL on top of it) costs a producer and a
// consumer. Each round starts one samsa with a PLAINTEXT, an SSL and (with
// SASL) a SASL_SSL listener, certificates made for the run, and runs the
// produce and the consume workload against each listener in turn, the
// order rotating by round, so every listener sees the same disk and the
// same broker.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TLSConfig is what TLSSuite runs.
type TLSConfig struct {
	SamsaBin, Config string
	Rounds           int
	Produce, Consume Spec // the workloads, run on every listener
	SASL             bool // add a SASL_SSL listener (SCRAM-SHA-512)
	Progress         io.Writer
}

// TLSRun is one round: each listener's results by name.
type TLSRun struct {
	Order   []string           `json:"order"`
	Produce map[string]*Result `json:"produce"`
	Consume map[string]*Result `json:"consume"`
}

// TLSReport is the suite's outcome.
type TLSReport struct {
	Machine Machine  `json:"machine"`
	Rounds  []TLSRun `json:"rounds"`
	Errors  []string `json:"errors,omitempty"`
}

const (
	listenerPlain   = "PLAINTEXT"
	listenerSSL     = "SSL"
	listenerSASLSSL = "SASL_SSL"
)

// TLSSuite runs cfg.Rounds rounds, each on a samsa of its own.
func TLSSuite(ctx context.Context, cfg TLSConfig) *TLSReport {
	rep := &TLSReport{Machine: ThisMachine()}
	for round := 0; round < cfg.Rounds && ctx.Err() == nil; round++ {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "tls, round %d/%d\n", round+1, cfg.Rounds)
		}
		run, err := tlsRound(ctx, cfg, round)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("round %d: %v", round+1, err))
			continue
		}
		rep.Rounds = append(rep.Rounds, *run)
	}
	rep.Machine.LoadEnd = loadAvg()
	return rep
}

// tlsRound starts samsa with the listeners and runs both workloads on each.
func tlsRound(ctx context.Context, cfg TLSConfig, round int) (*TLSRun, error) {
	dir, err := os.MkdirTemp("", "samsa-bench-tls-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	pool, certFile, keyFile, err := makeBenchCerts(dir)
	if err != nil {
		return nil, err
	}
	sslPort, err := freePort()
	if err != nil {
		return nil, err
	}
	saslPort, err := freePort()
	if err != nil {
		return nil, err
	}
	sslAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sslPort))
	saslAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(saslPort))
	listeners := "PLAINTEXT://127.0.0.1:0,SSL://" + sslAddr
	if cfg.SASL {
		listeners += ",SASL_SSL://" + saslAddr
	}
	conf, err := tlsBenchConfig(cfg.Config, dir, listeners, certFile, keyFile)
	if err != nil {
		return nil, err
	}
	const user, pass = "bench", "bench-secret"
	p, err := StartSamsa(ctx, cfg.SamsaBin, conf, "-add-scram", "SCRAM-SHA-512=[name="+user+",password="+pass+"]")
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	targets := map[string]struct {
		addr string
		conn []kgo.Opt
	}{
		listenerPlain: {p.Addr, nil},
		listenerSSL:   {sslAddr, []kgo.Opt{tlsOpt}},
	}
	order := []string{listenerPlain, listenerSSL}
	if cfg.SASL {
		targets[listenerSASLSSL] = struct {
			addr string
			conn []kgo.Opt
		}{saslAddr, []kgo.Opt{tlsOpt, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())}}
		order = append(order, listenerSASLSSL)
	}
	for i := 0; i < round%len(order); i++ {
		order = append(order[1:], order[0])
	}
	for _, name := range order {
		if err := waitAccepting(ctx, targets[name].addr); err != nil {
			return nil, fmt.Errorf("%s listener: %w", name, err)
		}
	}
	run := &TLSRun{Order: order, Produce: map[string]*Result{}, Consume: map[string]*Result{}}
	for _, w := range []struct {
		spec Spec
		out  map[string]*Result
	}{{cfg.Produce, run.Produce}, {cfg.Consume, run.Consume}} {
		for _, name := range order {
			s := w.spec
			s.Conn = targets[name].conn
			settleDisk()
			res, err := Run(ctx, Target{Name: name, Addr: targets[name].addr, PID: p.PID(), ResetPeak: true}, s, cfg.Progress)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", name, s.Kind, err)
			}
			if res.Error != "" {
				return nil, fmt.Errorf("%s %s: %s", name, s.Kind, res.Error)
			}
			w.out[name] = res
		}
	}
	if err := p.Alive(); err != nil {
		return nil, err
	}
	return run, nil
}

// waitAccepting waits up to 10 s for addr to accept connections.
func waitAccepting(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing accepts on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsBenchConfig writes config with the listeners and [tls] added.
func tlsBenchConfig(base, dir, listeners, certFile, keyFile string) (string, error) {
	raw, err := os.ReadFile(base)
	if err != nil {
		return "", fmt.Errorf("cannot read the samsa config: %w", err)
	}
	var b strings.Builder
	added := false
	for _, line := range strings.SplitAfter(string(raw), "\n") {
		b.WriteString(line)
		if !added && strings.HasPrefix(line, "listen ") {
			// -listen replaces the first listener's address.
			fmt.Fprintf(&b, "listeners = %q\n", listeners)
			added = true
		}
	}
	if !added {
		return "", fmt.Errorf("%s has no top-level listen key to put listeners after", base)
	}
	fmt.Fprintf(&b, "\n[tls]\ncert_file = %q\nkey_file = %q\n\n[sasl]\nenabled_mechanisms = \"SCRAM-SHA-512\"\n", certFile, keyFile)
	path := filepath.Join(dir, "config.toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// makeBenchCerts makes a CA and a certificate for 127.0.0.1 signed by it.
func makeBenchCerts(dir string) (*x509.CertPool, string, string, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samsa-bench CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "samsa"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, "", "", err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, certFile, keyFile, nil
}

// Failed reports whether a round failed.
func (rep *TLSReport) Failed() bool { return len(rep.Errors) > 0 }

// WriteJSON writes the report as JSON.
func (rep *TLSReport) WriteJSON(w io.Writer) error { return writeJSON(w, rep) }

// WriteText writes medians, ranges and per-round figures, and the ratios
// to plaintext (median of each round's ratio).
func (rep *TLSReport) WriteText(w io.Writer) error {
	m := rep.Machine
	fmt.Fprintf(w, "samsa-bench tls: %d round(s); machine: %d CPUs, %s, Linux %s, %s; load average %s before, %s after\n\n",
		len(rep.Rounds), m.CPUs, orDash(m.CPUModel), orDash(m.Kernel), m.GoVersion, orDash(m.LoadStart), orDash(m.LoadEnd))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tlistener\tmedian\tmin\tmax\trounds\t")
	names := []string{listenerPlain, listenerSSL, listenerSASLSSL}
	for _, wl := range []struct {
		label string
		get   func(TLSRun) map[string]*Result
		tp    func(*Result) *Throughput
	}{
		{"produce MiB/s", func(r TLSRun) map[string]*Result { return r.Produce }, func(r *Result) *Throughput { return r.Produce }},
		{"consume MiB/s", func(r TLSRun) map[string]*Result { return r.Consume }, func(r *Result) *Throughput { return r.Consume }},
	} {
		for _, name := range names {
			var mib, cpu, ratio []float64
			for _, run := range rep.Rounds {
				res := wl.get(run)[name]
				base := wl.get(run)[listenerPlain]
				if res == nil || wl.tp(res) == nil {
					continue
				}
				mib = append(mib, wl.tp(res).MiBPerSec)
				if res.Usage != nil {
					cpu = append(cpu, res.Usage.CPUSecPerGiB)
				}
				if base != nil && wl.tp(base) != nil && wl.tp(base).MiBPerSec > 0 {
					ratio = append(ratio, wl.tp(res).MiBPerSec/wl.tp(base).MiBPerSec)
				}
			}
			if len(mib) == 0 {
				continue
			}
			row(tw, wl.label, name, mib, "%.1f")
			row(tw, "  broker CPU s/GiB", name, cpu, "%.2f")
			if name != listenerPlain {
				row(tw, "  / plaintext", name, ratio, "%.2fx")
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(w, "error:", e)
	}
	return nil
}

func row(w io.Writer, label, name string, v []float64, format string) {
	if len(v) == 0 {
		return
	}
	s := slices.Clone(v)
	slices.Sort(s)
	var each []string
	for _, x := range v {
		each = append(each, fmt.Sprintf(format, x))
	}
	fmt.Fprintf(w, "%s\t%s\t"+format+"\t"+format+"\t"+format+"\t%s\t\n", label, name, median(s), s[0], s[len(s)-1], strings.Join(each, " "))
}
