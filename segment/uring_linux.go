package segment

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// syncRing is a minimal io_uring that runs a group commit's fdatasyncs and
// waits for them without holding a Go P.
//
// Why: a goroutine blocked in a syscall keeps its P until sysmon takes it
// back, and sysmon, finding little to do, sleeps up to 10 ms between looks.
// A group commit's fdatasync (0.2-1 ms here) then strands whatever was
// queued on that P: the fetches an append just woke, and the group
// commit's other fdatasync goroutines, which ran one after another instead
// of in parallel. A trace of bench/tail.sh showed a woken fetch waiting
// p50 0.36 ms to run, the length of the fsync in front of it. Through the
// ring the fdatasyncs run on the kernel's io-wq workers, all at once, and
// the syncer waits on an eventfd through Go's netpoller, which parks it.
//
// One goroutine at a time (the disk's syncer) may use a ring.
type syncRing struct {
	fd      int
	entries uint32
	sqMem   []byte // the SQ ring, and the CQ ring with IORING_FEAT_SINGLE_MMAP
	cqMem   []byte // the CQ ring when mapped apart; nil otherwise
	sqeMem  []byte

	sqTail, sqMask *uint32
	sqArray        unsafe.Pointer // uint32[entries]
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           unsafe.Pointer // ioCQE[cq entries]

	efd  *os.File // signalled by the kernel on each completion
	ebuf [8]byte
}

// The kernel ABI (include/uapi/linux/io_uring.h).
const (
	ioringOffSQRing  = 0
	ioringOffCQRing  = 0x8000000
	ioringOffSQEs    = 0x10000000
	ioringFeatSingle = 1 << 0 // IORING_FEAT_SINGLE_MMAP
	ioringFeat56     = 1 << 3 // IORING_FEAT_RW_CUR_POS: Linux 5.6, which has IOSQE_ASYNC
	ioringOpFsync    = 3
	ioringFsyncData  = 1 << 0 // IORING_FSYNC_DATASYNC
	iosqeAsync       = 1 << 4 // IOSQE_ASYNC: straight to io-wq (fsync cannot run inline)
	ioringRegEventfd = 4      // IORING_REGISTER_EVENTFD
	ioringEnterGetev = 1 << 0 // IORING_ENTER_GETEVENTS
)

type ioSQRingOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type ioCQRingOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type ioParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  ioSQRingOffsets
	cqOff                                                                  ioCQRingOffsets
}

type ioSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFDIn  int32
	addr3       uint64
	pad2        uint64
}

type ioCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// ringNeeds is the feature bits a ring needs (a variable for the tests).
var ringNeeds uint32 = ioringFeat56

// newSyncRing sets up a ring of entries submission slots (a power of two).
// It fails where io_uring is missing or forbidden (old kernels,
// kernel.io_uring_disabled, seccomp): the caller then syncs on goroutines.
func newSyncRing(entries uint32) (*syncRing, error) {
	var p ioParams
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &syncRing{fd: int(fd), entries: p.sqEntries}
	if err := r.setup(&p); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// setup maps the rings and registers the eventfd; on an error the caller
// closes what was set up.
func (r *syncRing) setup(p *ioParams) (err error) {
	if p.features&ringNeeds != ringNeeds {
		// An older kernel would fail each fsync with EINVAL (IOSQE_ASYNC),
		// and a failed fsync takes its log offline.
		return fmt.Errorf("io_uring of a kernel older than 5.6 (features %#x): %w", p.features, unix.ENOSYS)
	}
	sqSize := int(p.sqOff.array + p.sqEntries*4)
	cqSize := int(p.cqOff.cqes + p.cqEntries*uint32(unsafe.Sizeof(ioCQE{})))
	single := p.features&ioringFeatSingle != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	const prot, flags = unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_POPULATE
	if r.sqMem, err = unix.Mmap(r.fd, ioringOffSQRing, sqSize, prot, flags); err != nil {
		return fmt.Errorf("io_uring sq ring: %w", err)
	}
	cqMem := r.sqMem
	if !single {
		if r.cqMem, err = unix.Mmap(r.fd, ioringOffCQRing, cqSize, prot, flags); err != nil {
			return fmt.Errorf("io_uring cq ring: %w", err)
		}
		cqMem = r.cqMem
	}
	if r.sqeMem, err = unix.Mmap(r.fd, ioringOffSQEs, int(p.sqEntries)*int(unsafe.Sizeof(ioSQE{})), prot, flags); err != nil {
		return fmt.Errorf("io_uring sqes: %w", err)
	}
	u32 := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	r.sqTail = u32(r.sqMem, p.sqOff.tail)
	r.sqMask = u32(r.sqMem, p.sqOff.ringMask)
	r.sqArray = unsafe.Pointer(&r.sqMem[p.sqOff.array])
	r.cqHead = u32(cqMem, p.cqOff.head)
	r.cqTail = u32(cqMem, p.cqOff.tail)
	r.cqMask = *u32(cqMem, p.cqOff.ringMask)
	r.cqes = unsafe.Pointer(&cqMem[p.cqOff.cqes])

	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	r.efd = os.NewFile(uintptr(efd), "io_uring-eventfd") // non-blocking: read through the netpoller
	efd32 := int32(efd)
	if _, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), ioringRegEventfd, uintptr(unsafe.Pointer(&efd32)), 1, 0, 0); errno != 0 {
		return fmt.Errorf("io_uring_register eventfd: %w", errno)
	}
	return nil
}

// The outcomes fdatasync leaves for the fds it could not finish when the
// ring failed.
var (
	// errNotSubmitted: the kernel never took it; syncing it another way
	// is safe.
	errNotSubmitted = errors.New("io_uring: fdatasync not submitted")
	// errLost: submitted, and its completion could not be read: whether
	// the data is durable, and whether the kernel already reported (and
	// so cleared) a write error, is unknown.
	errLost = errors.New("io_uring: fdatasync submitted, its outcome lost")
)

// maxRingRetries bounds the submissions in a row that take nothing (EAGAIN,
// EBUSY, EINTR) before the ring counts as failed.
const maxRingRetries = 1000

// fdatasync syncs every fd, all in flight at once (at most the ring's
// entries at a time), and sets each one's outcome in errs, which must be
// as long as fds: nil when synced, its error otherwise. If the ring fails
// it returns the error, and the fds it did not finish have
// errNotSubmitted or errLost; the ring must not be used again.
func (r *syncRing) fdatasync(fds []int, errs []error) error {
	for i := range errs {
		errs[i] = errNotSubmitted
	}
	for start := 0; start < len(fds); start += int(r.entries) {
		end := min(start+int(r.entries), len(fds))
		if err := r.run(fds[start:end], errs[start:end]); err != nil {
			return err
		}
	}
	return nil
}

// run submits one fdatasync per fd (len(fds) <= entries) and waits for
// them all.
func (r *syncRing) run(fds []int, errs []error) error {
	tail := atomic.LoadUint32(r.sqTail)
	mask := *r.sqMask
	for i, fd := range fds {
		idx := (tail + uint32(i)) & mask
		sqe := (*ioSQE)(unsafe.Pointer(&r.sqeMem[uintptr(idx)*unsafe.Sizeof(ioSQE{})]))
		*sqe = ioSQE{opcode: ioringOpFsync, flags: iosqeAsync, fd: int32(fd), opFlags: ioringFsyncData, userData: uint64(i)}
		*(*uint32)(unsafe.Add(r.sqArray, uintptr(idx)*4)) = idx
	}
	atomic.StoreUint32(r.sqTail, tail+uint32(len(fds)))
	submitted, retries := 0, 0
	var err error
	for submitted < len(fds) && err == nil {
		// Submission does not block: the fsyncs go to io-wq (IOSQE_ASYNC).
		// The kernel takes SQEs in order, so the first submitted are.
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(len(fds)-submitted), 0, 0, 0, 0)
		switch {
		case errno == 0 && n > 0:
			for i := submitted; i < submitted+int(n); i++ {
				errs[i] = errLost // until its completion is read
			}
			submitted += int(n)
			retries = 0
		case errno == 0 || errno == unix.EINTR || errno == unix.EAGAIN || errno == unix.EBUSY:
			if retries++; retries > maxRingRetries {
				err = fmt.Errorf("io_uring_enter: %d submissions took nothing (%v)", retries, errno)
			}
		default:
			err = fmt.Errorf("io_uring_enter: %w", errno)
		}
	}
	// Wait for what was submitted, through the netpoller; should the
	// eventfd fail, in io_uring_enter.
	for done, blocking := r.reap(errs), false; done < submitted; done += r.reap(errs) {
		if !blocking {
			if _, rerr := r.efd.Read(r.ebuf[:]); rerr != nil {
				err, blocking = errors.Join(err, fmt.Errorf("io_uring eventfd: %w", rerr)), true
			}
			continue
		}
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, uintptr(submitted-done), ioringEnterGetev, 0, 0)
		if errno != 0 && errno != unix.EINTR {
			return errors.Join(err, fmt.Errorf("io_uring_enter to wait: %w", errno))
		}
	}
	return err
}

// reap reads the completions there are into errs and returns how many.
func (r *syncRing) reap(errs []error) int {
	head := atomic.LoadUint32(r.cqHead)
	ctail := atomic.LoadUint32(r.cqTail)
	n := 0
	for ; head != ctail; head++ {
		cqe := (*ioCQE)(unsafe.Add(r.cqes, uintptr(head&r.cqMask)*unsafe.Sizeof(ioCQE{})))
		var err error
		if cqe.res < 0 {
			err = syscall.Errno(-cqe.res)
		}
		if i := cqe.userData; i < uint64(len(errs)) {
			errs[i] = err
		}
		n++
	}
	atomic.StoreUint32(r.cqHead, head)
	return n
}

// close releases the ring, whatever of it was set up; it must not be in
// use. Closing again does nothing.
func (r *syncRing) close() {
	for _, m := range []*[]byte{&r.sqeMem, &r.cqMem, &r.sqMem} {
		if *m != nil {
			_ = unix.Munmap(*m)
			*m = nil
		}
	}
	if r.efd != nil {
		_ = r.efd.Close()
		r.efd = nil
	}
	if r.fd >= 0 {
		_ = unix.Close(r.fd)
		r.fd = -1
	}
}
