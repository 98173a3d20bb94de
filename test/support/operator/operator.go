// Package operator runs the operator binary (./cmd, bin/manager) as its own process,
// the way a user runs it on a laptop, for the suites that need a whole operator against
// a cluster: test/e2e, test/real and the benchmark (test/bench). It picks loopback ports
// (the machine is shared, so fixed ports could clash), keeps one log across restarts
// with a marker line per start, waits until the process is ready, and stops, kills or
// inspects it.
package operator

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is one operator binary run against one cluster, started and stopped as the
// suite needs.
type Process struct {
	Binary, Kubeconfig string
	// LogPath collects every start's output, each headed by
	// "=== <Suite>: operator start #<n> at <time> ===".
	LogPath, Suite string
	// PIDPath, when set, holds the running process's pid, so that StopLeftover can stop
	// what an interrupted run left behind.
	PIDPath string
	// Args are the flags of every start. The health-probe address is added.
	Args []string
	// Env is added to the suite's own environment for every start.
	Env []string
	// AddrFlags are flags that each get a free loopback address per start (e.g.
	// --metrics-bind-address); Addr reads them back.
	AddrFlags []string
	// Ready, when set, must also hold before Start returns (e.g. /metrics answers).
	Ready func(p *Process) bool
	// StartTimeout bounds Start's wait for readiness; 30 s when zero.
	StartTimeout time.Duration

	cmd       *exec.Cmd
	exited    chan struct{}
	starts    int
	startedAt time.Time
	addrs     map[string]string
}

// healthFlag is the flag of the address Start waits on (/readyz).
const healthFlag = "--health-probe-bind-address"

// errPortTaken: a loopback port FreeLoopbackAddr picked was taken by another process (an
// outgoing connection's ephemeral port, say) before the operator bound it.
var errPortTaken = errors.New("a loopback port was taken before the operator bound it")

// Start runs the operator and returns once its readiness endpoint answers (and Ready
// holds), on other ports again if one was taken meanwhile. A process that exits during
// start-up is an error carrying the end of its log.
func (p *Process) Start() error {
	var err error
	for range 3 {
		if err = p.startOnce(); !errors.Is(err, errPortTaken) {
			return err
		}
	}
	return err
}

func (p *Process) startOnce() error {
	if p.Running() {
		return errors.New("the operator is already running")
	}
	p.addrs = map[string]string{}
	for _, flag := range append([]string{healthFlag}, p.AddrFlags...) {
		addr, err := FreeLoopbackAddr()
		if err != nil {
			return err
		}
		p.addrs[flag] = addr
	}
	args := slices.Clone(p.Args)
	for flag, addr := range p.addrs {
		args = append(args, flag+"="+addr)
	}
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.starts++
	_, _ = fmt.Fprintf(logFile, "=== %s: operator start #%d at %s ===\n",
		p.Suite, p.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.Binary, args...)
	cmd.Env = append(append(os.Environ(), p.Env...), "KUBECONFIG="+p.Kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = dieWithParent()
	p.startedAt = time.Now()
	err = cmd.Start()
	// The child has its own copy of the descriptor.
	_ = logFile.Close()
	if err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.cmd, p.exited = cmd, exited
	if p.PIDPath != "" {
		if err := os.WriteFile(p.PIDPath, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			return err
		}
	}
	timeout := p.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		if !p.Running() {
			p.cmd = nil
			if strings.Contains(LogTail(p.LogPath, 40), "address already in use") {
				return errPortTaken
			}
			return fmt.Errorf("the operator exited during start-up; the end of its log (%s):\n%s",
				p.LogPath, LogTail(p.LogPath, 20))
		}
		if Answers(p.Addr(healthFlag), "/readyz") {
			if p.Ready == nil || p.Ready(p) {
				return nil
			}
			// An address flag whose port was taken: its server answers for someone else,
			// or not at all.
			if strings.Contains(LogTail(p.LogPath, 40), "address already in use") {
				_ = p.Stop()
				return errPortTaken
			}
		}
		select {
		case <-p.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the operator was not ready within %s; the end of its log (%s):\n%s",
		timeout, p.LogPath, LogTail(p.LogPath, 20))
}

// Addr is the loopback address the current start gave flag (one of AddrFlags, or the
// health-probe address).
func (p *Process) Addr(flag string) string {
	return p.addrs[flag]
}

// Starts is how many times the process was started.
func (p *Process) Starts() int { return p.starts }

// StartedAt is when the current (or last) start executed the binary.
func (p *Process) StartedAt() time.Time { return p.startedAt }

// Pid is the running process's pid (0 when it is not running).
func (p *Process) Pid() int {
	if !p.Running() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// CheckRunning is an error, with the end of the log, when the process has died on its
// own: a crash nobody asked for is a failure, not a restart to wait for.
func (p *Process) CheckRunning() error {
	if p.Running() {
		return nil
	}
	return fmt.Errorf("the operator process died; the end of its log:\n%s", LogTail(p.LogPath, 20))
}

// Kill plays a crash: SIGKILL, no chance to finish a pass or write anything. It returns
// once the process is gone.
func (p *Process) Kill() error {
	if !p.signalAndWait(syscall.SIGKILL, 10*time.Second) {
		return errors.New("the operator did not exit within 10s of SIGKILL")
	}
	return nil
}

// Stop is a clean shutdown (SIGTERM), or a kill after 15 s. Stopping a process that is
// not running does nothing.
func (p *Process) Stop() error {
	if p.cmd == nil {
		return nil
	}
	if p.signalAndWait(syscall.SIGTERM, 15*time.Second) {
		return nil
	}
	return p.Kill()
}

func (p *Process) signalAndWait(sig syscall.Signal, timeout time.Duration) bool {
	if p.cmd == nil {
		return true
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		p.cmd, p.exited = nil, nil
		if p.PIDPath != "" {
			_ = os.Remove(p.PIDPath)
		}
		return true
	case <-time.After(timeout):
		return false
	}
}

// StopLeftover kills an operator an earlier, interrupted run left behind (PIDPath names
// it), so two never act on the same cluster. Only a process running this binary is
// touched.
func (p *Process) StopLeftover() {
	if p.PIDPath == "" {
		return
	}
	data, err := os.ReadFile(p.PIDPath)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && strings.HasPrefix(string(cmdline), p.Binary+"\x00") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.Remove(p.PIDPath)
}

// LogTail is the last n lines of the log at path, for failure reports.
func LogTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no operator log: %v)", err)
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// FreeLoopbackAddr is a loopback address with a port nothing listens on right now.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String(), nil
}

// probeClient asks the operator's endpoints; a probe that hangs counts as a no.
var probeClient = &http.Client{Timeout: 2 * time.Second}

// Answers says whether GET http://addr+path returns 200.
func Answers(addr, path string) bool {
	resp, err := probeClient.Get("http://" + addr + path)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// LogTail is the last n lines of the process's log (all its starts).
func (p *Process) LogTail(n int) string {
	return LogTail(p.LogPath, n)
}
