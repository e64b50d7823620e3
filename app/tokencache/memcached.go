package tokencache

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// Memcached shares entries between every worker process and host. Entries are
// tokens, so each is sealed with AES-256-GCM under a key derived from the
// configured secret, with the cache key as associated data: whoever can read
// memcached learns nothing, and an entry cannot be replayed under another key.
type Memcached struct {
	client *memcache.Client
	aead   cipher.AEAD
	prefix string
}

// NewMemcached connects to servers (HOST:PORT) with a secret shared by every
// mixmatch process of the deployment.
func NewMemcached(servers []string, secret string) (*Memcached, error) {
	if secret == "" {
		return nil, errors.New("a secret is needed to encrypt tokens in memcached")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("mixmatch tokencache v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	c := memcache.New(servers...)
	c.Timeout = 500 * time.Millisecond
	c.MaxIdleConns = 16
	return &Memcached{client: c, aead: aead, prefix: "mixmatch:"}, nil
}

// mkey hashes a cache key into memcached's key alphabet and length.
func (m *Memcached) mkey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return m.prefix + hex.EncodeToString(sum[:])
}

func (m *Memcached) Get(_ context.Context, key string) ([]byte, bool, error) {
	item, err := m.client.Get(m.mkey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	n := m.aead.NonceSize()
	if len(item.Value) < n {
		return nil, false, fmt.Errorf("memcached entry too short")
	}
	plain, err := m.aead.Open(nil, item.Value[:n], item.Value[n:], []byte(key))
	if err != nil {
		// Written under another secret, or tampered with: a miss, not a failure.
		return nil, false, nil
	}
	return plain, true, nil
}

func (m *Memcached) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	nonce := make([]byte, m.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := m.aead.Seal(nonce, nonce, value, []byte(key))
	return m.client.Set(&memcache.Item{Key: m.mkey(key), Value: sealed, Expiration: expiration(ttl)})
}

// expiration rounds up to whole seconds; the entry's own expiry, checked on every
// read, is exact.
func expiration(ttl time.Duration) int32 {
	s := int32((ttl + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	const thirtyDays = 30 * 24 * 3600 // beyond this memcached reads a Unix time
	if s > thirtyDays {
		s = thirtyDays
	}
	return s
}

func (m *Memcached) Delete(_ context.Context, key string) error {
	err := m.client.Delete(m.mkey(key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}

// TryLock uses memcached's atomic add.
func (m *Memcached) TryLock(_ context.Context, key string, ttl time.Duration) (bool, error) {
	err := m.client.Add(&memcache.Item{Key: m.mkey("lock\x00" + key), Value: []byte{1}, Expiration: expiration(ttl)})
	if errors.Is(err, memcache.ErrNotStored) {
		return false, nil
	}
	return err == nil, err
}

func (m *Memcached) Unlock(_ context.Context, key string) error {
	err := m.client.Delete(m.mkey("lock\x00" + key))
	if errors.Is(err, memcache.ErrCacheMiss) {
		return nil
	}
	return err
}
