package oauthsafe

import "github.com/oauthsafe/oauthsafe/internal/cfgerr"

// ErrConfig is matched (errors.Is) by every configuration error of every
// package of the module: a required field missing, a value out of range,
// a method called on the zero value of a type that needs a constructor.
// Such an error says "<package>: <what is wrong> (invalid configuration)";
// fix the configuration, retrying does not help.
var ErrConfig = cfgerr.ErrConfig
