//go:build linux && !amd64

package timeshift

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/sandlock-go/sandlock/internal/fielderr"
)

// Where the stubs are not written, TimeStart is a clear error, not a
// clock that the vDSO would leave unshifted.
func TestTimeStartUnsupportedHere(t *testing.T) {
	_, err := NewFeature("2000-01-01T00:00:00Z", false)
	var fe *fielderr.FieldError
	if !errors.As(err, &fe) || fe.Field != "TimeStart" || !strings.Contains(err.Error(), runtime.GOARCH) {
		t.Fatalf("got %v", err)
	}
}
