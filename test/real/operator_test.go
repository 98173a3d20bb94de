//go:build real && linux

package real

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// operatorProcess is the operator binary (./cmd) run as its own process on this host,
// talking to the cluster's API server through the loopback relay, as test/e2e runs it.
// It never dials a pod: no analysis or smoke test in these specs needs it to.
type operatorProcess struct {
	binary, kubeconfig, logPath, pidPath string

	cmd    *exec.Cmd
	exited chan struct{}
	starts int
}

// newOperatorProcess prepares the operator; its log starts empty, then collects every
// run of this suite, each headed by a line saying when it started.
func newOperatorProcess(binary, kubeconfig, logPath, pidPath string) *operatorProcess {
	GinkgoHelper()
	Expect(os.WriteFile(logPath, nil, 0o644)).To(Succeed())
	return &operatorProcess{binary: binary, kubeconfig: kubeconfig, logPath: logPath, pidPath: pidPath}
}

// Start starts the operator, appending to its log, and waits until its health endpoint
// answers, so a spec knows the process came up (an operator that exits at start fails
// here, with its log). Leader election is off: a crashed process cannot release its
// lease, so a successor would wait out the lease before doing anything, and the suite
// never runs two at once. Metrics are off: nothing here scrapes them.
func (o *operatorProcess) Start() {
	GinkgoHelper()
	Expect(o.Running()).To(BeFalse(), "the operator is already running")
	logFile, err := os.OpenFile(o.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	Expect(err).NotTo(HaveOccurred())
	o.starts++
	_, _ = fmt.Fprintf(logFile, "=== real: operator start #%d at %s ===\n", o.starts, time.Now().Format(time.RFC3339Nano))
	healthAddr := freeLoopbackAddress()

	cmd := exec.Command(o.binary,
		"--leader-elect=false",
		"--metrics-bind-address=0",
		"--health-probe-bind-address="+healthAddr,
		"--zap-log-level=debug",
	)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+o.kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	Expect(cmd.Start()).To(Succeed())
	// The child has its own copy of the descriptor.
	_ = logFile.Close()
	Expect(os.WriteFile(o.pidPath, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)).To(Succeed())

	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	o.cmd, o.exited = cmd, exited

	Eventually(func(g Gomega) {
		if !o.Running() {
			StopTrying("the operator exited at start; the end of its log:\n" + o.LogTail(20)).Now()
		}
		resp, err := healthClient.Get("http://" + healthAddr + "/readyz")
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

// healthClient asks the operator's health endpoint; a probe that hangs counts as a no.
var healthClient = &http.Client{Timeout: 2 * time.Second}

// freeLoopbackAddress is a loopback address with a port nothing listens on right now,
// for the operator's health endpoint: a fixed port could clash on a shared machine.
func freeLoopbackAddress() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return addr
}

// Kill plays a crash: SIGKILL, no chance to finish a pass or write anything, and waits
// until the process is gone.
func (o *operatorProcess) Kill() {
	GinkgoHelper()
	o.signalAndWait(syscall.SIGKILL, 10*time.Second)
}

// Stop is a clean shutdown (SIGTERM), for the end of the suite.
func (o *operatorProcess) Stop() {
	GinkgoHelper()
	if o.cmd == nil {
		return
	}
	if !o.signalAndWait(syscall.SIGTERM, 15*time.Second) {
		o.signalAndWait(syscall.SIGKILL, 10*time.Second)
	}
}

func (o *operatorProcess) signalAndWait(sig syscall.Signal, timeout time.Duration) bool {
	GinkgoHelper()
	Expect(o.cmd).NotTo(BeNil(), "the operator is not running")
	_ = o.cmd.Process.Signal(sig)
	select {
	case <-o.exited:
		o.cmd, o.exited = nil, nil
		_ = os.Remove(o.pidPath)
		return true
	case <-time.After(timeout):
		return false
	}
}

// ExpectRunning fails the spec, with the end of the operator's log, when the process
// has died on its own: a crash nobody asked for is a failure, not a restart to wait for.
func (o *operatorProcess) ExpectRunning() {
	GinkgoHelper()
	if !o.Running() {
		Fail("the operator process died; the end of its log:\n" + o.LogTail(20))
	}
}

// Running reports whether the operator process is alive.
func (o *operatorProcess) Running() bool {
	if o.cmd == nil {
		return false
	}
	select {
	case <-o.exited:
		return false
	default:
		return true
	}
}

// StopLeftover kills an operator an earlier, interrupted run of the suite left behind
// (its pid file names it), so two never act on the same cluster. Only a process running
// this binary is touched.
func (o *operatorProcess) StopLeftover() {
	data, err := os.ReadFile(o.pidPath)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && strings.HasPrefix(string(cmdline), o.binary+"\x00") {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = os.Remove(o.pidPath)
}

// LogTail is the last n lines of the operator's log (all its runs), for failure reports.
func (o *operatorProcess) LogTail(n int) string {
	f, err := os.Open(o.logPath)
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
