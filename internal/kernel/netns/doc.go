// Package netns is the one place Muon enters network namespaces.
//
// A network namespace belongs to an OS thread, not to a goroutine, and
// Go moves goroutines between threads freely. So the rule is:
//
//   - Prefer handles bound to a namespace (netlink.NewHandleAt, sockets
//     made inside it) over entering it: kernel.OpenAt does that, and then
//     no call depends on which namespace a thread is in.
//   - When code must run inside a namespace (making a socket there,
//     creating a namespace, which moves the creating thread), it runs
//     through Do, DoNamed or New: on a goroutine of its own with its
//     thread locked, which returns to its namespace and is unlocked
//     after; a thread that cannot return stays locked, so the runtime
//     throws it away when the goroutine ends instead of handing a thread
//     in the wrong namespace to other goroutines.
//   - Nothing else calls netns.Set or runtime.LockOSThread.
//
// (After containernetworking's pkg/ns, which states the same rule.)
package netns
