package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pmd-dev/pmd"
)

// TestWebhookCommandCarriesItsCorrelation: the body a webhook receives names the
// command's correlation_id (that of the fact that completed the process, here one the
// client set), so that a receiver can give the events it appends in response the
// command's id as causation_id and its correlation_id (contract section 1).
func TestWebhookCommandCarriesItsCorrelation(t *testing.T) {
	bodies := make(chan map[string]any, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		bodies <- body
	}))
	defer receiver.Close()
	d := startInProcess(t, cateringConfig(t, receiver.URL))
	ctx := context.Background()
	for _, e := range []pmd.EventData{
		{Type: "CustomerConfirmedMenu", Data: map[string]any{"order_id": "7"}},
		{Type: "CatererConfirmedMenu", Data: map[string]any{"order_id": "7"}, Metadata: map[string]any{pmd.CorrelationID: "checkout-7"}},
	} {
		if _, err := d.store.Append(ctx, "facts", pmd.Any, e); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case body := <-bodies:
		if body["type"] != "ConfirmOrder" || body["correlation_id"] != "checkout-7" {
			t.Fatalf("webhook body %v, want ConfirmOrder with correlation_id checkout-7", body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no command delivered within 30 s")
	}
}
