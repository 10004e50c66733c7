package service

import (
	"sync"
	"time"
)

// limiter is a token bucket per (network, MAC), with a bounded number of
// buckets: when full, it forgets the idle ones (refilled to the brim:
// they would allow a burst anyway), else an arbitrary one.
type limiter struct {
	rate  float64 // tokens per second; <= 0: no limit
	burst float64
	max   int
	idle  time.Duration // after which a bucket is full again

	mu        sync.Mutex
	buckets   map[bucketKey]bucket
	lastSweep time.Time
}

type bucketKey struct {
	netID string
	mac   [6]byte
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	l := &limiter{rate: rate, burst: float64(burst), max: max, buckets: map[bucketKey]bucket{}}
	if rate > 0 {
		l.idle = time.Duration(float64(burst) / rate * float64(time.Second))
	}
	return l
}

// allow takes a token from the key's bucket, false when there is none.
func (l *limiter) allow(now time.Time, k bucketKey) bool {
	if l.rate <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = bucket{tokens: l.burst, last: now}
	} else if el := now.Sub(b.last); el > 0 {
		b.tokens = min(l.burst, b.tokens+el.Seconds()*l.rate)
		b.last = now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	l.buckets[k] = b
	return allowed
}

// evict makes room for one bucket. A full sweep runs at most once per
// idle period; in between, an arbitrary bucket goes.
func (l *limiter) evict(now time.Time) {
	if now.Sub(l.lastSweep) >= l.idle {
		l.lastSweep = now
		for k, b := range l.buckets {
			if now.Sub(b.last) >= l.idle {
				delete(l.buckets, k)
			}
		}
	}
	if len(l.buckets) < l.max {
		return
	}
	for k := range l.buckets {
		delete(l.buckets, k)
		return
	}
}

// size is the number of buckets held.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
