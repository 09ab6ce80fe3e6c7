package doccheck

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"math/big"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
	"unsafe"

	"github.com/oauthsafe/oauthsafe/internal/engine"

	"github.com/oauthsafe/oauthsafe/callback"
	"github.com/oauthsafe/oauthsafe/internal/dpop"
	"github.com/oauthsafe/oauthsafe/internal/jwtassert"
	"github.com/oauthsafe/oauthsafe/oauthclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/apiclient"
	"github.com/oauthsafe/oauthsafe/oauthclient/assertion"
	"github.com/oauthsafe/oauthsafe/resourceclient"
	"github.com/oauthsafe/oauthsafe/secret"
	"github.com/oauthsafe/oauthsafe/strictnet"
	"github.com/oauthsafe/oauthsafe/tokenstore"
	"github.com/oauthsafe/oauthsafe/tokenstore/keyring"
	"github.com/oauthsafe/oauthsafe/tokenstore/sqlstore"
	"github.com/oauthsafe/oauthsafe/validate"
	"golang.org/x/oauth2"
)

// exportedTypes is every exported type of the library packages, by
// "package/path.Name", the engine's types (internal/engine), which the
// library's token sources and pools hand their secrets to, and the
// unexported types that exported constructors return behind an interface
// (keyed "package/path.what(Constructor)", with a lower-case what). The
// source check below fails when a library package declares an exported
// type missing here, so that a new type is looked at: the walk then
// decides from its fields whether it holds a secret, and if so proves
// that it redacts.
var exportedTypes = map[string]reflect.Type{
	"callback.Config":       reflect.TypeFor[callback.Config](),
	"callback.Handler":      reflect.TypeFor[callback.Handler](),
	"callback.Loopback":     reflect.TypeFor[callback.Loopback](),
	"callback.LoginOptions": reflect.TypeFor[callback.LoginOptions](),
	"callback.PendingStore": reflect.TypeFor[callback.PendingStore](),

	"oauthclient.AuthError":            reflect.TypeFor[oauthclient.AuthError](),
	"oauthclient.Client":               reflect.TypeFor[oauthclient.Client](),
	"oauthclient.Config":               reflect.TypeFor[oauthclient.Config](),
	"oauthclient.DeviceAuthorization":  reflect.TypeFor[oauthclient.DeviceAuthorization](),
	"oauthclient.Metadata":             reflect.TypeFor[oauthclient.Metadata](),
	"oauthclient.Pending":              reflect.TypeFor[oauthclient.Pending](),
	"oauthclient.RegistrationRequest":  reflect.TypeFor[oauthclient.RegistrationRequest](),
	"oauthclient.StartOptions":         reflect.TypeFor[oauthclient.StartOptions](),
	"oauthclient.TokenSourceConfig":    reflect.TypeFor[oauthclient.TokenSourceConfig](),
	"oauthclient.Tokens":               reflect.TypeFor[oauthclient.Tokens](),
	"oauthclient.TokenSource":          reflect.TypeFor[oauthclient.TokenSource](),
	"oauthclient.UserPool":             reflect.TypeFor[oauthclient.UserPool](),
	"oauthclient.GrantOptions":         reflect.TypeFor[oauthclient.GrantOptions](),
	"oauthclient.TokenExchangeOptions": reflect.TypeFor[oauthclient.TokenExchangeOptions](),

	"oauthclient/apiclient.Config":              reflect.TypeFor[apiclient.Config](),
	"oauthclient/apiclient.Discovery":           reflect.TypeFor[apiclient.Discovery](),
	"oauthclient/apiclient.DiscoveryConfig":     reflect.TypeFor[apiclient.DiscoveryConfig](),
	"oauthclient/apiclient.InvalidRequestError": reflect.TypeFor[apiclient.InvalidRequestError](),
	"oauthclient/apiclient.Transport":           reflect.TypeFor[apiclient.Transport](),

	"oauthclient/assertion.Source": reflect.TypeFor[assertion.Source](),
	// The assertion the library keeps once it has parsed what a Source
	// returned.
	"internal/jwtassert.JWT": reflect.TypeFor[jwtassert.JWT](),

	"resourceclient.Client":      reflect.TypeFor[resourceclient.Client](),
	"resourceclient.Config":      reflect.TypeFor[resourceclient.Config](),
	"resourceclient.Credentials": reflect.TypeFor[resourceclient.Credentials](),
	"resourceclient.Grant":       reflect.TypeFor[resourceclient.Grant](),
	"resourceclient.Server":      reflect.TypeFor[resourceclient.Server](),
	"resourceclient.Session":     reflect.TypeFor[resourceclient.Session](),
	"resourceclient.StepUpError": reflect.TypeFor[resourceclient.StepUpError](),
	// The Grants the constructors return: unexported types holding a
	// client secret, a private key, an assertion source or a subject
	// token source. The source check cannot see an unexported type that
	// an exported constructor returns: a new constructor of a Grant (or
	// of any value holding a secret behind an interface) is listed here
	// by hand.
	"resourceclient.grant(ClientCredentials)": reflect.TypeOf(resourceclient.ClientCredentials(resourceclient.Credentials{})),
	"resourceclient.grant(JWTBearer)":         reflect.TypeOf(resourceclient.JWTBearer(resourceclient.Credentials{}, nil)),
	"resourceclient.grant(EnterpriseManaged)": reflect.TypeOf(resourceclient.EnterpriseManaged(resourceclient.Credentials{}, nil, oauthclient.TokenExchangeOptions{})),
	// The assertion source of Client.IDJAG holds the subject token source.
	"oauthclient.idjag(IDJAG)": reflect.TypeOf((*oauthclient.Client)(nil).IDJAG(oauthclient.TokenExchangeOptions{})),

	"secret.Value": reflect.TypeFor[secret.Value](),

	"strictnet.Config":      reflect.TypeFor[strictnet.Config](),
	"strictnet.ConnError":   reflect.TypeFor[strictnet.ConnError](),
	"strictnet.PolicyError": reflect.TypeFor[strictnet.PolicyError](),

	"internal/engine.ActiveCheck":  reflect.TypeFor[engine.ActiveCheck](),
	"tokenstore.EncryptedFile":     reflect.TypeFor[tokenstore.EncryptedFile](),
	"internal/engine.FetchFunc":    reflect.TypeFor[engine.FetchFunc](),
	"internal/engine.LeaseTx":      reflect.TypeFor[engine.LeaseTx](),
	"tokenstore.LogoutConfig":      reflect.TypeFor[tokenstore.LogoutConfig](),
	"tokenstore.Memory":            reflect.TypeFor[tokenstore.Memory](),
	"internal/engine.Pool":         reflect.TypeFor[engine.Pool](),
	"internal/engine.PoolConfig":   reflect.TypeFor[engine.PoolConfig](),
	"internal/engine.PrivateKey":   reflect.TypeFor[engine.PrivateKey](),
	"internal/engine.Record":       reflect.TypeFor[engine.Record](),
	"internal/engine.Refresh":      reflect.TypeFor[engine.Refresh](),
	"internal/engine.Result":       reflect.TypeFor[engine.Result](),
	"internal/engine.Source":       reflect.TypeFor[engine.Source](),
	"internal/engine.SourceConfig": reflect.TypeFor[engine.SourceConfig](),
	"tokenstore.Record":            reflect.TypeFor[tokenstore.Record](),
	"tokenstore.Store":             reflect.TypeFor[tokenstore.Store](),
	"tokenstore.TemporaryError":    reflect.TypeFor[tokenstore.TemporaryError](),
	"tokenstore.Tx":                reflect.TypeFor[tokenstore.Tx](),

	"tokenstore/keyring.Store":            reflect.TypeFor[keyring.Store](),
	"tokenstore/keyring.UnavailableError": reflect.TypeFor[keyring.UnavailableError](),

	"tokenstore/sqlstore.Config":    reflect.TypeFor[sqlstore.Config](),
	"tokenstore/sqlstore.OpenError": reflect.TypeFor[sqlstore.OpenError](),
	"tokenstore/sqlstore.Store":     reflect.TypeFor[sqlstore.Store](),

	"validate.AccessToken":            reflect.TypeFor[validate.AccessToken](),
	"validate.AccessTokenConfig":      reflect.TypeFor[validate.AccessTokenConfig](),
	"validate.AccessTokenVerifier":    reflect.TypeFor[validate.AccessTokenVerifier](),
	"validate.ClaimError":             reflect.TypeFor[validate.ClaimError](),
	"validate.IDToken":                reflect.TypeFor[validate.IDToken](),
	"validate.IDTokenCheck":           reflect.TypeFor[validate.IDTokenCheck](),
	"validate.IDTokenConfig":          reflect.TypeFor[validate.IDTokenConfig](),
	"validate.IDTokenVerifier":        reflect.TypeFor[validate.IDTokenVerifier](),
	"validate.InsufficientScopeError": reflect.TypeFor[validate.InsufficientScopeError](),
	"validate.IntrospectionConfig":    reflect.TypeFor[validate.IntrospectionConfig](),
	"validate.JWKSConfig":             reflect.TypeFor[validate.JWKSConfig](),
	"validate.StandardClaims":         reflect.TypeFor[validate.StandardClaims](),
}

// notLibrary are the directories of the module root that hold no library
// package: other modules, programs, tests and internal helpers.
var notLibrary = []string{"cmd", "e2e", "examples", "internal", "oauthtest", "scripts", "testdata", "docs"}

// libraryTypes parses the non-test files of every library package under
// root and returns "package/path.Name" of each exported type it declares.
func libraryTypes(t *testing.T, root string) []string {
	t.Helper()
	var names []string
	fset := token.NewFileSet()
	err := libraryGoFiles(root, func(rel string, inInternal bool) error {
		if inInternal {
			return nil
		}
		f, err := parser.ParseFile(fset, filepath.Join(root, rel), nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				if ts := s.(*ast.TypeSpec); ts.Name.IsExported() {
					names = append(names, filepath.ToSlash(filepath.Dir(rel))+"."+ts.Name.Name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// secretNames are the names of string and []byte fields that hold a
// secret wherever they appear; secretBytes those of []byte fields only (a
// string Key names a record, a []byte key is key material).
var (
	secretNames = map[string]bool{
		"refreshtoken": true, "accesstoken": true, "rotated": true, "devicecode": true, "verifier": true,
		"state": true, "rawid": true, "secret": true, "clientsecret": true, "password": true, "passphrase": true,
		"token": true, "assertion": true, "subjecttoken": true,
	}
	secretBytes = map[string]bool{"key": true, "keys": true, "der": true, "secret": true, "seed": true}
)

// secretMaterial is what a filled value holds that must never be printed.
type secretMaterial struct {
	canaries []string // strings put into secret fields
	n        int
	key      *dpop.Key
	priv     *ecdsa.PrivateKey
	pkey     engine.PrivateKey
}

func newSecretMaterial(t *testing.T) *secretMaterial {
	k, err := dpop.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	der, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := engine.NewPrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	priv := p.(*ecdsa.PrivateKey)
	d, _ := priv.Bytes()
	m := &secretMaterial{key: k, priv: priv, pkey: pk}
	m.canaries = []string{string(der), hex.EncodeToString(der), base64.StdEncoding.EncodeToString(der), base64.RawURLEncoding.EncodeToString(der),
		fmt.Sprint(der[:8])[1:20], new(big.Int).SetBytes(d).String(), hex.EncodeToString(d), base64.RawURLEncoding.EncodeToString(d)}
	return m
}

func (m *secretMaterial) canary() string {
	m.n++
	c := fmt.Sprintf("CANARY%dSECRET", m.n)
	m.canaries = append(m.canaries, c, hex.EncodeToString([]byte(c)))
	return c
}

var (
	secretValueType = reflect.TypeFor[secret.Value]()
	tokenType       = reflect.TypeFor[oauth2.Token]()
	privateKeyType  = reflect.TypeFor[engine.PrivateKey]()
	dpopKeyType     = reflect.TypeFor[*dpop.Key]()
	ecdsaKeyType    = reflect.TypeFor[*ecdsa.PrivateKey]()
	signerType      = reflect.TypeFor[crypto.Signer]()
	cryptoKeyType   = reflect.TypeFor[crypto.PrivateKey]()
	tokenSourceType = reflect.TypeFor[oauth2.TokenSource]()
	assertionType   = reflect.TypeFor[assertion.Source]()
	jwtType         = reflect.TypeFor[jwtassert.JWT]()
)

// leakySource and leakyAssertion are a caller's token and assertion
// sources that hold their secret in an exported field, as a caller's own
// type may: a type that prints or encodes them field by field shows it.
type leakySource struct{ Tok *oauth2.Token }

func (s leakySource) Token() (*oauth2.Token, error) { return s.Tok, nil }

type leakyAssertion struct{ Raw string }

func (a leakyAssertion) Assertion(context.Context, string) (string, error) {
	return a.Raw, nil
}

// jwt is a parsed assertion whose compact JWS shows a canary as it is
// (its signature part), so that printing it whole is seen.
func (m *secretMaterial) jwt() jwtassert.JWT {
	enc := base64.RawURLEncoding.EncodeToString
	a, err := jwtassert.Parse(enc([]byte(`{"alg":"ES256"}`))+"."+enc([]byte(`{"exp":4102444800}`))+"."+m.canary(), time.Now())
	if err != nil {
		panic(err)
	}
	return a
}

// fill puts secret material into every field of v (reachable through
// structs, pointers, slices, maps and arrays, unexported fields included)
// that holds a secret by its type (secret.Value, oauth2.Token,
// engine.PrivateKey, a DPoP key, a private key, a crypto.Signer, a token
// or assertion source, or a parsed assertion) or by its name
// (secretNames, for strings and bytes), and reports whether it put any.
func (m *secretMaterial) fill(v reflect.Value, name string, depth int) bool {
	if depth > 8 {
		return false
	}
	v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem() // settable, unexported or not
	secretName := secretNames[strings.ToLower(name)]
	switch v.Type() {
	case secretValueType:
		s, err := secret.FromReader(strings.NewReader(m.canary()))
		if err != nil {
			panic(err)
		}
		v.Set(reflect.ValueOf(s))
		return true
	case tokenType:
		v.Set(reflect.ValueOf(oauth2.Token{AccessToken: m.canary(), RefreshToken: m.canary(), TokenType: "Bearer"}))
		return true
	case privateKeyType:
		v.Set(reflect.ValueOf(m.pkey))
		return true
	case dpopKeyType:
		v.Set(reflect.ValueOf(m.key))
		return true
	case ecdsaKeyType:
		v.Set(reflect.ValueOf(m.priv))
		return true
	case jwtType:
		v.Set(reflect.ValueOf(m.jwt()))
		return true
	}
	switch v.Kind() {
	case reflect.String:
		if secretName {
			v.SetString(m.canary())
			return true
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if secretName || secretBytes[strings.ToLower(name)] {
				v.SetBytes([]byte(m.canary()))
				return true
			}
			return false
		}
		s := reflect.MakeSlice(v.Type(), 1, 1)
		if m.fill(s.Index(0), name, depth+1) {
			v.Set(s)
			return true
		}
	case reflect.Array:
		any := false
		for i := 0; i < v.Len() && i < 4; i++ {
			any = m.fill(v.Index(i), name, depth+1) || any
		}
		return any
	case reflect.Struct:
		any := false
		for i := 0; i < v.NumField(); i++ {
			any = m.fill(v.Field(i), v.Type().Field(i).Name, depth+1) || any
		}
		return any
	case reflect.Pointer:
		if v.IsNil() {
			p := reflect.New(v.Type().Elem())
			if m.fill(p.Elem(), name, depth+1) {
				v.Set(p)
				return true
			}
			return false
		}
		return m.fill(v.Elem(), name, depth+1)
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return false
		}
		e := reflect.New(v.Type().Elem()).Elem()
		if m.fill(e, name, depth+1) {
			mp := reflect.MakeMap(v.Type())
			mp.SetMapIndex(reflect.ValueOf("k").Convert(v.Type().Key()), e)
			v.Set(mp)
			return true
		}
	case reflect.Interface:
		switch {
		case v.Type() == signerType || v.Type() == cryptoKeyType:
			v.Set(reflect.ValueOf(m.priv))
			return true
		case v.Type() == tokenSourceType:
			v.Set(reflect.ValueOf(leakySource{Tok: &oauth2.Token{AccessToken: m.canary(), RefreshToken: m.canary(), TokenType: "Bearer"}}))
			return true
		case v.Type() == assertionType:
			v.Set(reflect.ValueOf(leakyAssertion{Raw: m.canary()}))
			return true
		}
	}
	return false
}

// holdsLock reports whether t holds a sync or sync/atomic value inline:
// such a type is used through a pointer (copying it is a vet error).
func holdsLock(t reflect.Type, depth int) bool {
	if depth > 8 {
		return false
	}
	switch t.Kind() {
	case reflect.Struct:
		if p := t.PkgPath(); p == "sync" || p == "sync/atomic" {
			return true
		}
		for i := 0; i < t.NumField(); i++ {
			if holdsLock(t.Field(i).Type, depth+1) {
				return true
			}
		}
	case reflect.Array:
		return holdsLock(t.Elem(), depth+1)
	}
	return false
}

// unexportedBehindConstructor reports whether exportedTypes lists, under
// name, an unexported type that an exported constructor returns: its
// name's last element starts with a lower-case letter, and so does the
// type's own name.
func unexportedBehindConstructor(name string, typ reflect.Type) bool {
	last := name[strings.LastIndex(name, ".")+1:]
	return last != "" && unicode.IsLower(rune(last[0])) && typ.Name() != "" && !token.IsExported(typ.Name())
}

// renderings prints v every way a program may print or log it.
func renderings(v any) []string {
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, verb+": "+fmt.Sprintf(verb, v), verb+" nested: "+fmt.Sprintf(verb, struct{ F any }{v}))
	}
	outs = append(outs, "Sprint: "+fmt.Sprint(v))
	if j, err := json.Marshal(v); err == nil {
		outs = append(outs, "json: "+string(j))
	}
	if j, err := json.Marshal(map[string]any{"nested": v}); err == nil {
		outs = append(outs, "json nested: "+string(j))
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("m", "v", v, slog.Group("g", "v", v))
	slog.New(slog.NewJSONHandler(&js, nil)).Info("m", "v", v, slog.Group("g", "v", v))
	return append(outs, "slog text: "+text.String(), "slog json: "+js.String())
}

// TestEveryTypeHoldingASecretRedacts (S12, S16): every exported type of
// the library is known here (a source check fails on a new one), and
// every one that holds a secret, directly or through its fields (a
// client secret, a token, a refresh token being rotated, a DPoP or
// signing key, a token source), prints no secret under %v, %+v, %#v, %s,
// %q, %x, %d, slog's text and JSON handlers and json.Marshal: filled with
// secret material in every such field (unexported ones included), as a
// pointer and, unless it holds a lock, as a value, alone and nested.
func TestEveryTypeHoldingASecretRedacts(t *testing.T) {
	found := libraryTypes(t, filepath.Join("..", ".."))
	for _, name := range found {
		if _, ok := exportedTypes[name]; !ok {
			t.Errorf("exported type %s is not in exportedTypes: add it, so that this test checks whether it holds a secret", name)
		}
	}
	for name, typ := range exportedTypes {
		if !slices.Contains(found, name) && !strings.HasPrefix(name, "internal/") && !unexportedBehindConstructor(name, typ) {
			t.Errorf("exportedTypes lists %s, which the source no longer declares", name)
		}
	}
	m := newSecretMaterial(t)
	checked := 0
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range exportedTypes {
			if !yield(k) {
				return
			}
		}
	}) {
		typ := exportedTypes[name]
		if typ.Kind() == reflect.Interface || typ.Kind() == reflect.Func {
			continue
		}
		p := reflect.New(typ)
		if !m.fill(p.Elem(), typ.Name(), 0) {
			continue // no field of it holds a secret
		}
		checked++
		t.Logf("%s holds a secret", name)
		values := map[string]any{"*" + name: p.Interface()}
		if !holdsLock(typ, 0) {
			values[name] = p.Elem().Interface()
		}
		for label, v := range values {
			for _, out := range renderings(v) {
				if strings.Contains(out, "PANIC=") {
					t.Errorf("%s: printing panicked: %s", label, out)
				}
				for _, c := range m.canaries {
					if strings.Contains(out, c) {
						t.Errorf("%s: a secret is printed: %.300s", label, out)
						break
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d types were found to hold a secret: the walk is broken", checked)
	}
}
