package resourceclient

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/oauthsafe/oauthsafe/internal/netrule"
)

// onceWarning passes strictnet's AllowLoopbackHTTP warning on once for a
// whole Client, which builds several strict clients (discovery,
// registration, token, resource), to the caller's Logger or else
// slog.Default; every other event goes to the caller's Logger only (none
// when it is nil, as without this package).
type onceWarning struct {
	next   slog.Handler // the caller's Logger's handler; nil: none
	def    slog.Handler // where the warning goes when next is nil
	warned *atomic.Bool
}

// loopbackLogger is the Logger of the strict clients of a Client whose
// HTTP allows plain http on loopback.
func loopbackLogger(caller *slog.Logger) *slog.Logger {
	h := &onceWarning{def: slog.Default().Handler(), warned: new(atomic.Bool)}
	if caller != nil {
		h.next = caller.Handler()
	}
	return slog.New(h)
}

func (h *onceWarning) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next != nil && h.next.Enabled(ctx, l)
}

func (h *onceWarning) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == netrule.LoopbackWarning {
		if h.warned.Swap(true) {
			return nil
		}
		if h.next == nil {
			return h.def.Handle(ctx, r)
		}
	}
	if h.next == nil || !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *onceWarning) WithAttrs(as []slog.Attr) slog.Handler {
	cp := *h
	if h.next != nil {
		cp.next = h.next.WithAttrs(as)
	}
	return &cp
}

func (h *onceWarning) WithGroup(name string) slog.Handler {
	cp := *h
	if h.next != nil {
		cp.next = h.next.WithGroup(name)
	}
	return &cp
}
