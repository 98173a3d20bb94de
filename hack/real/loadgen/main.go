// Command loadgen is the client of the real-cluster test (hack/real, test/real): it
// sends GET requests to the sample app through its Service at a fixed rate, one new
// connection each (so every request goes through kube-proxy's rules as they are at that
// moment, as a client behind a load balancer does), and reports how many were sent, how
// many failed and why, the latency percentiles, and which versions and pods answered.
//
// It talks to pod and Service addresses, so it must run inside the cluster's network
// namespace (nsenter --net=/run/netns/NAME loadgen ...). It is bounded: at most 50
// requests a second, and it stops by itself after -duration (at most 30 minutes), or at
// SIGINT/SIGTERM, writing its report either way.
//
//	loadgen -url http://10.213.128.10/ -rate 20 -duration 10m -out report.json
//	loadgen -once -url http://10.213.128.10/health     (one request, body to stdout)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
}

func main() {
	url := flag.String("url", "", "URL to GET (a Service ClusterIP inside the namespace)")
	rate := flag.Int("rate", 20, "requests per second (at most 50)")
	duration := flag.Duration("duration", 5*time.Minute, "stop after this long (at most 30m)")
	out := flag.String("out", "", "write the JSON report here (default: stdout)")
	once := flag.Bool("once", false, "send one request and print the body")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout")
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
	var (
		mu          sync.Mutex
		latencies   []time.Duration
		lastVersion string
		wg          sync.WaitGroup
	)
	record := func(sent time.Time, latency time.Duration, a answer, err error) {
		mu.Lock()
		defer mu.Unlock()
		rep.Requests++
		latencies = append(latencies, latency)
		if err != nil {
			rep.Failures++
			if len(rep.FirstFailures) < 20 {
				rep.FirstFailures = append(rep.FirstFailures, Failure{At: sent.UTC(), Error: err.Error()})
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
	inFlight := make(chan struct{}, maxInFlight)
	ticker := time.NewTicker(time.Second / time.Duration(*rate))
	defer ticker.Stop()
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
			record(time.Now(), 0, answer{}, errors.New("client saturated: too many requests in flight"))
			continue
		}
		wg.Go(func() {
			defer func() { <-inFlight }()
			sent := time.Now()
			a, err := get(client, *url)
			record(sent, time.Since(sent), a, err)
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

// get sends one request; anything but a 2xx JSON answer is a failure. A request that
// got no answer says how far it went (connected from which port, request written), so a
// failure can be told apart: no connection is the network's, no answer the server's.
func get(client *http.Client, url string) (answer, error) {
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
	req, err := http.NewRequestWithContext(traced, http.MethodGet, url, nil)
	if err != nil {
		return a, err
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
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return a, err
	}
	if resp.StatusCode/100 != 2 {
		return a, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, &a); err != nil {
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
