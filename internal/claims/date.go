package claims

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"time"
)

// NumericDate is a JWT NumericDate (RFC 7519 §2): a JSON number of
// seconds. Fractions are accepted; strings, negatives and absurd values are
// not. null and absence leave it invalid.
type NumericDate struct {
	Time  time.Time
	Valid bool
}

// maxNumericDate is the year 9999; larger values are refused as malformed.
const maxNumericDate = 253402300799

var errBadDate = errors.New("claims: date claim out of range")

// UnmarshalJSON reads a JSON number of seconds, or null.
func (d *NumericDate) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if f < 0 || f > maxNumericDate || math.IsNaN(f) {
		return errBadDate
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9))
	d.Valid = true
	return nil
}
