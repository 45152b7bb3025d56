package pm

import "context"

// QueuedDataBytes is how many bytes of command data the commands queued for delivery
// hold, as Options.QueueBytes counts them: for tests of that bound.
func (m *Manager) QueuedDataBytes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.delivery == nil {
		return 0
	}
	return m.delivery.held
}

// QueuedDataHeld is how the commands queued for delivery hold their data: how many
// hold it decoded (Command.Data, a map, which takes many times its encoding), and the
// bytes they hold encoded.
func (m *Manager) QueuedDataHeld() (decoded, encoded int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.delivery == nil {
		return 0, 0
	}
	for _, xs := range m.delivery.byID {
		for _, x := range xs {
			if x.cmd.Data != nil {
				decoded++
			}
			encoded += len(x.data)
		}
	}
	return decoded, encoded
}

// ScannedDataBytes reads the manager's commands again from the first position, as it
// reads those written since it last read when nothing is queued (the whole bound
// left), and returns the bytes of data the commands read hold before they are queued.
func (m *Manager) ScannedDataBytes(ctx context.Context) (int, error) {
	found, _, err := m.cmdsrc.scan(ctx, 1, m.delivery.opts.holdBytes)
	n := 0
	for _, x := range found {
		n += x.size
	}
	return n, err
}
