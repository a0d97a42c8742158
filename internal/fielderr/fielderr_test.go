//go:build linux

package fielderr

import (
	"errors"
	"testing"
)

func TestFieldErrorFormat(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		err  *FieldError
		want string
	}{
		{&FieldError{Field: "FSReadable", Value: "/nope", Err: boom}, `sandlock: FSReadable "/nope": boom`},
		{&FieldError{Field: "FSReadable", Value: `a"b`, Err: boom}, `sandlock: FSReadable "a\"b": boom`},
		{&FieldError{Field: "Cwd", Err: boom}, `sandlock: Cwd: boom`},
		{&FieldError{Field: "Workdir", Err: ErrUnsupported}, `sandlock: Workdir is not supported yet`},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestFieldErrorUnwrap(t *testing.T) {
	boom := errors.New("boom")
	var err error = &FieldError{Field: "X", Value: "v", Err: boom}
	if !errors.Is(err, boom) {
		t.Error("errors.Is does not see the wrapped error")
	}
	if errors.Is(err, ErrUnsupported) {
		t.Error("an ordinary field error claims to be ErrUnsupported")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "X" || fe.Value != "v" {
		t.Errorf("errors.As = %+v", fe)
	}
}

func TestUnsupported(t *testing.T) {
	err := Unsupported("Workdir")
	if got, want := err.Error(), "sandlock: Workdir is not supported yet"; got != want {
		t.Errorf("Unsupported(Workdir) = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Error("Unsupported does not wrap ErrUnsupported")
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "Workdir" || fe.Value != "" {
		t.Errorf("Unsupported is not a *FieldError for Workdir: %#v", err)
	}
}
