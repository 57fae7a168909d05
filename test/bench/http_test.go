package bench

import (
	"bytes"
	"io"
	"net/http"
	"time"
)

func post(url, body string) (int, string) {
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
