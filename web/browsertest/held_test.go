package browsertest

import (
	"os"
	"strings"
	"testing"
)

// TestBrowserHeldAndDamagedProcess: a process the daemon says is held by a panic of its
// definition (panic) and has damaged records passed over (damaged) is marked so in the
// process list, and its page says both in a notice, naming the versions and pmd repair;
// a process with neither has no mark and no notice. The browser said nothing of either:
// a held process only showed as growing lag, and a damaged command was just missing.
func TestBrowserHeldAndDamagedProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pmd and drives a headless chromium; skipped in -short")
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Skip("chromium not found at /usr/bin/chromium: run scripts/install-chromium.sh")
	}
	const panicked = "pm: CateringMatch$o1: Apply panicked at version 1: boom"
	d := startDaemon(t)
	for _, order := range []string{"o1", "o2"} {
		d.append(t, "Customer$"+order, fact{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": order}})
		d.await(t, "CateringMatch$"+order, "DeadlineScheduled")
	}
	// The daemon's answers, with o1 held and damaged: a daemon's manager from the config
	// file cannot be made to panic, nor a record damaged under a running daemon here.
	base := frontEditing(t, d, func(body map[string]any) {
		if list, ok := body["processes"].([]any); ok {
			for _, item := range list {
				if p := item.(map[string]any); p["id"] == "o1" {
					p["panic"], p["damaged"] = panicked, 2
				}
			}
		}
		if body["stream"] == "CateringMatch$o1" {
			body["panic"], body["damaged"] = panicked, []any{1, 3}
		}
	}, "/v1/processes/CateringMatch", "/v1/processes/CateringMatch/o1")
	b := newBrowser(t, base)
	t.Cleanup(func() { b.check(t) })
	text := b.text

	b.open(t, "#/processes/CateringMatch", "process-list")
	b.poll(t, `document.querySelectorAll('tr[data-process]').length === 2`)
	marks := func(id string) string {
		return text(t, `[...document.querySelectorAll('tr[data-process="`+id+`"] .mark.held, tr[data-process="`+id+`"] .mark.damaged')]
			.map((m) => m.textContent + ' (' + m.title + ')').join('; ')`)
	}
	if got := marks("o1"); !strings.Contains(got, "held: panicked ("+panicked+")") || !strings.Contains(got, "2 damaged") {
		t.Errorf("the process list marks o1 %q, want it held (with the panic as the title) and 2 damaged", got)
	}
	if got := marks("o2"); got != "" {
		t.Errorf("the process list marks o2, neither held nor damaged, %q", got)
	}

	b.open(t, "#/processes/CateringMatch/o1", "process")
	b.poll(t, `document.getElementById('panic') !== null`)
	if got := text(t, `document.getElementById('panic').textContent`); !strings.Contains(got, panicked) || !strings.Contains(got, "until pmd starts again") {
		t.Errorf("the page of o1 says %q of the panic, want the panic and that it holds the process until pmd starts again", got)
	}
	if got := text(t, `(e => e ? e.textContent : '')(document.getElementById('damaged'))`); !strings.Contains(got, "version 1, 3") || !strings.Contains(got, "pmd repair") {
		t.Errorf("the page of o1 says %q of the damage, want versions 1, 3 and pmd repair", got)
	}

	b.open(t, "#/processes/CateringMatch/o2", "process")
	b.poll(t, `document.querySelectorAll('#timeline > li').length === 2`)
	if n := text(t, `String(document.querySelectorAll('#panic, #damaged').length)`); n != "0" {
		t.Errorf("the page of o2, neither held nor damaged, shows %s notices", n)
	}
}
