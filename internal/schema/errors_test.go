package schema

import (
	"errors"
	"testing"
)

func TestErrors(t *testing.T) {
	es := Errors{
		{Path: "b", Line: 3, Col: 1, Msg: "second"},
		{Path: "a", Line: 1, Col: 9, Msg: "first"},
		{Path: "b", Line: 3, Col: 1, Msg: "second"}, // an alias used twice
		{Line: 0, Msg: "nowhere"},
	}.Sort()
	want := "f.yaml:1:1: nowhere\nf.yaml:1:9: a: first\nf.yaml:3:1: b: second"
	if got := es.Format("f.yaml"); got != want {
		t.Errorf("Format =\n%s\nwant\n%s", got, want)
	}
	if got := es.Error(); got != "1:1: nowhere\n1:9: a: first\n3:1: b: second" {
		t.Errorf("Error = %s", got)
	}
	var fe FieldError
	if !errors.As(es.Err(), &fe) || fe.Msg != "nowhere" {
		t.Errorf("errors.As = %v, %+v", errors.As(es.Err(), &fe), fe)
	}
	if Errors(nil).Err() != nil || (Errors{}).Sort() != nil {
		t.Error("no errors must be a nil error")
	}
	if got := Errorf("max", "must be %d", 3); got != (FieldError{Path: "max", Msg: "must be 3"}) {
		t.Errorf("Errorf = %+v", got)
	}
}
