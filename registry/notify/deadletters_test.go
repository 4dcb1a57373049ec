package notify

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/signet-oss/signet/storage/driver/inmemory"
)

func TestADeadLetterIsListedAndRequeuedToARunningRegistry(t *testing.T) {
	ctx := context.Background()
	rc := newReceiver(t)
	rc.status.Store(http.StatusBadRequest)
	d := inmemory.New()
	n := newNotifier(t, testConfig(Endpoint{Name: "e", URL: rc.srv.URL}), d)
	n.Start(ctx)
	defer closeNow(n)
	if err := n.Notify(ctx, push("r", "v1")); err != nil {
		t.Fatal(err)
	}
	var dead []DeadLetter
	waitFor(t, "a dead letter", func() bool {
		var err error
		dead, err = DeadLetters(ctx, d, "")
		return err == nil && len(dead) == 1
	})
	dl := dead[0]
	if dl.Endpoint != "e" || !strings.Contains(dl.Error, "refused it with 400") || len(dl.Events) != 1 || dl.Failed.IsZero() {
		t.Fatalf("dead letter %+v", dl)
	}
	if same, err := DeadLetters(ctx, d, "e"); err != nil || len(same) != 1 {
		t.Fatalf("the endpoint's dead letters: %v, %v", same, err)
	}
	for _, bad := range [][2]string{{"e", "no-such-key"}, {"e", "../queue/x"}, {"no/such", dl.Key}, {"e", ""}} {
		if err := Requeue(ctx, d, bad[0], bad[1]); err == nil {
			t.Errorf("Requeue(%q, %q) succeeded", bad[0], bad[1])
		}
	}

	rc.status.Store(http.StatusOK)
	if err := Requeue(ctx, d, "e", dl.Key); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the requeued event delivered", func() bool { return len(rc.delivered()) == 1 })
	if got := rc.delivered()[0].ID; got != dl.Events[0].ID {
		t.Fatalf("the requeued event came with id %q, want its own %q", got, dl.Events[0].ID)
	}
	if left, err := DeadLetters(ctx, d, "e"); err != nil || len(left) != 0 {
		t.Fatalf("dead letters after the requeue: %v, %v", left, err)
	}
	waitFor(t, "the queue emptied", func() bool { return len(queued(t, d, "e")) == 0 })
}

func TestADamagedDeadLetterIsListedWithTheOthers(t *testing.T) {
	ctx := context.Background()
	d := inmemory.New()
	if _, err := d.PutContent(ctx, deadDir("e")+"/00000000000000000001-x-0000000001", []byte("{damaged")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.PutContent(ctx, deadDir("e")+"/00000000000000000002-x-0000000002", []byte(`{"events":[{"id":"ok"}],"error":"refused"}`)); err != nil {
		t.Fatal(err)
	}
	dead, err := DeadLetters(ctx, d, "e")
	if err != nil || len(dead) != 2 {
		t.Fatalf("DeadLetters = %+v, %v; want both listed", dead, err)
	}
	if string(dead[0].Raw) != "{damaged" || !strings.Contains(dead[0].Error, "not a notification record") {
		t.Errorf("the damaged one: %+v", dead[0])
	}
	if dead[1].Error != "refused" || len(dead[1].Events) != 1 {
		t.Errorf("the sound one: %+v", dead[1])
	}
}
