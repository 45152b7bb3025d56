package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	pmdlog "github.com/pmd-dev/pmd/log"
)

// StoreIDFile is the file of a data directory that holds its store id: one line, the
// UUID in its canonical form.
const StoreIDFile = "STORE_ID"

// ID is the store's id: a random UUID made when the data directory was created (or, for
// a directory written by a pmd that had no store ids, when such a pmd first opened it)
// and the same at every Open after. A copy of the data directory is the same store, and
// has the same id.
func (e *Engine) ID() uuid.UUID { return e.id }

// loadID reads the store id of the data directory, making and saving one if it has none.
// The id is written to a temporary file, synced and renamed into place, and the
// directory synced, so that a crash leaves either no id (the next Open makes one, and
// nothing can have used the lost one) or a whole one. It is synced whatever NoSync says,
// as the format file is: written once in a store's life, it costs nothing, and unsynced
// a power cut can leave the file renamed into place but empty, which no Open accepts.
func (e *Engine) loadID() error {
	id, err := readID(e.dir)
	if err != nil || id != uuid.Nil {
		e.id = id
		return err
	}
	path := filepath.Join(e.dir, StoreIDFile)
	id, err = uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("make a store id: %w", err)
	}
	if err := ReplaceFile(path, []byte(id.String()+"\n"), true); err != nil {
		return fmt.Errorf("save the store id: %w", err)
	}
	e.id = id
	return nil
}

// readID reads the store id of the data directory dir: uuid.Nil if it has none.
func readID(dir string) (uuid.UUID, error) {
	path := filepath.Join(dir, StoreIDFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return uuid.Nil, nil
	case errors.Is(err, fs.ErrPermission):
		return uuid.Nil, fmt.Errorf("%s cannot be read by this user (%w): it is not damage; run pmd as the store's user (the owner of %s), or let this user read the file", path, fs.ErrPermission, dir)
	case err != nil:
		return uuid.Nil, fmt.Errorf("read the store id: %w", err)
	}
	id, err := uuid.Parse(strings.TrimSpace(string(b)))
	if err != nil || id == uuid.Nil {
		what := "removing the file gives the store a new id"
		if _, err := os.Stat(filepath.Join(dir, RaftDir)); err == nil {
			// Every member holds the cluster's store id: one of its own is another
			// store's, which the cluster refuses (it would have to start empty).
			what = "this is a cluster node's: copy STORE_ID from another member of its cluster, which holds the cluster's store id (removing the file would give the node a new id, and the cluster refuses a node holding another store's records)"
		}
		return uuid.Nil, fmt.Errorf("%s: %q is not a store id: a UUID, other than the nil one, was expected (a pmd that wrote it with syncing off can have left it empty in a power cut; no crash leaves it so otherwise): %s", path, b, what)
	}
	return id, nil
}

// ReplaceFile writes data to path through a temporary file renamed into place; with
// sync, the file is synced before the rename and its directory after, so that a crash
// leaves the old file or the new one. (Package cluster keeps its Raft stable store so.)
func ReplaceFile(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	// One a process killed while it wrote is removed first: os.WriteFile would only
	// truncate it, which another user's (root's, in this user's store) refuses.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	// Written as root in another user's store (a format upgrade, a store id), it would
	// lock that user out of the store.
	if err := pmdlog.AdoptOwnerPath(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if sync {
		if err := SyncFile(tmp); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return SyncFile(filepath.Dir(path))
}
