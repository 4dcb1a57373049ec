package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/signet-oss/signet/internal/tuftest"
	"github.com/signet-oss/signet/policy"
	"github.com/signet-oss/signet/trustnames"
)

func policySet(t *testing.T, docs ...string) []byte {
	t.Helper()
	s := &policy.Set{}
	for _, d := range docs {
		doc, err := policy.ParseDocument([]byte(d), "")
		if err != nil {
			t.Fatal(err)
		}
		s = s.With(*doc)
	}
	return s.Encode()
}

const slsaDoc = `{"repositories":"acme/*","require":[{"predicateType":"https://slsa.dev/provenance/v1","match":{"runDetails.builder.id":"https://builder.x/*"}}]}`

// The index and the client read an org's policies from its own role only,
// and the same way.
func TestPoliciesAreReadFromTheOrgRoleOnly(t *testing.T) {
	ctx := context.Background()
	orgRole, appRole := trustnames.RoleForOrg("acme"), trustnames.RoleForRepo("acme/app")
	for _, tc := range []struct {
		why string
		// setup changes the fixture's graph before it is read.
		setup func(t *testing.T, r *tuftest.Repo)
		// want: patterns of the policies acme/app and acme/team/app get;
		// wantErr: what Lookup's PolicyErr says; gone: acme/app is not in
		// the view at all.
		wantApp, wantTeam []string
		wantErr           string
		gone              bool
	}{
		{"no policy", func(*testing.T, *tuftest.Repo) {}, nil, nil, "", false},
		{"the org role's policy applies by pattern", func(t *testing.T, r *tuftest.Repo) {
			r.AddPolicy(orgRole, "acme", policySet(t, slsaDoc, `{"repositories":"acme/team/**","mode":"warn","require":[{"signers":2}]}`))
			r.Publish(orgRole)
		}, []string{"acme/*"}, []string{"acme/team/**"}, "", false},
		{"a policy target in a repository's role is no policy", func(t *testing.T, r *tuftest.Repo) {
			r.AddPolicy(appRole, "acme", policySet(t, slsaDoc))
			r.Publish(appRole)
		}, nil, nil, "", false},
		{"an org role's policy that does not parse serves nothing of the org", func(t *testing.T, r *tuftest.Repo) {
			r.AddPolicy(orgRole, "acme", []byte(`{"policies":[{"repositories":"acme/*","require":[],"mode":"off"}]}`))
			r.Publish(orgRole)
		}, nil, nil, "the pull policy of acme cannot be read", false},
		{"an org role with a policy signed by another key is not read at all", func(t *testing.T, r *tuftest.Repo) {
			r.AddPolicy(orgRole, "acme", policySet(t, `{"repositories":"acme/*","mode":"warn","require":[{"signers":1}]}`))
			r.Keys["mallory"] = tuftest.NewKey(t)
			r.Signers[orgRole] = []string{"mallory"}
			r.Publish(orgRole)
		}, nil, nil, "", true},
	} {
		t.Run(tc.why, func(t *testing.T) {
			f := newFixture(t)
			tc.setup(t, f.repo)
			ix := f.newIndex(t, &memStore{})
			if err := ix.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			st, err := f.client(t).Walk(ctx, "acme/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			rt, err := ix.Lookup("acme/app")
			if err != nil {
				t.Fatal(err)
			}
			if tc.gone {
				if rt != nil {
					t.Fatalf("acme/app is in the view through an org role its key did not sign: %+v", rt)
				}
				if st.Target != nil {
					t.Fatal("the client resolved acme/app:v1 through an org role its key did not sign")
				}
				return
			}
			docs, ok, cerr := st.Policies("acme/app")
			if !ok {
				t.Fatal("the client's walk did not reach the org role")
			}
			if tc.wantErr != "" {
				for who, err := range map[string]error{"index": rt.PolicyErr, "client": cerr} {
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Errorf("%s: policy error %v, want %q", who, err, tc.wantErr)
					}
				}
				return
			}
			if rt.PolicyErr != nil || cerr != nil {
				t.Fatalf("policy errors: index %v, client %v", rt.PolicyErr, cerr)
			}
			team, _ := ix.Lookup("acme/team/app")
			for who, got := range map[string][]policy.Document{"index acme/app": rt.Policies, "client acme/app": docs, "index acme/team/app": team.Policies} {
				want := tc.wantApp
				if strings.Contains(who, "team") {
					want = tc.wantTeam
				}
				var pats []string
				for _, d := range got {
					pats = append(pats, d.Repositories)
				}
				if strings.Join(pats, ",") != strings.Join(want, ",") {
					t.Errorf("%s: policies %v, want %v", who, pats, want)
				}
			}
			alice := f.repo.Keys["alice"].ID()
			if len(tc.wantApp) > 0 {
				if strings.Join(rt.Signers, ",") != alice || strings.Join(st.RepoSigners("acme/app"), ",") != alice {
					t.Errorf("signers: index %v, client %v, want alice %s", rt.Signers, st.RepoSigners("acme/app"), alice)
				}
			} else if rt.Signers != nil {
				t.Errorf("signers %v read for a repository no policy applies to", rt.Signers)
			}
		})
	}
}

// Only referrers that verify as a whole count, and each signature counts as
// what it is: a signature of the image, or an attestation.
func TestPolicyEvidence(t *testing.T) {
	refs := []Referrer{
		{Format: FormatCosign, Signatures: Signatures{{KeyID: "a"}}},
		{Format: FormatSigstoreBundle, Signatures: Signatures{{KeyID: "b", PredicateType: CosignSignPredicateType}}},
		{Format: FormatCosignAttestation, Signatures: Signatures{{KeyID: "c", PredicateType: "https://slsa.dev/provenance/v1"}}},
		{Format: FormatCosignAttestation, Signatures: Signatures{{KeyID: "d", PredicateType: "https://spdx.dev/Document", Err: errNope}}},
	}
	ev := PolicyEvidence([]string{"r"}, refs)
	if got := strings.Join(ev.Signers, ","); got != "r,a,b" {
		t.Errorf("signers %s, want r,a,b", got)
	}
	if len(ev.Attestations) != 1 || ev.Attestations[0].KeyID != "c" {
		t.Errorf("attestations %+v, want c's only", ev.Attestations)
	}
}

var errNope = errorString("does not verify")

type errorString string

func (e errorString) Error() string { return string(e) }
