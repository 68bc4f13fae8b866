package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rampart-edge/rampart/keyless/client"
	"github.com/rampart-edge/rampart/keyless/server"
)

// The keyless benchmark signs through the keyless client and a real key
// server on loopback (mutual TLS 1.3, both in this process) and, as the
// baseline, with the same key in process, in interleaved rounds: for each
// key (ECDSA P-256, RSA-2048 PKCS #1 v1.5 SHA-256) and each depth of
// requests in flight, a remote run then a local run. The remote load
// keeps exactly `depth` requests in flight with SignAsync, each answer
// sending the next request from the callback, as an event loop would;
// the local baseline runs `depth` goroutines that sign in a loop.
//
// Client, key server and local signers share this process and its CPUs
// (nothing is pinned: the key server's workers and the client's
// goroutines cannot be told apart by thread), so process CPU time per
// signature is reported beside the rates: remote minus local is what the
// protocol costs.

// Key names, stable: they are JSON keys.
const (
	keylessECDSA = "ecdsa_p256"
	keylessRSA   = "rsa2048"
)

// KeylessOptions sizes `rampart bench keyless`.
type KeylessOptions struct {
	// Rounds of the interleaved measurement; figures are medians.
	Rounds int
	// Duration of one timed run; Warmup is run once, unmeasured, first.
	Duration time.Duration
	Warmup   time.Duration
	// Depths are the numbers of requests in flight to measure.
	Depths []int
	// ConnsPerServer is the client's connection count (0: its default).
	ConnsPerServer int
	Logger         *slog.Logger
}

// DefaultKeylessOptions are what `rampart bench keyless` runs without
// flags.
func DefaultKeylessOptions() KeylessOptions {
	return KeylessOptions{Rounds: 3, Duration: time.Second, Warmup: time.Second, Depths: []int{1, 16, 256}}
}

// KeylessResult is the outcome of the keyless benchmark. Field names are
// stable: scripts read them.
type KeylessResult struct {
	Name string `json:"name"`
	// OpsPerS has remote_KEY and local_KEY for each key, remote at the
	// depth where it was fastest and local at that same depth.
	OpsPerS map[string]float64 `json:"ops_per_s"`
	// RatioRemoteVsLocal is remote over local signatures/s for ECDSA
	// P-256 at its best depth (median of per-round ratios); target >= 0.5.
	RatioRemoteVsLocal float64 `json:"ratio_remote_vs_local"`
	// RatioRemoteVsLocalRSA is the same for RSA-2048.
	RatioRemoteVsLocalRSA float64 `json:"ratio_remote_vs_local_rsa2048"`
	// BestInFlight is that depth, per key.
	BestInFlight map[string]int `json:"best_in_flight"`
	// P50Ms and P99Ms are remote ECDSA P-256 latencies at its best depth,
	// from submission to result.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	// Runs holds every key ("ecdsa_p256", "rsa2048") by depth ("d1", …).
	Runs       map[string]map[string]*KeylessRun `json:"runs"`
	Rounds     int                               `json:"rounds"`
	DurationS  float64                           `json:"duration_s"`
	TLSVersion string                            `json:"tls_version"`
	Layout     string                            `json:"layout"`
	Machine    Machine                           `json:"machine"`
}

// KeylessRun is one key at one depth: medians over rounds.
type KeylessRun struct {
	InFlight int `json:"in_flight"`
	// OpsPerS, P50Ms, P99Ms and CPUUsPerOp (process CPU time per
	// signature) by side: "remote" and "local".
	OpsPerS    map[string]float64 `json:"ops_per_s"`
	Ratio      float64            `json:"ratio_remote_vs_local"`
	P50Ms      map[string]float64 `json:"p50_ms"`
	P99Ms      map[string]float64 `json:"p99_ms"`
	CPUUsPerOp map[string]float64 `json:"cpu_us_per_op"`
	// AllocsPerOp is the process's heap allocations per remote signature:
	// client and key server together.
	AllocsPerOp    float64              `json:"allocs_per_op_remote"`
	Errors         int64                `json:"errors"`
	SamplesOpsPerS map[string][]float64 `json:"samples_ops_per_s"`
}

// RunKeyless starts a key server on loopback with fresh keys and a fresh
// PKI in a temporary directory (removed afterwards), connects a client,
// and measures.
func RunKeyless(ctx context.Context, opts KeylessOptions) (*KeylessResult, error) {
	if opts.Rounds < 1 || opts.Duration <= 0 || len(opts.Depths) == 0 {
		return nil, fmt.Errorf("rounds must be at least 1, duration positive and depths not empty, got %d, %v, %v", opts.Rounds, opts.Duration, opts.Depths)
	}
	for _, d := range opts.Depths {
		if d < 1 || d > 4096 {
			return nil, fmt.Errorf("in-flight depth %d: must be in 1..4096", d)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "bench/keyless")
	rig, err := startKeylessRig(opts, log)
	if err != nil {
		return nil, err
	}
	defer rig.close()

	res := &KeylessResult{Name: "keyless", OpsPerS: map[string]float64{}, BestInFlight: map[string]int{},
		Runs: map[string]map[string]*KeylessRun{}, Rounds: opts.Rounds, DurationS: opts.Duration.Seconds(),
		TLSVersion: "TLS 1.3", Layout: "client, key server and local signers in one process, unpinned, loopback TCP",
		Machine: ThisMachine()}
	keys := []string{keylessECDSA, keylessRSA}

	if opts.Warmup > 0 {
		log.Info("warming up", "duration", opts.Warmup)
		for _, k := range keys {
			if _, err := rig.remote(ctx, k, opts.Depths[len(opts.Depths)-1], opts.Warmup/4); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
			rig.local(ctx, k, opts.Depths[len(opts.Depths)-1], opts.Warmup/4)
		}
	}
	samples := map[string]map[int]map[string][]keylessSample{}
	for _, k := range keys {
		samples[k] = map[int]map[string][]keylessSample{}
		for _, d := range opts.Depths {
			samples[k][d] = map[string][]keylessSample{}
		}
	}
	for round := range opts.Rounds {
		for _, d := range opts.Depths {
			for _, k := range keys {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				r, err := rig.remote(ctx, k, d, opts.Duration)
				if err != nil {
					return nil, fmt.Errorf("round %d, %s at %d in flight: %w", round, k, d, err)
				}
				l := rig.local(ctx, k, d, opts.Duration)
				samples[k][d]["remote"] = append(samples[k][d]["remote"], r)
				samples[k][d]["local"] = append(samples[k][d]["local"], l)
				log.Info("measured", "round", round, "key", k, "in_flight", d,
					"remote_ops_per_s", int(r.opsPerS()), "local_ops_per_s", int(l.opsPerS()), "errors", r.errs)
			}
		}
	}
	for _, k := range keys {
		res.Runs[k] = map[string]*KeylessRun{}
		best, bestOps := 0, -1.0
		for _, d := range opts.Depths {
			run := summariseKeyless(d, samples[k][d])
			res.Runs[k][depthName(d)] = run
			if run.OpsPerS["remote"] > bestOps {
				best, bestOps = d, run.OpsPerS["remote"]
			}
		}
		run := res.Runs[k][depthName(best)]
		res.BestInFlight[k] = best
		res.OpsPerS["remote_"+k] = run.OpsPerS["remote"]
		res.OpsPerS["local_"+k] = run.OpsPerS["local"]
		if k == keylessECDSA {
			res.RatioRemoteVsLocal = run.Ratio
			res.P50Ms, res.P99Ms = run.P50Ms["remote"], run.P99Ms["remote"]
		} else {
			res.RatioRemoteVsLocalRSA = run.Ratio
		}
	}
	return res, nil
}

func depthName(d int) string { return fmt.Sprintf("d%d", d) }

// keylessSample is one timed run.
type keylessSample struct {
	ops     int
	errs    int64
	dur     time.Duration
	lat     []time.Duration // sorted
	cpu     time.Duration
	mallocs uint64
}

func (s keylessSample) opsPerS() float64 {
	if s.dur <= 0 {
		return 0
	}
	return float64(s.ops) / s.dur.Seconds()
}

func (s keylessSample) quantileMs(q float64) float64 {
	if len(s.lat) == 0 {
		return 0
	}
	i := min(len(s.lat)-1, int(q*float64(len(s.lat))))
	return float64(s.lat[i]) / float64(time.Millisecond)
}

func summariseKeyless(depth int, by map[string][]keylessSample) *KeylessRun {
	run := &KeylessRun{InFlight: depth, OpsPerS: map[string]float64{}, P50Ms: map[string]float64{}, P99Ms: map[string]float64{},
		CPUUsPerOp: map[string]float64{}, SamplesOpsPerS: map[string][]float64{}}
	for side, ss := range by {
		var ops, p50, p99, cpu []float64
		for _, s := range ss {
			ops = append(ops, s.opsPerS())
			p50 = append(p50, s.quantileMs(0.50))
			p99 = append(p99, s.quantileMs(0.99))
			if s.ops > 0 {
				cpu = append(cpu, float64(s.cpu.Microseconds())/float64(s.ops))
			}
			if side == "remote" {
				run.Errors += s.errs
			}
		}
		run.OpsPerS[side], run.P50Ms[side], run.P99Ms[side], run.CPUUsPerOp[side] = median(ops), median(p50), median(p99), median(cpu)
		run.SamplesOpsPerS[side] = ops
	}
	run.Ratio = median(ratios(run.SamplesOpsPerS["remote"], run.SamplesOpsPerS["local"]))
	var allocs []float64
	for _, s := range by["remote"] {
		if s.ops > 0 {
			allocs = append(allocs, float64(s.mallocs)/float64(s.ops))
		}
	}
	run.AllocsPerOp = median(allocs)
	return run
}

// keylessRig is the key server, the client and the keys.
type keylessRig struct {
	dir     string
	srv     *server.Server
	serving chan error
	cl      *client.Client
	keys    map[string]crypto.Signer
	signers map[string]*client.Signer
	opts    map[string]crypto.SignerOpts
	digest  []byte
}

func startKeylessRig(opts KeylessOptions, log *slog.Logger) (_ *keylessRig, err error) {
	dir, err := os.MkdirTemp("", "rampart-bench-keyless")
	if err != nil {
		return nil, err
	}
	rig := &keylessRig{dir: dir, signers: map[string]*client.Signer{}, serving: make(chan error, 1),
		opts: map[string]crypto.SignerOpts{keylessECDSA: crypto.SHA256, keylessRSA: crypto.SHA256}}
	defer func() {
		if err != nil {
			rig.close()
		}
	}()
	sum := sha256.Sum256([]byte("rampart keyless benchmark"))
	rig.digest = sum[:]
	log.Info("generating keys and certificates", "dir", dir)
	pki, err := writeBenchPKI(dir)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if rig.keys, err = writeBenchKeys(filepath.Join(dir, "keys")); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rig.srv, err = server.New(server.Config{Listen: ln.Addr().String(), CAFile: pki.caFile, CertFile: pki.certFile,
		KeyFile: pki.keyFile, Keys: []string{filepath.Join(dir, "keys")}}, log.With("side", "keyserver"), nil)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("key server: %w", err)
	}
	go func() { rig.serving <- rig.srv.Serve(ln) }()
	rig.cl, err = client.New(client.Config{
		Servers:        []client.Server{{Name: "bench", Addr: ln.Addr().String()}},
		TLS:            pki.clientTLS,
		ConnsPerServer: opts.ConnsPerServer,
		Logger:         log,
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	for name, k := range rig.keys {
		if rig.signers[name], err = rig.cl.Signer(k.Public()); err != nil {
			return nil, err
		}
		if _, err := rig.signers[name].Sign(nil, rig.digest, rig.opts[name]); err != nil {
			return nil, fmt.Errorf("first %s signature through the key server: %w", name, err)
		}
	}
	return rig, nil
}

func (rig *keylessRig) close() {
	if rig.cl != nil {
		rig.cl.Close()
	}
	if rig.srv != nil {
		rig.srv.Close()
		<-rig.serving
	}
	os.RemoveAll(rig.dir)
}

// lane keeps one request in flight: each answer sends the next.
type lane struct {
	run   *remoteRun
	start time.Time
	lat   []time.Duration
	errs  int64
	done  func([]byte, error)
}

type remoteRun struct {
	s      *client.Signer
	opts   crypto.SignerOpts
	digest []byte
	stop   atomic.Bool
	wg     sync.WaitGroup
	err    atomic.Pointer[error]
}

func (l *lane) answer(_ []byte, err error) {
	now := time.Now()
	r := l.run
	if r.stop.Load() {
		r.wg.Done()
		return
	}
	if err != nil {
		l.errs++
		if l.errs == 1 {
			r.err.CompareAndSwap(nil, &err)
		}
	} else {
		l.lat = append(l.lat, now.Sub(l.start))
	}
	l.start = now
	if err := r.s.SignAsync(r.digest, r.opts, l.done); err != nil {
		l.errs++
		r.err.CompareAndSwap(nil, &err)
		r.wg.Done()
	}
}

func (rig *keylessRig) remote(ctx context.Context, key string, depth int, d time.Duration) (keylessSample, error) {
	r := &remoteRun{s: rig.signers[key], opts: rig.opts[key], digest: rig.digest}
	lanes := make([]*lane, depth)
	for i := range lanes {
		l := &lane{run: r, lat: make([]time.Duration, 0, 4096)}
		l.done = l.answer
		lanes[i] = l
	}
	runtime.GC()
	m0, cpu0 := mallocs(), cpuTime()
	start := time.Now()
	for _, l := range lanes {
		r.wg.Add(1)
		l.start = time.Now()
		if err := r.s.SignAsync(r.digest, r.opts, l.done); err != nil {
			r.wg.Done()
			r.stop.Store(true)
			r.wg.Wait()
			return keylessSample{}, err
		}
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	r.stop.Store(true)
	dur := time.Since(start)
	m1, cpu1 := mallocs(), cpuTime()
	r.wg.Wait()
	s := keylessSample{dur: dur, cpu: cpu1 - cpu0, mallocs: m1 - m0}
	for _, l := range lanes {
		s.lat = append(s.lat, l.lat...)
		s.errs += l.errs
	}
	s.ops = len(s.lat)
	slices.Sort(s.lat)
	if s.ops == 0 {
		if p := r.err.Load(); p != nil {
			return s, *p
		}
		return s, errors.New("no signature in the whole run")
	}
	return s, ctx.Err()
}

func (rig *keylessRig) local(ctx context.Context, key string, depth int, d time.Duration) keylessSample {
	k, opts := rig.keys[key], rig.opts[key]
	var stop atomic.Bool
	var wg sync.WaitGroup
	lats := make([][]time.Duration, depth)
	runtime.GC()
	cpu0 := cpuTime()
	start := time.Now()
	for i := range depth {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for !stop.Load() {
				t := time.Now()
				if _, err := k.Sign(rand.Reader, rig.digest, opts); err != nil {
					break
				}
				if !stop.Load() {
					lat = append(lat, time.Since(t))
				}
			}
			lats[i] = lat
		}()
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	stop.Store(true)
	dur := time.Since(start)
	cpu1 := cpuTime()
	wg.Wait()
	s := keylessSample{dur: dur, cpu: cpu1 - cpu0}
	for _, l := range lats {
		s.lat = append(s.lat, l...)
	}
	s.ops = len(s.lat)
	slices.Sort(s.lat)
	return s
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type benchPKI struct {
	caFile, certFile, keyFile string
	clientTLS                 *tls.Config
}

// writeBenchPKI makes a CA, a key server certificate for 127.0.0.1 and a
// client certificate, and writes the server's side into dir.
func writeBenchPKI(dir string) (*benchPKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rampart bench keyless CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	issue := func(serial int64, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte, err error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "rampart bench"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			return nil, nil, err
		}
		kDER, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kDER}), nil
	}
	p := &benchPKI{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server-key.pem")}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	srvCert, srvKey, err := issue(2, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	cliCert, cliKey, err := issue(3, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	for f, b := range map[string][]byte{p.caFile: caPEM, p.certFile: srvCert, p.keyFile: srvKey} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			return nil, err
		}
	}
	pair, err := tls.X509KeyPair(cliCert, cliKey)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	p.clientTLS = &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots, ServerName: "127.0.0.1"}
	return p, nil
}

// writeBenchKeys makes the two signing keys and writes them (PKCS #8
// PEM) into dir for the key server.
func writeBenchKeys(dir string) (map[string]crypto.Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	keys := map[string]crypto.Signer{keylessECDSA: ec, keylessRSA: rk}
	for name, k := range keys {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// WriteTable prints the result for a person.
func (r *KeylessResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "Keyless signatures: client + key server (%s, %s) vs the same key in process;\n", r.TLSVersion, r.Layout)
	fmt.Fprintf(w, "median of %d interleaved rounds of %.1fs (remote, local) per key and depth\n\n", r.Rounds, r.DurationS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "key\tin flight\tremote sig/s\tlocal sig/s\tremote/local\tremote p50 ms\tremote p99 ms\tlocal p99 ms\tremote CPU µs/sig\tlocal CPU µs/sig\tallocs/sig\terrors\t")
	for _, k := range []string{keylessECDSA, keylessRSA} {
		runs := r.Runs[k]
		names := make([]string, 0, len(runs))
		for n := range runs {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int { return runs[a].InFlight - runs[b].InFlight })
		for _, n := range names {
			run := runs[n]
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2fx\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\t%d\t\n", k, run.InFlight,
				run.OpsPerS["remote"], run.OpsPerS["local"], run.Ratio, run.P50Ms["remote"], run.P99Ms["remote"],
				run.P99Ms["local"], run.CPUUsPerOp["remote"], run.CPUUsPerOp["local"], run.AllocsPerOp, run.Errors)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nECDSA P-256 at %d in flight: remote %.2fx local (target >= 0.5), p50 %.3f ms, p99 %.3f ms; RSA-2048 at %d: %.2fx\n",
		r.BestInFlight[keylessECDSA], r.RatioRemoteVsLocal, r.P50Ms, r.P99Ms, r.BestInFlight[keylessRSA], r.RatioRemoteVsLocalRSA)
	m := r.Machine
	_, err := fmt.Fprintf(w, "\nmachine: %s, %d cores, kernel %s, %s\n", m.CPU, m.Cores, m.Kernel, m.Go)
	return err
}
