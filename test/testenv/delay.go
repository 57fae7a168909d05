package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Latency without the kernel's netem: Delay takes the host's veth end "<ns>b" off the bridge
// and puts a TAP device "<ns>t" on the bridge in its place; a relay in the test process
// moves every frame between the two, each after its delay:
//
//	host eth0 ⇄ <ns>b ─(AF_PACKET socket)─ relay ─(TAP fd)─ <ns>t ⇄ br0 ⇄ every other port
//
// Both file descriptors are opened inside the bridge's namespace (on a locked OS thread that
// then returns to its own) and work from any goroutine afterwards; they are non-blocking and held
// by os.File, so closing them ends a blocked read. Offloads pass through untouched: the
// packet socket (PACKET_VNET_HDR) and the TAP (IFF_VNET_HDR) both put the kernel's
// virtio_net_hdr in front of each frame, so a TSO/GSO super-frame and a frame whose checksum
// the sender left to the hardware cross the relay as they are, with their metadata, and
// the receiving stack segments or checksums them as it would on a plain veth.
const (
	// delayQueueFrames bounds each direction's queue of frames in flight (netem's default
	// limit is 1000 packets). A GSO frame carries up to 64 KiB, so 4096 of them in 200 ms is
	// far more than any test sends; beyond it frames are dropped, as by a full queue.
	delayQueueFrames = 4096
	// delayFrameMax is the largest read: a 64 KiB GSO frame, its Ethernet header and the
	// virtio_net_hdr, with room to spare.
	delayFrameMax = 1 << 17
	// vnetHdrLen is sizeof(struct virtio_net_hdr), what both PACKET_VNET_HDR and a TAP with
	// IFF_VNET_HDR put in front of each frame (the TAP's default header size).
	vnetHdrLen = 10
	// readRetryPause is how long a relay reader waits after a failed read (not a close)
	// before it reads again.
	readRetryPause = 10 * time.Millisecond
)

// delayLink is the relay Delay runs for one host.
type delayLink struct {
	host string
	port string // the host's veth end in the bridge's namespace
	tap  string
	pkt  *os.File // AF_PACKET socket bound to port
	dev  *os.File // the TAP
	// params holds the current delayParams; Delay may change them while the relay runs.
	params atomic.Pointer[delayParams]
	// dropped counts frames dropped because a direction's queue was full.
	dropped atomic.Int64
	stop    chan struct{} // closed by close
	wg      sync.WaitGroup
}

type delayParams struct {
	base, jitter time.Duration
}

// frame is one frame (virtio_net_hdr included) and the time it may leave.
type frame struct {
	b   []byte
	due time.Time
}

// Delay makes every frame host h sends and every frame it receives wait base ± jitter
// (uniform within [base−jitter, base+jitter]) on its link, without the kernel's netem: each
// direction is delayed, so a round trip between h and any other host takes about 2 × base
// more. Frames keep their order in each direction (a frame never leaves before the one
// ahead of it, as on a real link), so a burst can wait a little longer than base + jitter.
// Calling it again for the same host changes the delay. Loss on the same host (Loss) still
// applies; Heal removes both, and so does the network's cleanup.
func (n *Net) Delay(h *Host, base, jitter time.Duration) error {
	if base < 0 || jitter < 0 || jitter > base {
		return fmt.Errorf("delay on %s: want 0 <= jitter (%s) <= base (%s)", h.Name, jitter, base)
	}
	p := &delayParams{base: base, jitter: jitter}
	n.mu.Lock()
	if l := n.delays[h.NS]; l != nil {
		l.params.Store(p)
		n.mu.Unlock()
		return nil
	}
	n.mu.Unlock()
	l, err := n.startDelay(h, p)
	if err != nil {
		return fmt.Errorf("delay on %s: %w", h.Name, err)
	}
	n.mu.Lock()
	n.delays[h.NS] = l
	n.mu.Unlock()
	return nil
}

// startDelay opens the relay's devices, starts its goroutines and moves the host's bridge
// port to the TAP. On an error it undoes what it did.
func (n *Net) startDelay(h *Host, p *delayParams) (*delayLink, error) {
	l := &delayLink{host: h.Name, port: h.NS + "b", tap: h.NS + "t", stop: make(chan struct{})}
	l.params.Store(p)
	err := inNetns(n.bridge, func() error {
		var err error
		if l.dev, err = openTAP(l.tap); err != nil {
			return err
		}
		if l.pkt, err = openPacket(l.port); err != nil {
			_ = l.dev.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.wg.Add(4)
	toTAP := make(chan frame, delayQueueFrames)
	toHost := make(chan frame, delayQueueFrames)
	go l.read(l.pkt, toTAP)
	go l.write(l.dev, toTAP)
	go l.read(l.dev, toHost)
	go l.write(l.pkt, toHost)
	ctx := context.Background()
	// The TAP joins the bridge before the host's port leaves it, so the host is never cut
	// off for longer than the bridge takes to learn its address on the new port.
	steps := [][]string{
		{"-n", n.bridge, "link", "set", l.tap, "master", "br0"},
		{"-n", n.bridge, "link", "set", l.tap, "up"},
		{"-n", n.bridge, "link", "set", l.port, "nomaster"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return nil, errors.Join(err, n.stopDelay(l))
		}
	}
	return l, nil
}

// read moves frames from f to q, each stamped with the time it may leave: its own delay,
// but never before the frame ahead of it. It returns when f is closed.
func (l *delayLink) read(f *os.File, q chan<- frame) {
	defer l.wg.Done()
	defer close(q)
	buf := make([]byte, delayFrameMax)
	var last time.Time
	for {
		m, err := f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			select {
			case <-l.stop:
				return
			default:
			}
			// A device going down makes reads fail for a moment; wait a little, not spin.
			time.Sleep(readRetryPause)
			continue
		}
		if m <= vnetHdrLen {
			continue
		}
		p := l.params.Load()
		d := p.base
		if p.jitter > 0 {
			d += rand.N(2*p.jitter+1) - p.jitter
		}
		due := time.Now().Add(d)
		if due.Before(last) {
			due = last
		}
		last = due
		select {
		case q <- frame{b: append([]byte(nil), buf[:m]...), due: due}:
		default:
			l.dropped.Add(1)
		}
	}
}

// write sends each frame of q to f when it is due, in order. It returns when the relay
// stops or q is closed.
func (l *delayLink) write(f *os.File, q <-chan frame) {
	defer l.wg.Done()
	tm := time.NewTimer(time.Hour)
	defer tm.Stop()
	for {
		var fr frame
		var ok bool
		select {
		case <-l.stop:
			return
		case fr, ok = <-q:
			if !ok {
				return
			}
		}
		if wait := time.Until(fr.due); wait > 0 {
			tm.Reset(wait)
			select {
			case <-l.stop:
				return
			case <-tm.C:
			}
		}
		// A frame the device refuses (it is going down, or its queue is full) is lost, as
		// on a real link.
		_, _ = f.Write(fr.b)
	}
}

// stopDelay stops the relay, waits for its goroutines, removes the TAP and puts the host's
// port back on the bridge.
func (n *Net) stopDelay(l *delayLink) error {
	close(l.stop)
	// Closing the files ends the blocked reads; a non-persistent TAP disappears with its
	// last file descriptor.
	errs := []error{closeDelayFile(l.pkt, "packet socket"), closeDelayFile(l.dev, "tap")}
	l.wg.Wait()
	ctx := context.Background()
	if err := ipCmd(ctx, "-n", n.bridge, "link", "del", l.tap); err != nil && !goneDevice(err) {
		errs = append(errs, err)
	}
	for _, s := range [][]string{
		{"-n", n.bridge, "link", "set", l.port, "master", "br0"},
		{"-n", n.bridge, "link", "set", l.port, "up"},
	} {
		if err := ipCmd(ctx, s...); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove delay on %s: %w", l.host, err)
	}
	return nil
}

// stopDelays removes every delay of the network.
func (n *Net) stopDelays() error {
	n.mu.Lock()
	delays := n.delays
	n.delays = map[string]*delayLink{}
	n.mu.Unlock()
	var errs []error
	for _, l := range delays {
		errs = append(errs, n.stopDelay(l))
	}
	return errors.Join(errs...)
}

func closeDelayFile(f *os.File, what string) error {
	if f == nil {
		return nil
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", what, err)
	}
	return nil
}

// inNetns runs f on an OS thread that has entered the named network namespace; sockets and
// devices f opens belong to that namespace and work from any thread afterwards. The thread
// goes back to its own namespace before it is unlocked. It must not simply be left locked
// for the Go runtime to end: a child process started with Pdeathsig (the Consul agents)
// gets its signal when the thread that forked it exits, not the process, and this thread
// may have forked one.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			if restored {
				runtime.UnlockOSThread()
			}
			// Otherwise the thread stays locked and ends with this goroutine: a thread in
			// the wrong namespace must never run other goroutines.
		}()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			restored = true // nothing changed yet
			errc <- fmt.Errorf("open this thread's namespace: %w", err)
			return
		}
		defer self.Close()
		ns, err := os.Open("/run/netns/" + name)
		if err != nil {
			restored = true
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			restored = true // setns changes nothing when it fails
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("return from namespace %s: %w", name, err))
			return
		}
		restored = true
		errc <- ferr
	}()
	return <-errc
}

// openTAP creates the TAP device name (it lasts as long as its file descriptor) with a
// virtio_net_hdr in front of each frame, and lets the kernel hand it checksum-offloaded and
// TSO frames (they cross the relay whole).
func openTAP(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("create tap %s: %w", name, err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("offloads of tap %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tap "+name), nil
}

// openPacket opens an AF_PACKET socket bound to the interface name that receives every
// frame arriving on it (not those it sends itself) and sends frames out of it, each with a
// virtio_net_hdr in front.
func openPacket(name string) (*os.File, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", name, err)
	}
	// Protocol 0 receives nothing until the bind below names the interface, so no frame of
	// another interface slips in first.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("packet socket for %s: %w", name, err)
	}
	setup := func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return fmt.Errorf("PACKET_VNET_HDR: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return fmt.Errorf("PACKET_IGNORE_OUTGOING: %w", err)
		}
		// Room for a burst while the relay's reader is descheduled on a loaded machine.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20); err != nil {
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		return nil
	}
	if err := setup(); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("packet socket for %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "packet "+name), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
