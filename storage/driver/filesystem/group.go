package filesystem

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Group commit.
//
// Every write that must be durable when it returns (a whole-object put, an
// empty object's creation, a Move, a Writer's Commit) hands the driver's
// committer a commit: an optional file whose data must reach the disk first, an
// optional rename to run once it has, and the directories whose entries must
// then reach the disk. Commits that arrive together share their syncs:
//
//   - A commit that finds no group being synced leads a group of its own at
//     once, so a lone request never waits for a window.
//   - Commits arriving while a group is being synced queue; when that group is
//     done its leader hands the lead to the first queued commit, which takes the
//     whole queue (at most maxGroup) as the next group. The window is thus as
//     long as one group's syncs, and grows and shrinks with the load.
//   - But only where syncs are slow: while groups' syncs take less than
//     groupAbove on average, a commit arriving during one syncs by itself at
//     once instead of queueing (see groupSlowerThan).
//   - A group runs in three phases: its files' data is synced, then the renames
//     run in arrival order, then its directories are synced. A group with one
//     file (one directory) syncs it with fdatasync (fsync); a group with more
//     syncs them all with one syncfs(2) on the store's filesystem, which writes
//     back every dirty file there and commits the journal once. Each commit then
//     gets its own result: a failed sync fails only the commits it concerns
//     (after a failed syncfs, each file is synced alone to learn which).
//
// A crash at any point leaves each object absent or whole, as before grouping: a
// rename runs only after its file's data is durable, and no commit is answered
// before its directories are synced. The caller keeps holding its path lock while
// its commit is in a group, so a PutContentIf's check, rename and sync stay one
// step for every other writer of the path.

// maxGroup bounds a group, so that a burst does not make one group's syncs, and
// the latency of everyone in it, unbounded.
const maxGroup = 128

// maxParallelSyncs bounds the syncs a group runs at once.
const maxParallelSyncs = 16

// commit is one request's share of a group.
type commit struct {
	fd     int          // file to sync before rename, or -1
	rename func() error // runs once fd is durable; nil for none
	dirs   []string     // directories to fsync after rename
	err    error        // the result, set by the group's leader
	wake   chan bool    // true: lead the next group; false: done, see err
}

// committer groups commits (see above). The zero value is ready to use.
type committer struct {
	mu    sync.Mutex
	busy  bool // a group is being synced; new commits queue
	queue []*commit

	// Counters for tests: groups run, and sync system calls made.
	groups atomic.Int64
	syncs  atomic.Int64
	// testHookGroup, when set, is called by a group's leader with the group's
	// size before it syncs anything.
	testHookGroup func(n int)
	// syncfsRoot is a directory on the store's filesystem, for syncfs(2).
	syncfsRoot string
	// syncfsFrom is how many files (or directories) a group must sync for one
	// syncfs(2) to replace their fdatasync (or fsync) calls; 0 means never. See
	// BenchmarkGroupCommit for the alternatives measured.
	syncfsFrom int
	// alone, when set, syncs every commit by itself, as before group commit,
	// for the same benchmark.
	alone bool
	// groupAbove is how long a group's syncs must take on average for a commit
	// arriving during one to queue for the next; below it, it syncs by itself at
	// once, beside the group. See groupSlowerThan.
	groupAbove time.Duration
	// avgSync is a moving average of how long groups' (and lone commits')
	// syncs took, in nanoseconds.
	avgSync atomic.Int64
}

// groupSlowerThan is the default groupAbove. A follower's wait costs up to two
// group durations plus two goroutine wake-ups, which on a busy machine can take
// a millisecond or more each; a sync that takes less than that is cheaper done
// at once. On the fast virtual disk this was measured on (a sync took 0.15-0.3
// ms) queueing made small pushes slower, so commits sync alone there; on disks
// whose syncs take milliseconds (network block storage, spinning disks) they
// share them.
const groupSlowerThan = 2 * time.Millisecond

// queued returns how many commits wait for the next group.
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// do runs cm in a group and returns its result.
func (c *committer) do(cm *commit) error {
	c.mu.Lock()
	if c.alone || c.busy && time.Duration(c.avgSync.Load()) < c.groupAbove {
		// Syncs are fast: sync now, beside any group in flight.
		c.mu.Unlock()
		c.run([]*commit{cm})
		return cm.err
	}
	if c.busy {
		cm.wake = make(chan bool, 1)
		c.queue = append(c.queue, cm)
		c.mu.Unlock()
		if lead := <-cm.wake; !lead {
			return cm.err
		}
		c.mu.Lock() // this commit leads the next group, which includes it
	} else {
		c.busy = true
		c.queue = append(c.queue, cm)
	}
	n := min(len(c.queue), maxGroup)
	group := make([]*commit, n)
	copy(group, c.queue)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	c.mu.Unlock()

	c.run(group)

	c.mu.Lock()
	var next *commit
	if len(c.queue) > 0 {
		next = c.queue[0]
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	if next != nil {
		next.wake <- true
	}
	for _, g := range group {
		if g != cm {
			g.wake <- false
		}
	}
	return cm.err
}

// run syncs one group's files, renames and directories, setting each commit's err.
func (c *committer) run(group []*commit) {
	start := time.Now()
	defer func() {
		avg := c.avgSync.Load()
		c.avgSync.Store(avg + (int64(time.Since(start))-avg)/8)
	}()
	c.groups.Add(1)
	if c.testHookGroup != nil {
		c.testHookGroup(len(group))
	}
	var files []*commit
	for _, cm := range group {
		if cm.fd >= 0 {
			files = append(files, cm)
		}
	}
	if !c.useSyncfs(len(files)) || c.syncfs() != nil {
		// One sync per file; also the way to learn which file a failed
		// syncfs concerned.
		parallel(len(files), func(i int) {
			c.syncs.Add(1)
			files[i].err = fdatasync(files[i].fd)
		})
	}
	for _, cm := range group {
		if cm.err == nil && cm.rename != nil {
			cm.err = cm.rename()
		}
	}
	dirs := map[string][]*commit{}
	var order []string
	for _, cm := range group {
		if cm.err != nil {
			continue
		}
		for _, d := range cm.dirs {
			if _, ok := dirs[d]; !ok {
				order = append(order, d)
			}
			dirs[d] = append(dirs[d], cm)
		}
	}
	errs := make([]error, len(order))
	if !c.useSyncfs(len(order)) || c.syncfs() != nil {
		parallel(len(order), func(i int) {
			c.syncs.Add(1)
			errs[i] = syncDir(order[i])
		})
	}
	for i, d := range order {
		// A directory gone since the rename was pruned by a concurrent Delete,
		// which removed the new entry too: nothing left to make durable.
		if errs[i] == nil || errors.Is(errs[i], fs.ErrNotExist) {
			continue
		}
		for _, cm := range dirs[d] {
			if cm.err == nil {
				cm.err = errs[i]
			}
		}
	}
}

// useSyncfs reports whether n files or directories are synced with one syncfs.
func (c *committer) useSyncfs(n int) bool {
	return c.syncfsFrom > 0 && n >= c.syncfsFrom && c.syncfsRoot != ""
}

// syncfs syncs the whole filesystem holding syncfsRoot.
func (c *committer) syncfs() error {
	fd, err := openRetry(c.syncfsRoot, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	c.syncs.Add(1)
	for {
		if err = unix.Syncfs(fd); err != syscall.EINTR {
			return err
		}
	}
}

// parallel runs f(0) ... f(n-1), at most maxParallelSyncs at once, the first on
// the calling goroutine.
func parallel(n int, f func(i int)) {
	switch n {
	case 0:
		return
	case 1:
		f(0)
		return
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	workers := min(n, maxParallelSyncs)
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			f(i)
		}
	}
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// fdatasync syncs fd's data and the metadata needed to read it back, retried on EINTR.
func fdatasync(fd int) error {
	for {
		err := unix.Fdatasync(fd)
		if err != syscall.EINTR {
			if err != nil {
				return os.NewSyscallError("fdatasync", err)
			}
			return nil
		}
	}
}
