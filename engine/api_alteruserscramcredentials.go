package engine

// AlterUserScramCredentials (key 51), v0 (KIP-554): SCRAM credentials set
// from a salted password (the password itself never travels) or removed,
// as records of the metadata log (scram.go).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.AlterUserSCRAMCredentials.Int16(), 0, 0, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleAlterUserSCRAM(kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)))
	})
}

func (b *Broker) handleAlterUserSCRAM(r *kmsg.AlterUserSCRAMCredentialsRequest) *kmsg.AlterUserSCRAMCredentialsResponse {
	resp := kmsg.NewPtrAlterUserSCRAMCredentialsResponse()
	type change struct {
		rec string
		m   metaScram
	}
	var order []string
	errs := map[string]*kerr.Error{}
	msgs := map[string]string{}
	changes := map[string][]change{}
	seen := map[[2]string]bool{}
	fail := func(user string, e *kerr.Error, msg string) {
		if errs[user] == nil {
			errs[user], msgs[user] = e, msg
		}
	}
	add := func(user string, mech int8) (string, bool) {
		if _, ok := changes[user]; !ok {
			if _, bad := errs[user]; !bad {
				order = append(order, user)
			}
			changes[user] = nil
		}
		name := scramMechName(mech)
		switch {
		case user == "":
			fail(user, kerr.UnacceptableCredential, "Username must not be empty")
		case name == "":
			fail(user, kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		case seen[[2]string{user, name}]:
			fail(user, kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			seen[[2]string{user, name}] = true
			return name, true
		}
		return "", false
	}
	for _, d := range r.Deletions {
		mech, ok := add(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := b.scramCredential(d.Name, mech); !exists {
			fail(d.Name, kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
			continue
		}
		changes[d.Name] = append(changes[d.Name], change{recDeleteScram, metaScram{User: d.Name, Mechanism: mech}})
	}
	for _, u := range r.Upsertions {
		mech, ok := add(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case u.Iterations < minScramIterations:
			fail(u.Name, kerr.UnacceptableCredential, "Too few iterations")
			continue
		case u.Iterations > maxScramIterations:
			fail(u.Name, kerr.UnacceptableCredential, "Too many iterations")
			continue
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential, "Salt and salted password must not be empty")
			continue
		}
		m := scramFromSalted(u.Name, mech, int(u.Iterations), u.Salt, u.SaltedPassword)
		changes[u.Name] = append(changes[u.Name], change{recScram, m})
	}
	standby := b.pair.IsStandby()
	var unlock func()
	for _, user := range order {
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User = user
		switch {
		case errs[user] != nil:
			res.ErrorCode = errs[user].Code
			msg := msgs[user]
			res.ErrorMessage = &msg
		case standby:
			res.ErrorCode = kerr.NotController.Code
			msg := "this node is the standby; the primary changes credentials"
			res.ErrorMessage = &msg
		default:
			if unlock == nil {
				unlock = b.lockMeta()
			}
			for _, c := range changes[user] {
				if err := b.commitMeta(c.rec, c.m); err != nil {
					res.ErrorCode = kerr.KafkaStorageError.Code
					msg := err.Error()
					res.ErrorMessage = &msg
					break
				}
			}
		}
		resp.Results = append(resp.Results, res)
	}
	if unlock != nil {
		unlock()
	}
	return resp
}
