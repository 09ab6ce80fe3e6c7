package oauthclient

import (
	"context"
	"testing"

	"github.com/oauthsafe/oauthsafe/internal/engine"
	"golang.org/x/oauth2"
)

// TestSourceOf: the API transport finds the engine behind a TokenSource
// (its Rejected cooldown, S24), and nothing behind a nil or zero
// TokenSource or behind a caller's type that embeds one: such a type's
// own methods decide what its tokens are, and a nil one never panics.
func TestSourceOf(t *testing.T) {
	es, err := engine.NewSource(engine.SourceConfig{Fetch: func(ctx context.Context, _ *engine.Refresh) (*engine.Result, error) {
		return &engine.Result{Token: &oauth2.Token{AccessToken: "at"}}, nil
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTokenSource(es)
	type wrapper struct{ *TokenSource }
	type byValue struct{ TokenSource }
	for name, tc := range map[string]struct {
		v    any
		want *engine.Source
	}{
		"TokenSource":        {ts, es},
		"engine Source":      {es, es},
		"nil TokenSource":    {(*TokenSource)(nil), nil},
		"zero TokenSource":   {&TokenSource{}, nil},
		"wrapper":            {wrapper{ts}, nil},
		"wrapper of nil":     {wrapper{}, nil},
		"pointer to wrapper": {&wrapper{}, nil},
		"embedded by value":  {&byValue{}, nil},
		"another source":     {oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), nil},
	} {
		if got := engine.SourceOf(tc.v); got != tc.want {
			t.Errorf("%s: SourceOf = %p, want %p", name, got, tc.want)
		}
	}
}
