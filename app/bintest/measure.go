package bintest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// TimeGets times n sequential GETs of url with token, each read to its end, over
// client; any answer but a 200 is an error: a fast wrong answer is not a result.
func TimeGets(client *http.Client, url, token string, n int) ([]time.Duration, error) {
	took := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Auth-Token", token)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took = append(took, time.Since(start))
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d", url, resp.StatusCode)
		}
	}
	return took, nil
}

// PeakRSS is a process's peak resident memory (VmHWM), in bytes.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for process %d", pid)
}
