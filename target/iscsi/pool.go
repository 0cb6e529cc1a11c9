package iscsi

import (
	"math/bits"
	"sync"
)

// Data buffers come from power-of-two size classes so that a READ or
// WRITE in the steady state reuses memory instead of allocating.
const (
	minBufShift = 12 // 4 KiB
	maxBufShift = 24 // 16 MiB
)

var bufPools [maxBufShift + 1]sync.Pool

func bufClass(n int) int {
	if n <= 1<<minBufShift {
		return minBufShift
	}
	return bits.Len(uint(n - 1))
}

// getBuf returns a buffer of length n from the pool (contents undefined).
func getBuf(n int) *[]byte {
	c := bufClass(n)
	if c > maxBufShift {
		b := make([]byte, n)
		return &b
	}
	if v := bufPools[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// putBuf returns b to its pool; nil is ignored.
func putBuf(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1].Put(b)
}
