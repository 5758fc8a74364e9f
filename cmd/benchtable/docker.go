package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// docker is a minimal client of the Docker Engine API on its unix socket:
// the figures are the engine's, as vscript's are its engine's, without the
// docker CLI's own start-up in them.
type docker struct {
	http *http.Client
}

// benchLabel marks everything the Docker side makes, so that a run that
// was interrupted is cleaned up by the next one.
const benchLabel = "vscript-benchtable"

func newDocker(socket string) *docker {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}
	return &docker{http: &http.Client{Transport: tr}}
}

// call sends a request and decodes a JSON answer into out (if not nil).
func (d *docker) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	resp, err := d.send(method, path, "application/json", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// send sends a request and checks its status; the caller closes the body.
func (d *docker) send(method, path, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, "http://docker"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("docker %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// ping tells whether an engine answers, and its version.
func (d *docker) ping() (string, error) {
	var v struct{ Version, APIVersion string }
	if err := d.call("GET", "/version", nil, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

type portBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

type createSpec struct {
	Image        string
	Cmd          []string
	Labels       map[string]string
	ExposedPorts map[string]struct{} `json:",omitempty"`
	HostConfig   struct {
		NetworkMode  string
		PortBindings map[string][]portBinding `json:",omitempty"`
	}
}

// create makes a busybox container running cmd on network.
func (d *docker) create(name string, cmd []string, network string, ports ...string) (string, error) {
	spec := createSpec{Image: "busybox", Cmd: cmd, Labels: map[string]string{benchLabel: "1"}}
	spec.HostConfig.NetworkMode = network
	if len(ports) > 0 {
		spec.ExposedPorts = map[string]struct{}{}
		spec.HostConfig.PortBindings = map[string][]portBinding{}
		for _, p := range ports {
			spec.ExposedPorts[p] = struct{}{}
			spec.HostConfig.PortBindings[p] = []portBinding{{}}
		}
	}
	path := "/containers/create"
	if name != "" {
		path += "?name=" + url.QueryEscape(name)
	}
	var out struct{ ID string }
	if err := d.call("POST", path, spec, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

func (d *docker) start(id string) error {
	return d.call("POST", "/containers/"+id+"/start", nil, nil)
}

// wait waits for a started container to be no longer running.
func (d *docker) wait(id string) (int, error) {
	var out struct{ StatusCode int }
	err := d.call("POST", "/containers/"+id+"/wait", nil, &out)
	return out.StatusCode, err
}

func (d *docker) remove(id string) error {
	return d.call("DELETE", "/containers/"+id+"?force=1&v=1", nil, nil)
}

// run creates and starts a container.
func (d *docker) run(name string, cmd []string, network string, ports ...string) (string, error) {
	id, err := d.create(name, cmd, network, ports...)
	if err != nil {
		return "", err
	}
	if err := d.start(id); err != nil {
		d.remove(id)
		return "", err
	}
	return id, nil
}

type inspect struct {
	State           struct{ Pid int }
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
		Ports    map[string][]portBinding
	}
}

func (d *docker) inspect(id string) (*inspect, error) {
	var out inspect
	err := d.call("GET", "/containers/"+id+"/json", nil, &out)
	return &out, err
}

// exec runs cmd in a running container as `docker exec` does, without a
// tty, and returns its exit code and output.
func (d *docker) exec(id string, cmd ...string) (int, string, error) {
	var created struct{ ID string }
	if err := d.call("POST", "/containers/"+id+"/exec",
		map[string]any{"Cmd": cmd, "AttachStdout": true, "AttachStderr": true}, &created); err != nil {
		return 0, "", err
	}
	body, _ := json.Marshal(map[string]any{"Detach": false, "Tty": false})
	resp, err := d.send("POST", "/exec/"+created.ID+"/start", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	// The connection carries the output until the process ends, then
	// closes.
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", err
	}
	var state struct {
		ExitCode int
		Running  bool
	}
	if err := d.call("GET", "/exec/"+created.ID+"/json", nil, &state); err != nil {
		return 0, "", err
	}
	return state.ExitCode, demux(raw), nil
}

// demux joins the frames of Docker's multiplexed stdout/stderr stream.
func demux(raw []byte) string {
	var b strings.Builder
	for len(raw) >= 8 {
		n := int(binary.BigEndian.Uint32(raw[4:8]))
		raw = raw[8:]
		if n > len(raw) {
			n = len(raw)
		}
		b.Write(raw[:n])
		raw = raw[n:]
	}
	return b.String()
}

func (d *docker) networkCreate(name string) (string, error) {
	var out struct{ ID string }
	err := d.call("POST", "/networks/create", map[string]any{"Name": name, "Driver": "bridge",
		"CheckDuplicate": true, "Labels": map[string]string{benchLabel: "1"}}, &out)
	return out.ID, err
}

func (d *docker) networkRemove(id string) error {
	return d.call("DELETE", "/networks/"+id, nil, nil)
}

// load loads a `docker save` archive.
func (d *docker) load(archive string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	resp, err := d.send("POST", "/images/load?quiet=1", "application/x-tar", f)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return streamError(resp.Body)
}

// build builds the context directory dir as `docker build -t tag dir`: the
// context is sent as a tar, as the CLI sends it.
func (d *docker) build(dir, tag string) error {
	var ctx bytes.Buffer
	if err := tarDir(&ctx, dir); err != nil {
		return err
	}
	resp, err := d.send("POST", "/build?rm=1&t="+url.QueryEscape(tag)+"&labels="+
		url.QueryEscape(`{"`+benchLabel+`":"1"}`), "application/x-tar", &ctx)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return streamError(resp.Body)
}

// streamError reads a JSON message stream (build, load) to its end and
// returns the error it reports, if any.
func streamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if msg.Error != "" {
			return fmt.Errorf("docker: %s", msg.Error)
		}
	}
}

func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// sweep removes whatever an earlier, interrupted run left: containers,
// networks and volumes with the bench label.
func (d *docker) sweep() error {
	filter := url.QueryEscape(`{"label":["` + benchLabel + `"]}`)
	var ctrs []struct{ ID string }
	if err := d.call("GET", "/containers/json?all=1&filters="+filter, nil, &ctrs); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, c := range ctrs {
		wg.Add(1)
		go func() { defer wg.Done(); d.remove(c.ID) }()
	}
	wg.Wait()
	var nets []struct{ ID string }
	if err := d.call("GET", "/networks?filters="+filter, nil, &nets); err != nil {
		return err
	}
	for _, n := range nets {
		d.networkRemove(n.ID)
	}
	var vols struct{ Volumes []struct{ Name string } }
	if err := d.call("GET", "/volumes?filters="+filter, nil, &vols); err != nil {
		return err
	}
	for _, v := range vols.Volumes {
		d.call("DELETE", "/volumes/"+v.Name, nil, nil)
	}
	return nil
}

// inNetNS runs fn on a thread switched into the network namespace of pid:
// sockets it opens belong to that namespace whichever thread uses them.
func inNetNS(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := netns.GetFromPid(pid)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		err = fn()
		// A thread that cannot go back stays locked, and dies with the
		// goroutine.
		if netns.Set(orig) == nil {
			goruntime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// The operations, as the vscript benchmarks do them. Each returns n samples.

func (d *docker) runToExit(network string, n int) ([]float64, error) {
	var samples []float64
	for range n {
		start := time.Now()
		id, err := d.create("", []string{"true"}, network)
		if err != nil {
			return nil, err
		}
		if err := d.start(id); err != nil {
			d.remove(id)
			return nil, err
		}
		code, err := d.wait(id)
		samples = append(samples, ms(time.Since(start)))
		d.remove(id)
		if err != nil || code != 0 {
			return nil, fmt.Errorf("docker run true: exit %d, %v", code, err)
		}
	}
	return samples, nil
}

func (d *docker) runUserNetwork(n int) ([]float64, error) {
	netID, err := d.networkCreate("vsbench-run")
	if err != nil {
		return nil, err
	}
	defer d.networkRemove(netID)
	return d.runToExit("vsbench-run", n)
}

func (d *docker) execTrue(n int) ([]float64, error) {
	id, err := d.run("", []string{"sleep", "600"}, "none")
	if err != nil {
		return nil, err
	}
	defer d.remove(id)
	var samples []float64
	for range n {
		start := time.Now()
		code, out, err := d.exec(id, "true")
		samples = append(samples, ms(time.Since(start)))
		if err != nil || code != 0 {
			return nil, fmt.Errorf("docker exec true: exit %d, %v\n%s", code, err, out)
		}
	}
	return samples, nil
}

func (d *docker) networkCreateRemove(n int) ([]float64, error) {
	var samples []float64
	for range n {
		start := time.Now()
		id, err := d.networkCreate("vsbench-net")
		if err != nil {
			return nil, err
		}
		samples = append(samples, ms(time.Since(start)))
		if err := d.networkRemove(id); err != nil {
			return nil, err
		}
	}
	return samples, nil
}

// dnsLookup asks the embedded DNS server (127.0.0.11 in the container's
// namespace) for another container's name, from a socket in the client
// container's namespace, as BenchmarkDNSLookup does.
func (d *docker) dnsLookup(n int) ([]float64, error) {
	netID, err := d.networkCreate("vsbench-dns")
	if err != nil {
		return nil, err
	}
	defer d.networkRemove(netID)
	client, err := d.run("", []string{"sleep", "600"}, "vsbench-dns")
	if err != nil {
		return nil, err
	}
	defer d.remove(client)
	target, err := d.run("vsbench-target", []string{"sleep", "600"}, "vsbench-dns")
	if err != nil {
		return nil, err
	}
	defer d.remove(target)
	ci, err := d.inspect(client)
	if err != nil {
		return nil, err
	}
	ti, err := d.inspect(target)
	if err != nil {
		return nil, err
	}
	want := ti.NetworkSettings.Networks["vsbench-dns"].IPAddress
	var conn net.Conn
	if err := inNetNS(ci.State.Pid, func() (err error) {
		conn, err = (&net.Dialer{}).Dial("udp", "127.0.0.11:53")
		return err
	}); err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &mdns.Conn{Conn: conn}
	q := new(mdns.Msg).SetQuestion("vsbench-target.", mdns.TypeA)
	var samples []float64
	for range n {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if err := c.WriteMsg(q); err != nil {
			return nil, err
		}
		r, err := c.ReadMsg()
		if err != nil {
			return nil, err
		}
		samples = append(samples, ms(time.Since(start)))
		if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != want {
			return nil, fmt.Errorf("docker DNS: answer %v, want %s", r.Answer, want)
		}
	}
	return samples, nil
}

// proxyThroughput sends 32 MiB per sample from the host to 127.0.0.1's
// published port — docker-proxy — to a sink in the container's namespace.
func (d *docker) proxyThroughput(n int) ([]float64, error) {
	id, err := d.run("", []string{"sleep", "600"}, "bridge", "9000/tcp")
	if err != nil {
		return nil, err
	}
	defer d.remove(id)
	info, err := d.inspect(id)
	if err != nil {
		return nil, err
	}
	bindings := info.NetworkSettings.Ports["9000/tcp"]
	if len(bindings) == 0 {
		return nil, fmt.Errorf("docker: port 9000 not published: %v", info.NetworkSettings.Ports)
	}
	var l net.Listener
	if err := inNetNS(info.State.Pid, func() (err error) {
		l, err = net.Listen("tcp4", ":9000")
		return err
	}); err != nil {
		return nil, err
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, conn)
				conn.Close()
			}()
		}
	}()
	const size = 32 << 20
	buf := make([]byte, 1<<20)
	addr := net.JoinHostPort("127.0.0.1", bindings[0].HostPort)
	var samples []float64
	for range n {
		start := time.Now()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := conn.Write(buf); err != nil {
				conn.Close()
				return nil, err
			}
		}
		conn.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, conn)
		conn.Close()
		samples = append(samples, size/(1<<20)/time.Since(start).Seconds())
	}
	return samples, nil
}

// dataPacked is the notes' data-packed image, as BenchmarkImageBuildDataPacked
// builds it.
const dataPacked = "FROM busybox\nADD htdocs/ /usr/local/apache2/htdocs\nVOLUME /usr/local/apache2/htdocs\n"

// buildDataPacked builds the data-packed image: cold (the site changes
// before every build, so ADD and VOLUME run) or cached.
func (d *docker) buildDataPacked(cold bool, n int) ([]float64, error) {
	dir, err := os.MkdirTemp("", "vsbench-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := map[string]string{"Dockerfile": dataPacked, "htdocs/index.html": "<h1>data</h1>\n",
		"htdocs/css/site.css": "h1 {}\n", "htdocs/img/logo.svg": "<svg/>\n"}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	defer d.call("DELETE", "/images/vsbench-datapacked?force=1", nil, nil)
	if err := d.build(dir, "vsbench-datapacked"); err != nil {
		return nil, err
	}
	var samples []float64
	for i := range n {
		if cold {
			index := fmt.Sprintf("<h1>%d %d</h1>\n", time.Now().UnixNano(), i)
			if err := os.WriteFile(filepath.Join(dir, "htdocs/index.html"), []byte(index), 0o644); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		if err := d.build(dir, "vsbench-datapacked"); err != nil {
			return nil, err
		}
		samples = append(samples, ms(time.Since(start)))
	}
	// Cold builds leave an untagged image each; prune them.
	d.call("POST", "/images/prune?filters="+url.QueryEscape(`{"dangling":["true"]}`), nil, nil)
	return samples, nil
}

func (d *docker) volumeCreate(n int) ([]float64, error) {
	var samples []float64
	for i := range n {
		name := "vsbench-vol" + strconv.Itoa(i)
		start := time.Now()
		if err := d.call("POST", "/volumes/create", map[string]any{"Name": name,
			"Labels": map[string]string{benchLabel: "1"}}, nil); err != nil {
			return nil, err
		}
		samples = append(samples, ms(time.Since(start)))
		if err := d.call("DELETE", "/volumes/"+name, nil, nil); err != nil {
			return nil, err
		}
	}
	return samples, nil
}

// hundred starts 100 containers on one network, one after the other, and
// has the first resolve the last by name, as BenchmarkHundredContainers.
func (d *docker) hundred(n int) ([]float64, error) {
	var samples []float64
	for sample := range n {
		// A network per sample: after a hundred forced removals at once,
		// dockerd 20.10 can keep a network with "active endpoints" that no
		// container holds, and refuse both its removal and its name.
		network := fmt.Sprintf("vsbench-hundred%d", sample)
		netID, err := d.networkCreate(network)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		var ids []string
		for i := range 100 {
			id, err := d.run(fmt.Sprintf("vsbench-c%03d", i), []string{"sleep", "600"}, network)
			if err != nil {
				d.removeAll(ids)
				d.networkRemove(netID)
				return nil, err
			}
			ids = append(ids, id)
		}
		code, out, err := d.exec(ids[0], "nslookup", "vsbench-c099")
		elapsed := time.Since(start)
		last, ierr := d.inspect(ids[99])
		if rerr := d.removeAll(ids); rerr != nil {
			return nil, fmt.Errorf("docker hundred: remove the containers: %w", rerr)
		}
		if rerr := d.networkRemove(netID); rerr != nil {
			fmt.Fprintf(os.Stderr, "benchtable: docker hundred: network %s stays behind: %v\n", network, rerr)
		}
		if err != nil || ierr != nil {
			return nil, fmt.Errorf("docker hundred: %v %v", err, ierr)
		}
		if ip := last.NetworkSettings.Networks[network].IPAddress; code != 0 || !strings.Contains(out, ip) {
			return nil, fmt.Errorf("nslookup vsbench-c099 in vsbench-c000: exit %d, want %s in\n%s", code, ip, out)
		}
		samples = append(samples, ms(elapsed))
	}
	return samples, nil
}

// removeAll force-removes the containers, several at once. dockerd refuses
// some of a hundred removals at once; those are tried again one by one, so
// that the network they were on can go too.
func (d *docker) removeAll(ids []string) error {
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = d.remove(id) }()
	}
	wg.Wait()
	var failed []error
	for i, id := range ids {
		if errs[i] == nil {
			continue
		}
		if err := d.remove(id); err != nil && !strings.Contains(err.Error(), "404") {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// idleRSS starts 100 idle containers and adds up the resident memory of
// what Docker keeps running for them: dockerd, containerd, and a
// containerd-shim per container.
func (d *docker) idleRSS(n int) ([]float64, error) {
	var samples []float64
	for range n {
		var ids []string
		for range 100 {
			id, err := d.run("", []string{"sleep", "600"}, "none")
			if err != nil {
				d.removeAll(ids)
				return nil, err
			}
			ids = append(ids, id)
		}
		kib, err := daemonRSS()
		d.removeAll(ids)
		if err != nil {
			return nil, err
		}
		samples = append(samples, float64(kib)/1024)
	}
	return samples, nil
}

// daemonRSS is the total VmRSS, in KiB, of Docker's resident processes.
func daemonRSS() (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	total, found := 0, 0
	for _, e := range dirs {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		switch name := strings.TrimSpace(string(comm)); {
		case name == "dockerd", name == "containerd", name == "docker-proxy",
			strings.HasPrefix(name, "containerd-shim"):
		default:
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kib, _ := strconv.Atoi(strings.Fields(v)[0])
				total += kib
				found++
			}
		}
	}
	if found == 0 {
		return 0, fmt.Errorf("no dockerd, containerd or shim process found")
	}
	return total, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
