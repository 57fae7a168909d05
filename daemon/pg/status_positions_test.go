package pg

import "testing"

func TestSetPositions(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	num := func(n int) *int { return &n }
	for _, tt := range []struct {
		name       string
		inRecovery bool
		p          walPositions
		wantTLI    int
		wantLSN    LSN
		receiver   string
		err        bool
	}{
		{"primary: the timeline of its WAL file", false, walPositions{lsn: str("0/3000060"), walfile: str("000000020000000000000003")}, 2, 0x3000060, "", false},
		{"primary without a position", false, walPositions{}, 0, 0, "", true},
		{"primary with a short file name", false, walPositions{lsn: str("0/1"), walfile: str("0002")}, 0, 0, "", true},
		{"standby streaming: the receiver's timeline", true, walPositions{recv: str("0/5000000"), replay: str("0/4000000"), minTLI: 1, ckptTLI: 2,
			rcvStatus: str("streaming"), rcvHost: str("10.0.0.1"), rcvPort: num(5432), rcvTLI: num(3)}, 3, 0x5000000, "streaming", false},
		{"standby without a receiver: the control file's highest", true, walPositions{replay: str("0/4000000"), minTLI: 4, ckptTLI: 2}, 4, 0, "", false},
		{"standby with a bad position", true, walPositions{recv: str("nonsense")}, 0, 0, "", true},
	} {
		s := Status{InRecovery: tt.inRecovery}
		err := s.setPositions(tt.p)
		if (err != nil) != tt.err {
			t.Errorf("%s: err %v, want error %v", tt.name, err, tt.err)
			continue
		}
		if err != nil {
			continue
		}
		lsn := s.WriteLSN
		if tt.inRecovery {
			lsn = s.ReceiveLSN
		}
		if s.Timeline != tt.wantTLI || lsn != tt.wantLSN || s.ReceiverStatus != tt.receiver {
			t.Errorf("%s: timeline %d lsn %s receiver %q; want %d %s %q", tt.name, s.Timeline, lsn, s.ReceiverStatus, tt.wantTLI, tt.wantLSN, tt.receiver)
		}
	}
}
