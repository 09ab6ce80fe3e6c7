package oauthclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthtest"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

func TestDeviceGrantRealServer(t *testing.T) {
	t.Parallel()
	srv, err := oauthtest.Start(oauthtest.Options{DevicePollInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	newClient := func(t *testing.T) *oauthclient.Client {
		c, err := oauthclient.New(context.Background(), oauthclient.Config{
			Issuer:   srv.Issuer,
			ClientID: oauthtest.ClientDevice,
			Scopes:   []string{"openid", "profile", "offline_access"},
			HTTP:     strictnet.Config{RootCAs: srv.RootCAs()},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("approve", func(t *testing.T) {
		c := newClient(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		da, err := c.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if da.UserCode == "" || !strings.HasPrefix(da.VerificationURI, "https://") || da.Interval != time.Second {
			t.Fatalf("device authorization: %v interval %v", da, da.Interval)
		}
		before := srv.TokenRequests("urn:ietf:params:oauth:grant-type:device_code")
		approved := make(chan error, 1)
		go func() {
			// Let at least one poll see authorization_pending first.
			time.Sleep(1500 * time.Millisecond)
			approved <- srv.ApproveDevice(ctx, da.UserCode, "alice")
		}()
		tok, err := c.DeviceToken(ctx, da)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-approved; err != nil {
			t.Fatal(err)
		}
		if tok.Subject() != oauthtest.Subject("alice") {
			t.Errorf("subject %q, want alice's", tok.Subject())
		}
		if tok.OAuth2Token().AccessToken == "" || tok.OAuth2Token().RefreshToken == "" || tok.IDToken() == nil {
			t.Errorf("tokens incomplete: %v", tok)
		}
		if n := srv.TokenRequests("urn:ietf:params:oauth:grant-type:device_code") - before; n < 2 {
			t.Errorf("%d device token requests, want at least one pending poll before success", n)
		}
	})

	t.Run("deny", func(t *testing.T) {
		c := newClient(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		da, err := c.DeviceAuth(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.DenyDevice(ctx, da.UserCode, "alice"); err != nil {
			t.Fatal(err)
		}
		_, err = c.DeviceToken(ctx, da)
		var ae *oauthclient.AuthError
		if !errors.As(err, &ae) || ae.Code != "access_denied" {
			t.Fatalf("err = %v, want an access_denied AuthError", err)
		}
	})

	t.Run("ctx cancel stops polling", func(t *testing.T) {
		c := newClient(t)
		da, err := c.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		if _, err := c.DeviceToken(ctx, da); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's error", err)
		}
	})
}
