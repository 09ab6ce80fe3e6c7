package engine

import "reflect"

// Handle is embedded (unexported, through an alias) in the public type
// that wraps a Source, so that SourceOf finds the Source behind it without
// an exported method on that type.
type Handle struct{ s *Source }

// NewHandle returns the Handle of s.
func NewHandle(s *Source) Handle { return Handle{s} }

func (h Handle) engineSource() *Source { return h.s }

// SourceOf returns the Source behind v: v itself, or the Source of a type
// that embeds a Handle; nil for any other token source.
func SourceOf(v any) *Source {
	switch v := v.(type) {
	case *Source:
		return v
	case interface{ engineSource() *Source }:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil // a nil wrapper: nothing behind it
		}
		return v.engineSource()
	}
	return nil
}
