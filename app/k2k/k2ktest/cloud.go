package k2ktest

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// Cloud stands in for a remote cloud's Glance (v2) and Cinder (v3): enough of the
// wire format for image create/list/show/upload/download/delete and volume lists,
// every call checked against the SP's tokens.
type Cloud struct {
	Server *httptest.Server
	// Valid says whether a token is honoured, and for which project.
	Valid func(token string) (string, bool)

	mu      sync.Mutex
	images  map[string]map[string]any
	data    map[string][]byte
	volumes map[string]map[string]any
	// Calls counts what reached the cloud, by "METHOD /path".
	Calls map[string]int
}

// NewCloud starts the stand-in.
func NewCloud(valid func(string) (string, bool)) *Cloud {
	c := &Cloud{Valid: valid, images: map[string]map[string]any{}, data: map[string][]byte{},
		volumes: map[string]map[string]any{}, Calls: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	return c
}

// AddVolume puts a volume in a project.
func (c *Cloud) AddVolume(id, name, project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.volumes[id] = map[string]any{"id": id, "name": name, "status": "available", "size": 1,
		"os-vol-tenant-attr:tenant_id": project, "created_at": time.Now().UTC().Format("2006-01-02T15:04:05.000000"),
		"links": []any{}}
}

func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.Calls[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	project, ok := c.Valid(r.Header.Get("X-Auth-Token"))
	if !ok {
		writeError(w, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(segs) >= 2 && segs[0] == "v2" && segs[1] == "images":
		c.glance(w, r, segs[2:], project)
	case len(segs) >= 3 && segs[0] == "v3" && segs[2] == "volumes":
		c.cinder(w, r, segs[3:], project)
	default:
		writeError(w, http.StatusNotFound)
	}
}

func (c *Cloud) glance(w http.ResponseWriter, r *http.Request, rest []string, project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case len(rest) == 0 && r.Method == http.MethodPost:
		var img map[string]any
		if json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&img) != nil {
			writeError(w, http.StatusBadRequest)
			return
		}
		id := uuid()
		now := time.Now().UTC().Format(time.RFC3339)
		img["id"], img["status"], img["owner"], img["created_at"], img["updated_at"] = id, "queued", project, now, now
		img["visibility"], img["self"], img["file"], img["schema"] = "shared", "/v2/images/"+id, "/v2/images/"+id+"/file", "/v2/schemas/image"
		c.images[id] = img
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(img)
	case len(rest) == 0 && r.Method == http.MethodGet:
		list := []map[string]any{}
		for _, img := range c.images {
			list = append(list, img)
		}
		sort.Slice(list, func(i, j int) bool {
			return fmt.Sprint(list[i]["created_at"], list[i]["id"]) > fmt.Sprint(list[j]["created_at"], list[j]["id"])
		})
		json.NewEncoder(w).Encode(map[string]any{"images": list, "first": "/v2/images", "schema": "/v2/schemas/images"})
	case len(rest) >= 1:
		img, ok := c.images[rest[0]]
		if !ok {
			writeError(w, http.StatusNotFound)
			return
		}
		switch {
		case len(rest) == 1 && r.Method == http.MethodGet:
			json.NewEncoder(w).Encode(img)
		case len(rest) == 1 && r.Method == http.MethodDelete:
			delete(c.images, rest[0])
			delete(c.data, rest[0])
			w.WriteHeader(http.StatusNoContent)
		case len(rest) == 2 && rest[1] == "file" && r.Method == http.MethodPut:
			b, _ := io.ReadAll(r.Body)
			sum := md5.Sum(b)
			c.data[rest[0]] = b
			img["status"], img["size"], img["checksum"] = "active", len(b), hex.EncodeToString(sum[:])
			w.WriteHeader(http.StatusNoContent)
		case len(rest) == 2 && rest[1] == "file" && r.Method == http.MethodGet:
			b := c.data[rest[0]]
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			// Glance sends the hex checksum here, not RFC 1864's base64.
			if sum, ok := img["checksum"].(string); ok {
				w.Header().Set("Content-MD5", sum)
			}
			w.Write(b)
		default:
			writeError(w, http.StatusNotFound)
		}
	default:
		writeError(w, http.StatusNotFound)
	}
}

func (c *Cloud) cinder(w http.ResponseWriter, r *http.Request, rest []string, project string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodGet {
		writeError(w, http.StatusNotFound)
		return
	}
	list := []map[string]any{}
	for _, v := range c.volumes {
		if v["os-vol-tenant-attr:tenant_id"] == project {
			list = append(list, v)
		}
	}
	sort.Slice(list, func(i, j int) bool { return fmt.Sprint(list[i]["created_at"]) > fmt.Sprint(list[j]["created_at"]) })
	switch {
	case len(rest) == 0 || (len(rest) == 1 && rest[0] == "detail"):
		json.NewEncoder(w).Encode(map[string]any{"volumes": list})
	case len(rest) == 1:
		if v, ok := c.volumes[rest[0]]; ok {
			json.NewEncoder(w).Encode(map[string]any{"volume": v})
			return
		}
		writeError(w, http.StatusNotFound)
	default:
		writeError(w, http.StatusNotFound)
	}
}

func uuid() string {
	r := random()
	return r[:8] + "-" + r[8:12] + "-4" + r[13:16] + "-8" + r[17:20] + "-" + r[20:32]
}
