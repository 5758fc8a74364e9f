package cli

import (
	"bytes"
	"testing"
	"time"

	"vscript/engine"
	"vscript/engine/event"
)

func TestPrintImages(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	rows := []engine.ImageRow{
		{Ref: "busybox:latest", ID: "sha256:9b3a516af40afee8e043aa28aef08651bf80bfb48e068d09f9328dacbd253f85",
			Created: time.Unix(0, 0), Size: 2212864},
		{Ref: "localhost:5000/site:v1", ID: "sha256:2e1a2f0c51b8" + "0000000000000000000000000000000000000000000000000000",
			Created: now.Add(-90 * time.Second), Size: 1234},
		{ID: "sha256:2e1a2f0c51b8" + "0000000000000000000000000000000000000000000000000000", Created: now.Add(-3 * 24 * time.Hour), Size: 999},
	}
	var out bytes.Buffer
	if err := printImages(&out, rows, &flags{}, now); err != nil {
		t.Fatal(err)
	}
	want := `REPOSITORY            TAG       IMAGE ID       CREATED              SIZE
busybox               latest    9b3a516af40a   56 years ago         2.21MB
localhost:5000/site   v1        2e1a2f0c51b8   About a minute ago   1.23kB
<none>                <none>    2e1a2f0c51b8   3 days ago           999B
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	printImages(&out, rows[:1], &flags{json: true}, now)
	if want := `{"Repository":"busybox","Tag":"latest","ID":"sha256:9b3a516af40afee8e043aa28aef08651bf80bfb48e068d09f9328dacbd253f85","CreatedAt":"1970-01-01T00:00:00Z","Size":2212864}` + "\n"; out.String() != want {
		t.Errorf("json:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	printImages(&out, rows, &flags{quiet: true}, now)
	if want := "9b3a516af40a\n2e1a2f0c51b8\n"; out.String() != want {
		t.Errorf("-q:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "Less than a second",
		30 * time.Second:         "30 seconds",
		61 * time.Second:         "About a minute",
		45 * time.Minute:         "45 minutes",
		70 * time.Minute:         "About an hour",
		5 * time.Hour:            "5 hours",
		50 * time.Hour:           "2 days",
		20 * 24 * time.Hour:      "2 weeks",
		100 * 24 * time.Hour:     "3 months",
		3 * 365 * 24 * time.Hour: "3 years",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// Build steps print as docker build prints them, not as commands.
func TestPrinterBuildSteps(t *testing.T) {
	var out bytes.Buffer
	p := &printer{w: &out, verbose: true}
	p.Emit(event.Event{Op: "image build", Docker: "docker build -t x ."})
	p.Emit(event.Event{Op: "build step", Docker: "Step 1/2 : FROM busybox\n ---> 9b3a516af40a"})
	want := "$ docker build -t x .\nStep 1/2 : FROM busybox\n ---> 9b3a516af40a\n"
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
}
