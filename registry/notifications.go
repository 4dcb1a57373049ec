package registry

import (
	"context"
	"log/slog"
	"net"
	"os"

	"github.com/signet-oss/signet/registry/notify"
	"github.com/signet-oss/signet/registry/storage"
)

// startNotifications starts webhook delivery when endpoints are configured and
// subscribes it to api's events; the returned stop queues what is collected and
// drains the workers within ctx. Without endpoints it does nothing. An endpoint
// being down never keeps the registry from starting: events wait in the queue.
func startNotifications(ctx context.Context, cfg Config, store *storage.Store, api *Server, addr net.Addr, log *slog.Logger) (stop func(context.Context), err error) {
	nc := cfg.Notifications
	if len(nc.Endpoints) == 0 {
		return func(context.Context) {}, nil
	}
	if nc.Source == "" {
		hostname, _ := os.Hostname()
		var ok bool
		nc.Source, ok = notify.DefaultSource(addr.String(), cfg.TLS.Cert != "", hostname)
		if !ok {
			log.Warn("notifications: the registry listens on no particular host and the machine's hostname is unknown: set notifications.source to the registry's URL", "source", nc.Source)
		}
	}
	n, err := notify.New(nc, store.Driver(), log)
	if err != nil {
		return nil, err
	}
	api.OnEvent(func(ctx context.Context, e Event) {
		// Notify logs a failure itself; the request's outcome stands.
		n.Notify(ctx, notify.Event{
			Kind: string(e.Kind), Time: e.Time, Repo: e.Repo, Digest: e.Digest.String(), Tag: e.Tag,
			MediaType: e.MediaType, Size: e.Size, Subject: e.Subject.String(), Actor: e.Actor,
			RequestID: e.RequestID, Reason: e.Reason,
		})
	})
	n.Start(ctx)
	return n.Close, nil
}
