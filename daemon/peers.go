package daemon

import (
	"crypto/tls"
	"net/http"
	"sync/atomic"
)

// peers holds what calls to other members' APIs use: the HTTP client (its TLS settings) and
// the credentials. SetPeers replaces both at once when ramd reloads them on SIGHUP.
type peers struct {
	cur atomic.Pointer[peerClient]
}

type peerClient struct {
	http *http.Client
	auth PeerAuth
}

func newPeerClient(auth PeerAuth, tlsCfg *tls.Config) *peerClient {
	hc := &http.Client{Timeout: maxProbeTimeout}
	if tlsCfg != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tlsCfg
		hc.Transport = t
	}
	return &peerClient{http: hc, auth: auth}
}

func (p *peers) get() *peerClient { return p.cur.Load() }

// SetPeers replaces the credentials and TLS configuration of this node's calls to other
// members' APIs; calls already under way finish with the old ones.
func (n *Node) SetPeers(auth PeerAuth, tlsCfg *tls.Config) {
	old := n.peers.cur.Swap(newPeerClient(auth, tlsCfg))
	if old != nil {
		old.http.CloseIdleConnections()
	}
}

// authorize adds the peer credentials in force to req.
func (c *peerClient) authorize(req *http.Request) {
	switch {
	case c.auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.auth.Token)
	case c.auth.User != "":
		req.SetBasicAuth(c.auth.User, c.auth.Password)
	}
}
