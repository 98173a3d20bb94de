// Command loadgen is the client of the real-cluster test (hack/real, test/real): it
// sends GET requests to the sample app through its Service at a fixed rate, one new
// connection each (so every request goes through kube-proxy's rules as they are at that
// moment, as a client behind a load balancer does), and reports how many were sent, how
// many failed and why, the latency percentiles, and which versions and pods answered.
//
// With -items it also writes and reads: the requests take turns between GET /, POST
// /items (a new item, named in the "name" field every version of the app takes) and
// GET /items/<id> of an item it wrote earlier, picked at random, which must come back
// with the same label (as "name" from version 2, "title" from version 3), whichever
// version wrote it. The report then lists every item it wrote, with the version that
// wrote it, so a test can find each of them in the database afterwards.
//
// It talks to pod and Service addresses, so it must run inside the cluster's network
// namespace (nsenter --net=/run/netns/NAME loadgen ...). It is bounded: at most 50
// requests a second, and it stops by itself after -duration (at most 30 minutes), or at
// SIGINT/SIGTERM, writing its report either way.
//
//	loadgen -url http://10.213.128.10/ -rate 20 -duration 10m -out report.json
//	loadgen -items -url http://10.213.128.10/ -rate 20 -out report.json
//	loadgen -once -url http://10.213.128.10/health     (one request, body to stdout)
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	maxRate     = 50
	maxDuration = 30 * time.Minute
	maxInFlight = 64
)

// Report is what a run measured, written as JSON to -out.
type Report struct {
	URL       string         `json:"url"`
	Rate      int            `json:"rate"`
	Started   time.Time      `json:"started"`
	Seconds   float64        `json:"seconds"`
	Requests  int            `json:"requests"`
	Failures  int            `json:"failures"`
	P50Millis float64        `json:"p50Millis"`
	P99Millis float64        `json:"p99Millis"`
	MaxMillis float64        `json:"maxMillis"`
	Versions  map[string]int `json:"versions"`
	Pods      map[string]int `json:"pods"`
	// FirstFailures are the first few failures, with when they happened.
	FirstFailures []Failure `json:"firstFailures,omitempty"`
	// VersionChanges lists when the answering version changed (the traffic flips).
	VersionChanges []VersionChange `json:"versionChanges,omitempty"`
	// Kinds counts the requests by kind (with -items): read (GET /), write, read-item.
	Kinds map[string]int `json:"kinds,omitempty"`
	// ItemReads counts the items read back (with -items) by "<writer> -> <reader>"
	// version: "2.0.0 -> 3.0.0" is the new version reading what the old one wrote.
	ItemReads map[string]int `json:"itemReads,omitempty"`
	// Written lists the items written (with -items), in the order they were answered.
	Written []WrittenItem `json:"written,omitempty"`
}

// WrittenItem is one item the app answered 201 for.
type WrittenItem struct {
	ID      int    `json:"id"`
	Label   string `json:"label"`
	Version string `json:"version"`
}

// Failure is one request that got no 2xx answer.
type Failure struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// VersionChange is the first answer from a version after answers from another.
type VersionChange struct {
	At      time.Time `json:"at"`
	Version string    `json:"version"`
}

type answer struct {
	Version string `json:"version"`
	Pod     string `json:"pod"`
	// ID is a written item's (POST /items).
	ID int `json:"id"`
	// Item is a read item's (GET /items/<id>): its label is "name" or "title".
	Item map[string]any `json:"item"`
}

func main() {
	url := flag.String("url", "", "URL to GET (a Service ClusterIP inside the namespace)")
	rate := flag.Int("rate", 20, "requests per second (at most 50)")
	duration := flag.Duration("duration", 5*time.Minute, "stop after this long (at most 30m)")
	out := flag.String("out", "", "write the JSON report here (default: stdout)")
	once := flag.Bool("once", false, "send one request and print the body")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout")
	withItems := flag.Bool("items", false, "also write items and read them back (POST /items, GET /items/<id>)")
	flag.Parse()
	if *url == "" {
		fail("-url is required")
	}
	client := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
	if *once {
		resp, err := client.Get(*url)
		if err != nil {
			fail(err.Error())
		}
		defer func() { _ = resp.Body.Close() }()
		_, _ = io.Copy(os.Stdout, resp.Body)
		if resp.StatusCode/100 != 2 {
			fmt.Fprintf(os.Stderr, "HTTP %d\n", resp.StatusCode)
			os.Exit(1)
		}
		return
	}
	if *rate < 1 || *rate > maxRate {
		fail(fmt.Sprintf("-rate must be 1..%d", maxRate))
	}
	if *duration <= 0 || *duration > maxDuration {
		fail(fmt.Sprintf("-duration must be positive and at most %s", maxDuration))
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, *duration)
	defer cancelTimeout()

	rep := Report{URL: *url, Rate: *rate, Started: time.Now().UTC(), Versions: map[string]int{}, Pods: map[string]int{}}
	if *withItems {
		rep.Kinds, rep.ItemReads = map[string]int{}, map[string]int{}
	}
	var (
		mu          sync.Mutex
		latencies   []time.Duration
		lastVersion string
		wg          sync.WaitGroup
	)
	record := func(kind string, sent time.Time, latency time.Duration, a answer, err error) {
		mu.Lock()
		defer mu.Unlock()
		rep.Requests++
		if rep.Kinds != nil {
			rep.Kinds[kind]++
		}
		latencies = append(latencies, latency)
		if err != nil {
			rep.Failures++
			if len(rep.FirstFailures) < 20 {
				rep.FirstFailures = append(rep.FirstFailures, Failure{At: sent.UTC(), Error: kind + ": " + err.Error()})
			}
			return
		}
		rep.Versions[a.Version]++
		rep.Pods[a.Pod]++
		if a.Version != lastVersion {
			rep.VersionChanges = append(rep.VersionChanges, VersionChange{At: sent.UTC(), Version: a.Version})
			lastVersion = a.Version
		}
	}
	items := &itemTraffic{client: client, base: strings.TrimSuffix(*url, "/"),
		run: fmt.Sprintf("load-%d", rep.Started.UnixNano()), mu: &mu, rep: &rep, record: record}
	inFlight := make(chan struct{}, maxInFlight)
	ticker := time.NewTicker(time.Second / time.Duration(*rate))
	defer ticker.Stop()
	n := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
		}
		select {
		case inFlight <- struct{}{}:
		default:
			record("any", time.Now(), 0, answer{}, errors.New("client saturated: too many requests in flight"))
			continue
		}
		n++
		turn := n
		wg.Go(func() {
			defer func() { <-inFlight }()
			// With -items the turns go GET /, write, read an earlier item (GET / until
			// there is one).
			if *withItems && turn%3 == 2 {
				items.write(turn)
				return
			}
			if *withItems && turn%3 == 0 && items.readBack() {
				return
			}
			sent := time.Now()
			a, err := send(client, http.MethodGet, *url, nil)
			record("read", sent, time.Since(sent), a, err)
		})
	}
	wg.Wait()
	rep.Seconds = time.Since(rep.Started).Seconds()
	slices.Sort(latencies)
	rep.P50Millis = percentile(latencies, 0.50)
	rep.P99Millis = percentile(latencies, 0.99)
	if n := len(latencies); n > 0 {
		rep.MaxMillis = float64(latencies[n-1].Microseconds()) / 1000
	}
	data, _ := json.MarshalIndent(rep, "", "  ")
	if *out == "" {
		fmt.Println(string(data))
	} else if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		fail(err.Error())
	}
	fmt.Fprintf(os.Stderr, "loadgen: %d requests in %.0fs, %d failed, p50 %.1fms, p99 %.1fms, versions %v\n",
		rep.Requests, rep.Seconds, rep.Failures, rep.P50Millis, rep.P99Millis, rep.Versions)
}

// itemTraffic is the -items part of a run: it writes items and reads earlier ones back.
type itemTraffic struct {
	client *http.Client
	// base is the app's URL without a trailing slash; run prefixes every label, unique
	// to this run, so a test can tell its items from any other's.
	base, run string
	// mu guards rep, shared with the run's other requests.
	mu     *sync.Mutex
	rep    *Report
	record func(kind string, sent time.Time, latency time.Duration, a answer, err error)
}

// write posts a new item and remembers it once the app answered 201.
func (t *itemTraffic) write(turn int) {
	label := fmt.Sprintf("%s-%d", t.run, turn)
	sent := time.Now()
	a, err := send(t.client, http.MethodPost, t.base+"/items", map[string]string{"name": label})
	if err == nil && a.ID == 0 {
		err = errors.New("POST /items answered with no id")
	}
	t.record("write", sent, time.Since(sent), a, err)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rep.Written = append(t.rep.Written, WrittenItem{ID: a.ID, Label: label, Version: a.Version})
}

// readBack reads an item written earlier, picked at random, and checks its label; it
// returns false, sending nothing, before the first item is written.
func (t *itemTraffic) readBack() bool {
	t.mu.Lock()
	if len(t.rep.Written) == 0 {
		t.mu.Unlock()
		return false
	}
	it := t.rep.Written[rand.IntN(len(t.rep.Written))]
	t.mu.Unlock()
	sent := time.Now()
	a, err := send(t.client, http.MethodGet, fmt.Sprintf("%s/items/%d", t.base, it.ID), nil)
	if err == nil {
		err = checkLabel(a, it)
	}
	t.record("read-item", sent, time.Since(sent), a, err)
	if err == nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.rep.ItemReads[it.Version+" -> "+a.Version]++
	}
	return true
}

// checkLabel fails a read item whose label is not the one written: "name" in version
// 2's answer, "title" in version 3's; either must be there, and equal.
func checkLabel(a answer, it WrittenItem) error {
	for _, field := range []string{"title", "name"} {
		if label, ok := a.Item[field].(string); ok {
			if label != it.Label {
				return fmt.Errorf("item %d (written by %s) read by %s as %s %q, want %q",
					it.ID, it.Version, a.Version, field, label, it.Label)
			}
			return nil
		}
	}
	return fmt.Errorf("item %d (written by %s) read by %s with neither title nor name: %v",
		it.ID, it.Version, a.Version, a.Item)
}

// send sends one request (a JSON body if body is not nil); anything but a 2xx JSON
// answer is a failure. A request that
// got no answer says how far it went (connected from which port, request written), so a
// failure can be told apart: no connection is the network's, no answer the server's.
func send(client *http.Client, method, url string, body any) (answer, error) {
	var a answer
	var (
		progress sync.Mutex
		start    = time.Now()
		steps    []string
	)
	step := func(format string, args ...any) {
		progress.Lock()
		defer progress.Unlock()
		steps = append(steps, fmt.Sprintf("%s at %dms", fmt.Sprintf(format, args...), time.Since(start).Milliseconds()))
	}
	trace := &httptrace.ClientTrace{
		ConnectDone: func(_, addr string, err error) {
			if err != nil {
				step("connect to %s failed (%v)", addr, err)
			}
		},
		GotConn: func(info httptrace.GotConnInfo) {
			step("connected %s -> %s", info.Conn.LocalAddr(), info.Conn.RemoteAddr())
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { step("request written") },
	}
	traced := httptrace.WithClientTrace(context.Background(), trace)
	var payload io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return a, err
		}
		payload = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(traced, method, url, payload)
	if err != nil {
		return a, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		progress.Lock()
		defer progress.Unlock()
		if len(steps) == 0 {
			return a, fmt.Errorf("%w [no connection]", err)
		}
		return a, fmt.Errorf("%w [%s]", err, strings.Join(steps, ", "))
	}
	defer func() { _ = resp.Body.Close() }()
	answered, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return a, err
	}
	if resp.StatusCode/100 != 2 {
		return a, fmt.Errorf("%s %s: HTTP %d: %.200s", method, req.URL.Path, resp.StatusCode, answered)
	}
	if err := json.Unmarshal(answered, &a); err != nil {
		return a, fmt.Errorf("not the app's JSON: %w", err)
	}
	return a, nil
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "loadgen:", msg)
	os.Exit(2)
}
