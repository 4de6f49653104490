package segment

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// cleanMarker exists in a data directory only between a clean shutdown and
// the next start.
const cleanMarker = CleanMarkerFile

// CleanMarkerFile is the clean-shutdown marker's name in a data directory
// (offline tools read it).
const CleanMarkerFile = ".samsa-clean-shutdown"

// StoreOptions configure a Store.
type StoreOptions struct {
	Dir                    string
	FlushInterval          time.Duration // background fsync of acks<all data; 0 = none
	RetentionCheckInterval time.Duration
	// CleanerInterval is how often compacted logs are checked for a
	// compaction pass (log.cleaner.backoff.ms); 0 = 15 s.
	CleanerInterval time.Duration
	Logger          *slog.Logger
	// PinThread, if set, runs first on each disk goroutine (writer and
	// syncer) to lock it to its OS thread and pin that to CPUs.
	PinThread func()
	// OnSync, if set, observes how long each group fsync took (metrics).
	OnSync func(time.Duration)
	// OnStages, if set, observes where each append that waited for its
	// fsync (acks=all) spent its time on the disk (metrics).
	OnStages func(Stages)
	// MinFreeBytes is the free-space reserve (min_free_bytes): below it
	// appends to user logs are refused. Negative: min(256 MiB, 5% of the
	// filesystem); 0: none (only a full disk refuses).
	MinFreeBytes int64
	// RecoveryThreads is how many logs OpenAll opens (and verifies, after
	// a crash) at once, and Close closes at once: Kafka's
	// num.recovery.threads.per.data.dir. 0: DefaultRecoveryThreads.
	RecoveryThreads int
}

// DefaultRecoveryThreads is twice the CPUs, at least 4 and at most 32:
// opening a log is mostly small reads and metadata system calls, which
// wait on the disk when the page cache is cold (after a reboot).
func DefaultRecoveryThreads() int { return min(max(2*runtime.GOMAXPROCS(0), 4), 32) }

// Store is the set of partition logs in one data directory, with the disk
// goroutines that write them and the retention and compaction loops.
//
// Lock order: Store.mu before Log.mu (LOCKS.md).
type Store struct {
	opts   StoreOptions
	disk   *Disk
	logger *slog.Logger
	lock   *os.File
	clean  bool

	mu   sync.Mutex
	logs map[string]*Log // (mu) by directory name

	quit      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// OpenStore locks the data directory and starts its disk goroutines.
func OpenStore(opts StoreOptions) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = 5 * time.Minute
	}
	if opts.RecoveryThreads <= 0 {
		opts.RecoveryThreads = DefaultRecoveryThreads()
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create data dir: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open lock file: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("cannot lock data dir %s (is another broker using it?): %w", opts.Dir, err)
	}
	marker := filepath.Join(opts.Dir, cleanMarker)
	_, err = os.Stat(marker)
	clean := err == nil
	s := &Store{
		opts:   opts,
		logger: opts.Logger.With("subsystem", "store"),
		lock:   lock,
		clean:  clean,
		logs:   map[string]*Log{},
		quit:   make(chan struct{}),
	}
	s.disk = NewDisk(opts.Dir, opts.FlushInterval, opts.PinThread, opts.Logger)
	s.disk.starting.Store(true)
	if opts.OnSync != nil {
		s.disk.onSync.Store(&opts.OnSync)
	}
	if opts.OnStages != nil {
		s.disk.onStages.Store(&opts.OnStages)
	}
	if !clean && len(s.Names()) > 0 {
		s.logger.Info("last shutdown was not clean; logs will be verified", "dir", opts.Dir)
	}
	s.disk.SetReserve(opts.MinFreeBytes)
	s.startRetention()
	s.startCleaner()
	s.every(spaceCheckInterval, s.checkSpace)
	return s, nil
}

// MarkOpen removes the clean-shutdown marker, once every log is open: from
// then on a crash must be recovered from. First it makes what the logs'
// recovery verified durable, with one syncfs of the data directory's
// filesystem rather than an fsync per log (OpenLog leaves them to it).
func (s *Store) MarkOpen() error {
	if s.disk.starting.Load() {
		if err := syncFS(s.opts.Dir); err != nil {
			return err
		}
		s.disk.starting.Store(false)
	}
	err := os.Remove(filepath.Join(s.opts.Dir, cleanMarker))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("cannot remove clean-shutdown marker: %w", err)
	}
	return syncDir(s.opts.Dir)
}

// spaceCheckInterval is how often free space is checked while the disk is
// idle, and logs a full disk took offline are tried again.
const spaceCheckInterval = time.Second

// Space reports the data directory's free space and reserve.
func (s *Store) Space() DiskSpace { return s.disk.Space() }

// SetCopying says whether the logs are a standby's copies (Disk.SetCopying).
func (s *Store) SetCopying(on bool) { s.disk.SetCopying(on) }

// Copying reports what SetCopying last said.
func (s *Store) Copying() bool { return s.disk.copying.Load() }

// Dir is the data directory.
func (s *Store) Dir() string { return s.opts.Dir }

// WasClean reports whether the previous shutdown was clean.
func (s *Store) WasClean() bool { return s.clean }

// Open opens or creates the log in the named subdirectory.
func (s *Store) Open(name string, cfg Config) (*Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.logs[name]; l != nil {
		l.SetConfig(cfg)
		return l, nil
	}
	dir := filepath.Join(s.opts.Dir, name)
	_, statErr := os.Stat(dir)
	l, err := OpenLog(dir, s.disk, cfg, s.clean, s.opts.Logger)
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) {
		if err := syncDir(s.opts.Dir); err != nil {
			l.Close(false)
			return nil, err
		}
	}
	s.logs[name] = l
	return l, nil
}

// Segments is how many segments the store's logs hold.
func (s *Store) Segments() int {
	n := 0
	for _, l := range s.snapshot() {
		l.mu.RLock()
		n += len(l.segs)
		l.mu.RUnlock()
	}
	return n
}

// LogSpec names a log for OpenAll and gives its configuration.
type LogSpec struct {
	Name   string
	Config Config
}

// OpenAll opens the logs of specs not yet open, RecoveryThreads at a time,
// so that Open hands them back at once. It reports each log it cannot open
// to failed (which may be nil); Open tries those again and returns the
// error. For start-up, where thousands of partitions would otherwise be
// opened (and after a crash, verified) one after another.
func (s *Store) OpenAll(specs []LogSpec, failed func(name string, err error)) {
	exists := map[string]bool{} // one listing, not a stat per log
	for _, name := range s.Names() {
		exists[name] = true
	}
	work := make(chan LogSpec)
	var wg sync.WaitGroup
	for range min(s.opts.RecoveryThreads, len(specs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for spec := range work {
				l, err := OpenLog(filepath.Join(s.opts.Dir, spec.Name), s.disk, spec.Config, s.clean, s.opts.Logger)
				if err != nil {
					if failed != nil {
						failed(spec.Name, err)
					}
					continue
				}
				s.mu.Lock()
				if s.logs[spec.Name] == nil {
					s.logs[spec.Name] = l
					l = nil
				}
				s.mu.Unlock()
				if l != nil {
					l.Close(false) // opened twice; keep the first
				}
			}
		}()
	}
	for _, spec := range specs {
		s.mu.Lock()
		open := s.logs[spec.Name] != nil
		s.mu.Unlock()
		// A new log is left to Open, which creates it and syncs the
		// directory.
		if !open && exists[spec.Name] {
			work <- spec
		}
	}
	close(work)
	wg.Wait()
}

// Remove deletes the named log and its files.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	l := s.logs[name]
	delete(s.logs, name)
	s.mu.Unlock()
	if l == nil {
		return os.RemoveAll(filepath.Join(s.opts.Dir, name))
	}
	// Let queued writes for it finish before the files go.
	done := make(chan struct{})
	l.Sync(func(error) { close(done) })
	<-done
	return l.Delete()
}

// Names lists the subdirectories of the data directory that hold logs.
func (s *Store) Names() []string {
	ents, _ := os.ReadDir(s.opts.Dir)
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func (s *Store) startRetention() { s.every(s.opts.RetentionCheckInterval, s.EnforceRetention) }

func (s *Store) startCleaner() {
	every := s.opts.CleanerInterval
	if every <= 0 {
		every = 15 * time.Second
	}
	s.every(every, s.Compact)
}

// every runs fn each interval until the store closes.
func (s *Store) every(interval time.Duration, fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				fn()
			}
		}
	}()
}

// Compact runs a compaction pass over every log that asks for one.
func (s *Store) Compact() {
	for _, l := range s.snapshot() {
		select {
		case <-s.quit:
			return
		default:
		}
		if _, err := l.Compact(time.Now()); err != nil {
			l.logger.Error("compaction failed", "err", err)
		}
	}
}

func (s *Store) snapshot() []*Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := make([]*Log, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	return logs
}

// EnforceRetention runs one retention pass over every log.
func (s *Store) EnforceRetention() {
	now := time.Now()
	for _, l := range s.snapshot() {
		l.enforceRetention(now)
	}
}

// Close drains and syncs every pending write, closes the logs cleanly and
// leaves the clean-shutdown marker. Calls after the first return its result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	close(s.quit)
	for _, l := range s.snapshot() {
		l.cleanStop.Store(true)
	}
	s.wg.Wait()
	s.disk.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	clean := true
	for _, l := range s.logs {
		if l.failure() != nil {
			clean = false
		}
	}
	// Each changed log writes its indexes and snapshot without fsync,
	// RecoveryThreads at a time; one syncfs makes them durable, then the
	// marker says they can be trusted.
	start := time.Now()
	work := make(chan *Log)
	var wg sync.WaitGroup
	var written atomic.Int64
	for range min(s.opts.RecoveryThreads, len(s.logs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				if l.Close(true) {
					written.Add(1)
				}
			}
		}()
	}
	for _, l := range s.logs {
		work <- l
	}
	close(work)
	wg.Wait()
	closed := time.Since(start)
	var err error
	if clean {
		err = syncFS(s.opts.Dir)
		s.logger.Info("logs closed", "logs", len(s.logs), "rewritten", written.Load(),
			"close", closed.Round(time.Millisecond), "syncfs", (time.Since(start) - closed).Round(time.Millisecond))
		if err == nil {
			err = writeFileSync(filepath.Join(s.opts.Dir, cleanMarker), nil)
		}
		if err == nil {
			err = syncDir(s.opts.Dir)
		}
	}
	s.lock.Close()
	return err
}

// syncFS makes everything written to dir's filesystem durable: syncfs(2),
// which reports writeback errors since Linux 5.8.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("cannot sync the filesystem of %s: %w", dir, err)
	}
	return nil
}
