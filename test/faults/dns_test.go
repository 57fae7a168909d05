package faults

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// dnsInterval is how often the prober asks Consul's DNS for the primary.
const dnsInterval = 100 * time.Millisecond

// dnsSample is one answer of Consul's DNS for the primary's name: the addresses it gave
// (sorted), or none with err set.
type dnsSample struct {
	at    time.Time
	addrs []string
	err   error
}

// dnsProber asks Consul's DNS (the servers', from the client's side of the network) for
// primary.<service>.service.consul every dnsInterval and keeps every answer: what a client
// that routes by DNS would have been told during a fault.
type dnsProber struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	samples []dnsSample
}

// probeDNS starts a prober of name against the DNS servers (host:port, tried in order
// until one answers).
func probeDNS(ctx context.Context, servers []string, name string) *dnsProber {
	ctx, cancel := context.WithCancel(ctx)
	p := &dnsProber{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(dnsInterval)
		defer tick.Stop()
		for {
			p.ask(ctx, servers, name)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// ask resolves name once, through the first server that answers within the interval.
func (p *dnsProber) ask(ctx context.Context, servers []string, name string) {
	s := dnsSample{at: time.Now()}
	for _, srv := range servers {
		r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", srv)
		}}
		qctx, cancel := context.WithTimeout(ctx, dnsInterval)
		addrs, err := r.LookupHost(qctx, name)
		cancel()
		var dnsErr *net.DNSError
		if err == nil || (errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
			slices.Sort(addrs)
			s.addrs, s.err = addrs, nil
			break
		}
		s.err = err
	}
	p.mu.Lock()
	p.samples = append(p.samples, s)
	p.mu.Unlock()
}

// stop ends the prober and returns its samples.
func (p *dnsProber) stop() []dnsSample {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.samples)
}

// dnsFindings is what the samples say about a fault.
type dnsFindings struct {
	// twoPrimaries is the longest stretch during which the primary's name gave two or more
	// addresses (from the first such answer to the first answer after it that did not).
	twoPrimaries time.Duration
	// oldAfterNew is how long after newFirst (the new primary's first acknowledged write)
	// the name still gave the old primary's address; zero without a failover or when it
	// never did.
	oldAfterNew time.Duration
	// newAt is how long after the fault the name first gave only the new primary's address
	// (zero without a failover or when it never did).
	newAt time.Duration
	// answered and failed count the answers and the queries no server answered.
	answered, failed int
}

// analyseDNS reads the samples of one run. oldAddr and newAddr are the old and new
// primaries' addresses (newAddr "" without a failover), fault the fault's start and
// newFirst the new primary's first acknowledged write (zero without a failover). Pure.
func analyseDNS(samples []dnsSample, oldAddr, newAddr string, fault, newFirst time.Time) dnsFindings {
	var f dnsFindings
	var doubleFrom time.Time
	var lastOld time.Time
	for _, s := range samples {
		if s.err != nil {
			f.failed++
			continue
		}
		f.answered++
		if len(s.addrs) >= 2 {
			if doubleFrom.IsZero() {
				doubleFrom = s.at
			}
		} else if !doubleFrom.IsZero() {
			f.twoPrimaries = max(f.twoPrimaries, s.at.Sub(doubleFrom))
			doubleFrom = time.Time{}
		}
		if slices.Contains(s.addrs, oldAddr) {
			lastOld = s.at
		}
		if newAddr != "" && f.newAt == 0 && s.at.After(fault) && len(s.addrs) == 1 && s.addrs[0] == newAddr {
			f.newAt = s.at.Sub(fault)
		}
	}
	if !doubleFrom.IsZero() && len(samples) > 0 {
		f.twoPrimaries = max(f.twoPrimaries, samples[len(samples)-1].at.Sub(doubleFrom))
	}
	if newAddr != "" && !newFirst.IsZero() && lastOld.After(newFirst) {
		f.oldAfterNew = lastOld.Sub(newFirst)
	}
	return f
}
