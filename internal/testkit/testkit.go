// Package testkit holds test data shared by the library's tests and the e2e
// module's tests. It is not API.
package testkit

import "strings"

// BadReturnTo are open-redirect attempts; each must be refused.
var BadReturnTo = []string{
	"//evil.test",
	"//evil.test/path",
	"/\\evil.test",
	"\\\\evil.test",
	"\\/evil.test",
	"%09//evil.test",
	"\t//evil.test",
	" //evil.test",
	"https:evil.test",
	"https://evil.test/",
	"http:/evil.test",
	"HTTPS://evil.test",
	"javascript:alert(1)",
	"data:text/html,x",
	"evil.test",
	"./x",
	"/%2F%2Fevil.test",
	"/%2f/evil.test",
	"/%5Cevil.test",
	"/%5cevil.test",
	"/%252F%252Fevil.test",
	"/%25252F%25252Fevil.test",
	"/%09/evil.test",
	"/%0d%0aSet-Cookie:x=y",
	"/x\r\nSet-Cookie: x=y",
	"/\x00",
	"/a b",
	"/x\\y",
	"/..//evil.test",
	"/a/../..//evil.test",
	"/./x",
	"/%2e%2e//evil.test",
	"/é",
	"/%zz",
	"/" + strings.Repeat("a", 1024), // longer than the 1024 bytes a return-to path may have
}
