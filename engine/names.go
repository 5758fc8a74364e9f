package engine

import (
	"bytes"
	"encoding/hex"
	"io"
	"sync"
)

// Docker names unnamed containers adjective_surname; so do we, picked from
// the container's (seeded) id so that transcripts stay the same run to run.
var (
	adjectives = []string{"admiring", "brave", "clever", "dazzling", "eager", "focused", "gallant",
		"happy", "jolly", "keen", "loving", "modest", "nifty", "optimistic", "peaceful", "quirky",
		"relaxed", "sharp", "tender", "upbeat", "vibrant", "wizardly", "xenial", "youthful", "zealous"}
	surnames = []string{"turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth",
		"dijkstra", "hamilton", "liskov", "lamport", "kernighan", "pike", "cerf", "berners", "shannon",
		"noether", "curie", "meitner", "franklin", "goodall", "wozniak", "babbage", "boole", "euler"}
)

func randomName(id string) string {
	b, _ := hex.DecodeString(id[:8])
	return adjectives[int(b[0])%len(adjectives)] + "_" + surnames[int(b[1])%len(surnames)]
}

// prefixWriter copies a container's output into its log and, line by line
// with the container's name in front, onto the live writer (-v).
type prefixWriter struct {
	w      io.Writer
	live   io.Writer
	prefix string

	mu      sync.Mutex
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.live.Write(append([]byte(p.prefix), p.partial[:i+1]...))
		p.partial = p.partial[i+1:]
	}
	return n, err
}
