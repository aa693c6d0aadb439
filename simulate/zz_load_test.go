package simulate_test
import ("testing";"time";"syscall";"strings";"net/http";"net/http/httptest";"callrec/simulate";"callrec/internal/ws")
func cpu() time.Duration { var ru syscall.Rusage; syscall.Getrusage(0,&ru); return time.Duration(ru.Utime.Nano()+ru.Stime.Nano()) }
func TestLoad(t *testing.T){
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request){
		c, err := ws.Upgrade(w, r, ws.UpgradeOptions{}); if err != nil { return }
		defer c.Close()
		for { if _, _, err := c.Discard(); err != nil { return } }
	}))
	defer srv.Close()
	c0:=cpu()
	sum := run(t, t.Context(), simulate.Config{URL: "ws"+strings.TrimPrefix(srv.URL,"http"), Calls: 1000, Duration: 5*time.Second, RampUp: time.Second})
	t.Log("elapsed", sum.Elapsed, "cpu (sim+server)", cpu()-c0, "failed", sum.Failed, sum.FramesSent)
}
