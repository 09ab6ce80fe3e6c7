package engine

import (
	"context"

	"github.com/oauthsafe/oauthsafe/tokenstore"
)

// putHook is a test store built on a tokenstore.Memory that takes over
// each Put of its transactions: it fails, delays or loses it, or hands it
// to next. A store that also has getHook takes over each Get the same way.
type putHook interface {
	hookPut(ctx context.Context, next tokenstore.Tx, v []byte) error
}

type getHook interface {
	hookGet(ctx context.Context, next tokenstore.Tx) ([]byte, error)
}

// hookedUpdate runs fn in m's transaction for key with its Puts (and Gets)
// handed to h: the one Update of every hooked test store.
func hookedUpdate(ctx context.Context, m *tokenstore.Memory, h putHook, key string, fn func(context.Context, tokenstore.Tx) error) error {
	return m.Update(ctx, key, func(ctx context.Context, tx tokenstore.Tx) error { return fn(ctx, hookedTx{tx, h}) })
}

type hookedTx struct {
	tokenstore.Tx
	h putHook
}

func (tx hookedTx) Put(ctx context.Context, v []byte) error { return tx.h.hookPut(ctx, tx.Tx, v) }

func (tx hookedTx) Get(ctx context.Context) ([]byte, error) {
	if g, ok := tx.h.(getHook); ok {
		return g.hookGet(ctx, tx.Tx)
	}
	return tx.Tx.Get(ctx)
}
