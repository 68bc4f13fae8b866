package testnet

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestPing(t *testing.T) {
	n := NewT(t, "a", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := n.Host("a").Exec(ctx, "ping", "-c", "1", "-W", "2", n.Host("b").Addr.String()); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	var ln net.Listener
	if err := n.Host("b").Do(func() (err error) {
		ln, err = net.Listen("tcp", n.Host("b").Addr.String()+":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if err := n.Host("a").Do(func() error {
		c, err := net.DialTimeout("tcp", n.Host("b").Addr.String()+":8080", 2*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("dial across the lan: %v", err)
	}
}
