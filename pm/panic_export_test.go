package pm

import "maps"

// HeldPanics returns what the manager keeps of the panics it holds processes for.
func (m *Manager) HeldPanics() map[string]*PanicError {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.held)
}
