package servicetest_test

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"callrec/internal/servicetest"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

func TestStartKinesisLoopbackOnly(t *testing.T) {
	start := time.Now()
	endpoint := servicetest.StartKinesis(t)
	t.Logf("kinesis-local ready in %v", time.Since(start))
	client := servicetest.NewKinesisClient(t, endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("ListStreams: %v", err)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if u.Hostname() != "127.0.0.1" {
		t.Errorf("endpoint host = %q, want 127.0.0.1", u.Hostname())
	}
	// Every non-loopback address of this machine must refuse the port.
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		addr := net.JoinHostPort(ipn.IP.String(), u.Port())
		dialStart := time.Now()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		t.Logf("dial %s: %v after %v", addr, err, time.Since(dialStart))
		if err == nil {
			c.Close()
			t.Errorf("kinesis-local answers on %s: it must listen on 127.0.0.1 only", addr)
		}
	}
}
