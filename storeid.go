package pmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// StoreIDFile is the file of a data directory that holds its store id: one line, the
// UUID in its canonical form.
const StoreIDFile = "STORE_ID"

// ID is the store's id: a random UUID made when the data directory was created (or, for
// a directory written by a pmd that had no store ids, when such a pmd first opened it)
// and the same at every Open after. Anything that must not collide between two stores,
// such as the ids of the commands process managers issue, puts it in. A copy of the
// data directory is the same store, and has the same id.
func (s *Store) ID() uuid.UUID { return s.id }

// loadStoreID reads the store id of the data directory dir, making and saving one if it
// has none. The caller holds the directory's lock. The id is written to a temporary
// file, synced and renamed into place, and the directory synced, so that a crash leaves
// either no id (the next Open makes one, and nothing can have used the lost one) or a
// whole one; noSync skips the syncs, as Options.NoSync does for the log.
func loadStoreID(dir string, noSync bool) (uuid.UUID, error) {
	path := filepath.Join(dir, StoreIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, err := uuid.Parse(strings.TrimSpace(string(b)))
		if err != nil || id == uuid.Nil {
			return uuid.Nil, fmt.Errorf("pmd: %s: %q is not a store id: a UUID, other than the nil one, was expected", path, b)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return uuid.Nil, fmt.Errorf("pmd: read the store id: %w", err)
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return uuid.Nil, fmt.Errorf("pmd: make a store id: %w", err)
	}
	tmp := path + ".tmp"
	if err := writeSynced(tmp, []byte(id.String()+"\n"), noSync); err != nil {
		return uuid.Nil, fmt.Errorf("pmd: save the store id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return uuid.Nil, fmt.Errorf("pmd: save the store id: %w", err)
	}
	if !noSync {
		if err := syncPath(dir); err != nil {
			return uuid.Nil, fmt.Errorf("pmd: save the store id: %w", err)
		}
	}
	return id, nil
}

// writeSynced writes data to a new file at path and, unless noSync, syncs it.
func writeSynced(path string, data []byte, noSync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncPath syncs the file or directory at path.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
