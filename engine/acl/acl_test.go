package acl

import "testing"

func allow(rt ResourceType, name string, pt PatternType, principal string, op Operation) Binding {
	return Binding{ResourceType: rt, ResourceName: name, Pattern: pt, Principal: principal, Host: Wildcard, Operation: op, Permission: PermAllow}
}

func deny(rt ResourceType, name string, pt PatternType, principal string, op Operation) Binding {
	b := allow(rt, name, pt, principal, op)
	b.Permission = PermDeny
	return b
}

// TestAuthorize: Kafka's rules, case by case.
func TestAuthorize(t *testing.T) {
	a := New([]string{"User:root"}, false)
	a.Set([]Binding{
		allow(ResourceTopic, "orders", PatternLiteral, "User:alice", OpRead),
		allow(ResourceTopic, "logs-", PatternPrefixed, "User:alice", OpWrite),
		deny(ResourceTopic, "logs-secret", PatternLiteral, "User:alice", OpWrite),
		allow(ResourceTopic, "*", PatternLiteral, "User:bob", OpDescribe),
		allow(ResourceGroup, "g", PatternLiteral, "User:*", OpRead),
		allow(ResourceCluster, ClusterName, PatternLiteral, "User:carol", OpAlterConfigs),
		allow(ResourceTopic, "all-", PatternPrefixed, "User:dave", OpAll),
		deny(ResourceTopic, "all-x", PatternLiteral, "User:dave", OpRead),
		{ResourceType: ResourceTopic, ResourceName: "hosty", Pattern: PatternLiteral, Principal: "User:erin", Host: "10.0.0.1", Operation: OpRead, Permission: PermAllow},
	})
	for _, c := range []struct {
		who, host string
		op        Operation
		rt        ResourceType
		name      string
		want      bool
	}{
		{"User:alice", "1.2.3.4", OpRead, ResourceTopic, "orders", true},
		{"User:alice", "1.2.3.4", OpDescribe, ResourceTopic, "orders", true}, // implied by Read
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "orders", false},
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "logs-app", true},       // prefix
		{"User:alice", "1.2.3.4", OpWrite, ResourceTopic, "logs-secret", false},   // DENY wins
		{"User:alice", "1.2.3.4", OpDescribe, ResourceTopic, "logs-secret", true}, // deny Write does not deny Describe
		{"User:bob", "1.2.3.4", OpDescribe, ResourceTopic, "anything", true},      // wildcard name
		{"User:bob", "1.2.3.4", OpRead, ResourceTopic, "anything", false},
		{"User:zed", "1.2.3.4", OpRead, ResourceGroup, "g", true},                        // wildcard principal
		{"User:zed", "1.2.3.4", OpRead, ResourceGroup, "h", false},                       // no ACL, not allowed by default
		{"User:carol", "1.2.3.4", OpDescribeConfigs, ResourceCluster, ClusterName, true}, // implied by AlterConfigs
		{"User:carol", "1.2.3.4", OpAlter, ResourceCluster, ClusterName, false},
		{"User:dave", "1.2.3.4", OpDelete, ResourceTopic, "all-y", true}, // ALL
		{"User:dave", "1.2.3.4", OpRead, ResourceTopic, "all-x", false},
		{"User:erin", "10.0.0.1", OpRead, ResourceTopic, "hosty", true},
		{"User:erin", "10.0.0.2", OpRead, ResourceTopic, "hosty", false},
		{"User:root", "1.2.3.4", OpDelete, ResourceTopic, "orders", true}, // super user
	} {
		if got := a.Authorize(c.who, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("%s@%s %d on %d %q: %v, want %v", c.who, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	if !a.AuthorizeAny("User:alice", "1.2.3.4", OpWrite, ResourceTopic) {
		t.Error("alice may write some topic (logs-)")
	}
	if a.AuthorizeAny("User:bob", "1.2.3.4", OpWrite, ResourceTopic) {
		t.Error("bob may write no topic")
	}
	// allow.everyone.if.no.acl.found: only where a resource has no ACL.
	open := New(nil, true)
	open.Set([]Binding{allow(ResourceTopic, "guarded", PatternLiteral, "User:alice", OpRead)})
	if !open.Authorize("User:x", "h", OpWrite, ResourceTopic, "free") || open.Authorize("User:x", "h", OpRead, ResourceTopic, "guarded") {
		t.Error("allow.everyone.if.no.acl.found misapplied")
	}
	// authorizeByResourceType asks about "hardcode" first: with
	// allow.everyone.if.no.acl.found, Write on some topic is granted
	// while no ACL names that one, even when other topics have ACLs.
	if !open.AuthorizeAny("User:x", "h", OpWrite, ResourceTopic) {
		t.Error("AuthorizeAny under allow.everyone.if.no.acl.found refused with an ACL on another topic")
	}
	open.Set([]Binding{allow(ResourceTopic, "guarded", PatternLiteral, "User:alice", OpRead),
		deny(ResourceTopic, Wildcard, PatternLiteral, "User:x", OpWrite)})
	if open.AuthorizeAny("User:x", "h", OpWrite, ResourceTopic) {
		t.Error("AuthorizeAny granted past a DENY on every topic")
	}
	// Hosts: the same IPv6 address in Java's long form matches.
	v6 := New(nil, false)
	b := allow(ResourceTopic, "t", PatternLiteral, "User:x", OpRead)
	b.Host = "0:0:0:0:0:0:0:1"
	v6.Set([]Binding{b})
	if !v6.Authorize("User:x", "::1", OpRead, ResourceTopic, "t") || v6.Authorize("User:x", "::2", OpRead, ResourceTopic, "t") ||
		v6.Authorize("User:x", "127.0.0.1", OpRead, ResourceTopic, "t") {
		t.Error("IPv6 host forms misapplied")
	}
	v := a.Version()
	a.Set(nil)
	if a.Version() == v {
		t.Error("Set did not move the version")
	}
}

// TestFilter: DescribeAcls/DeleteAcls filters, MATCH included.
func TestFilter(t *testing.T) {
	lit := allow(ResourceTopic, "logs-app", PatternLiteral, "User:a", OpRead)
	pre := allow(ResourceTopic, "logs-", PatternPrefixed, "User:a", OpRead)
	wild := allow(ResourceTopic, "*", PatternLiteral, "User:a", OpRead)
	name := "logs-app"
	f := Filter{ResourceType: ResourceTopic, ResourceName: &name, Pattern: PatternMatch, Operation: OpAny, Permission: PermAny}
	for _, b := range []Binding{lit, pre, wild} {
		if !f.Matches(b) {
			t.Errorf("MATCH %q misses %+v", name, b)
		}
	}
	f.Pattern = PatternLiteral
	if !f.Matches(lit) || f.Matches(pre) || f.Matches(wild) {
		t.Error("LITERAL filter matched wrong bindings")
	}
	f = Filter{ResourceType: ResourceAny, Pattern: PatternAny, Operation: OpWrite, Permission: PermAny}
	if f.Matches(lit) {
		t.Error("operation filter ignored")
	}
	if (Binding{ResourceType: ResourceTopic, ResourceName: "x", Pattern: PatternMatch, Principal: "User:a", Host: "*", Operation: OpRead, Permission: PermAllow}).Validate() == nil {
		t.Error("a MATCH binding was valid")
	}
	if (Binding{ResourceType: ResourceTopic, ResourceName: "x", Pattern: PatternLiteral, Principal: "alice", Host: "*", Operation: OpRead, Permission: PermAllow}).Validate() == nil {
		t.Error("a principal without type was valid")
	}
	if err := lit.Validate(); err != nil {
		t.Error(err)
	}
	// A PREFIXED ACL named * is valid, as in Kafka, and is no wildcard:
	// it covers names that begin with a literal *.
	star := allow(ResourceTransactionalID, "*", PatternPrefixed, "User:a", OpWrite)
	if err := star.Validate(); err != nil {
		t.Errorf("PREFIXED *: %v", err)
	}
	a := New(nil, false)
	a.Set([]Binding{star})
	if !a.Authorize("User:a", "h", OpWrite, ResourceTransactionalID, "*tx") || a.Authorize("User:a", "h", OpWrite, ResourceTransactionalID, "tx") {
		t.Error("a PREFIXED * ACL is not a literal prefix")
	}
}

// FuzzAuthorize: arbitrary bindings and a question never panic, a DENY of
// ALL for the principal on the exact name always refuses, and a super
// user is always allowed.
func FuzzAuthorize(f *testing.F) {
	f.Add(int8(2), "orders", int8(3), "User:alice", "*", int8(3), int8(3), "User:alice", "1.2.3.4", int8(3), "orders")
	f.Add(int8(2), "logs-", int8(4), "User:*", "*", int8(2), int8(2), "User:bob", "h", int8(8), "logs-x")
	f.Fuzz(func(t *testing.T, rt int8, name string, pt int8, principal, host string, op, perm int8, who, from string, qop int8, qname string) {
		a := New([]string{"User:root"}, rt%2 == 0)
		bd := Binding{ResourceType: ResourceType(rt), ResourceName: name, Pattern: PatternType(pt), Principal: principal, Host: host, Operation: Operation(op), Permission: Permission(perm)}
		_ = bd.Validate()
		f := Filter{ResourceType: ResourceType(rt), ResourceName: &name, Pattern: PatternType(pt), Operation: Operation(op), Permission: Permission(perm)}
		_ = f.Validate()
		_ = f.Matches(bd)
		denyAll := Binding{ResourceType: ResourceTopic, ResourceName: qname, Pattern: PatternLiteral, Principal: who, Host: Wildcard, Operation: OpAll, Permission: PermDeny}
		a.Set([]Binding{bd, denyAll})
		if a.Authorize(who, from, Operation(qop), ResourceTopic, qname) && who != "User:root" {
			t.Fatalf("%s allowed %d on %q despite DENY ALL", who, qop, qname)
		}
		if !a.Authorize("User:root", from, Operation(qop), ResourceType(rt), qname) {
			t.Fatal("a super user was refused")
		}
		_ = a.AuthorizeAny(who, from, Operation(qop), ResourceType(rt))
	})
}
