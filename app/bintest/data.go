package bintest

import (
	"crypto/sha256"
	"io"
)

// Pattern is deterministic data for uploads and downloads, N bytes of it: byte i is
// i*7 mod 251. Both ends can check every byte without holding the image.
type Pattern struct{ Off, N int64 }

func (p *Pattern) Read(b []byte) (int, error) {
	if p.Off >= p.N {
		return 0, io.EOF
	}
	k := int64(len(b))
	if rest := p.N - p.Off; k > rest {
		k = rest
	}
	for i := int64(0); i < k; i++ {
		b[i] = byte((p.Off + i) * 7 % 251)
	}
	p.Off += k
	return int(k), nil
}

// PatternSum is the SHA-256 of n bytes of Pattern.
func PatternSum(n int64) [32]byte {
	h := sha256.New()
	io.Copy(h, &Pattern{N: n})
	return [32]byte(h.Sum(nil))
}
