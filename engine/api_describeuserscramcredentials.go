package engine

// DescribeUserScramCredentials (key 50), v0 (KIP-554): each user's SCRAM
// mechanisms and iteration counts, never the keys.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"samsa/netio"
)

func init() {
	regKey(kmsg.DescribeUserSCRAMCredentials.Int16(), 0, 0, func(b *Broker, req *netio.Request, kreq kmsg.Request) {
		respond(req, b.handleDescribeUserSCRAM(kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)))
	})
}

func (b *Broker) handleDescribeUserSCRAM(r *kmsg.DescribeUserSCRAMCredentialsRequest) *kmsg.DescribeUserSCRAMCredentialsResponse {
	resp := kmsg.NewPtrDescribeUserSCRAMCredentialsResponse()
	var creds scramCreds
	if c := b.scram.Load(); c != nil {
		creds = *c
	}
	result := func(user string) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = user
		ms := creds[user]
		if len(ms) == 0 {
			res.ErrorCode = kerr.ResourceNotFound.Code
			msg := "Attempt to describe a user credential that does not exist: " + user // as ScramImage.describe
			res.ErrorMessage = &msg
			return res
		}
		for _, mech := range []string{mechSCRAM256, mechSCRAM512} {
			if m, ok := ms[mech]; ok {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = scramMechNum(mech), int32(m.Iterations)
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		return res
	}
	if len(r.Users) == 0 {
		users := make([]string, 0, len(creds))
		for u := range creds {
			users = append(users, u)
		}
		slices.Sort(users)
		for _, u := range users {
			resp.Results = append(resp.Results, result(u))
		}
		return resp
	}
	count := map[string]int{}
	for _, u := range r.Users {
		count[u.Name]++
	}
	done := map[string]bool{}
	for _, u := range r.Users {
		if done[u.Name] {
			continue
		}
		done[u.Name] = true
		if count[u.Name] > 1 {
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = u.Name, kerr.DuplicateResource.Code
			msg := "Cannot describe SCRAM credentials for the same user twice in a single request: " + u.Name
			res.ErrorMessage = &msg
			resp.Results = append(resp.Results, res)
			continue
		}
		resp.Results = append(resp.Results, result(u.Name))
	}
	return resp
}
