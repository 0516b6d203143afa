// The memberlist baseline of bench/gossip's real-socket mode: N memberlist
// members (hashicorp/memberlist 0.2.2, DefaultLANConfig) in one process on
// 127.0.0.1, through the same four phases as bench/gossip/real-run.ts, and
// one JSON line of results on stdout.
//
// Build it offline against Debian's packaged memberlist (see
// docs/benchmarks.md, section Gossip):
//
//	apt-get install -y golang-go golang-github-hashicorp-memberlist-dev
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/memberlist-bench ./bench/gossip/memberlist
//
// Phases (the same definitions as the Hearsay side):
//  1. join: member 0 starts; then members 1..N-1 start at once and join
//     through it. Per member: time from the start of the phase until it
//     sees all N members live (not dead or left).
//  2. crash: after `settle`, idle CPU is measured over `idle`; then one
//     random member other than 0 shuts down without leaving. Per live member:
//     time until it sees the victim dead.
//  3. restart: the victim starts again on the same address and name, joining
//     through member 0. Per member: time until it sees the victim live again.
//  4. broadcast: one random member broadcasts a 64-byte payload through its
//     own transmit-limited queue; every member that receives it for the first
//     time queues it again (Serf's user events on memberlist). Per member: time
//     until it has the payload.
//
// False deaths: (observer, member) pairs where a member other than the victim
// was seen dead (NotifyLeave) at any time after the join phase started.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

type phaseResult struct {
	// Milliseconds per member (observers that never got there are missing).
	Ms      []float64 `json:"ms"`
	Missing int       `json:"missing"`
}

type result struct {
	System              string       `json:"system"`
	N                   int          `json:"n"`
	Join                *phaseResult `json:"join,omitempty"`
	Crash               *phaseResult `json:"crash,omitempty"`
	Restart             *phaseResult `json:"restart,omitempty"`
	Broadcast           *phaseResult `json:"broadcast,omitempty"`
	FalseDeaths         int          `json:"falseDeaths"`
	IdleCPUPerMemberPct *float64     `json:"idleCpuPerMemberPct,omitempty"`
}

// bench holds the shared clock and what every member observed.
type bench struct {
	mu        sync.Mutex
	n         int
	start     time.Time
	victim    string
	crashAt   time.Time
	restartAt time.Time
	bcastAt   time.Time
	// Per observer name.
	live        map[string]map[string]bool
	sawAll      map[string]time.Time
	sawDead     map[string]time.Time
	sawBack     map[string]time.Time
	gotBcast    map[string]time.Time
	falseDeaths int
}

type member struct {
	b     *bench
	name  string
	ml    *memberlist.Memberlist
	queue *memberlist.TransmitLimitedQueue
	seen  map[string]bool
	mu    sync.Mutex
}

type bcast struct{ msg []byte }

func (b *bcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *bcast) Message() []byte                       { return b.msg }
func (b *bcast) Finished()                             {}

// Delegate: user broadcasts, Serf-style.
func (m *member) NodeMeta(limit int) []byte { return nil }
func (m *member) NotifyMsg(msg []byte) {
	cp := append([]byte(nil), msg...)
	id := string(cp[:16])
	m.mu.Lock()
	if m.seen[id] {
		m.mu.Unlock()
		return
	}
	m.seen[id] = true
	m.mu.Unlock()
	m.b.mu.Lock()
	if _, ok := m.b.gotBcast[m.name]; !ok && !m.b.bcastAt.IsZero() {
		m.b.gotBcast[m.name] = time.Now()
	}
	m.b.mu.Unlock()
	m.queue.QueueBroadcast(&bcast{cp})
}
func (m *member) GetBroadcasts(overhead, limit int) [][]byte {
	return m.queue.GetBroadcasts(overhead, limit)
}
func (m *member) LocalState(join bool) []byte            { return nil }
func (m *member) MergeRemoteState(buf []byte, join bool) {}

// EventDelegate: membership as this member sees it.
func (m *member) NotifyJoin(n *memberlist.Node) {
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	set := b.live[m.name]
	set[n.Name] = true
	if len(set) == b.n {
		if _, ok := b.sawAll[m.name]; !ok {
			b.sawAll[m.name] = time.Now()
		}
	}
	if n.Name == b.victim && !b.restartAt.IsZero() {
		if _, ok := b.sawBack[m.name]; !ok {
			b.sawBack[m.name] = time.Now()
		}
	}
}
func (m *member) NotifyLeave(n *memberlist.Node) {
	b := m.b
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.live[m.name], n.Name)
	if n.Name == b.victim && !b.crashAt.IsZero() {
		if _, ok := b.sawDead[m.name]; !ok {
			b.sawDead[m.name] = time.Now()
		}
		return
	}
	b.falseDeaths++
}
func (m *member) NotifyUpdate(n *memberlist.Node) {}

func (b *bench) newMember(name string, port int) (*member, error) {
	m := &member{b: b, name: name, seen: map[string]bool{}}
	b.mu.Lock()
	b.live[name] = map[string]bool{}
	b.mu.Unlock()
	conf := memberlist.DefaultLANConfig()
	conf.Name = name
	conf.BindAddr = "127.0.0.1"
	conf.BindPort = port
	conf.AdvertiseAddr = "127.0.0.1"
	conf.AdvertisePort = port
	conf.LogOutput = io.Discard
	conf.Delegate = m
	conf.Events = m
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		m.ml, err = memberlist.Create(conf)
		if err == nil || port == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the old process's port is still closing (restart)
	}
	if err != nil {
		return nil, err
	}
	m.queue = &memberlist.TransmitLimitedQueue{NumNodes: m.ml.NumMembers, RetransmitMult: conf.RetransmitMult}
	return m, nil
}

func msSince(t0 time.Time, ts map[string]time.Time, names []string) *phaseResult {
	r := &phaseResult{Ms: []float64{}}
	for _, name := range names {
		if t, ok := ts[name]; ok {
			r.Ms = append(r.Ms, float64(t.Sub(t0).Microseconds())/1000)
		} else {
			r.Missing++
		}
	}
	sort.Float64s(r.Ms)
	return r
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func countIn(ts map[string]time.Time, names []string) int {
	c := 0
	for _, name := range names {
		if _, ok := ts[name]; ok {
			c++
		}
	}
	return c
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(b *bench, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		ok := cond()
		b.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func main() {
	n := flag.Int("n", 10, "members")
	seed := flag.Int64("seed", 1, "random seed (victim and broadcaster)")
	settle := flag.Duration("settle", 5*time.Second, "quiet time after the join before the crash")
	idle := flag.Duration("idle", 10*time.Second, "idle CPU measurement window")
	phasesFlag := flag.String("phases", "join,crash,restart,broadcast", "phases to run (join always runs)")
	flag.Parse()
	phases := map[string]bool{}
	for _, p := range strings.Split(*phasesFlag, ",") {
		phases[p] = true
	}
	rng := rand.New(rand.NewSource(*seed))
	b := &bench{n: *n, live: map[string]map[string]bool{}, sawAll: map[string]time.Time{}, sawDead: map[string]time.Time{}, sawBack: map[string]time.Time{}, gotBcast: map[string]time.Time{}}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	// Phase 1: join.
	names := make([]string, *n)
	for i := range names {
		names[i] = "m" + strconv.Itoa(i)
	}
	members := make([]*member, *n)
	seed0, err := b.newMember(names[0], 0)
	if err != nil {
		fail(err)
	}
	members[0] = seed0
	seedAddr := fmt.Sprintf("127.0.0.1:%d", seed0.ml.LocalNode().Port)
	b.mu.Lock()
	b.start = time.Now()
	b.mu.Unlock()
	var wg sync.WaitGroup
	var createErr error
	var errMu sync.Mutex
	for i := 1; i < *n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, err := b.newMember(names[i], 0)
			if err == nil {
				members[i] = m
				_, err = m.ml.Join([]string{seedAddr})
			}
			if err != nil {
				errMu.Lock()
				createErr = err
				errMu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if createErr != nil {
		fail(createErr)
	}
	waitFor(b, 60*time.Second, func() bool { return countIn(b.sawAll, names) == *n })
	res := result{System: "memberlist 0.2.2", N: *n}
	b.mu.Lock()
	res.Join = msSince(b.start, b.sawAll, names)
	b.mu.Unlock()

	if phases["crash"] {
		// Idle CPU, then phase 2: crash.
		time.Sleep(*settle)
		cpu0, wall0 := cpuSeconds(), time.Now()
		time.Sleep(*idle)
		pct := 100 * (cpuSeconds() - cpu0) / time.Since(wall0).Seconds() / float64(*n)
		res.IdleCPUPerMemberPct = &pct
		vi := 1 + rng.Intn(*n-1)
		victim := members[vi]
		port := int(victim.ml.LocalNode().Port)
		b.mu.Lock()
		b.victim = names[vi]
		b.crashAt = time.Now()
		b.mu.Unlock()
		victim.ml.Shutdown()
		others := make([]string, 0, *n-1)
		for i, name := range names {
			if i != vi {
				others = append(others, name)
			}
		}
		waitFor(b, 90*time.Second, func() bool { return countIn(b.sawDead, others) == len(others) })
		b.mu.Lock()
		res.Crash = msSince(b.crashAt, b.sawDead, others)
		b.mu.Unlock()

		if phases["restart"] {
			// Phase 3: restart on the same address.
			time.Sleep(2 * time.Second)
			b.mu.Lock()
			b.restartAt = time.Now()
			b.mu.Unlock()
			restarted, err := b.newMember(names[vi], port)
			if err != nil {
				fail(err)
			}
			members[vi] = restarted
			if _, err := restarted.ml.Join([]string{seedAddr}); err != nil {
				fail(err)
			}
			waitFor(b, 30*time.Second, func() bool { return countIn(b.sawBack, others) == len(others) })
			b.mu.Lock()
			res.Restart = msSince(b.restartAt, b.sawBack, others)
			b.mu.Unlock()
		} else {
			members[vi] = nil
		}
	}

	if phases["broadcast"] {
		// Phase 4: broadcast, from a live member; reach counted over live members.
		time.Sleep(2 * time.Second)
		live := []*member{}
		liveNames := []string{}
		for _, m := range members {
			if m != nil {
				live = append(live, m)
				liveNames = append(liveNames, m.name)
			}
		}
		from := live[rng.Intn(len(live))]
		payload := make([]byte, 64)
		copy(payload, fmt.Sprintf("%016d", rng.Int63()))
		b.mu.Lock()
		b.bcastAt = time.Now()
		b.gotBcast[from.name] = b.bcastAt
		b.mu.Unlock()
		from.mu.Lock()
		from.seen[string(payload[:16])] = true
		from.mu.Unlock()
		from.queue.QueueBroadcast(&bcast{payload})
		waitFor(b, 30*time.Second, func() bool { return countIn(b.gotBcast, liveNames) == len(liveNames) })
		b.mu.Lock()
		res.Broadcast = msSince(b.bcastAt, b.gotBcast, liveNames)
		b.mu.Unlock()
	}

	b.mu.Lock()
	res.FalseDeaths = b.falseDeaths
	b.mu.Unlock()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	// No orderly shutdown: the process exits (Shutdown of each member waits for its goroutines, one at a time).
}
