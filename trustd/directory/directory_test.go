package directory_test

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-oss/signet/storage/driver"
	"github.com/signet-oss/signet/storage/driver/inmemory"
	"github.com/signet-oss/signet/tokenauth"
	"github.com/signet-oss/signet/trustd/directory"
)

func open(t *testing.T, d driver.Driver) *directory.Directory {
	t.Helper()
	dir, err := directory.Open(context.Background(), d, directory.Config{
		BcryptCost: bcrypt.MinCost, UserFailures: 10, IPFailures: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRightsFollowRolesGrantsAndARobotsScopesOnly(t *testing.T) {
	ctx := context.Background()
	dir := open(t, inmemory.New())
	for _, name := range []string{"olga", "rita"} {
		if err := dir.CreatePerson(ctx, name, name+"-password", false); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := dir.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := dir.SetMember(ctx, "acme", "olga", directory.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if _, err := dir.CreateGrant(ctx, "rita", "acme/docs/**", []string{"pull"}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := dir.CreateRobot(ctx, "acme", "ci", []string{"repository:acme/app:pull"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	olga, _ := dir.PrincipalOf("olga")
	rita, _ := dir.PrincipalOf("rita")
	robot, err := dir.Authenticate("acme+ci", secret, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	all := directory.ActPull | directory.ActPush | directory.ActDelete
	for _, c := range []struct {
		who  directory.Principal
		repo string
		want directory.ActionSet
	}{
		{olga, "acme/anything", all},
		{olga, "other/app", 0},
		{rita, "acme/docs/site", directory.ActPull},
		{rita, "acme/app", 0},
		{robot, "acme/app", directory.ActPull},
		{robot, "acme/other", 0},
		{directory.Principal{}, "acme/app", 0},
	} {
		if got := dir.Allowed(c.who, c.repo); got != c.want {
			t.Errorf("Allowed(%q, %q) = %b, want %b", c.who.Name, c.repo, got, c.want)
		}
	}
	got := dir.GrantAccess(robot, []tokenauth.Access{{Type: "repository", Name: "acme/app", Actions: []string{"pull", "push"}}})
	if len(got) != 1 || len(got[0].Actions) != 1 || got[0].Actions[0] != "pull" {
		t.Errorf("a robot with pull asking for pull and push got %+v, want pull only", got)
	}
}

func TestARobotDeletedOnOneReplicaFailsOnAnotherAfterItsReload(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	a, b := open(t, d), open(t, d)
	if _, _, err := a.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.CreateRobot(ctx, "acme", "ci", []string{"repository:acme/app:pull"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate("acme+ci", secret, "192.0.2.1"); err != nil {
		t.Fatalf("the other replica refused the robot after a reload: %v", err)
	}
	if _, err := a.DeleteRobot(ctx, "acme", "ci"); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate("acme+ci", secret, "192.0.2.1"); !errors.Is(err, directory.ErrBadCredentials) {
		t.Fatalf("a deleted robot signing in on the other replica after a reload: %v, want ErrBadCredentials", err)
	}
}

func TestTheDirectorysErrorsSayWhatWentWrong(t *testing.T) {
	ctx := context.Background()
	dir := open(t, inmemory.New())
	if err := dir.CreatePerson(ctx, "erin", "erin-password", false); err != nil {
		t.Fatal(err)
	}
	_, _, orgErr := dir.CreateOrg(ctx, "Not An Org")
	_, grantErr := dir.CreateGrant(ctx, "erin", "a/**b", []string{"pull"})
	for _, c := range []struct {
		what string
		err  error
		want error
	}{
		{"a second account of one name", dir.CreatePerson(ctx, "erin", "other-password", false), directory.ErrConflict},
		{"a member of an org that does not exist", dir.SetMember(ctx, "nope", "erin", directory.RoleReader), directory.ErrNotFound},
		{"an org name with spaces", orgErr, directory.ErrNameInvalid},
		{"a pattern with ** inside a component", grantErr, directory.ErrInvalid},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.err, c.want)
		}
	}
}

func TestAReplicaSeesAnotherReplicasChangesAfterAReload(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	a, b := open(t, d), open(t, d)
	if err := a.CreatePerson(ctx, "erin", "erin-password", false); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Account("erin"); p != nil {
		t.Fatal("a replica saw a new account before reloading")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Account("erin"); p == nil {
		t.Fatal("after a reload the replica does not know the account the other made")
	}
}
