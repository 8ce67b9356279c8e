package e2e

import (
	"testing"
	"time"
)

// TestSlotsOrder checks the cluster slots' order without starting a cluster:
// a test still waiting for its servers never takes a slot from a test whose
// servers are built; one marked early takes a slot a finished test freed when
// nobody else waits, and one not marked early keeps waiting for its servers.
func TestSlotsOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early bool
		want  bool // the waiting test gets the freed slot before its servers are built
	}{
		{"early", true, true},
		{"not early", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSlots(1)
			s.take(func() bool { return true }, false) // a running test holds the only slot
			built := false
			got := make(chan struct{})
			go func() {
				s.take(func() bool { return built }, tc.early)
				close(got)
			}()
			// A ready test queues too: when the slot is freed it goes first.
			readyGot := make(chan struct{})
			go func() {
				s.take(func() bool { return true }, false)
				close(readyGot)
			}()
			waitQueued(t, s, 1)
			s.release()
			select {
			case <-readyGot:
			case <-got:
				t.Fatal("a test whose servers are not built took the slot before a ready one")
			case <-time.After(5 * time.Second):
				t.Fatal("the ready test did not get the freed slot")
			}
			s.release() // the ready test ends; nobody else waits
			select {
			case <-got:
				if !tc.want {
					t.Fatal("a test not marked early took a slot before its servers were built")
				}
			case <-time.After(200 * time.Millisecond):
				if tc.want {
					t.Fatal("an early test did not take the free slot while its servers built")
				}
				s.mu.Lock()
				built = true
				s.mu.Unlock()
				s.cond.Broadcast()
				select {
				case <-got:
				case <-time.After(5 * time.Second):
					t.Fatal("the test did not take the free slot once its servers were built")
				}
			}
		})
	}
}

// waitQueued waits until n ready tests wait for a slot.
func waitQueued(t *testing.T, s *slots, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		r := s.ready
		s.mu.Unlock()
		if r == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ready tests wait for a slot, want %d", r, n)
		}
		time.Sleep(time.Millisecond)
	}
}
