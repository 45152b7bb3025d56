package pm

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
