package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	vnetns "github.com/vishvananda/netns"
)

// Handle is an open network namespace.
type Handle = vnetns.NsHandle

// onThread runs fn on a locked thread of a goroutine of its own and
// returns the thread to the namespace it started in; fn may move it.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			// Where this thread is, is unknown: it stays locked and dies
			// with the goroutine.
			errc <- fmt.Errorf("netns: current namespace: %w", err)
			return
		}
		defer orig.Close()
		err = fn()
		if vnetns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Do runs fn inside namespace ns, without moving the caller.
func Do(ns Handle, fn func() error) error {
	return onThread(func() error {
		if err := vnetns.Set(ns); err != nil {
			return fmt.Errorf("netns: enter: %w", err)
		}
		return fn()
	})
}

// DoNamed runs fn inside the named namespace (ip netns), without moving
// the caller.
func DoNamed(name string, fn func() error) error {
	ns, err := vnetns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer ns.Close()
	return Do(ns, fn)
}

// New makes an unnamed namespace without moving the caller; it lives
// while a handle to it is open.
func New() (Handle, error) {
	h := vnetns.None()
	err := onThread(func() error {
		var err error
		h, err = vnetns.New()
		return err
	})
	if err != nil {
		return vnetns.None(), fmt.Errorf("netns: make: %w", err)
	}
	return h, nil
}

// Ensure opens the named namespace, making it when missing, without
// moving the caller.
func Ensure(name string) (Handle, error) {
	if ns, err := vnetns.GetFromName(name); err == nil {
		if isNamespace(ns) {
			return ns, nil
		}
		// A name whose namespace went (its mount was another mount
		// namespace's, which ended): the name is made again.
		ns.Close()
		os.Remove(filepath.Join(runDir, name))
	}
	h := vnetns.None()
	err := onThread(func() error {
		var err error
		h, err = vnetns.NewNamed(name)
		return err
	})
	if err != nil {
		return vnetns.None(), fmt.Errorf("make network namespace %s: %w", name, err)
	}
	return h, nil
}

// runDir is where ip netns keeps named namespaces.
const runDir = "/run/netns"

// nsfsMagic is the file system type of namespace files.
const nsfsMagic = 0x6e736673

func isNamespace(h Handle) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(h), &st) == nil && st.Type == nsfsMagic
}

// OpenNamed opens the named namespace; a name that holds no namespace
// any more is os.ErrNotExist.
func OpenNamed(name string) (Handle, error) {
	h, err := vnetns.GetFromName(name)
	if err != nil {
		return h, err
	}
	if !isNamespace(h) {
		h.Close()
		return vnetns.None(), fmt.Errorf("netns %s: %w", name, os.ErrNotExist)
	}
	return h, nil
}

// DeleteNamed removes the named namespace's name; it goes when nothing
// holds it.
func DeleteNamed(name string) error { return vnetns.DeleteNamed(name) }

// Current opens the calling thread's namespace.
func Current() (Handle, error) { return vnetns.Get() }
