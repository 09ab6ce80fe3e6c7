package secret

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"

	"github.com/oauthsafe/oauthsafe/internal/filecheck"
	"github.com/oauthsafe/oauthsafe/strictnet"
)

// errPrivateKey: a key file holds no usable private key: no PEM key
// block, more than one, an encrypted one, a malformed one, or a kind or
// size refused (see [PrivateKeyFromFile]). It matches ErrSource.
var errPrivateKey = fmt.Errorf("%w: not a usable private key", ErrSource)

// maxKeyFileSize bounds a key file (an RSA-4096 PEM key is about 3.3 KB).
const maxKeyFileSize = 64 << 10

// PrivateKeyFromFile loads the private key that signs private_key_jwt
// client assertions (RFC 7523), for oauthclient.Config.PrivateKey, from a
// PEM file. The file gets the same checks as [FromFile] (a regular file,
// owned by the current user, mode 0600 or 0400, no FIFO; checked on the
// opened file): a refused file is an error matching ErrSource and
// strictnet.ErrPolicy.
//
// The file must hold exactly one unencrypted private key block: PKCS #8
// ("PRIVATE KEY": RSA, ECDSA or Ed25519), SEC 1 ("EC PRIVATE KEY") or
// PKCS #1 ("RSA PRIVATE KEY"); other blocks (certificates) are ignored.
// RSA keys must have at least 2048 bits and ECDSA keys use P-256, P-384
// or P-521. Anything else is an error matching ErrSource that says "not a
// usable private key" (a too-small RSA key also matches
// strictnet.ErrPolicy). No error holds
// key material. Safe for concurrent use.
func PrivateKeyFromFile(path string) (crypto.Signer, error) {
	f, err := openChecked(path, filecheck.Secret)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSource, err)
	}
	if len(b) > maxKeyFileSize {
		return nil, keyError(fmt.Sprintf("%s is larger than %d bytes", path, maxKeyFileSize))
	}
	return parsePrivateKey(b)
}

// keyError is a refused key: it matches ErrSource (through errPrivateKey).
func keyError(reason string) error {
	return fmt.Errorf("%w: %s", errPrivateKey, reason)
}

// parsePrivateKey parses the one PEM private key block of b.
func parsePrivateKey(b []byte) (crypto.Signer, error) {
	var key crypto.Signer
	var err error
	found := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
		case "ENCRYPTED PRIVATE KEY":
			return nil, keyError("the key is encrypted; store it unencrypted in a 0600 file (openssl pkcs8 -topk8 -nocrypt)")
		default:
			continue
		}
		if found++; found > 1 {
			return nil, keyError("the file holds more than one private key")
		}
		if len(blk.Headers) != 0 {
			return nil, keyError("the key block has PEM headers (a legacy encrypted key?); store it as unencrypted PKCS #8")
		}
		key, err = parseKeyBlock(blk)
		if err != nil {
			return nil, err
		}
	}
	if found == 0 {
		return nil, keyError("no PEM private key block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)")
	}
	return key, nil
}

func parseKeyBlock(blk *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, keyError("malformed " + blk.Type + " block")
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w (%w): RSA key of %d bits; at least 2048 are required", errPrivateKey, strictnet.ErrPolicy, k.N.BitLen())
		}
		return k, nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return k, nil
		}
		return nil, keyError("ECDSA key on an unsupported curve (use P-256, P-384 or P-521)")
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, keyError(fmt.Sprintf("the key is %T, which cannot sign client assertions", k))
}
