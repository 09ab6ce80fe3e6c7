package engine

import "reflect"

// Handle is embedded (unexported, through an alias) in the public type
// that wraps a Source, so that SourceOf finds the Source behind it without
// an exported method on that type.
type Handle struct{ s *Source }

// NewHandle returns the Handle of s.
func NewHandle(s *Source) Handle { return Handle{s} }

func (h Handle) engineSource() *Source { return h.s }

// SourceOf returns the Source behind v: v itself, or the Source of a
// type that embeds a Handle directly (oauthclient.TokenSource); nil for
// any other token source, a caller's type that embeds a TokenSource
// included (its own methods decide what its tokens are).
func SourceOf(v any) *Source {
	switch v := v.(type) {
	case *Source:
		return v
	case interface{ engineSource() *Source }:
		if !embedsHandle(reflect.TypeOf(v)) {
			return nil
		}
		return handleSource(v)
	}
	return nil
}

// embedsHandle reports whether t (or what it points to) is a struct with
// an embedded Handle field of its own.
func embedsHandle(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type == reflect.TypeFor[Handle]() {
			return true
		}
	}
	return false
}

// handleSource calls engineSource, which a nil wrapper (or a wrapper that
// embeds a nil one) cannot answer: that is no Source.
func handleSource(v interface{ engineSource() *Source }) (s *Source) {
	defer func() {
		if recover() != nil {
			s = nil
		}
	}()
	return v.engineSource()
}
