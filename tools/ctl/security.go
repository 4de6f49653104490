package ctl

// Security: connecting over TLS and SASL (a -command-config file, as
// Kafka's tools take), ACLs (samsactl acls, as kafka-acls.sh) and SCRAM
// users (samsactl users, as kafka-configs.sh --entity-type users).

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// connOpts are the client options every command uses (SetConnection).
var connOpts []kgo.Opt

// SetConnection makes every later connection use opts (TLS, SASL).
func SetConnection(opts []kgo.Opt) { connOpts = opts }

// LoadCommandConfig reads a client properties file (key=value lines, #
// comments) with Kafka's and librdkafka's names:
//
//	security.protocol   PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
//	ssl.ca.location     PEM CAs that sign the broker's certificate
//	ssl.certificate.location, ssl.key.location   a client certificate (PEM)
//	ssl.endpoint.identification.algorithm        "none" skips the host name check
//	sasl.mechanism      PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl.mechanisms too)
//	sasl.username, sasl.password
//
// and returns the client options they mean.
func LoadCommandConfig(path string) ([]kgo.Opt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("cannot read -command-config: %v", err)
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "!") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, usageErr("%s:%d: %q is not key=value", path, n, line)
		}
		props[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, usageErr("cannot read -command-config: %v", err)
	}
	return connOptions(path, props)
}

func connOptions(path string, props map[string]string) ([]kgo.Opt, error) {
	known := map[string]bool{"security.protocol": true, "ssl.ca.location": true, "ssl.certificate.location": true,
		"ssl.key.location": true, "ssl.endpoint.identification.algorithm": true, "sasl.mechanism": true,
		"sasl.mechanisms": true, "sasl.username": true, "sasl.password": true}
	for k := range props {
		if !known[k] {
			return nil, usageErr("%s: unknown property %q", path, k)
		}
	}
	proto := strings.ToUpper(props["security.protocol"])
	if proto == "" {
		proto = "PLAINTEXT"
	}
	var opts []kgo.Opt
	useTLS, useSASL := false, false
	switch proto {
	case "PLAINTEXT":
	case "SSL":
		useTLS = true
	case "SASL_PLAINTEXT":
		useSASL = true
	case "SASL_SSL":
		useTLS, useSASL = true, true
	default:
		return nil, usageErr("%s: security.protocol %q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", path, proto)
	}
	if useTLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if ca := props["ssl.ca.location"]; ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return nil, usageErr("%s: ssl.ca.location: %v", path, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, usageErr("%s: ssl.ca.location %s holds no PEM certificate", path, ca)
			}
		}
		cert, key := props["ssl.certificate.location"], props["ssl.key.location"]
		if (cert == "") != (key == "") {
			return nil, usageErr("%s: ssl.certificate.location and ssl.key.location go together", path)
		}
		if cert != "" {
			c, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				return nil, usageErr("%s: cannot load the client certificate: %v", path, err)
			}
			cfg.Certificates = []tls.Certificate{c}
		}
		skipHost := strings.EqualFold(props["ssl.endpoint.identification.algorithm"], "none")
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
			c := cfg.Clone()
			if h, _, err := net.SplitHostPort(host); err == nil && !skipHost {
				c.ServerName = h
			}
			if skipHost {
				c.InsecureSkipVerify = true // the chain is still checked below
				c.VerifyConnection = verifyChainOnly(cfg.RootCAs)
			}
			return (&tls.Dialer{Config: c}).DialContext(ctx, network, host)
		}))
	}
	if useSASL {
		mech := props["sasl.mechanism"]
		if mech == "" {
			mech = props["sasl.mechanisms"]
		}
		user, pass := props["sasl.username"], props["sasl.password"]
		if user == "" {
			return nil, usageErr("%s: %s needs sasl.username and sasl.password", path, proto)
		}
		switch strings.ToUpper(mech) {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512", "":
			opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
		default:
			return nil, usageErr("%s: sasl.mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", path, mech)
		}
	}
	return opts, nil
}

// verifyChainOnly checks the broker's certificate chain without its host
// name (ssl.endpoint.identification.algorithm=none).
func verifyChainOnly(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("the broker sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		return err
	}
}

// ACLSpec names ACLs: to create (every field set) or, as a filter, to list
// and delete (empty fields match anything).
type ACLSpec struct {
	Principal    string   // User:alice
	Host         string   // "" = * (any host)
	Deny         bool     // a DENY ACL (default ALLOW); filters: Permission decides
	Permission   string   // filters: allow, deny or "" (both)
	Operations   []string // read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write, all
	Topic        string
	Group        string
	Cluster      bool
	TxnID        string
	Prefixed     bool
	JSON         bool
	AnyResources bool // filters: no resource named
}

// builder turns the spec into kadm's builder.
func (s ACLSpec) builder(filter bool) (*kadm.ACLBuilder, error) {
	b := kadm.NewACLs()
	n := 0
	if s.Topic != "" {
		b = b.Topics(s.Topic)
		n++
	}
	if s.Group != "" {
		b = b.Groups(s.Group)
		n++
	}
	if s.Cluster {
		b = b.Clusters()
		n++
	}
	if s.TxnID != "" {
		b = b.TransactionalIDs(s.TxnID)
		n++
	}
	switch {
	case n > 1:
		return nil, usageErr("name one resource: --topic, --group, --cluster or --transactional-id")
	case n == 0 && !filter:
		return nil, usageErr("name the resource: --topic, --group, --cluster or --transactional-id")
	case n == 0:
		b = b.AnyResource()
	}
	var ops []kadm.ACLOperation
	for _, o := range s.Operations {
		op, err := parseOp(o)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		if !filter {
			return nil, usageErr("name the operations: --operation read,write,...")
		}
		ops = []kadm.ACLOperation{kadm.OpAny}
	}
	b = b.Operations(ops...)
	switch {
	case s.Prefixed:
		b = b.ResourcePatternType(kadm.ACLPatternPrefixed)
	case filter && n == 0:
		b = b.ResourcePatternType(kadm.ACLPatternAny)
	case filter:
		b = b.ResourcePatternType(kadm.ACLPatternMatch)
	default:
		b = b.ResourcePatternType(kadm.ACLPatternLiteral)
	}
	host := s.Host
	if host == "" && !filter {
		host = "*"
	}
	var hosts []string
	if host != "" {
		hosts = []string{host}
	}
	var principals []string
	if s.Principal != "" {
		principals = []string{s.Principal}
	} else if !filter {
		return nil, usageErr("name the principal: --allow User:NAME or --deny User:NAME")
	}
	perm := strings.ToLower(s.Permission)
	if s.Deny {
		perm = "deny"
	}
	switch perm {
	case "", "allow", "deny":
	default:
		return nil, usageErr("--permission %q is not allow or deny", s.Permission)
	}
	if !filter {
		if perm == "deny" {
			return b.Deny(principals...).DenyHosts(hosts...), nil
		}
		return b.Allow(principals...).AllowHosts(hosts...), nil
	}
	// A filter: no principal or host named matches any.
	if perm != "deny" {
		b = b.Allow(principals...).AllowHosts(hosts...)
	}
	if perm != "allow" {
		b = b.Deny(principals...).DenyHosts(hosts...)
	}
	return b, nil
}

func parseOp(s string) (kadm.ACLOperation, error) {
	op, err := kmsg.ParseACLOperation(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", "_")))
	if err != nil || op == kmsg.ACLOperationUnknown {
		return 0, usageErr("unknown operation %q: read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write, all", s)
	}
	return op, nil
}

// aclRow is one ACL as printed.
type aclRow struct {
	Principal  string `json:"principal"`
	Host       string `json:"host"`
	Permission string `json:"permission"`
	Operation  string `json:"operation"`
	Resource   string `json:"resource_type"`
	Name       string `json:"resource_name"`
	Pattern    string `json:"pattern"`
}

func printACLs(w io.Writer, rows []aclRow, asJSON bool) error {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Principal != b.Principal {
			return a.Principal < b.Principal
		}
		return a.Operation < b.Operation
	})
	if asJSON {
		if rows == nil {
			rows = []aclRow{}
		}
		return writeJSON(w, rows)
	}
	t := newTable(w)
	fmt.Fprintln(t, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tPERMISSION\tOPERATION")
	for _, r := range rows {
		fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Resource, r.Name, r.Pattern, r.Principal, r.Host, r.Permission, r.Operation)
	}
	return t.Flush()
}

func lower(s fmt.Stringer) string { return strings.ToLower(s.String()) }

// ListACLs prints the ACLs the filter matches.
func ListACLs(ctx context.Context, adm *kadm.Client, w io.Writer, s ACLSpec) error {
	b, err := s.builder(true)
	if err != nil {
		return err
	}
	res, err := adm.DescribeACLs(ctx, b)
	if err != nil {
		return requestErr("DescribeAcls", 29, err)
	}
	var rows []aclRow
	for _, r := range res {
		if r.Err != nil {
			return withMessage(r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			rows = append(rows, aclRow{d.Principal, d.Host, lower(d.Permission), lower(d.Operation), lower(d.Type), d.Name, lower(d.Pattern)})
		}
	}
	return printACLs(w, dedupe(rows), s.JSON)
}

func dedupe(rows []aclRow) []aclRow {
	seen := map[aclRow]bool{}
	var out []aclRow
	for _, r := range rows {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// CreateACLs creates the ACLs the spec names (one per operation).
func CreateACLs(ctx context.Context, adm *kadm.Client, w io.Writer, s ACLSpec) error {
	b, err := s.builder(false)
	if err != nil {
		return err
	}
	res, err := adm.CreateACLs(ctx, b)
	if err != nil {
		return requestErr("CreateAcls", 30, err)
	}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, withMessage(r.Err, r.ErrMessage))
		}
	}
	if err := firstErr(errs); err != nil {
		return err
	}
	fmt.Fprintf(w, "created %s\n", plural(len(res), "ACL"))
	return nil
}

// DeleteACLs deletes the ACLs the filter matches and prints them.
func DeleteACLs(ctx context.Context, adm *kadm.Client, w io.Writer, s ACLSpec) error {
	if s.Principal == "" && s.Topic == "" && s.Group == "" && !s.Cluster && s.TxnID == "" {
		return usageErr("refusing to delete every ACL: name a principal or a resource")
	}
	b, err := s.builder(true)
	if err != nil {
		return err
	}
	res, err := adm.DeleteACLs(ctx, b)
	if err != nil {
		return requestErr("DeleteAcls", 31, err)
	}
	var rows []aclRow
	for _, r := range res {
		if r.Err != nil {
			return withMessage(r.Err, r.ErrMessage)
		}
		for _, d := range r.Deleted {
			if d.Err != nil {
				return withMessage(d.Err, d.ErrMessage)
			}
			rows = append(rows, aclRow{d.Principal, d.Host, lower(d.Permission), lower(d.Operation), lower(d.Type), d.Name, lower(d.Pattern)})
		}
	}
	return printACLs(w, dedupe(rows), s.JSON)
}

// userRow is one SCRAM credential as printed.
type userRow struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int32  `json:"iterations"`
}

// ListUsers prints every SCRAM credential (mechanism and iterations,
// never a key), or the named users'.
func ListUsers(ctx context.Context, adm *kadm.Client, w io.Writer, users []string, asJSON bool) error {
	res, err := adm.DescribeUserSCRAMs(ctx, users...)
	if err != nil {
		return requestErr("DescribeUserScramCredentials", 50, err)
	}
	var rows []userRow
	for _, u := range res.Sorted() {
		if u.Err != nil {
			return withMessage(u.Err, u.ErrMessage)
		}
		for _, ci := range u.CredInfos {
			rows = append(rows, userRow{u.User, ci.Mechanism.String(), ci.Iterations})
		}
	}
	if asJSON {
		if rows == nil {
			rows = []userRow{}
		}
		return writeJSON(w, rows)
	}
	t := newTable(w)
	fmt.Fprintln(t, "USER\tMECHANISM\tITERATIONS")
	for _, r := range rows {
		fmt.Fprintf(t, "%s\t%s\t%d\n", r.User, r.Mechanism, r.Iterations)
	}
	return t.Flush()
}

func parseMech(m string) (kadm.ScramMechanism, error) {
	switch strings.ToUpper(m) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256, nil
	case "SCRAM-SHA-512", "":
		return kadm.ScramSha512, nil
	}
	return 0, usageErr("--mechanism %q is not SCRAM-SHA-256 or SCRAM-SHA-512", m)
}

// SetUser creates or replaces a user's SCRAM credential; the password is
// salted and iterated here, and only the result travels.
func SetUser(ctx context.Context, adm *kadm.Client, w io.Writer, user, mechanism, password string, iterations int32) error {
	mech, err := parseMech(mechanism)
	if err != nil {
		return err
	}
	if password == "" {
		return usageErr("an empty password")
	}
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: user, Mechanism: mech, Iterations: iterations, Password: password}})
	if err != nil {
		return requestErr("AlterUserScramCredentials", 51, err)
	}
	if r := res[user]; r.Err != nil {
		return withMessage(r.Err, r.ErrMessage)
	}
	fmt.Fprintf(w, "user %s: %s credential set (%d iterations)\n", user, mech, iterations)
	return nil
}

// DeleteUser removes a user's credential for a mechanism.
func DeleteUser(ctx context.Context, adm *kadm.Client, w io.Writer, user, mechanism string) error {
	mech, err := parseMech(mechanism)
	if err != nil {
		return err
	}
	res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: user, Mechanism: mech}}, nil)
	if err != nil {
		return requestErr("AlterUserScramCredentials", 51, err)
	}
	if r := res[user]; r.Err != nil {
		return withMessage(r.Err, r.ErrMessage)
	}
	fmt.Fprintf(w, "user %s: %s credential deleted\n", user, mech)
	return nil
}

// QuotaEntity names a quota's entity for samsactl quotas: a user and/or a
// client id, each a name or the default (<default>).
type QuotaEntity struct {
	User, Client, IP                      string
	UserDefault, ClientDefault, IPDefault bool
}

func (e QuotaEntity) components() (kadm.ClientQuotaEntity, error) {
	var out kadm.ClientQuotaEntity
	if e.User != "" || e.UserDefault {
		c := kadm.ClientQuotaEntityComponent{Type: "user"}
		if !e.UserDefault {
			u := e.User
			c.Name = &u
		}
		out = append(out, c)
	}
	if e.Client != "" || e.ClientDefault {
		c := kadm.ClientQuotaEntityComponent{Type: "client-id"}
		if !e.ClientDefault {
			cl := e.Client
			c.Name = &cl
		}
		out = append(out, c)
	}
	if e.IP != "" || e.IPDefault {
		if len(out) > 0 {
			return nil, usageErr("an ip entity stands alone: no --user or --client-id with --ip")
		}
		c := kadm.ClientQuotaEntityComponent{Type: "ip"}
		if !e.IPDefault {
			ip := e.IP
			c.Name = &ip
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, usageErr("name the entity: --user U, --user-default, --client-id C and/or --client-default, or --ip A / --ip-default")
	}
	return out, nil
}

// quotaRow is one entity's quotas as printed.
type quotaRow struct {
	Entity string             `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// ListQuotas prints the quotas of the entities matching e (every entity
// when e names none).
func ListQuotas(ctx context.Context, adm *kadm.Client, w io.Writer, e QuotaEntity, asJSON bool) error {
	var filter []kadm.DescribeClientQuotaComponent
	add := func(typ, name string, def bool) {
		switch {
		case def:
			filter = append(filter, kadm.DescribeClientQuotaComponent{Type: typ, MatchType: 1})
		case name != "":
			n := name
			filter = append(filter, kadm.DescribeClientQuotaComponent{Type: typ, MatchName: &n, MatchType: 0})
		}
	}
	add("user", e.User, e.UserDefault)
	add("client-id", e.Client, e.ClientDefault)
	add("ip", e.IP, e.IPDefault)
	res, err := adm.DescribeClientQuotas(ctx, false, filter)
	if err != nil {
		return requestErr("DescribeClientQuotas", 48, err)
	}
	var rows []quotaRow
	for _, q := range res {
		var parts []string
		for _, c := range q.Entity {
			name := "<default>"
			if c.Name != nil {
				name = *c.Name
			}
			parts = append(parts, c.Type+"="+name)
		}
		r := quotaRow{Entity: strings.Join(parts, ","), Values: map[string]float64{}}
		for _, v := range q.Values {
			r.Values[v.Key] = v.Value
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Entity < rows[j].Entity })
	if asJSON {
		if rows == nil {
			rows = []quotaRow{}
		}
		return writeJSON(w, rows)
	}
	t := newTable(w)
	fmt.Fprintln(t, "ENTITY\tKEY\tVALUE")
	for _, r := range rows {
		keys := make([]string, 0, len(r.Values))
		for k := range r.Values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(t, "%s\t%s\t%.0f\n", r.Entity, k, r.Values[k])
		}
	}
	return t.Flush()
}

// AlterQuotas sets (value > 0) or removes (value < 0) quota keys of an
// entity.
func AlterQuotas(ctx context.Context, adm *kadm.Client, w io.Writer, e QuotaEntity, set map[string]float64, remove []string) error {
	ent, err := e.components()
	if err != nil {
		return err
	}
	var ops []kadm.AlterClientQuotaOp
	for k, v := range set {
		ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Value: v})
	}
	for _, k := range remove {
		ops = append(ops, kadm.AlterClientQuotaOp{Key: k, Remove: true})
	}
	if len(ops) == 0 {
		return usageErr("nothing to change: give --producer-byte-rate, --consumer-byte-rate, --request-percentage, --connection-creation-rate or --delete KEY")
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: ent, Ops: ops}})
	if err != nil {
		return requestErr("AlterClientQuotas", 49, err)
	}
	for _, r := range res {
		if r.Err != nil {
			return withMessage(r.Err, r.ErrMessage)
		}
	}
	fmt.Fprintf(w, "quotas of %s changed\n", ent.String())
	return nil
}
