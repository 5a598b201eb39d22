// go-load is the bench's load generator written in Go, for the rows where the client's own cost would
// otherwise be part of the figure: kube-apiserver calls its KMS plugin with grpc-go, not grpc-js, and a
// Node client adds its own event loop to every call it times. It runs the same load shape as
// scripts/bench/measure.mjs: a warm-up (at least 1 s and 2000 calls, at most 15 s), then CONCURRENCY
// callers back to back for SECONDS, and prints one JSON line with ops/s and the latency percentiles in ms.
// Given the server's pid, it also reads the server's CPU time from /proc over exactly the measured window
// and reports it per call, as measure.mjs does.
//
// Usage:
//
//	go-load grpc SOCKET METHOD AUTHORITY CONCURRENCY SECONDS [SERVER_PID]   (stdin: one hex protobuf request a line)
//	go-load http URL TOKEN CONCURRENCY SECONDS                 (stdin: "PATH<TAB>JSON BODY" a line)
//
// gRPC messages are protobuf bytes the Node side encoded (a codec that passes bytes, as
// packages/server/test/fixtures/grpc-go-caller does), so no generated code is needed. HTTP requests are
// keep-alive POSTs with the Vault token, as the Vault emulator expects. Call i sends request i modulo the
// number read.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// userHz is the clock ticks per second of /proc/<pid>/stat (USER_HZ): 100 on every Linux this runs on.
const userHz = 100

type bytesCodec struct{}

func (bytesCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }

func (bytesCodec) Unmarshal(data []byte, v interface{}) error {
	out := v.(*[]byte)
	*out = append((*out)[:0], data...)
	return nil
}

func (bytesCodec) Name() string { return "proto" }

type result struct {
	Op          string  `json:"op"`
	Concurrency int     `json:"concurrency"`
	Ops         int     `json:"ops"`
	Errors      int     `json:"errors"`
	OpsPerSec   float64 `json:"opsPerSec"`
	P50         float64 `json:"p50"`
	P99         float64 `json:"p99"`
	Client      string  `json:"client"`
	// The server's user + system CPU time per call in µs over the measured window; absent without a pid.
	ServerCPUUsPerCall *float64 `json:"serverCpuUsPerCall,omitempty"`
}

// cpuSeconds reads a process's user + system CPU time from /proc/PID/stat (fields 14 and 15, counted after
// the command name, which may itself hold spaces and parentheses).
func cpuSeconds(pid int) float64 {
	data, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail("read the server's CPU time: %v", err)
	}
	text := string(data)
	fields := strings.Fields(text[strings.LastIndexByte(text, ')')+1:])
	if len(fields) < 13 {
		fail("unexpected /proc/%d/stat", pid)
	}
	user, errUser := strconv.ParseFloat(fields[11], 64)
	system, errSystem := strconv.ParseFloat(fields[12], 64)
	if errUser != nil || errSystem != nil {
		fail("unexpected /proc/%d/stat", pid)
	}
	return (user + system) / userHz
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-load: "+format+"\n", args...)
	os.Exit(2)
}

func readLines() []string {
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	var lines []string
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		fail("no requests on stdin")
	}
	return lines
}

func positive(text, what string) int {
	value, err := strconv.Atoi(text)
	if err != nil || value < 1 {
		fail("%s must be a positive number, got %q", what, text)
	}
	return value
}

// grpcCaller dials SOCKET as kube-apiserver does (a unix dialer, insecure, wait-for-ready) and returns a
// call that sends request i modulo the pool.
func grpcCaller(socket, method, authority string, lines []string) func(i int) error {
	requests := make([][]byte, len(lines))
	for index, line := range lines {
		decoded, err := hex.DecodeString(line)
		if err != nil {
			fail("request %d is not hex: %v", index, err)
		}
		requests[index] = decoded
	}
	connection, err := grpc.Dial(socket,
		grpc.WithInsecure(),
		grpc.WithAuthority(authority),
		grpc.WithDefaultCallOptions(grpc.WaitForReady(true), grpc.ForceCodec(bytesCodec{})),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}),
	)
	if err != nil {
		fail("dial: %v", err)
	}
	return func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		request := requests[i%len(requests)]
		var response []byte
		return connection.Invoke(ctx, method, &request, &response)
	}
}

// httpCaller POSTs request i modulo the pool to URL + its path over keep-alive connections.
func httpCaller(url, token string, concurrency int, lines []string) func(i int) error {
	type post struct {
		path string
		body []byte
	}
	posts := make([]post, len(lines))
	for index, line := range lines {
		parts := strings.SplitN(line, "\t", 2)
		if len(parts) != 2 {
			fail("request %d is not PATH<TAB>BODY", index)
		}
		posts[index] = post{path: parts[0], body: []byte(parts[1])}
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency},
	}
	return func(i int) error {
		next := posts[i%len(posts)]
		request, err := http.NewRequest(http.MethodPost, url+next.path, bytes.NewReader(next.body))
		if err != nil {
			return err
		}
		request.Header.Set("X-Vault-Token", token)
		request.Header.Set("Content-Type", "application/json")
		response, err := client.Do(request)
		if err != nil {
			return err
		}
		defer response.Body.Close()
		// Read to the end, so the connection goes back to the pool.
		if _, err := io.Copy(io.Discard, response.Body); err != nil {
			return err
		}
		if response.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", response.StatusCode)
		}
		return nil
	}
}

// measure runs the warm-up, then the measured window, as scripts/bench/measure.mjs does; window is called
// as the window starts and again as it ends.
func measure(call func(i int) error, concurrency int, seconds int, window func()) (latencies []float64, errors int, elapsed time.Duration) {
	var counter int64
	run := func(keepGoing func() bool, record func(time.Duration, error)) {
		var workers sync.WaitGroup
		for worker := 0; worker < concurrency; worker++ {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for keepGoing() {
					started := time.Now()
					err := call(int(atomic.AddInt64(&counter, 1) - 1))
					record(time.Since(started), err)
				}
			}()
		}
		workers.Wait()
	}

	warmStart := time.Now()
	run(func() bool {
		since := time.Since(warmStart)
		return since < 15*time.Second && (since < time.Second || atomic.LoadInt64(&counter) < 2000)
	}, func(time.Duration, error) {})

	var lock sync.Mutex
	window()
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	started := time.Now()
	run(func() bool { return time.Now().Before(deadline) }, func(took time.Duration, err error) {
		lock.Lock()
		defer lock.Unlock()
		if err != nil {
			errors++
			return
		}
		latencies = append(latencies, float64(took.Nanoseconds())/1e6)
	})
	elapsed = time.Since(started)
	window()
	return latencies, errors, elapsed
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: go-load grpc SOCKET METHOD AUTHORITY CONCURRENCY SECONDS [SERVER_PID] | go-load http URL TOKEN CONCURRENCY SECONDS")
	}
	serverPid := 0
	var call func(i int) error
	var concurrency, seconds int
	var op string
	switch os.Args[1] {
	case "grpc":
		if len(os.Args) != 7 && len(os.Args) != 8 {
			fail("usage: go-load grpc SOCKET METHOD AUTHORITY CONCURRENCY SECONDS [SERVER_PID]")
		}
		if len(os.Args) == 8 {
			serverPid = positive(os.Args[7], "SERVER_PID")
		}
		concurrency = positive(os.Args[5], "CONCURRENCY")
		seconds = positive(os.Args[6], "SECONDS")
		op = os.Args[3]
		call = grpcCaller(os.Args[2], os.Args[3], os.Args[4], readLines())
	case "http":
		if len(os.Args) != 6 {
			fail("usage: go-load http URL TOKEN CONCURRENCY SECONDS")
		}
		concurrency = positive(os.Args[4], "CONCURRENCY")
		seconds = positive(os.Args[5], "SECONDS")
		op = "http"
		call = httpCaller(os.Args[2], os.Args[3], concurrency, readLines())
	default:
		fail("unknown mode %q (grpc or http)", os.Args[1])
	}

	var cpuMarks []float64
	latencies, errors, elapsed := measure(call, concurrency, seconds, func() {
		if serverPid != 0 {
			cpuMarks = append(cpuMarks, cpuSeconds(serverPid))
		}
	})
	sort.Float64s(latencies)
	pick := func(q float64) float64 {
		if len(latencies) == 0 {
			return -1
		}
		index := int(q * float64(len(latencies)))
		if index >= len(latencies) {
			index = len(latencies) - 1
		}
		return latencies[index]
	}
	out := result{
		Op:          op,
		Concurrency: concurrency,
		Ops:         len(latencies),
		Errors:      errors,
		OpsPerSec:   float64(len(latencies)) / elapsed.Seconds(),
		P50:         pick(0.5),
		P99:         pick(0.99),
		Client:      "grpc-go " + grpc.Version,
	}
	if len(cpuMarks) == 2 && len(latencies) > 0 {
		// Per answered call, as measure.mjs counts.
		perCall := (cpuMarks[1] - cpuMarks[0]) * 1e6 / float64(len(latencies))
		out.ServerCPUUsPerCall = &perCall
	}
	if os.Args[1] == "http" {
		out.Client = "go net/http"
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("write: %v", err)
	}
}
