package main

// samsactl acls and users: Kafka's ACLs (as kafka-acls.sh) and SCRAM
// credentials (as kafka-configs.sh --entity-type users), in
// samsa/tools/ctl/security.go. -command-config connects over TLS and SASL.

import (
	"bufio"
	"context"
	"flag"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"samsa/tools/ctl"
)

func init() {
	commands = append(commands,
		&command{"acls list", "[--principal P] [--permission allow|deny] [--operation OP,...] [--topic T | --group G | --cluster | --transactional-id X] [--prefixed]",
			"the ACLs matching a filter (a named resource matches its literal, wildcard and prefixed ACLs)", aclsList},
		&command{"acls create", "--allow|--deny PRINCIPAL --operation OP,... (--topic T | --group G | --cluster | --transactional-id X) [--prefixed] [--host H]",
			"add ACLs, one per operation (read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write, all)", aclsCreate},
		&command{"acls delete", "[--principal P] [--permission allow|deny] [--operation OP,...] [--topic T | --group G | --cluster | --transactional-id X] [--prefixed] [--host H]",
			"delete the ACLs matching a filter, and list them", aclsDelete},
		&command{"users list", "[USER...]", "SCRAM credentials: user, mechanism, iterations (never a key)", usersList},
		&command{"users set", "USER [--mechanism SCRAM-SHA-256|SCRAM-SHA-512] [--iterations N] (--password P | --password-file F | --password-stdin)",
			"create or replace a user's SCRAM credential (salted and iterated here; the password never travels)", usersSet},
		&command{"users delete", "USER [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]", "delete a user's SCRAM credential", usersDelete},
	)
}

// aclFlags are the resource and filter flags the acls commands share.
func aclFlags(fs *flag.FlagSet, s *ctl.ACLSpec, ops *splitList) {
	fs.StringVar(&s.Topic, "topic", "", "a topic `NAME` (* for every topic)")
	fs.StringVar(&s.Group, "group", "", "a consumer group `NAME` (* for every group)")
	fs.BoolVar(&s.Cluster, "cluster", false, "the cluster resource")
	fs.StringVar(&s.TxnID, "transactional-id", "", "a transactional `ID` (* for every id)")
	fs.BoolVar(&s.Prefixed, "prefixed", false, "the name is a prefix (PREFIXED pattern)")
	fs.StringVar(&s.Host, "host", "", "the client `HOST` (default: any)")
	fs.Var(ops, "operation", "`OPS`, comma-separated (repeatable)")
}

// aclFilter parses the flags of acls list and acls delete.
func aclFilter(e *env, c *command, args []string) (ctl.ACLSpec, error) {
	fs := e.flagSet(c)
	var s ctl.ACLSpec
	var ops splitList
	aclFlags(fs, &s, &ops)
	fs.StringVar(&s.Principal, "principal", "", "only this `PRINCIPAL` (User:NAME)")
	fs.StringVar(&s.Permission, "permission", "", "only `allow` or deny ACLs")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return s, err
	}
	if err := noArgs(c, pos); err != nil {
		return s, err
	}
	s.Operations, s.JSON = ops, e.json()
	return s, nil
}

func aclsList(e *env, c *command, args []string) error {
	s, err := aclFilter(e, c, args)
	if err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error { return ctl.ListACLs(ctx, adm, e.stdout, s) })
}

func aclsCreate(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	var s ctl.ACLSpec
	var ops splitList
	aclFlags(fs, &s, &ops)
	allow := fs.String("allow", "", "allow this `PRINCIPAL` (User:NAME)")
	deny := fs.String("deny", "", "deny this `PRINCIPAL` (User:NAME)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	switch {
	case (*allow == "") == (*deny == ""):
		return usagef(c, "give one of --allow PRINCIPAL or --deny PRINCIPAL")
	case *deny != "":
		s.Principal, s.Deny = *deny, true
	default:
		s.Principal = *allow
	}
	s.Operations = ops
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error { return ctl.CreateACLs(ctx, adm, e.stdout, s) })
}

func aclsDelete(e *env, c *command, args []string) error {
	s, err := aclFilter(e, c, args)
	if err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error { return ctl.DeleteACLs(ctx, adm, e.stdout, s) })
}

func usersList(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.ListUsers(ctx, adm, e.stdout, pos, e.json())
	})
}

func usersSet(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	mech := fs.String("mechanism", "SCRAM-SHA-512", "`SCRAM-SHA-256` or SCRAM-SHA-512")
	iters := fs.Int("iterations", 4096, "PBKDF2 `iterations` (4096 to 16384)")
	pass := fs.String("password", "", "the `PASSWORD` (visible to ps: prefer --password-file or --password-stdin)")
	passFile := fs.String("password-file", "", "read the password from the first line of `FILE`")
	passStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "USER"); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{*pass != "", *passFile != "", *passStdin} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usagef(c, "give one of --password, --password-file or --password-stdin")
	}
	password := *pass
	if *passFile != "" || *passStdin {
		f := os.Stdin
		if *passFile != "" {
			if f, err = os.Open(*passFile); err != nil {
				return usagef(c, "cannot read --password-file: %v", err)
			}
			defer f.Close()
		}
		line, err := bufio.NewReader(f).ReadString('\n')
		if err != nil && line == "" {
			return usagef(c, "cannot read the password: %v", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if *iters < 4096 || *iters > 16384 {
		return usagef(c, "--iterations must be 4096 to 16384, not %d", *iters)
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.SetUser(ctx, adm, e.stdout, pos[0], *mech, password, int32(*iters))
	})
}

func usersDelete(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	mech := fs.String("mechanism", "SCRAM-SHA-512", "`SCRAM-SHA-256` or SCRAM-SHA-512")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := oneArg(c, pos, "USER"); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.DeleteUser(ctx, adm, e.stdout, pos[0], *mech)
	})
}

func init() {
	commands = append(commands,
		&command{"quotas list", "[--user U | --user-default] [--client-id C | --client-default] [--ip A | --ip-default]", "client quotas (producer_byte_rate, consumer_byte_rate, request_percentage, connection_creation_rate) by entity", quotasList},
		&command{"quotas set", "(--user U | --user-default) and/or (--client-id C | --client-default) [--producer-byte-rate N] [--consumer-byte-rate N] [--request-percentage P] | (--ip A | --ip-default) --connection-creation-rate N; [--delete KEY]...",
			"set or remove the quotas of a user, client id or client address", quotasSet},
	)
}

func quotaEntityFlags(fs *flag.FlagSet, e *ctl.QuotaEntity) {
	fs.StringVar(&e.User, "user", "", "the user `NAME`")
	fs.BoolVar(&e.UserDefault, "user-default", false, "the default user entity")
	fs.StringVar(&e.Client, "client-id", "", "the client `ID`")
	fs.BoolVar(&e.ClientDefault, "client-default", false, "the default client-id entity")
	fs.StringVar(&e.IP, "ip", "", "a client `ADDRESS` (connection_creation_rate)")
	fs.BoolVar(&e.IPDefault, "ip-default", false, "the default ip entity")
}

func quotasList(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	var ent ctl.QuotaEntity
	quotaEntityFlags(fs, &ent)
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.ListQuotas(ctx, adm, e.stdout, ent, e.json())
	})
}

func quotasSet(e *env, c *command, args []string) error {
	fs := e.flagSet(c)
	var ent ctl.QuotaEntity
	quotaEntityFlags(fs, &ent)
	prod := fs.Float64("producer-byte-rate", 0, "producer_byte_rate: `BYTES` per second")
	cons := fs.Float64("consumer-byte-rate", 0, "consumer_byte_rate: `BYTES` per second")
	reqp := fs.Float64("request-percentage", 0, "request_percentage: `PERCENT` of a handler thread")
	connRate := fs.Float64("connection-creation-rate", 0, "connection_creation_rate of an ip entity: new `CONNECTIONS` a second")
	var del splitList
	fs.Var(&del, "delete", "remove these quota `KEYS` (comma-separated, repeatable)")
	pos, err := e.parse(fs, c, args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	set := map[string]float64{}
	for k, v := range map[string]float64{"producer_byte_rate": *prod, "consumer_byte_rate": *cons, "request_percentage": *reqp, "connection_creation_rate": *connRate} {
		if v < 0 {
			return usagef(c, "%s must be positive", k)
		}
		if v > 0 {
			set[k] = v
		}
	}
	return e.withAdmin(func(ctx context.Context, adm *kadm.Client) error {
		return ctl.AlterQuotas(ctx, adm, e.stdout, ent, set, del)
	})
}
