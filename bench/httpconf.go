package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
)

// httpProxy is one reverse proxy the HTTP benchmark measures. Adding one
// is adding an element to the slice httpProxies returns.
type httpProxy struct {
	name string
	// command writes the proxy's configuration into dir (if it has one)
	// and returns the command that runs it in the foreground with one
	// event loop, listening on listen and forwarding to origin. cpu is
	// where the harness pins it; configurations name it too, so that the
	// proxy does not move its threads elsewhere.
	command func(dir string, listen, origin netip.AddrPort, cpu int) (*exec.Cmd, error)
}

// httpTools are the resolved paths of the external programs.
type httpTools struct {
	nginx, haproxy, wrk string
}

// lookHTTPTools resolves nginx, HAProxy and wrk: the given path, else PATH,
// else /usr/sbin and /usr/bin (root's PATH has them; others' may lack
// /usr/sbin).
func lookHTTPTools(opts HTTPOptions) (httpTools, error) {
	var errs []error
	look := func(name, override string) string {
		if override != "" {
			p, err := exec.LookPath(override)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			return p
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
			p := filepath.Join(dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		errs = append(errs, fmt.Errorf("%s: not installed (not in PATH, /usr/sbin or /usr/bin)", name))
		return ""
	}
	t := httpTools{nginx: look("nginx", opts.NginxPath), haproxy: look("haproxy", opts.HAProxyPath), wrk: look("wrk", opts.WrkPath)}
	return t, errors.Join(errs...)
}

// httpProxies is the set under test, Rampart first: without a Rampart
// command, the baselines alone and why Rampart is missing.
func httpProxies(opts HTTPOptions, tools httpTools) (proxies []httpProxy, rampartSkipped string) {
	if opts.Rampart != nil {
		proxies = append(proxies, httpProxy{name: proxyRampart, command: func(_ string, listen, origin netip.AddrPort, _ int) (*exec.Cmd, error) {
			cmd := opts.Rampart(listen, origin)
			if cmd == nil {
				return nil, errors.New("the Rampart command function returned nil")
			}
			return cmd, nil
		}})
	} else {
		rampartSkipped = "no Rampart command (HTTPOptions.Rampart is nil)"
	}
	proxies = append(proxies,
		httpProxy{name: proxyNginx, command: func(dir string, listen, origin netip.AddrPort, cpu int) (*exec.Cmd, error) {
			return nginxCommand(tools.nginx, dir, proxyNginx, nginxProxyTemplate,
				nginxConf{Listen: listen, Origin: origin, CPU: cpu, Keepalive: opts.Connections})
		}},
		httpProxy{name: proxyHAProxy, command: func(dir string, listen, origin netip.AddrPort, cpu int) (*exec.Cmd, error) {
			return haproxyCommand(tools.haproxy, dir, haproxyConf{Listen: listen, Origin: origin, CPU: cpu})
		}},
	)
	return proxies, rampartSkipped
}

// originCommand runs the origin: nginx, one worker, answering GET / with
// body from memory.
func originCommand(nginx, dir string, listen netip.AddrPort, cpu int, body string) (*exec.Cmd, error) {
	return nginxCommand(nginx, dir, "origin", nginxOriginTemplate, nginxConf{Listen: listen, CPU: cpu, Body: body})
}

// httpBody is the origin's response: n printable bytes that need no
// quoting in an nginx string (no quotes, backslashes or '$').
func httpBody(n int) string {
	const pattern = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.:"
	var b strings.Builder
	b.Grow(n)
	for i := range n {
		b.WriteByte(pattern[i%len(pattern)])
	}
	return b.String()
}

// nginxConf fills the nginx templates.
type nginxConf struct {
	Name   string // file name stem of the pid and lock files and temp dirs
	Dir    string
	Listen netip.AddrPort
	Origin netip.AddrPort
	CPU    int
	Body   string
	// Keepalive is the proxy's pool of idle upstream connections: one per
	// client connection, so that none is opened mid-run.
	Keepalive int
}

// CPUMask is worker_cpu_affinity's bit mask of CPU: "1" for 0, "10" for 1.
func (c nginxConf) CPUMask() string { return "1" + strings.Repeat("0", c.CPU) }

// The nginx configurations keep every path inside the benchmark's
// directory (the compiled-in temp paths are under /var/lib/nginx), log
// errors to stderr (captured into the directory) and nothing else, and let
// a connection carry any number of requests: nginx's default of 1000 per
// connection would make wrk and the upstream pool reconnect mid-run.
const nginxCommon = `worker_processes 1;
worker_cpu_affinity {{.CPUMask}};
worker_rlimit_nofile 16384;
pid "{{.Dir}}/{{.Name}}.pid";
lock_file "{{.Dir}}/{{.Name}}.lock";
error_log stderr warn;
events {
    worker_connections 4096;
}
`

const nginxHTTPCommon = `    access_log off;
    client_body_temp_path "{{.Dir}}/{{.Name}}-body-temp";
    proxy_temp_path "{{.Dir}}/{{.Name}}-proxy-temp";
    fastcgi_temp_path "{{.Dir}}/{{.Name}}-fastcgi-temp";
    uwsgi_temp_path "{{.Dir}}/{{.Name}}-uwsgi-temp";
    scgi_temp_path "{{.Dir}}/{{.Name}}-scgi-temp";
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
`

var nginxOriginTemplate = template.Must(template.New("origin").Parse(nginxCommon + `http {
` + nginxHTTPCommon + `    default_type text/plain;
    server {
        listen {{.Listen}};
        location = / {
            return 200 "{{.Body}}";
        }
        location / {
            return 404;
        }
    }
}
`))

// The proxies do the same work on every request: like Rampart (an edge
// must tell the origin who the client is), nginx and HAProxy add
// X-Forwarded-For, Forwarded and Via toward the origin and Via toward the
// client, so the origin parses the same request heads whichever proxy is
// in front of it.
var nginxProxyTemplate = template.Must(template.New("nginx").Parse(nginxCommon + `http {
` + nginxHTTPCommon + `    upstream origin {
        server {{.Origin}};
        keepalive {{.Keepalive}};
        keepalive_requests 1000000000;
    }
    server {
        listen {{.Listen}};
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=$http_host";
            proxy_set_header Via "1.1 nginx";
            add_header Via "1.1 nginx";
        }
    }
}
`))

// haproxyConf fills the HAProxy template.
type haproxyConf struct {
	Dir    string
	Listen netip.AddrPort
	Origin netip.AddrPort
	CPU    int
}

// HAProxy: one thread pinned by cpu-map, HTTP mode, server connections
// shared between client connections (http-reuse always, as nginx's
// keepalive pool does), no logging. maxconn is explicit: HAProxy 2.6
// derives it from the file limit otherwise and refuses to start when it
// needs more descriptors than allowed.
var haproxyTemplate = template.Must(template.New("haproxy").Parse(`global
    nbthread 1
    cpu-map 1/1 {{.CPU}}
    maxconn 4096
    pidfile "{{.Dir}}/haproxy.pid"

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    http-reuse always

frontend bench
    bind {{.Listen}}
    option forwardfor
    http-request add-header Forwarded "for=%[src];proto=http;host=%[req.hdr(host)]"
    http-request add-header Via "1.1 haproxy"
    http-response add-header Via "1.1 haproxy"
    default_backend origin

backend origin
    server origin {{.Origin}}
`))

func renderTemplate(t *template.Template, path string, data any) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return fmt.Errorf("render %s: %w", filepath.Base(path), err)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// confPathOK rejects directories whose names would break the quoted paths
// of the generated files.
func confPathOK(dir string) error {
	if strings.ContainsAny(dir, "\"\\$;{}'\n\r\t") {
		return fmt.Errorf("directory %q: its name holds a character the generated configurations cannot quote", dir)
	}
	return nil
}

// nginxCommand writes dir/name.conf and returns nginx in the foreground
// on it, with dir as its prefix.
func nginxCommand(nginx, dir, name string, t *template.Template, c nginxConf) (*exec.Cmd, error) {
	if err := confPathOK(dir); err != nil {
		return nil, err
	}
	c.Dir, c.Name = dir, name
	conf := filepath.Join(dir, name+".conf")
	if err := renderTemplate(t, conf, c); err != nil {
		return nil, err
	}
	return exec.Command(nginx, "-p", dir+"/", "-c", conf, "-e", "stderr", "-g", "daemon off; master_process on;"), nil
}

// haproxyCommand writes dir/haproxy.cfg and returns HAProxy in the
// foreground on it.
func haproxyCommand(haproxy, dir string, c haproxyConf) (*exec.Cmd, error) {
	if err := confPathOK(dir); err != nil {
		return nil, err
	}
	c.Dir = dir
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := renderTemplate(haproxyTemplate, conf, c); err != nil {
		return nil, err
	}
	return exec.Command(haproxy, "-f", conf, "-db"), nil
}

var versionRE = regexp.MustCompile(`[0-9]+\.[0-9]+(\.[0-9]+)?[^\s]*`)

// toolVersion picks the version out of what `nginx -v`, `haproxy -v` or
// `wrk -v` print: the first dotted number, with its suffix.
func toolVersion(out string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if v := versionRE.FindString(line); v != "" {
		return v
	}
	return "unknown"
}
