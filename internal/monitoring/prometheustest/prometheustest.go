/*
Copyright 2026.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package prometheustest runs a real Prometheus server for tests: the prometheus binary
// from Debian's package (hack/install-prometheus.sh), on 127.0.0.1 with a free port and
// its own storage, scraping the targets a test serves and evaluating the rules it
// writes, every second.
package prometheustest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MissingBinaryHint is the message tests fail with when prometheus or promtool is not
// installed: they fail rather than skip, so a machine without them cannot pass.
const MissingBinaryHint = "is not on PATH: run hack/install-prometheus.sh (installs Debian's prometheus package)"

// Options configure one server.
type Options struct {
	// Dir holds the configuration and the storage; a test's temporary directory.
	Dir string
	// ScrapeTargets are host:port addresses on 127.0.0.1, scraped every second as job
	// JobName.
	ScrapeTargets []string
	// JobName of the scrape job. Defaults to "test".
	JobName string
	// RuleFiles are loaded and evaluated every second, unless a group sets its own
	// interval.
	RuleFiles []string
	// Log receives Prometheus' output (warnings and errors only).
	Log io.Writer
	// StartTimeout bounds waiting for /-/ready. Defaults to 60 s: a cold start on a
	// busy two-core machine takes a few seconds.
	StartTimeout time.Duration
}

// Server is a running Prometheus.
type Server struct {
	// URL is http://127.0.0.1:<port>.
	URL    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start runs Prometheus and returns once it is ready. A port taken by someone else
// between choosing it and binding it makes Prometheus exit; Start then tries another,
// three times at most.
func Start(o Options) (*Server, error) {
	binary, err := exec.LookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("prometheus %s", MissingBinaryHint)
	}
	if o.JobName == "" {
		o.JobName = "test"
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	config := filepath.Join(o.Dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(configYAML(o)), 0o600); err != nil {
		return nil, err
	}

	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
		s.cmd = exec.Command(binary,
			"--config.file="+config,
			"--storage.tsdb.path="+filepath.Join(o.Dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
			"--log.level=warn",
		)
		s.cmd.Stdout, s.cmd.Stderr = o.Log, o.Log
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func() {
			_ = s.cmd.Wait()
			close(s.exited)
		}()
		if lastErr = s.waitReady(o.StartTimeout); lastErr == nil {
			return s, nil
		}
		_ = s.Stop()
	}
	return nil, lastErr
}

func configYAML(o Options) string {
	quoted := func(items []string) string {
		out := make([]string, len(items))
		for i, item := range items {
			out[i] = strconv.Quote(item)
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: %s
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: %s
`, quoted(o.RuleFiles), strconv.Quote(o.JobName), quoted(o.ScrapeTargets))
}

// waitReady polls /-/ready until it answers 200, Prometheus exits, or timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.After(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	client := http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(s.URL + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("prometheus exited before becoming ready; see its log")
		case <-deadline:
			return fmt.Errorf("prometheus not ready at %s after %s", s.URL, timeout)
		case <-tick.C:
		}
	}
}

// Stop asks Prometheus to shut down (SIGTERM), and kills it if it has not within 30 s.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return errors.New("prometheus ignored SIGTERM for 30s and was killed")
	}
}

// FreePort asks the kernel for a free port on 127.0.0.1 and releases it for the caller.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
