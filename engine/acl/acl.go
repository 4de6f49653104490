// Package acl is samsa's authorizer: Kafka's ACL model (resource types
// Topic, Group, Cluster, TransactionalId; LITERAL and PREFIXED patterns;
// operations with Kafka's implications; DENY over ALLOW; principals and
// hosts with * wildcards; super users; allow.everyone.if.no.acl.found)
// over an immutable set of bindings the engine swaps in as the metadata
// log changes. It decides; the engine asks it where Kafka does.
package acl

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
)

// Resource types, operations, pattern types and permissions use Kafka's
// numbers (kmsg.ACLResourceType and friends).
type (
	ResourceType int8
	Operation    int8
	PatternType  int8
	Permission   int8
)

const (
	ResourceAny             ResourceType = 1
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

const (
	OpAny             Operation = 1
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
)

const (
	PatternAny      PatternType = 1
	PatternMatch    PatternType = 2
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

const (
	PermAny   Permission = 1
	PermDeny  Permission = 2
	PermAllow Permission = 3
)

// ClusterName is the cluster resource's only name.
const ClusterName = "kafka-cluster"

// Wildcard is the name, principal or host that matches every one.
const Wildcard = "*"

// Binding is one ACL: who may or may not do what to which resources.
type Binding struct {
	ResourceType ResourceType `json:"resource_type"`
	ResourceName string       `json:"resource_name"`
	Pattern      PatternType  `json:"pattern"`
	Principal    string       `json:"principal"`
	Host         string       `json:"host"`
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"`
}

// Validate checks a binding to create, with Kafka's rules; the error is
// the message Kafka's INVALID_REQUEST would carry.
func (b Binding) Validate() error {
	switch {
	case b.ResourceType < ResourceTopic || b.ResourceType > ResourceUser:
		return errors.New("invalid resource type")
	case b.Pattern != PatternLiteral && b.Pattern != PatternPrefixed:
		return errors.New("invalid pattern type: only LITERAL and PREFIXED ACLs can be created")
	case b.ResourceName == "":
		return errors.New("resource name must not be empty")
	case b.Operation < OpAll || b.Operation > OpDescribeTokens:
		return errors.New("invalid operation")
	case b.Permission != PermAllow && b.Permission != PermDeny:
		return errors.New("invalid permission type")
	case b.Host == "":
		return errors.New("host must not be empty (use * for any host)")
	case b.ResourceType == ResourceCluster && b.ResourceName != ClusterName:
		return errors.New("the cluster resource's name is kafka-cluster")
	}
	if kind, name, ok := strings.Cut(b.Principal, ":"); !ok || kind == "" || name == "" {
		return fmt.Errorf("invalid principal %q: it must be TYPE:NAME, e.g. User:alice", b.Principal)
	}
	return nil
}

// Filter selects bindings (DescribeAcls, DeleteAcls): zero strings and
// the ANY values match anything; Pattern MATCH matches the bindings that
// would apply to the named resource (literal, wildcard and prefixes).
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	Pattern      PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Validate checks a filter's enums.
func (f Filter) Validate() error {
	switch {
	case f.ResourceType < ResourceAny || f.ResourceType > ResourceUser:
		return errors.New("invalid resource type")
	case f.Pattern < PatternAny || f.Pattern > PatternPrefixed:
		return errors.New("invalid pattern type")
	case f.Operation < OpAny || f.Operation > OpDescribeTokens:
		return errors.New("invalid operation")
	case f.Permission < PermAny || f.Permission > PermAllow:
		return errors.New("invalid permission type")
	}
	return nil
}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	if f.Permission != PermAny && f.Permission != b.Permission {
		return false
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	switch f.Pattern {
	case PatternAny:
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	case PatternMatch:
		if f.ResourceName == nil {
			return true
		}
		return patternMatches(b, *f.ResourceName)
	default:
		if f.Pattern != b.Pattern {
			return false
		}
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	}
}

// patternMatches reports whether b's resource pattern covers name.
func patternMatches(b Binding, name string) bool {
	switch b.Pattern {
	case PatternLiteral:
		return b.ResourceName == name || b.ResourceName == Wildcard
	case PatternPrefixed:
		return strings.HasPrefix(name, b.ResourceName)
	}
	return false
}

// Authorizer decides. Its bindings and settings are swapped whole (Set,
// SetSettings); Authorize reads them without locks. Version changes with
// every swap, so callers can cache decisions and drop them when it moves.
type Authorizer struct {
	state   atomic.Pointer[state]
	version atomic.Uint64
}

type state struct {
	super       map[string]bool
	allowNoACLs bool
	bindings    []Binding
	// byType indexes the bindings by resource type.
	byType map[ResourceType][]Binding
}

// New returns an authorizer with no bindings.
func New(superUsers []string, allowEveryoneIfNoACL bool) *Authorizer {
	a := &Authorizer{}
	a.swap(nil, superUsers, allowEveryoneIfNoACL)
	return a
}

func (a *Authorizer) swap(bindings []Binding, superUsers []string, allow bool) {
	st := &state{super: map[string]bool{}, allowNoACLs: allow, bindings: bindings, byType: map[ResourceType][]Binding{}}
	for _, u := range superUsers {
		st.super[u] = true
	}
	for _, b := range bindings {
		st.byType[b.ResourceType] = append(st.byType[b.ResourceType], b)
	}
	a.state.Store(st)
	a.version.Add(1)
}

// Set replaces the bindings.
func (a *Authorizer) Set(bindings []Binding) {
	st := a.state.Load()
	supers := make([]string, 0, len(st.super))
	for u := range st.super {
		supers = append(supers, u)
	}
	a.swap(bindings, supers, st.allowNoACLs)
}

// Version moves whenever a decision may change.
func (a *Authorizer) Version() uint64 { return a.version.Load() }

// Bindings is every binding, sorted.
func (a *Authorizer) Bindings() []Binding {
	out := append([]Binding(nil), a.state.Load().bindings...)
	Sort(out)
	return out
}

// Sort orders bindings by resource, then principal, host, operation and
// permission.
func Sort(bs []Binding) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := bs[i], bs[j]
		switch {
		case a.ResourceType != b.ResourceType:
			return a.ResourceType < b.ResourceType
		case a.ResourceName != b.ResourceName:
			return a.ResourceName < b.ResourceName
		case a.Pattern != b.Pattern:
			return a.Pattern < b.Pattern
		case a.Principal != b.Principal:
			return a.Principal < b.Principal
		case a.Host != b.Host:
			return a.Host < b.Host
		case a.Operation != b.Operation:
			return a.Operation < b.Operation
		}
		return a.Permission < b.Permission
	})
}

// hostMatches reports whether an ACL's host covers a client's address:
// the wildcard, the same string, or the same IP address written another
// way (Java writes ::1 as 0:0:0:0:0:0:0:1, so ACLs made for Kafka name
// IPv6 hosts in that form).
func hostMatches(aclHost, host string) bool {
	if aclHost == Wildcard || aclHost == host {
		return true
	}
	if !strings.Contains(aclHost, ":") {
		return false // IPv4 and names: the string is the address
	}
	a, err1 := netip.ParseAddr(aclHost)
	h, err2 := netip.ParseAddr(host)
	return err1 == nil && err2 == nil && a.Unmap() == h.Unmap()
}

// implied lists the operations whose ALLOW grants op as well (Kafka:
// Describe is implied by Read, Write, Delete and Alter; DescribeConfigs
// by AlterConfigs).
func implied(op Operation) []Operation {
	switch op {
	case OpDescribe:
		return []Operation{OpDescribe, OpRead, OpWrite, OpDelete, OpAlter}
	case OpDescribeConfigs:
		return []Operation{OpDescribeConfigs, OpAlterConfigs}
	}
	return []Operation{op}
}

// Authorize reports whether principal, connected from host, may do op on
// the named resource.
func (a *Authorizer) Authorize(principal, host string, op Operation, rt ResourceType, name string) bool {
	st := a.state.Load()
	if st.super[principal] {
		return true
	}
	var matched, allowed bool
	for _, b := range st.byType[rt] {
		if !patternMatches(b, name) {
			continue
		}
		matched = true
		if b.Principal != principal && b.Principal != "User:"+Wildcard {
			continue
		}
		if !hostMatches(b.Host, host) {
			continue
		}
		if b.Permission == PermDeny {
			if b.Operation == op || b.Operation == OpAll {
				return false // DENY wins
			}
			continue
		}
		if b.Operation == OpAll {
			allowed = true
			continue
		}
		for _, o := range implied(op) {
			if b.Operation == o {
				allowed = true
			}
		}
	}
	if !matched {
		return st.allowNoACLs
	}
	return allowed
}

// AuthorizeAny reports whether principal may do op on some resource of
// type rt (Kafka's authorizeByResourceType: IdempotentWrite is granted by
// Write on any topic): an ALLOW for it that no DENY of the same pattern
// or a covering one takes away.
func (a *Authorizer) AuthorizeAny(principal, host string, op Operation, rt ResourceType) bool {
	st := a.state.Load()
	if st.super[principal] {
		return true
	}
	// Kafka's authorizeByResourceType asks first about a resource
	// named "hardcode": allowed by a wildcard or prefix ALLOW, and by
	// allow.everyone.if.no.acl.found when no ACL names it.
	if a.Authorize(principal, host, op, rt, "hardcode") {
		return true
	}
	who := func(b Binding) bool {
		return (b.Principal == principal || b.Principal == "User:"+Wildcard) && hostMatches(b.Host, host)
	}
	var denyAll bool
	var denied []Binding
	for _, b := range st.byType[rt] {
		if b.Permission == PermDeny && who(b) && (b.Operation == op || b.Operation == OpAll) {
			if b.Pattern == PatternLiteral && b.ResourceName == Wildcard {
				denyAll = true
			}
			denied = append(denied, b)
		}
	}
	if denyAll {
		return false
	}
	for _, b := range st.byType[rt] {
		if b.Permission != PermAllow || !who(b) || (b.Operation != op && b.Operation != OpAll) {
			continue
		}
		covered := false
		for _, d := range denied {
			if d.Pattern == PatternPrefixed && strings.HasPrefix(b.ResourceName, d.ResourceName) ||
				d.Pattern == PatternLiteral && d.ResourceName == b.ResourceName && b.Pattern == PatternLiteral {
				covered = true
			}
		}
		if !covered {
			return true
		}
	}
	return len(st.byType[rt]) == 0 && st.allowNoACLs
}
