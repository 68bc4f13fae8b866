package origin_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// An upload that takes longer than the response timeout, with the origin
// reading it all along.
func TestRegressionSlowUploadHitsResponseTimeout(t *testing.T) {
	o := originServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})
	e := startEdgeOneLoop(t, 0, fast(), hostport(o)) // response timeout 700ms
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	go func() {
		fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: site.example\r\nContent-Length: 10\r\n\r\n")
		for i := 0; i < 10; i++ {
			time.Sleep(150 * time.Millisecond)
			c.Write([]byte("x"))
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	t.Logf("%d %q", resp.StatusCode, b)
	if resp.StatusCode != 200 {
		t.Errorf("slow upload: %d %q", resp.StatusCode, b)
	}
}
