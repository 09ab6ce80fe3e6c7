package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
)

// Server metadata is public: it is cached next to the profile (0600, in the
// 0700 profile directory) for at most metadataMaxAge, so that `token` and
// the agent do not run discovery on every call. login always refreshes it.

const metadataMaxAge = time.Hour

type metadataCache struct {
	Issuer    string               `json:"issuer"`
	FetchedAt time.Time            `json:"fetched_at"`
	Metadata  oauthclient.Metadata `json:"metadata"`
}

func metadataPath(name string) (string, error) {
	p, err := profilePath(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), name+".metadata.json"), nil
}

// loadMetadata returns the cached metadata for the profile's issuer when it
// is fresh enough, or nil.
func loadMetadata(name string, p *profile, now time.Time) *oauthclient.Metadata {
	path, err := metadataPath(name)
	if err != nil {
		return nil
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 {
		return nil // missing, or writable by others: discover instead
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil
	}
	var c metadataCache
	if json.NewDecoder(bytes.NewReader(b)).Decode(&c) != nil || c.Issuer != p.Issuer ||
		c.FetchedAt.After(now.Add(time.Minute)) || now.Sub(c.FetchedAt) > metadataMaxAge {
		return nil
	}
	return &c.Metadata
}

// saveMetadata caches the client's metadata for the profile. Failures only
// cost a discovery later.
func saveMetadata(name string, c *oauthclient.Client) error {
	path, err := metadataPath(name)
	if err != nil {
		return err
	}
	md := c.Metadata()
	return writeFile0600(path, metadataCache{Issuer: md.Issuer, FetchedAt: time.Now().UTC(), Metadata: md})
}

// cachedClient builds the profile's client from cached metadata when fresh,
// else by discovery (and caches the result).
func cachedClient(ctx context.Context, e *env, name string, p *profile) (*oauthclient.Client, error) {
	if md := loadMetadata(name, p, time.Now()); md != nil {
		c, err := newClientWith(ctx, e, p, md)
		if err == nil {
			return c, nil
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		// A cached document that no longer passes the checks: discover.
	}
	c, err := newClient(ctx, e, p)
	if err != nil {
		return nil, err
	}
	_ = saveMetadata(name, c)
	return c, nil
}
